//! TLS on one data channel (FTP's `PROT P`): the server side of a handshake on a socket the
//! driver owns, with the inner session seeing plaintext events and actions as on a plain channel.
//!
//! The driver delivers a channel's input once (`ChannelEvent::Data` is not buffered), so all of
//! it goes into rustls at once and the plaintext waits here until the inner session reads it;
//! past [`MAX_INBOX`] the driver is told to stop reading. Until the handshake is done the
//! inner session's output waits in order (a `close_notify` sent mid-handshake would end it), and
//! the channel is read even while the inner session paused it, so a client that starts its
//! handshake before the transfer command still gets its answer; its plaintext waits for the
//! inner session to resume, whether it paused before or after making the channel TLS. File
//! ranges are read and encrypted [`FILE_CHUNK`] per drain, as on the control connection.

use super::range::{encrypt_range, gather, FileRange, FILE_CHUNK};
use super::reuse::ChannelView;
use crate::session::{Action, ChannelId, Context};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::Arc;

/// Decrypted input the inner session has not consumed, beyond which no more is decrypted
/// (the ciphertext stays in the driver, which applies its own limit).
pub(super) const MAX_INBOX: usize = 256 * 1024;

pub(super) struct TlsChannel {
    pub(super) id: ChannelId,
    tls: rustls::ServerConnection,
    /// Plaintext received and not yet given to the inner session.
    pub(super) inbox: Vec<u8>,
    pub(super) inner_paused: bool,
    /// What the driver was last told (`None`: nothing yet, whatever the inner session said
    /// before this channel became TLS stands).
    driver_paused: Option<bool>,
    file: Option<FileRange>,
    /// The plaintext buffer of the current file step.
    chunk: Vec<u8>,
    /// Output actions waiting for the handshake or behind a file range, in order.
    backlog: VecDeque<Action>,
    /// A file chunk was handed to the driver and its `Drained` has not come.
    writing: bool,
    /// The inner session queued output since its last `Drained`.
    pub(super) owes_drained: bool,
    /// The peer's close_notify or TCP EOF came after a finished handshake.
    pub(super) eof: bool,
    pub(super) eof_told: bool,
    /// Closed by this layer (a failed handshake or record): the inner session's actions are
    /// dropped until the driver's `Closed` ends the channel.
    pub(super) failed: bool,
    /// The handshake must resume the control connection's session (see `reuse.rs`).
    must_resume: bool,
    /// The finished handshake was checked against `must_resume`.
    checked: bool,
    /// This channel's view of the control connection's sessions (bound connections).
    view: Option<Arc<ChannelView>>,
    /// The TLS 1.3 tickets issued at the end of the handshake, held until the channel sends
    /// something or closes (see `reuse.rs`).
    held: Vec<u8>,
}

impl TlsChannel {
    /// `inner_paused`: the inner session paused the channel before making it TLS.
    pub(super) fn new(
        id: ChannelId,
        tls: rustls::ServerConnection,
        inner_paused: bool,
        must_resume: bool,
        view: Option<Arc<ChannelView>>,
    ) -> Self {
        TlsChannel {
            id,
            tls,
            inbox: Vec::new(),
            inner_paused,
            driver_paused: None,
            file: None,
            chunk: Vec::new(),
            backlog: VecDeque::new(),
            writing: false,
            owes_drained: false,
            eof: false,
            eof_told: false,
            failed: false,
            must_resume,
            checked: false,
            view,
            held: Vec::new(),
        }
    }

    /// Once the handshake is done: whether it is refused for not resuming the control
    /// connection's session (checked once, before anything of the inner session's goes out).
    pub(super) fn refused_fresh(&mut self) -> bool {
        if self.checked || self.handshaking() {
            return false;
        }
        self.checked = true;
        let resumed = self.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        if self.must_resume && !resumed {
            tracing::debug!(
                channel = self.id,
                "data channel refused: a fresh TLS handshake"
            );
            self.held.clear();
            return true;
        }
        if let Some(v) = &self.view {
            v.commit();
        }
        false
    }

    fn handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Nothing of the inner session's is waiting or in flight here.
    pub(super) fn idle(&self) -> bool {
        !self.handshaking() && self.file.is_none() && self.backlog.is_empty() && !self.writing
    }

    /// An action of the inner session's for this channel.
    pub(super) fn relay(&mut self, action: Action, cx: &mut Context) {
        if self.failed {
            if let Action::ChannelAbort(_) = action {
                cx.push(action);
            }
            return;
        }
        match action {
            Action::ChannelPause(_, p) => self.inner_paused = p,
            Action::ChannelAbort(_) => {
                self.file = None;
                self.backlog.clear();
                self.failed = true; // nothing more goes out; `Closed` follows
                cx.push(action);
            }
            Action::ChannelWrite(..) | Action::ChannelSendFile { .. } | Action::ChannelClose(_) => {
                if !matches!(action, Action::ChannelClose(_)) {
                    self.owes_drained = true;
                }
                if self.handshaking() || self.file.is_some() || !self.backlog.is_empty() {
                    self.backlog.push_back(action);
                } else {
                    self.carry_out(action, cx);
                }
            }
            other => cx.push(other),
        }
    }

