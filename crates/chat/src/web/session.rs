//! `WebSession<S>`: the "layer wraps a session" shape (like TLS would be) applied to
//! WebSocket framing. The inner session runs against a private [`Context`]; after each of its
//! callbacks the wrapper drains that context and carries the actions into the real one,
//! turning writes into text frames (one per line) and `close` into a close handshake, and
//! replaying everything else (timers, hub, pause, abort, channels) unchanged with
//! [`Context::push`].
//!
//! Each text message is handed to the inner session as it is plus [`WebLimits::message_end`]
//! (one trailing `\n` or `\r\n` in the message dropped first, so `"hi\n"` is `hi`). With the
//! default end, `\n`, a message containing `\n` is several lines to the inner session; the
//! room instead ends each message with 0xFF, a byte no UTF-8 text holds, so a message is
//! exactly one line of input whatever it contains (and is refused as one).

use super::http::{self, Request};
use super::origin;
use crate::ws::{self, code, frame, Decoder, Event, Opcode, WsError};
use bingfa_net::{
    Action, ChannelEvent, ChannelId, ConnInfo, Context, LayerContext, Session, Timer,
};
use std::os::unix::fs::FileExt;
use std::time::Duration;

/// The web face's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// Longest request head accepted before the upgrade (longer: 431, closed). Default 8 KiB.
    pub max_head: usize,
    /// Largest WebSocket message, fragments together (larger: close 1009). Also the longest
    /// line the inner session may write before it is sent unfinished. Default 64 KiB.
    pub max_message: usize,
    /// Before the upgrade: how long a request head may take to arrive, counted from the
    /// connection's open (so under TLS it covers the handshake) and again after each page
    /// answered on a kept-alive connection. Then the connection is closed (408 if part of a
    /// head had come). Default 10 s.
    pub head_timeout: Duration,
    /// The byte appended to each text message for the inner session. Default `\n`.
    pub message_end: u8,
}

impl Default for WebLimits {
    fn default() -> Self {
        WebLimits {
            max_head: 8 * 1024,
            max_message: 64 * 1024,
            head_timeout: Duration::from_secs(10),
            message_end: b'\n',
        }
    }
}

/// The HTTP head deadline (from accept, and between keep-alive requests), until the upgrade.
const HEAD: Timer = Timer("web.head");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Answering HTTP requests; the inner session has not been opened.
    Http,
    /// Upgraded: frames in, frames out.
    Ws,
    /// A close frame or error answer is on its way out; input is dropped.
    Closed,
}

/// Serves the page and the WebSocket endpoint, and runs `S` over the WebSocket.
pub struct WebSession<S> {
    inner: S,
    icx: LayerContext,
    limits: WebLimits,
    phase: Phase,
    decoder: Decoder,
    /// Lines decoded from text messages, not yet consumed by the inner session.
    inbox: Vec<u8>,
    /// The inner session's last unfinished output line.
    line: Vec<u8>,
    /// The inner session is opened at the upgrade, so page requests never become members.
    inner_open: bool,
    inner_paused: bool,
    /// Part of a request head has arrived (a timeout then answers 408, not just closes).
    partial_head: bool,
    /// This face speaks TLS (the page's origin is `https://`), and the other origins whose
    /// pages may open the WebSocket (`origin.rs`).
    secure: bool,
    allow_origins: std::sync::Arc<[String]>,
}

impl<S: Session> WebSession<S> {
    /// Wrap `inner` for the connection `info` with the default [`WebLimits`].
    pub fn new(inner: S, info: ConnInfo) -> Self {
        Self::with_limits(inner, info, WebLimits::default())
    }

    /// Wrap `inner` for the connection `info` with `limits`.
    pub fn with_limits(inner: S, info: ConnInfo, limits: WebLimits) -> Self {
        WebSession {
            inner,
            icx: LayerContext::new(info),
            limits,
            phase: Phase::Http,
            decoder: Decoder::new(limits.max_message),
            inbox: Vec::new(),
            line: Vec::new(),
            inner_open: false,
            inner_paused: false,
            partial_head: false,
            secure: false,
            allow_origins: std::sync::Arc::from([]),
        }
    }

