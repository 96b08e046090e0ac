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
use super::session::MAX_INBOX;
use crate::session::{Action, ChannelId, Context};
use std::collections::VecDeque;
use std::io::{BufRead, Write};

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
}

impl TlsChannel {
    /// `inner_paused`: the inner session paused the channel before making it TLS.
    pub(super) fn new(id: ChannelId, tls: rustls::ServerConnection, inner_paused: bool) -> Self {
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
        }
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
        let mut out = Vec::new();
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

    fn flush(&mut self, cx: &mut Context) {
        if self.tls.wants_write() {
            let mut out = Vec::new();
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
