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
//!
//! An upgradable session (FTP's explicit mode) starts in the clear, passing everything
//! through, until the inner session's [`Context::start_tls`]: what it queued before goes out
//! as it is, and every byte after, both ways, is TLS. Data channels the inner session marks
//! with [`Context::channel_tls`] get a TLS connection each (`channel`).

use super::channel::{TlsChannel, MAX_INBOX};
use super::range::{encrypt_range, gather, FileRange, FILE_CHUNK};
use super::TlsConfig;
use crate::session::{Action, ChannelId, Context, Session};
use std::collections::VecDeque;
use std::io::{BufRead, Write};

mod channels;
mod events;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// close_notify sent (or the handshake failed): nothing more is encrypted, input dropped.
    Closed,
}

/// Runs `S` over TLS. Built by [`TlsProtocol`](super::TlsProtocol) for each accepted connection.
pub struct TlsSession<S> {
    inner: S,
    icx: Context,
    /// `None` while an upgradable connection is still in the clear (before `start_tls`).
    tls: Option<rustls::ServerConnection>,
    /// For `start_tls` and TLS data channels: a new connection with the same certificate.
    config: TlsConfig,
    state: State,
    /// The inner session was told the handshake is done (`on_secure`).
    secure: bool,
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
    /// Data channels that speak TLS (few: FTP has one at a time).
    channels: Vec<TlsChannel>,
    /// Plain channels the inner session has paused: a pause from before `channel_tls` (FTP
    /// pauses a passive channel at `Connected`) still holds the plaintext back after the
    /// handshake, which the layer runs meanwhile.
    paused_plain: Vec<ChannelId>,
    /// No byte received yet and plain HTTP gets an answer (`plain_http.rs`).
    sniff: bool,
}

impl<S: Session> TlsSession<S> {
    /// TLS from the first byte.
    pub fn new(
        inner: S,
        config: TlsConfig,
        tls: rustls::ServerConnection,
        info: crate::ConnInfo,
    ) -> Self {
        let mut s = Self::upgradable(inner, config, info);
        s.tls = Some(tls);
        s.sniff = s.config.answers_plain_http();
        s
    }

    /// In the clear until the inner session calls [`Context::start_tls`].
    pub fn upgradable(inner: S, config: TlsConfig, info: crate::ConnInfo) -> Self {
        TlsSession {
            inner,
            icx: Context::new(info),
            tls: None,
            config,
            state: State::Open,
            secure: false,
            inbox: Vec::new(),
            file: None,
            chunk: Vec::new(),
            acts: Vec::new(),
            backlog: VecDeque::new(),
            inner_paused: false,
            driver_paused: false,
            inner_eof: false,
            peer_closed: false,
            channels: Vec::new(),
            paused_plain: Vec::new(),
            sniff: false,
        }
    }

