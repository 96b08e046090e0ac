//! FTP's data connections resume the control connection's TLS session, and only its
//! (vsftpd's `require_ssl_reuse`): otherwise another process on the client's address could
//! connect to the passive port first with a fresh handshake and take the file (`PROT P` hides
//! the bytes from the path, not from whoever connects).
//!
//! Each upgradable connection gets a session store of its own ([`ControlSessions`]): what its
//! control handshake issues (TLS 1.2 session ids, TLS 1.3 tickets) goes there, and its data
//! channels resume from there only, through a view that never adds ([`ChannelView`]: a
//! stranger's full handshake must not leave a session it could resume next time). So a data
//! handshake that resumed at all resumed this control connection's session; one that did not
//! is refused (`TlsChannel` checks rustls's `handshake_kind`).
//!
//! A ticket may be used again within its control connection (`take` keeps it): curl, lftp
//! and Python's `session=` resume every data connection from the one session they got on the
//! control connection. A client that uses each TLS 1.3 ticket once (rustls's cache: bingfa's
//! own client) gets a new one from each data channel; the channel holds it back until it
//! sends something or closes (`channel.rs`), so an uploading client that never reads is not
//! left with unread bytes, which would make its kernel reset the connection and cut the
//! upload. No early data is accepted, so a reused ticket replays nothing.

use rustls::server::StoresServerSessions;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Tickets the data channels issued, kept per control connection (the oldest goes first).
const KEEP: usize = 8;
/// Sessions the control handshake itself issued (see `config.rs`: 4 TLS 1.3 tickets, or a
/// TLS 1.2 session id); never evicted, since a client may resume from them to the end.
const OWN: usize = 8;

/// The sessions one control connection's handshake issued, and those its data channels did.
#[derive(Debug, Default)]
pub(crate) struct ControlSessions {
    own: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    issued: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl ControlSessions {
    fn issued(&self, key: Vec<u8>, value: Vec<u8>) {
        let mut e = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= KEEP {
            e.pop_front();
        }
        e.push_back((key, value));
    }
}

impl StoresServerSessions for ControlSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut e = self.own.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= OWN {
            return false;
        }
        e.push((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = own.iter().find(|(k, _)| k == key) {
            return Some(v.clone());
        }
        drop(own);
        let e = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// What one data channel of that control connection sees: its sessions, to resume from; the
/// tickets the channel issues wait in `pending` and join them only once the channel passed
/// the check ([`ChannelView::commit`]): a stranger's refused handshake leaves nothing it
/// could resume next time.
#[derive(Debug)]
pub(crate) struct ChannelView {
    control: Arc<ControlSessions>,
    pending: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl ChannelView {
    pub(crate) fn new(control: Arc<ControlSessions>) -> Self {
        ChannelView {
            control,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The channel resumed the control connection's session: what it issued is the client's.
    pub(crate) fn commit(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (k, v) in pending {
            self.control.issued(k, v);
        }
    }
}

impl StoresServerSessions for ChannelView {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if p.len() >= KEEP {
            return false;
        }
        p.push((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.control.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.control.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}
