//! `TlsSession<S>`: TLS as a session that wraps a session. rustls is sans-IO too, so the shape
//! is the chat web face's: ciphertext from the driver goes into a rustls `ServerConnection`,
//! the plaintext it yields is fed to the inner session (which runs against a private
//! [`Context`]), and after each inner callback its actions are carried into the real context:
//! writes are encrypted, `close` becomes close_notify then close, file ranges are read and
//! encrypted a large chunk per drain (sendfile cannot put bytes through user-space TLS; this
//! kernel offers no kTLS), and everything else (timers, hub, pause, channels, abort) passes
//! through unchanged with [`Context::push`].
//!
//! The inner session is opened at accept, like a plain one, so its own timers run from the
//! first byte of the handshake: HTTP's head timeout covers a slow handshake. What it writes
//! before the handshake ends (a greeting) waits inside rustls and goes out encrypted after.

use crate::session::{Action, ChannelEvent, ChannelId, Context, Message, Session};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Plaintext of a file range read and encrypted per drain: large records, few wakeups, and well
/// under the driver's outbound limit.
const FILE_CHUNK: u64 = 512 * 1024;

/// A drain's chunk is read, encrypted and gathered this much at a time: the plaintext buffer and
/// rustls's records (allocated per record, freed by the gather) stay small and cache-hot, and
/// the allocator reuses the same few blocks instead of growing and trimming its heap by half a
/// MiB per drain. Four whole 16 KiB records.
const FILE_STEP: usize = 64 * 1024;

/// Decrypted input the inner session has not consumed, beyond which no more is decrypted
/// (the ciphertext stays in the driver, which applies its own limit).
const MAX_INBOX: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// close_notify sent (or the handshake failed): nothing more is encrypted, input dropped.
    Closed,
}

