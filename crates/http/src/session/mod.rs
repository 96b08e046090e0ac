//! One HTTP/1.1 connection as a bingfa-net [`Session`]: it parses request heads as bytes
//! arrive, collects the bodies routes asked for (and discards the others as they arrive),
//! answers each request in order (pipelining falls out of answering one request per `on_data`
//! call), sends file bodies as file ranges so drivers can sendfile, and decides when the
//! connection ends (RFC 9112 §9.3, §9.6).
//!
//! The head timer runs from accept (as nginx's `client_header_timeout` does) and from the
//! first byte of each later request until its head and body are in: a connection that says
//! nothing is closed when it passes, one that is too slow mid-request gets 408.
//!
//! A directory listing is made off the event loop ([`Answer::Later`], run on bingfa-net's
//! blocking pool): while it is made, input is paused (pipelined requests behind it wait, so
//! responses stay in order) and the head timer is stopped; the driver tells the session when
//! the listing is ready (`on_task_done`), it is answered, input resumes and the head timer,
//! if one was running, starts again. A connection that closes meanwhile drops the task, which
//! cancels the job.

use crate::access_log::{Entry, Logged};
use crate::answer::Answer;
use crate::filecache::Entry as Cached;
use crate::parser::{HeadParser, Method, Request, Version};
use crate::response::{self, Body, Response};
use crate::router::Shared;
use bingfa_net::blocking::Task;
use bingfa_net::{Context, Session, TaskId, Timer};
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// The head timer (see the module docs): the session's only timer.
pub(crate) const HEAD: Timer = Timer("http.head");

/// File bodies up to this size are copied into the response's single write; larger ones are
/// queued as file ranges for sendfile.
const INLINE_FILE_MAX: u64 = 16 * 1024;

/// What the bytes after a request head are.
enum Pending {
    /// The next request's head.
    None,
    /// A body a route wants: collected into the request, which is answered once complete.
    Collect(Request, u64),
    /// A body nobody wants (the request is already answered): this many bytes are dropped as
    /// they arrive, never held.
    Discard(u64),
}

/// A response being made on the blocking pool, and what its head needs from the request.
struct Deferred {
    task: Task<Response>,
    method: Method,
    http10: bool,
    /// The request allows keep-alive (shutdown is looked at when the answer goes out).
    keep_alive: bool,
    /// Input beyond this request was already here (pipelined requests wait for resumption).
    leftover: bool,
    logged: Option<Logged>,
}

/// One HTTP/1.1 connection: a [`Session`] answering its requests in order (see the module docs).
pub struct HttpSession {
    shared: Arc<Shared>,
    parser: HeadParser,
    /// The request being parsed: kept from one request to the next so its strings and
    /// header list are refilled, not allocated again (a request with a body takes it).
    req: Request,
    body: Pending,
    /// The head timer is running (while a response is deferred it is stopped, and restarts
    /// afterwards: input is not being read meanwhile).
    timer_armed: bool,
    /// The response being made off the loop; input is paused until it is sent.
    deferred: Option<Deferred>,
    /// The client half-closed while a response was deferred: the requests already here are
    /// still answered, then the connection closes (as the driver's default `on_eof` would).
    eof: bool,
    /// Some byte of the current request has arrived (a head or body is in progress).
    started: bool,
    /// The last response said `Connection: close`; later input is ignored.
    closing: bool,
    /// Whether `on_open` counted this connection (so `on_close` only uncounts what it counted).
    counted: bool,
    /// The client's address, for the access log (`None` for a session driven by hand).
    pub(crate) peer: Option<IpAddr>,
    /// The connection is TLS (HSTS is sent only then).
    secure: bool,
    /// The current request's head as the access log needs it (only while a log is on).
    logged: Option<Logged>,
}