    fn carry_out(&mut self, action: Action, cx: &mut Context) {
        match action {
            Action::ChannelWrite(_, bytes) => {
                let _ = self.tls.writer().write_all(&bytes);
                self.flush(cx);
            }
            Action::ChannelSendFile {
                file, offset, len, ..
            } => {
                self.file = Some(FileRange {
                    file,
                    offset,
                    left: len,
                });
                self.pump_file(cx);
            }
            Action::ChannelClose(id) => {
                self.tls.send_close_notify();
                self.flush(cx);
                cx.push(Action::ChannelClose(id));
            }
            other => cx.push(other),
        }
    }

    /// Carry out what waited, now that the handshake is done or a chunk drained.
    pub(super) fn unblock(&mut self, cx: &mut Context) {
        if self.handshaking() || self.failed {
            return;
        }
        if self.file.is_some() {
            self.pump_file(cx);
        }
        while self.file.is_none() {
            let Some(a) = self.backlog.pop_front() else {
                break;
            };
            self.carry_out(a, cx);
        }
    }

    /// Hand the driver the next chunk of the current range unless one is still in flight; at
    /// the range's end, what was queued behind it follows.
    fn pump_file(&mut self, cx: &mut Context) {
        if self.writing {
            return;
        }
        let Some(f) = &mut self.file else { return };
        let mut out = std::mem::take(&mut self.held);
        if encrypt_range(&mut self.tls, f, &mut self.chunk, FILE_CHUNK, &mut out).is_err() {
            // The file shrank under us: the peer was promised these bytes.
            self.file = None;
            self.backlog.clear();
            self.failed = true;
            cx.push(Action::ChannelAbort(self.id));
            return;
        }
        if f.left == 0 {
            self.file = None;
            self.chunk = Vec::new();
        }
        if !out.is_empty() {
            self.writing = true;
            cx.push(Action::ChannelWrite(self.id, out));
        }
        if self.file.is_none() {
            self.unblock(cx);
        }
    }

    /// Ciphertext from the peer: into rustls, handshake answers out, plaintext into the inbox.
    /// `Err` = the handshake or a record failed (alerts already queued for the peer).
    pub(super) fn feed(&mut self, mut input: &[u8], cx: &mut Context) -> Result<(), ()> {
        while !input.is_empty() {
            let was_handshaking = self.handshaking();
            match self.tls.read_tls(&mut input) {
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(channel = self.id, "TLS read failed: {e}");
                    return Err(());
                }
            }
            match self.tls.process_new_packets() {
                Ok(io) => {
                    if io.peer_has_closed() {
                        self.eof = true;
                    }
                    let tls13 =
                        self.tls.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                    if was_handshaking && !self.handshaking() && tls13 {
                        // All a TLS 1.3 server writes after the client's Finished: tickets.
                        gather(&mut self.tls, &mut self.held);
                    }
                }
                Err(e) => {
                    tracing::debug!(channel = self.id, "TLS failed on a data channel: {e}");
                    self.flush(cx);
                    return Err(());
                }
            }
            let mut reader = self.tls.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(plain) => {
                        let n = plain.len();
                        self.inbox.extend_from_slice(plain);
                        reader.consume(n);
                    }
                }
            }
        }
        self.flush(cx);
        Ok(())
    }

    /// The channel cannot go on: close it (after any alert) and drop what the inner queued.
    pub(super) fn fail(&mut self, cx: &mut Context) {
        self.failed = true;
        self.file = None;
        self.backlog.clear();
        self.inbox = Vec::new();
        cx.push(Action::ChannelClose(self.id));
    }

    /// The driver's EOF: the end of the upload if the handshake finished, else a failure.
    pub(super) fn peer_eof(&mut self, cx: &mut Context) {
        if self.handshaking() {
            self.fail(cx);
        } else {
            self.eof = true;
        }
    }

    pub(super) fn drained(&mut self, cx: &mut Context) {
        self.writing = false;
        self.unblock(cx);
    }

    /// Hand the driver what rustls has encrypted (after the held tickets, if this is the
    /// channel's first output since the handshake).
    fn flush(&mut self, cx: &mut Context) {
        if self.tls.wants_write() {
            let mut out = std::mem::take(&mut self.held);
            gather(&mut self.tls, &mut out);
            cx.push(Action::ChannelWrite(self.id, out));
        }
    }

    /// Read the socket while the handshake runs or the inner session reads, and the inbox has
    /// room.
    pub(super) fn sync_pause(&mut self, cx: &mut Context) {
        if self.failed {
            return;
        }
        let want = self.inbox.len() >= MAX_INBOX || (self.inner_paused && !self.handshaking());
        if self.driver_paused != Some(want) {
            self.driver_paused = Some(want);
            cx.push(Action::ChannelPause(self.id, want));
        }
    }
}