struct FileRange {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

/// Runs `S` over TLS. Built by [`TlsProtocol`](super::TlsProtocol) for each accepted connection.
pub struct TlsSession<S> {
    inner: S,
    icx: Context,
    tls: rustls::ServerConnection,
    state: State,
    /// Plaintext received and not yet consumed by the inner session.
    inbox: Vec<u8>,
    /// The file range being encrypted, a chunk per drain.
    file: Option<FileRange>,
    /// The plaintext of the current file step (empty while no range is going out).
    chunk: Vec<u8>,
    /// Inner actions being relayed: one vector for the connection's life, not one per callback.
    acts: Vec<Action>,
    /// Output actions queued behind `file`, carried out in order when it is done.
    backlog: VecDeque<Action>,
    inner_paused: bool,
    /// What this session last told the driver about pausing input.
    driver_paused: bool,
    /// The peer's close_notify (or TCP EOF) was passed to the inner session.
    inner_eof: bool,
    peer_closed: bool,
}

impl<S: Session> TlsSession<S> {
    pub fn new(inner: S, tls: rustls::ServerConnection, cx_info: crate::ConnInfo) -> Self {
        TlsSession {
            inner,
            icx: Context::new(cx_info),
            tls,
            state: State::Open,
            inbox: Vec::new(),
            file: None,
            chunk: Vec::new(),
            acts: Vec::new(),
            backlog: VecDeque::new(),
            inner_paused: false,
            driver_paused: false,
            inner_eof: false,
            peer_closed: false,
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    /// Run one callback of the inner session, carry its actions into `cx`, then send what
    /// rustls has ready and feed the inner session any plaintext it can now take.
    fn call<R>(&mut self, cx: &mut Context, f: impl FnOnce(&mut S, &mut Context) -> R) -> R {
        self.icx.set_now(cx.now());
        if cx.shutting_down() {
            self.icx.set_shutting_down();
        }
        let r = f(&mut self.inner, &mut self.icx);
        // (Taken, not borrowed: relaying needs `self`. A nested call finds it empty.)
        let mut acts = std::mem::take(&mut self.acts);
        acts.extend(self.icx.take_actions());
        for a in acts.drain(..) {
            self.relay(a, cx);
        }
        if acts.capacity() <= 64 {
            self.acts = acts;
        }
        r
    }

    /// After a callback that may have unpaused the inner session: feed it what waits, flush.
    fn settle(&mut self, cx: &mut Context) {
        self.pump(cx);
        self.flush(cx);
        self.sync_pause(cx);
    }

    fn relay(&mut self, action: Action, cx: &mut Context) {
        let ordered = matches!(
            action,
            Action::Write(_) | Action::SendFile { .. } | Action::Close
        );
        if ordered && (self.file.is_some() || !self.backlog.is_empty()) {
            self.backlog.push_back(action);
            return;
        }
        self.carry_out(action, cx);
    }

    /// Carry out one action now (its turn has come).
    fn carry_out(&mut self, action: Action, cx: &mut Context) {
        match action {
            Action::Write(bytes) => self.encrypt(&bytes),
            Action::SendFile { file, offset, len } => {
                self.file = Some(FileRange {
                    file,
                    offset,
                    left: len,
                });
                self.next_chunk(cx);
            }
            Action::Close => self.close(cx),
            Action::Abort => {
                self.file = None;
                self.backlog.clear();
                self.state = State::Closed;
                cx.abort();
            }
            Action::PauseInput(p) => self.inner_paused = p,
            other => cx.push(other),
        }
    }

    fn encrypt(&mut self, plain: &[u8]) {
        if self.state == State::Open {
            // The buffer limit is off, so rustls takes all of it.
            let _ = self.tls.writer().write_all(plain);
        }
    }

    /// Send close_notify after everything encrypted so far, then close the connection.
    fn close(&mut self, cx: &mut Context) {
        if self.state == State::Open {
            self.tls.send_close_notify();
            self.flush(cx);
            self.state = State::Closed;
        }
        cx.close();
    }

    /// Encrypt the next chunk of the current file range; when it is done, carry out what was
    /// queued behind it (which may start another range).
    fn next_chunk(&mut self, cx: &mut Context) {
        // The chunk's ciphertext, gathered a step at a time.
        let mut out: Vec<u8> = Vec::new();
        let mut budget = FILE_CHUNK;
        while let Some(f) = &mut self.file {
            if f.left == 0 {
                self.file = None;
                self.chunk = Vec::new(); // an idle connection keeps no buffer
                                         // Out before what was queued behind the range: a range started from the backlog
                                         // hands over its own ciphertext from a nested call.
                cx.write_vec(std::mem::take(&mut out));
                while self.file.is_none() {
                    let Some(a) = self.backlog.pop_front() else {
                        break;
                    };
                    self.carry_out(a, cx);
                }
                // carry_out() already started (and chunked) a new range if it met one.
                break;
            }
            if budget == 0 {
                break; // the rest on the next drain
            }
            if out.capacity() == 0 {
                // Each 16 KiB record adds 22 bytes (header, content type, tag).
                let plain = f.left.min(budget) as usize;
                out.reserve(plain + plain / 16384 * 32 + 1024);
            }
            let n = f.left.min(budget).min(FILE_STEP as u64) as usize;
            // One buffer per range, reused for each step (no zeroing, no allocator churn).
            let buf = &mut self.chunk;
            buf.resize(n, 0);
            if f.file.read_exact_at(buf, f.offset).is_err() {
                // The file shrank under us: the peer was promised these bytes (contract).
                self.relay(Action::Abort, cx);
                return;
            }
            f.offset += n as u64;
            f.left -= n as u64;
            budget -= n as u64;
            let buf = std::mem::take(&mut self.chunk);
            self.encrypt(&buf);
            self.chunk = buf;
            self.gather(&mut out);
        }
        // (Also what the backlog encrypted after the range, e.g. the next response's head.)
        self.gather(&mut out);
        cx.write_vec(out);
    }

    /// Move what rustls has encrypted to the end of `out`.
    fn gather(&mut self, out: &mut Vec<u8>) {
        while self.tls.wants_write() {
            if self.tls.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Hand everything rustls has encrypted to the driver, in one write.
    fn flush(&mut self, cx: &mut Context) {
        if !self.tls.wants_write() {
            return;
        }
        let mut out = Vec::new();
        self.gather(&mut out);
        cx.write_vec(out);
    }

    /// The driver reads while neither the inner session paused nor output waits behind a file.
    fn sync_pause(&mut self, cx: &mut Context) {
        let want = self.inner_paused || !self.backlog.is_empty() || self.inbox.len() >= MAX_INBOX;
        if want != self.driver_paused {
            self.driver_paused = want;
            cx.push(Action::PauseInput(want));
        }
    }

    /// Feed the inner session plaintext as a driver would: again while it consumes some.
    fn pump(&mut self, cx: &mut Context) {
        while !self.inner_paused && !self.inbox.is_empty() && self.state == State::Open {
            let mut buf = std::mem::take(&mut self.inbox);
            let n = self.call(cx, |s, icx| s.on_data(&buf, icx)).min(buf.len());
            buf.drain(..n);
            self.inbox = buf;
            if n == 0 {
                break;
            }
        }
        if self.peer_closed && !self.inner_eof && self.state == State::Open {
            self.inner_eof = true;
            self.call(cx, |s, icx| s.on_eof(icx));
        }
    }

    fn decrypt(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let mut used = 0;
        while used < input.len() && self.inbox.len() < MAX_INBOX {
            let mut rest = &input[used..];
            match self.tls.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(n) => used += n,
                Err(e) => {
                    tracing::debug!(peer = %cx.info().peer, "TLS read failed: {e}");
                    self.fail(cx);
                    return input.len();
                }
            }
            match self.tls.process_new_packets() {
                Ok(io) => {
                    if io.peer_has_closed() {
                        self.peer_closed = true;
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %cx.info().peer, "TLS failed: {e}");
                    // Pending alerts (e.g. protocol_version for a TLS 1.0 client) go first.
                    self.flush(cx);
                    self.fail(cx);
                    return input.len();
                }
            }
            // Straight from rustls's buffer into the inbox (no bounce buffer to zero per call).
            let mut reader = self.tls.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) => break,
                    Ok(plain) => {
                        let n = plain.len();
                        self.inbox.extend_from_slice(plain);
                        reader.consume(n);
                    }
                    Err(_) => break, // WouldBlock: nothing more decrypted yet
                }
            }
        }
        used
    }