impl HttpSession {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        HttpSession {
            shared,
            parser: HeadParser::new(),
            req: Request::default(),
            body: Pending::None,
            timer_armed: false,
            deferred: None,
            eof: false,
            started: false,
            closing: false,
            counted: false,
            peer: None,
            secure: false,
            logged: None,
        }
    }

    /// Adds the operator's fields and writes the access log line for a response about to go.
    fn finalise(&mut self, resp: &mut Response, bodiless: bool, logged: Option<Logged>) {
        self.shared.stats.response(resp.status);
        self.shared.extra.apply(resp, self.secure);
        if let Some(log) = &self.shared.access_log {
            let logged = logged.unwrap_or_default();
            log.log(&Entry {
                peer: self.peer,
                request: &logged.line,
                status: resp.status,
                body_bytes: if bodiless { 0 } else { resp.body.len() },
                referer: logged.referer.as_deref(),
                user_agent: logged.user_agent.as_deref(),
            });
        }
    }

    fn arm(&mut self, cx: &mut Context) {
        if !self.timer_armed {
            if self.deferred.is_none() {
                cx.set_timer(HEAD, self.shared.limits.head_timeout);
            }
            self.timer_armed = true;
        }
    }

    fn disarm(&mut self, cx: &mut Context) {
        if self.timer_armed {
            if self.deferred.is_none() {
                cx.cancel_timer(HEAD);
            }
            self.timer_armed = false;
        }
    }

    /// Answers with an error status and closes: used when the request can't be framed or is
    /// refused before its body. A HEAD gets the head only.
    fn fail(&mut self, status: u16, http10: bool, head: bool, cx: &mut Context) {
        let mut resp = Response::error(status);
        let logged = self.logged.take();
        self.finalise(&mut resp, head, logged);
        cx.write_vec(resp.head_bytes(http10, false));
        if let (Body::Bytes(b), false) = (resp.body, head) {
            cx.write_vec(b);
        }
        cx.close();
        self.closing = true;
    }

    fn finish_request(&mut self, cx: &mut Context) {
        self.disarm(cx);
        self.started = false;
    }

    /// Answers `req` now, or hands its making to the blocking pool (input paused meanwhile);
    /// `close` forces `Connection: close`.
    fn answer(&mut self, req: &Request, close: bool, leftover: bool, cx: &mut Context) {
        self.shared.stats.request();
        let keep_alive = req.keep_alive && !close;
        let http10 = req.version == Version::Http10;
        let logged = self.logged.take();
        if let Some(entry) = self.shared.hot(req) {
            tracing::debug!(method = %req.method, path = %req.path, status = 200, "request");
            self.send_cached(&entry, req.method, http10, keep_alive, logged, cx);
            return;
        }
        match self.shared.answer(req) {
            Answer::Now(resp) => {
                // A trace, off unless RUST_LOG asks for it (free when disabled).
                tracing::debug!(method = %req.method, path = req.path.as_str(), status = resp.status, "request");
                self.send(resp, req.method, http10, keep_alive, logged, cx);
            }
            Answer::Later(job) => {
                tracing::debug!(method = %req.method, path = req.path.as_str(), "request deferred");
                if self.timer_armed {
                    // Stopped while input is not read; `deferred_done` starts it again.
                    cx.cancel_timer(HEAD);
                }
                self.deferred = Some(Deferred {
                    task: cx.spawn_blocking(job),
                    method: req.method,
                    http10,
                    keep_alive,
                    leftover,
                    logged,
                });
                cx.pause_input(true);
            }
        }
    }

    /// Queues a response; a HEAD, 204 or 304 without its body.
    fn send(
        &mut self,
        mut resp: Response,
        method: Method,
        http10: bool,
        keep: bool,
        logged: Option<Logged>,
        cx: &mut Context,
    ) {
        let keep_alive = keep && !cx.shutting_down();
        let bodiless = method == Method::Head || matches!(resp.status, 204 | 304);
        self.finalise(&mut resp, bodiless, logged);
        let out = resp.head_bytes(http10, keep_alive);
        if !bodiless {
            push_body(out, resp.body, cx);
        } else {
            cx.write_vec(out);
        }
        if !keep_alive {
            cx.close();
            self.closing = true;
        }
    }

    /// Queues a cached small file's 200 in one write: the same bytes [`HttpSession::send`]
    /// would write for it (status line, Server, Date, the file's fields, the operator's
    /// fields, the framing, the body), put together without building a [`Response`].
    fn send_cached(
        &mut self,
        entry: &Cached,
        method: Method,
        http10: bool,
        keep: bool,
        logged: Option<Logged>,
        cx: &mut Context,
    ) {
        let keep_alive = keep && !cx.shutting_down();
        let body: &[u8] = if method == Method::Head {
            &[]
        } else {
            &entry.body
        };
        let mut out = Vec::with_capacity(256 + entry.fields.len() + body.len());
        response::head_start(&mut out, http10, 200);
        out.extend_from_slice(&entry.fields);
        for (n, v) in self.shared.extra.fields(self.secure) {
            if !entry.has(n) {
                response::write_field(&mut out, n, v);
            }
        }
        let len = entry.body.len() as u64;
        response::head_end(&mut out, 200, Some(len), http10, keep_alive);
        out.extend_from_slice(body);
        if let Some(log) = &self.shared.access_log {
            let logged = logged.unwrap_or_default();
            log.log(&Entry {
                peer: self.peer,
                request: &logged.line,
                status: 200,
                body_bytes: body.len() as u64,
                referer: logged.referer.as_deref(),
                user_agent: logged.user_agent.as_deref(),
            });
        }
        cx.write_vec(out);
        if !keep_alive {
            cx.close();
            self.closing = true;
        }
    }

    /// The deferred response's task ended: send the response, then resume input and restore
    /// the head timer if one was running.
    fn deferred_done(&mut self, task: TaskId, cx: &mut Context) {
        let Some(d) = &self.deferred else { return };
        if d.task.id() != task {
            return;
        }
        let (resp, keep) = match d.task.try_take() {
            // Not possible once the driver says it ended; wait for the next word if it were.
            Ok(None) => return,
            Ok(Some(resp)) => (resp, d.keep_alive),
            // The job panicked (contained in the pool): say so and end the connection.
            Err(_lost) => (Response::error(500), false),
        };
        let d = self.deferred.take().expect("deferred");
        tracing::debug!(status = resp.status, "deferred response");
        self.send(resp, d.method, d.http10, keep, d.logged, cx);
        cx.pause_input(false);
        if self.eof && !d.leftover && !self.closing {
            cx.close();
            self.closing = true;
        }
        if self.timer_armed && !self.closing {
            // A body still to discard: its deadline starts again now that it is read again.
            cx.set_timer(HEAD, self.shared.limits.head_timeout);
        }
    }

    /// A complete head whose body (`content_length` > 0) is still to come.
    fn head_with_body(&mut self, req: Request, input_left: bool, cx: &mut Context) {
        let http10 = req.version == Version::Http10;
        let head = req.method == Method::Head;
        let expects_continue = req.version == Version::Http11
            && req
                .header("Expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if req.content_length > self.shared.limits.max_body {
            // Refused before a byte of it is read; no 100 Continue first.
            self.finish_request(cx);
            self.fail(413, http10, head, cx);
            return;
        }
        if !self.shared.wants_body(&req) {
            // The answer doesn't depend on the body: answer now, drop the body as it comes.
            // A client that expects 100-continue may never send it, so then the connection
            // can't be reused (RFC 9110 §10.1.1): the final status goes out at once, with
            // Connection: close, and the lingering close swallows whatever follows.
            let missing = req.content_length;
            self.answer(&req, expects_continue, input_left, cx);
            if !self.closing {
                self.body = Pending::Discard(missing);
                // The head timer keeps running: the body has the same deadline.
                self.arm(cx);
            } else {
                self.finish_request(cx);
            }
            return;
        }
        if expects_continue && !input_left {
            cx.write(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.shared.stats.response(100);
        }
        self.arm(cx);
        let missing = req.content_length;
        self.body = Pending::Collect(req, missing);
    }
}