    /// The protocol's own session inside the TLS layer (to read its state; the layer drives it).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|t| t.alpn_protocol())
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
        if !self.channels.is_empty() {
            self.pump_channels(cx);
        }
    }

    fn relay(&mut self, action: Action, cx: &mut Context) {
        match &action {
            Action::ChannelWrite(id, _)
            | Action::ChannelSendFile { id, .. }
            | Action::ChannelClose(id)
            | Action::ChannelAbort(id)
            | Action::ChannelPause(id, _) => {
                if let Some(ch) = self.channel(*id) {
                    return ch.relay(action, cx);
                }
                match &action {
                    Action::ChannelPause(id, true) if !self.paused_plain.contains(id) => {
                        self.paused_plain.push(*id)
                    }
                    Action::ChannelPause(id, false) | Action::ChannelAbort(id) => {
                        self.paused_plain.retain(|c| c != id)
                    }
                    _ => {}
                }
            }
            Action::ChannelTls(id) => {
                let id = *id;
                if self.channel(id).is_none() {
                    let paused = self.paused_plain.contains(&id);
                    self.paused_plain.retain(|&c| c != id);
                    match self.config.channel_connection() {
                        Ok((c, view)) => self.channels.push(TlsChannel::new(
                            id,
                            c,
                            paused,
                            self.config.channels_must_resume(),
                            view,
                        )),
                        Err(e) => {
                            tracing::error!("cannot start TLS on a data channel: {e}");
                            cx.push(Action::ChannelAbort(id));
                        }
                    }
                }
                return;
            }
            _ => {}
        }
        let ordered = matches!(
            action,
            Action::Write(_) | Action::SendFile { .. } | Action::Close | Action::StartTls
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
            Action::Write(bytes) => match &mut self.tls {
                Some(_) => self.encrypt(&bytes),
                None => cx.write_vec(bytes),
            },
            Action::SendFile { file, offset, len } => {
                if self.tls.is_none() {
                    // In the clear: the driver's sendfile.
                    return cx.send_file(file, offset, len);
                }
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
            Action::StartTls => {
                if self.tls.is_some() {
                    tracing::error!("start_tls on a connection already secure: ignored");
                    return;
                }
                match self.config.connection() {
                    Ok(c) => self.tls = Some(c),
                    Err(e) => {
                        tracing::error!("cannot start TLS: {e}");
                        self.carry_out(Action::Abort, cx);
                    }
                }
            }
            other => cx.push(other),
        }
    }

    fn encrypt(&mut self, plain: &[u8]) {
        if let (State::Open, Some(tls)) = (self.state, &mut self.tls) {
            // The buffer limit is off, so rustls takes all of it.
            let _ = tls.writer().write_all(plain);
        }
    }

    /// Send close_notify after everything encrypted so far, then close the connection.
    fn close(&mut self, cx: &mut Context) {
        if self.state == State::Open {
            if let Some(tls) = &mut self.tls {
                tls.send_close_notify();
                self.flush(cx);
            }
            self.state = State::Closed;
        }
        cx.close();
    }

    /// Encrypt the next chunk of the current file range; when it is done, carry out what was
    /// queued behind it (which may start another range).
    fn next_chunk(&mut self, cx: &mut Context) {
        let (Some(f), Some(tls)) = (&mut self.file, &mut self.tls) else {
            return;
        };
        // The chunk's ciphertext.
        let mut out: Vec<u8> = Vec::new();
        if encrypt_range(tls, f, &mut self.chunk, FILE_CHUNK, &mut out).is_err() {
            // The file shrank under us: the peer was promised these bytes (contract).
            self.relay(Action::Abort, cx);
            return;
        }
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
        }
        // (Also what the backlog encrypted after the range, e.g. the next response's head.)
        if let Some(tls) = &mut self.tls {
            gather(tls, &mut out);
        }
        cx.write_vec(out);
    }

    /// Hand everything rustls has encrypted to the driver, in one write.
    fn flush(&mut self, cx: &mut Context) {
        let Some(tls) = &mut self.tls else { return };
        if !tls.wants_write() {
            return;
        }
        let mut out = Vec::new();
        gather(tls, &mut out);
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
            let Some(tls) = &mut self.tls else { break };
            let mut rest = &input[used..];
            match tls.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(n) => used += n,
                Err(e) => {
                    tracing::debug!(peer = %cx.info().peer, "TLS read failed: {e}");
                    self.fail(cx);
                    return input.len();
                }
            }
            match tls.process_new_packets() {
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
            let mut reader = tls.reader();
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
            if !self.secure && !tls.is_handshaking() {
                self.secure = true;
                self.call(cx, |s, icx| s.on_secure(icx));
            }
        }
        used
    }

    /// Plain HTTP on a TLS port (`plain_http.rs`): a readable 400 in the clear, then close.
    fn answer_plain_http(&mut self, len: usize, cx: &mut Context) -> usize {
        tracing::debug!(peer = %cx.info().peer, "plain HTTP on a TLS port: 400");
        cx.write_vec(super::plain_http::answer());
        self.state = State::Closed;
        cx.close();
        len
    }

    /// The handshake or a record failed: whatever alert rustls queued is already flushed; close.
    fn fail(&mut self, cx: &mut Context) {
        self.state = State::Closed;
        self.file = None;
        self.backlog.clear();
        cx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::wrap::tests::{contract, Log};
    use crate::session::{ChannelEvent, Message};
    use std::sync::Arc;

    fn info() -> crate::ConnInfo {
        crate::ConnInfo {
            id: 1,
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            cred: None,
        }
    }

    /// The layer is a `Wrapper`: every callback reaches the inner session, `on_secure` (which
    /// an outer layer would send) included. In the clear, so no handshake is needed.
    #[test]
    fn the_inner_session_gets_every_callback() {
        let (config, _) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
        // Paused at its open: `on_hangup` is passed on only to a session that paused.
        let (inner, log) = Log::new(true);
        let mut s = TlsSession::upgradable(inner, config, info());
        let mut cx = Context::new(info());
        let msg = Message {
            topic: "t".into(),
            from: 2,
            body: Arc::from(&b"m"[..]),
        };
        s.on_open(&mut cx);
        s.on_data(b"abc", &mut cx);
        s.on_hangup(&mut cx);
        s.on_message(&msg, &mut cx);
        s.on_timer(crate::Timer("t"), &mut cx);
        s.on_task_done(7, &mut cx);
        s.on_drained(&mut cx);
        s.on_secure(&mut cx);
        s.on_channel(0, ChannelEvent::Eof, &mut cx);
        s.on_overflow(&mut cx);
        s.on_shutdown(&mut cx);
        s.on_eof(&mut cx);
        s.on_idle(&mut cx);
        s.on_farewell(&mut cx);
        s.on_close();
        let got = log.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                "on_open",
                "on_data",
                "on_hangup",
                "on_message",
                "on_timer",
                "on_task_done",
                "on_drained",
                "on_secure",
                "on_channel",
                "on_overflow",
                "on_shutdown",
                "on_eof",
                "on_idle",
                "on_farewell",
                "on_close"
            ]
        );
        let mut names: Vec<String> = got.iter().map(|n| n.to_string()).collect();
        names.sort();
        assert_eq!(names, contract(), "every callback of the contract");
    }
}