    /// The handshake or a record failed: whatever alert rustls queued is already flushed; close.
    fn fail(&mut self, cx: &mut Context) {
        self.state = State::Closed;
        self.file = None;
        self.backlog.clear();
        cx.close();
    }
}

impl<S: Session> Session for TlsSession<S> {
    fn on_open(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_open(icx));
        self.flush(cx);
        self.sync_pause(cx);
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if self.state == State::Closed {
            return input.len();
        }
        let used = self.decrypt(input, cx);
        if self.state == State::Open {
            self.settle(cx);
        }
        used
    }

    fn on_eof(&mut self, cx: &mut Context) {
        // TCP EOF, with or without close_notify before it: the inner session's end of input.
        self.peer_closed = true;
        if self.state == State::Open {
            self.settle(cx);
        } else {
            cx.close();
        }
    }

    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_message(msg, icx));
        self.settle(cx);
    }

    fn on_timer(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_timer(icx));
        self.settle(cx);
    }

    fn on_drained(&mut self, cx: &mut Context) {
        if self.file.is_some() {
            self.next_chunk(cx);
            self.sync_pause(cx);
            if self.file.is_some() || self.tls.wants_write() || cx.has_actions() {
                return; // the inner session's "drained" is when its own output is all out
            }
        }
        if self.state == State::Open {
            self.call(cx, |s, icx| s.on_drained(icx));
            self.settle(cx);
        }
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_channel(id, ev, icx));
        self.settle(cx);
    }

    fn on_idle(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_idle(icx));
        // The driver closes after this; end the TLS stream properly first.
        if self.state == State::Open && self.file.is_none() && self.backlog.is_empty() {
            self.tls.send_close_notify();
            self.state = State::Closed;
        }
        self.flush(cx);
    }

    fn on_overflow(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_overflow(icx));
        self.settle(cx);
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_shutdown(icx));
        self.settle(cx);
    }

    fn on_farewell(&mut self, cx: &mut Context) {
        // Only hub publications are carried out here; pass them straight on.
        let mut icx = Context::new(*cx.info());
        self.inner.on_farewell(&mut icx);
        for a in icx.take_actions() {
            cx.push(a);
        }
    }

    fn on_close(&mut self) {
        self.inner.on_close();
    }
}