impl HttpSession {
    /// Consumes request bytes: a head, a body being collected or discarded.
    fn data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if self.deferred.is_some() {
            // Input is paused; whatever is here waits for the deferred response to go first.
            return 0;
        }
        if self.closing {
            // The response that ends the connection is queued; drop whatever else comes.
            return input.len();
        }
        match &mut self.body {
            Pending::None => {}
            Pending::Discard(missing) => {
                let take = (*missing).min(input.len() as u64) as usize;
                *missing -= take as u64;
                if *missing == 0 {
                    self.body = Pending::None;
                    self.finish_request(cx);
                }
                return take;
            }
            Pending::Collect(req, missing) => {
                let take = (*missing).min(input.len() as u64) as usize;
                req.body.extend_from_slice(&input[..take]);
                *missing -= take as u64;
                if *missing == 0 {
                    let Pending::Collect(req, _) = std::mem::replace(&mut self.body, Pending::None)
                    else {
                        unreachable!()
                    };
                    self.finish_request(cx);
                    self.answer(&req, false, input.len() > take, cx);
                }
                return take;
            }
        }
        self.started = true;
        let mut req = std::mem::take(&mut self.req);
        let parsed = self
            .parser
            .parse_into(input, &self.shared.limits.head, &mut req);
        match parsed {
            Err(e) => {
                self.req = req;
                self.finish_request(cx);
                if self.shared.access_log.is_some() {
                    self.logged = Some(Logged::from_garbage(input));
                }
                tracing::debug!(status = e.status, reason = e.reason, "bad request");
                self.fail(e.status, false, false, cx);
                input.len()
            }
            Ok(None) => {
                self.req = req;
                self.arm(cx);
                0
            }
            Ok(Some(used)) => {
                if self.shared.access_log.is_some() {
                    self.logged = Some(Logged::from_head(&input[..used]));
                }
                if req.content_length == 0 {
                    self.finish_request(cx);
                    self.answer(&req, false, input.len() > used, cx);
                    self.req = req;
                } else {
                    self.head_with_body(req, input.len() > used, cx);
                }
                used
            }
        }
    }
}