    /// Let pages from these origins open the WebSocket too (`--allow-origin`).
    pub fn allow_origins(mut self, origins: std::sync::Arc<[String]>) -> Self {
        self.allow_origins = origins;
        self
    }

    /// The wrapped session.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// True once the WebSocket upgrade happened (and the inner session was opened).
    pub fn upgraded(&self) -> bool {
        self.inner_open
    }

    /// Run one callback of the inner session, then carry its actions into `cx`.
    fn call<R>(&mut self, cx: &mut Context, f: impl FnOnce(&mut S, &mut Context) -> R) -> R {
        let inner = &mut self.inner;
        let (r, actions) = self.icx.run(cx, |icx| f(inner, icx));
        let actions: Vec<Action> = actions.collect();
        for a in actions {
            self.relay(a, cx);
        }
        r
    }

    /// [`Self::call`] for a callback that may resume the inner session's input: lines decoded
    /// before it paused are fed then, since the driver has no new input to call `on_data` with.
    fn call_resuming<R>(
        &mut self,
        cx: &mut Context,
        f: impl FnOnce(&mut S, &mut Context) -> R,
    ) -> R {
        let was_paused = self.inner_paused;
        let r = self.call(cx, f);
        if was_paused && !self.inner_paused {
            self.pump(cx);
        }
        r
    }

    fn relay(&mut self, action: Action, cx: &mut Context) {
        match action {
            Action::Write(bytes) => self.outbound(&bytes, cx),
            // The range has to be framed, so it is read here rather than sent with sendfile.
            Action::SendFile { file, offset, len } => {
                let mut buf = vec![0; len as usize];
                match file.read_exact_at(&mut buf, offset) {
                    Ok(()) => self.outbound(&buf, cx),
                    Err(_) => cx.abort(),
                }
            }
            Action::Close => {
                if self.phase == Phase::Ws {
                    if !self.line.is_empty() {
                        let rest = std::mem::take(&mut self.line);
                        send_line(&rest, cx);
                    }
                    let code = if cx.shutting_down() {
                        code::GOING_AWAY
                    } else {
                        code::NORMAL
                    };
                    self.close_with(code, "", cx);
                }
            }
            Action::PauseInput(p) => {
                self.inner_paused = p;
                cx.push(Action::PauseInput(p));
            }
            other => cx.push(other),
        }
    }

    /// Split the inner session's output into lines, one text frame each.
    fn outbound(&mut self, bytes: &[u8], cx: &mut Context) {
        if self.phase != Phase::Ws {
            return; // after our close frame, no data frames may follow (RFC 6455 §5.5.1)
        }
        self.line.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(i) = self.line[start..].iter().position(|&b| b == b'\n') {
            send_line(&self.line[start..start + i], cx);
            start += i + 1;
        }
        self.line.drain(..start);
        if self.line.len() > self.limits.max_message {
            let long = std::mem::take(&mut self.line);
            send_line(&long, cx);
        }
    }

    /// Send a close frame and close the connection once it is flushed.
    fn close_with(&mut self, code: u16, reason: &str, cx: &mut Context) {
        cx.write(&frame::encode(
            Opcode::Close,
            true,
            &frame::close_payload(code, reason),
        ));
        cx.close();
        self.phase = Phase::Closed;
    }

    fn fail(&mut self, e: WsError, cx: &mut Context) {
        tracing::debug!(peer = %cx.info().peer, "websocket failed: {e}");
        self.close_with(e.code(), &e.to_string(), cx);
    }