/// Queues a response body after its head (`out`), in one write where that is possible.
fn push_body(mut out: Vec<u8>, body: Body, cx: &mut Context) {
    match body {
        Body::Empty => cx.write_vec(out),
        Body::Bytes(b) => {
            out.extend_from_slice(&b);
            cx.write_vec(out);
        }
        Body::File { file, offset, len } if len <= INLINE_FILE_MAX => {
            // A small file goes out in the same write as its head: one segment and one
            // syscall instead of write + sendfile, which is what dominates small files.
            let head_len = out.len();
            out.resize(head_len + len as usize, 0);
            if file.read_exact_at(&mut out[head_len..], offset).is_ok() {
                cx.write_vec(out);
            } else {
                // Shrunk under us: let the driver's sendfile notice and abort.
                out.truncate(head_len);
                cx.write_vec(out);
                cx.send_file(file, offset, len);
            }
        }
        Body::File { file, offset, len } => {
            cx.write_vec(out);
            cx.send_file(file, offset, len);
        }
        Body::Parts(parts) => {
            // Bytes are gathered into as few writes as possible; file ranges stay ranges.
            for part in parts {
                match part {
                    Body::Bytes(b) => out.extend_from_slice(&b),
                    Body::File { file, offset, len } => {
                        cx.write_vec(std::mem::take(&mut out));
                        cx.send_file(file, offset, len);
                    }
                    Body::Empty | Body::Parts(_) => {}
                }
            }
            if !out.is_empty() {
                cx.write_vec(out);
            }
        }
    }
}

impl Session for HttpSession {
    fn on_open(&mut self, cx: &mut Context) {
        self.shared.stats.conn_opened();
        self.counted = true;
        // A connection that never sends a byte must not hold its place for the idle timeout.
        self.arm(cx);
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let used = self.data(input, cx);
        // After a half-close, what arrived is answered; then (nothing left, or only a request
        // that can no longer complete) the connection ends.
        let done = used == 0 || used == input.len();
        if self.eof && done && self.deferred.is_none() && !self.closing {
            cx.close();
            self.closing = true;
        }
        used
    }

    fn on_eof(&mut self, cx: &mut Context) {
        if self.deferred.is_some() {
            self.eof = true;
        } else {
            cx.close();
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        if timer != HEAD || self.deferred.is_some() {
            return;
        }
        if !self.timer_armed || self.closing {
            return;
        }
        self.timer_armed = false;
        if self.started && !matches!(self.body, Pending::Discard(_)) {
            self.fail(408, false, false, cx);
        } else {
            // Nothing was asked (a silent connection), or the answer is already out and only
            // an unwanted body is late: close without a word, as nginx does.
            cx.close();
            self.closing = true;
        }
    }

    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        self.deferred_done(task, cx);
    }

    fn on_secure(&mut self, _cx: &mut Context) {
        self.secure = true;
    }

    fn on_idle(&mut self, cx: &mut Context) {
        // Mid-request, the client is told; between requests, closing silently is the norm.
        if self.started && !matches!(self.body, Pending::Discard(_)) && !self.closing {
            self.fail(408, false, false, cx);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        // A request half received is finished first: its response says Connection: close
        // (answer() sees shutting_down), as is a deferred response (send() sees it). Between
        // requests there is nothing to finish.
        if self.deferred.is_some() {
            return;
        }
        if !self.started || matches!(self.body, Pending::Discard(_)) {
            cx.close();
            self.closing = true;
        }
    }

    fn on_close(&mut self) {
        // Dropping the task cancels the job (or tells a running one to stop).
        self.deferred = None;
        if std::mem::take(&mut self.counted) {
            self.shared.stats.conn_closed();
        }
    }
}

#[cfg(test)]
mod tests;