    fn on_http(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let (req, len) = match Request::parse(input, self.limits.max_head) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.partial_head = !input.is_empty();
                return 0;
            }
            Err(e) => return self.refuse(e.status(), "", "malformed request head", cx),
        };
        if req.method != "GET" && req.method != "HEAD" {
            return self.refuse(405, "Allow: GET, HEAD\r\n", "only GET and HEAD", cx);
        }
        let has_body = req.header("transfer-encoding").is_some()
            || req
                .header("content-length")
                .is_some_and(|v| v.trim() != "0");
        if has_body {
            return self.refuse(400, "", "requests here carry no body", cx);
        }
        match req.path.as_str() {
            "/" | "/index.html" => {
                let keep = req.keep_alive();
                let csp = origin::policy(super::PAGE);
                cx.write_vec(http::page(super::PAGE, &csp, req.method == "HEAD", keep));
                if keep {
                    // The next request gets the same bound as the first.
                    self.partial_head = false;
                    cx.set_timer(HEAD, self.limits.head_timeout);
                } else {
                    cx.close();
                    self.phase = Phase::Closed;
                }
                len
            }
            "/ws" => {
                if let Err(why) = origin::check(&req, self.secure, &self.allow_origins) {
                    return self.refuse(403, "", why, cx);
                }
                let found = |name: &str| req.header(name);
                // check_upgrade looks headers up by reference; collect the few it needs.
                let wanted = [
                    "host",
                    "upgrade",
                    "connection",
                    "sec-websocket-version",
                    "sec-websocket-key",
                ]
                .map(|n| (n, found(n)));
                let lookup = |name: &str| {
                    wanted
                        .iter()
                        .find(|(n, _)| *n == name)
                        .and_then(|(_, v)| v.as_deref())
                };
                match ws::check_upgrade(&req.method, req.minor, lookup) {
                    Ok(accept) => {
                        cx.write_vec(ws::handshake::response_101(&accept));
                        self.phase = Phase::Ws;
                        self.inner_open = true;
                        // The head deadline is over; from here the timers are the inner session's.
                        cx.cancel_timer(HEAD);
                        self.call(cx, |s, icx| s.on_open(icx));
                        if self.secure {
                            // The handshake finished before the inner session existed: it
                            // learns so right after its open, as a session under TLS would.
                            self.call(cx, |s, icx| s.on_secure(icx));
                        }
                        len
                    }
                    Err(e) => {
                        let extra = if e.status() == 426 {
                            "Sec-WebSocket-Version: 13\r\n"
                        } else {
                            ""
                        };
                        self.refuse(e.status(), extra, &e.to_string(), cx)
                    }
                }
            }
            _ => self.refuse(404, "", "no such page", cx),
        }
    }

    fn refuse(&mut self, status: u16, extra: &str, text: &str, cx: &mut Context) -> usize {
        cx.write_vec(http::error(status, extra, text));
        cx.close();
        self.phase = Phase::Closed;
        usize::MAX // everything: nothing more is read from this connection
    }

    fn on_frames(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let mut used = 0;
        // Decode while the inner session keeps up; what it has not taken stays in the driver.
        while self.phase == Phase::Ws && self.inbox.is_empty() && used < input.len() {
            let (n, r) = self.decoder.decode(&input[used..]);
            used += n;
            match r {
                Ok(Some(ev)) => self.on_event(ev, cx),
                Ok(None) if n == 0 => break,
                Ok(None) => {}
                Err(e) => self.fail(e, cx),
            }
            self.pump(cx);
        }
        used
    }

    fn on_event(&mut self, ev: Event, cx: &mut Context) {
        match ev {
            Event::Text(t) => {
                let t = t.strip_suffix('\n').unwrap_or(&t);
                let t = t.strip_suffix('\r').unwrap_or(t);
                self.inbox.extend_from_slice(t.as_bytes());
                self.inbox.push(self.limits.message_end);
            }
            Event::Binary(_) => self.close_with(code::UNSUPPORTED, "text only", cx),
            Event::Ping(p) => cx.write(&frame::encode(Opcode::Pong, true, &p)),
            Event::Pong(_) => {}
            Event::Close(c) => {
                // Echo the peer's code (RFC 6455 §5.5.1), then close once it is flushed.
                let payload = c
                    .map(|(code, _)| code.to_be_bytes().to_vec())
                    .unwrap_or_default();
                cx.write(&frame::encode(Opcode::Close, true, &payload));
                cx.close();
                self.phase = Phase::Closed;
                // To the inner session the peer's close is its end of input: it may say
                // goodbye to others (publish); its own writes are dropped from here on.
                self.call(cx, |s, icx| s.on_eof(icx));
            }
        }
    }

    /// Feed decoded lines to the inner session, as a driver would (again while it consumes).
    fn pump(&mut self, cx: &mut Context) {
        while self.phase == Phase::Ws && !self.inner_paused && !self.inbox.is_empty() {
            let buf = std::mem::take(&mut self.inbox);
            let n = self.call(cx, |s, icx| s.on_data(&buf, icx)).min(buf.len());
            self.inbox = buf[n..].to_vec();
            if n == 0 {
                break;
            }
        }
    }
}

fn send_line(line: &[u8], cx: &mut Context) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    cx.write(&frame::encode(Opcode::Text, true, text.as_bytes()));
}

/// Callbacks not written here (`on_message`, `on_drained`, `on_overflow`, `on_hangup`, …) reach
/// the inner session while the WebSocket is up (`forward`), and `on_close` once it was opened.
impl<S: Session> bingfa_net::session::Wrapper for WebSession<S> {
    type Inner = S;

    fn inner_mut(&mut self) -> Option<&mut S> {
        self.inner_open.then_some(&mut self.inner)
    }

    /// Only while upgraded: before, the inner session is not open; after our close, its output
    /// could not be framed any more.
    fn forward<R>(
        &mut self,
        cx: &mut Context,
        f: impl FnOnce(&mut S, &mut Context) -> R,
    ) -> Option<R> {
        (self.phase == Phase::Ws).then(|| self.call_resuming(cx, f))
    }

    fn on_open(&mut self, cx: &mut Context) {
        // The room has no idle timeout, so without this a connection that never sends a
        // request (or never finishes its TLS handshake) would hold its place for ever.
        cx.set_timer(HEAD, self.limits.head_timeout);
    }

    fn on_secure(&mut self, cx: &mut Context) {
        // Before the upgrade (as always: the handshake precedes any request) it is recorded
        // for the origin rule and told the inner session at its open.
        self.secure = true;
        self.forward(cx, |s, icx| s.on_secure(icx));
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match self.phase {
            Phase::Http => self.on_http(input, cx).min(input.len()),
            Phase::Ws if self.inner_paused => 0,
            Phase::Ws => self.on_frames(input, cx),
            Phase::Closed => input.len(),
        }
    }

    fn on_eof(&mut self, cx: &mut Context) {
        match self.phase {
            Phase::Ws => self.call_resuming(cx, |s, icx| s.on_eof(icx)),
            Phase::Http => cx.close(),
            Phase::Closed => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        match self.phase {
            Phase::Ws => self.call_resuming(cx, |s, icx| s.on_timer(timer, icx)),
            Phase::Http if timer != HEAD => {}
            Phase::Http if self.partial_head => {
                self.refuse(408, "", "request head timed out", cx);
            }
            Phase::Http => {
                cx.close();
                self.phase = Phase::Closed;
            }
            Phase::Closed => {}
        }
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        if self.inner_open {
            self.call_resuming(cx, |s, icx| s.on_channel(id, ev, icx));
        }
    }

    fn on_idle(&mut self, cx: &mut Context) {
        if self.phase == Phase::Ws {
            self.call(cx, |s, icx| s.on_idle(icx));
            if self.phase == Phase::Ws {
                // The driver closes after on_idle; say so in WebSocket terms first.
                self.close_with(code::GOING_AWAY, "idle", cx);
            }
        }
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        match self.phase {
            Phase::Ws => self.call(cx, |s, icx| s.on_shutdown(icx)),
            Phase::Http => cx.close(),
            Phase::Closed => {}
        }
    }

    fn on_farewell(&mut self, cx: &mut Context) {
        // Only hub publications are carried out here (`* NAME left`); pass them straight on.
        if self.inner_open {
            let mut icx = LayerContext::new(*cx.info());
            let ((), actions) = icx.run(cx, |icx| self.inner.on_farewell(icx));
            for a in actions {
                cx.push(a);
            }
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
