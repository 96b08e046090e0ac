//! One HTTP/1.1 connection as a bingfa-net [`Session`]: it parses request heads as bytes
//! arrive, collects bodies, answers each request in order (pipelining falls out of answering
//! one request per `on_data` call), sends file bodies as file ranges so drivers can sendfile,
//! and decides when the connection ends (RFC 9112 §9.3, §9.6). The head timer turns a client
//! that is too slow to send its request into a 408.

use crate::parser::{HeadParser, Method, Request, Version};
use crate::response::{Body, Response};
use crate::server::Shared;
use bingfa_net::{Context, Session};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// File bodies up to this size are copied into the response's single write; larger ones are
/// queued as file ranges for sendfile.
const INLINE_FILE_MAX: u64 = 16 * 1024;

pub struct HttpSession {
    shared: Arc<Shared>,
    parser: HeadParser,
    /// A request whose body is still arriving, and how many body bytes are missing.
    body: Option<(Request, u64)>,
    /// The head timer runs from a request's first byte until it is complete.
    timer_armed: bool,
    /// The last response said `Connection: close`; later input is ignored.
    closing: bool,
    /// Whether `on_open` counted this connection (so `on_close` only uncounts what it counted).
    counted: bool,
}

impl HttpSession {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        HttpSession {
            shared,
            parser: HeadParser::new(),
            body: None,
            timer_armed: false,
            closing: false,
            counted: false,
        }
    }

    fn arm(&mut self, cx: &mut Context) {
        if !self.timer_armed {
            cx.set_timer(self.shared.limits.head_timeout);
            self.timer_armed = true;
        }
    }

    fn disarm(&mut self, cx: &mut Context) {
        if self.timer_armed {
            cx.cancel_timer();
            self.timer_armed = false;
        }
    }

    /// Answers with an error status and closes: used when the request can't be framed.
    fn fail(&mut self, status: u16, http10: bool, cx: &mut Context) {
        let resp = Response::error(status);
        cx.write_vec(resp.head_bytes(http10, false));
        if let Body::Bytes(b) = resp.body {
            cx.write_vec(b);
        }
        cx.close();
        self.closing = true;
    }

    fn answer(&mut self, req: Request, cx: &mut Context) {
        self.shared.stats.request();
        let resp = self.shared.respond(&req);
        // The access log, off unless RUST_LOG asks for it (debug costs nothing when disabled).
        tracing::debug!(method = %req.method, path = %req.path, status = resp.status, "request");
        let keep_alive = req.keep_alive && !cx.shutting_down();
        let http10 = req.version == Version::Http10;
        let mut out = resp.head_bytes(http10, keep_alive);
        let bodiless = req.method == Method::Head || matches!(resp.status, 204 | 304);
        if !bodiless {
            match resp.body {
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
            }
        } else {
            cx.write_vec(out);
        }
        if !keep_alive {
            cx.close();
            self.closing = true;
        }
    }
}

impl Session for HttpSession {
    fn on_open(&mut self, _cx: &mut Context) {
        self.shared.stats.conn_opened();
        self.counted = true;
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if self.closing {
            // The response that ends the connection is queued; drop whatever else comes.
            return input.len();
        }
        if let Some((req, missing)) = &mut self.body {
            let take = (*missing).min(input.len() as u64) as usize;
            req.body.extend_from_slice(&input[..take]);
            *missing -= take as u64;
            if *missing == 0 {
                let (req, _) = self.body.take().unwrap();
                self.disarm(cx);
                self.answer(req, cx);
            }
            return take;
        }
        match self.parser.parse(input, &self.shared.limits.head) {
            Err(e) => {
                self.disarm(cx);
                tracing::debug!(status = e.status, reason = e.reason, "bad request");
                self.fail(e.status, false, cx);
                input.len()
            }
            Ok(None) => {
                self.arm(cx);
                0
            }
            Ok(Some((req, used))) => {
                if req.content_length == 0 {
                    self.disarm(cx);
                    self.answer(req, cx);
                    return used;
                }
                if req.content_length > self.shared.limits.max_body {
                    self.disarm(cx);
                    self.fail(413, req.version == Version::Http10, cx);
                    return input.len();
                }
                let expects_continue = req
                    .header("Expect")
                    .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
                if expects_continue && req.version == Version::Http11 && input.len() == used {
                    cx.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                // The head timer keeps running: the body has the same deadline.
                self.arm(cx);
                let missing = req.content_length;
                self.body = Some((req, missing));
                used
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context) {
        if self.timer_armed && !self.closing {
            self.timer_armed = false;
            self.fail(408, false, cx);
        }
    }

    fn on_idle(&mut self, cx: &mut Context) {
        // Mid-request, the client is told; between requests, closing silently is the norm.
        if (self.timer_armed || self.body.is_some()) && !self.closing {
            self.fail(408, false, cx);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        // A request half received is finished first: its response says Connection: close
        // (answer() sees shutting_down). Between requests there is nothing to finish.
        if !(self.timer_armed || self.body.is_some()) {
            cx.close();
            self.closing = true;
        }
    }

    fn on_close(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.shared.stats.conn_closed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::HttpServer;
    use bingfa_net::{Action, ConnInfo, Model, Protocol};

    struct Conn {
        session: HttpSession,
        cx: Context,
        /// Unconsumed input, as a driver keeps it.
        input: Vec<u8>,
        out: Vec<u8>,
        closed: bool,
        timer: bool,
    }

    impl Conn {
        fn new(server: HttpServer) -> Conn {
            let proto = server.into_protocol(Model::Epoll, 1);
            let info = ConnInfo {
                id: 1,
                peer: "127.0.0.1:1".parse().unwrap(),
                local: "127.0.0.1:2".parse().unwrap(),
                cred: None,
            };
            let mut c = Conn {
                session: proto.new_session(&info),
                cx: Context::new(info),
                input: Vec::new(),
                out: Vec::new(),
                closed: false,
                timer: false,
            };
            c.session.on_open(&mut c.cx);
            c
        }

        /// Feeds bytes like a driver: call on_data while it consumes and input remains.
        fn feed(&mut self, bytes: &[u8]) -> String {
            self.input.extend_from_slice(bytes);
            while !self.input.is_empty() {
                let n = self.session.on_data(&self.input, &mut self.cx);
                self.input.drain(..n);
                if n == 0 {
                    break;
                }
            }
            self.flush()
        }

        fn flush(&mut self) -> String {
            for a in self.cx.take_actions() {
                match a {
                    Action::Write(b) => self.out.extend(b),
                    Action::SendFile { file, offset, len } => {
                        let mut buf = vec![0; len as usize];
                        use std::os::unix::fs::FileExt;
                        file.read_exact_at(&mut buf, offset).unwrap();
                        self.out.extend(buf);
                    }
                    Action::Close => self.closed = true,
                    Action::SetTimer(t) => self.timer = t.is_some(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            String::from_utf8_lossy(&std::mem::take(&mut self.out)).into_owned()
        }
    }

    fn site() -> (std::path::PathBuf, HttpServer) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bingfa-session-{}-{:?}-{}",
            std::process::id(),
            std::thread::current().id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("hello.txt"), "hello world\n").unwrap();
        std::fs::write(dir.join("page.html"), "<p>x</p>").unwrap();
        std::fs::write(dir.join("page.html.gz"), "GZ").unwrap();
        std::fs::write(dir.join("d/index.html"), "index").unwrap();
        let mut s = HttpServer::new(&dir).unwrap();
        s.get("/hi", |_| Response::text(200, "hi"));
        s.post("/echo", |r| {
            Response::text(200, String::from_utf8_lossy(&r.body).into_owned())
        });
        s.stats_route("/_stats");
        (dir, s)
    }

    fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
        resp.split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\r\n")
            .find_map(|l| {
                let (n, v) = l.split_once(": ")?;
                n.eq_ignore_ascii_case(name).then_some(v)
            })
    }

    #[test]
    fn get_head_and_pipelining() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        let out = c.feed(
            b"GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /hi HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        let parts: Vec<&str> = out.split("HTTP/1.1 ").filter(|p| !p.is_empty()).collect();
        assert_eq!(parts.len(), 3, "{out}");
        assert!(parts[0].starts_with("200 OK\r\n") && parts[0].ends_with("\r\n\r\nhello world\n"));
        assert!(parts[0].contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(parts[0].contains("Content-Length: 12\r\n"));
        assert!(parts[0].contains("Last-Modified: ") && parts[0].contains("ETag: \""));
        assert!(parts[1].contains("Content-Length: 12\r\n") && parts[1].ends_with("\r\n\r\n"));
        assert!(parts[2].ends_with("\r\n\r\nhi"));
        assert!(!c.closed);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        let out = c.feed(b"GET /hi HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.0 200 OK\r\n") && out.contains("Connection: keep-alive\r\n")
        );
        assert!(!c.closed);
        let out = c.feed(b"GET /hi HTTP/1.0\r\n\r\nGET /hi HTTP/1.0\r\n\r\n");
        assert_eq!(
            out.matches("HTTP/1.0 200").count(),
            1,
            "nothing after close: {out}"
        );
        assert!(out.contains("Connection: close\r\n") && c.closed);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn conditional_and_range() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n");
        let etag = header(&out, "ETag").unwrap().to_string();
        let lm = header(&out, "Last-Modified").unwrap().to_string();
        let out = c.feed(
            format!("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: {etag}\r\n\r\n")
                .as_bytes(),
        );
        assert!(
            out.starts_with("HTTP/1.1 304 Not Modified\r\n") && out.ends_with("\r\n\r\n"),
            "{out}"
        );
        assert!(!out.contains("Content-Length"));
        let out = c.feed(
            format!("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: {lm}\r\n\r\n")
                .as_bytes(),
        );
        assert!(out.starts_with("HTTP/1.1 304 "));
        let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"other\"\r\nIf-Modified-Since: Sun, 06 Nov 2094 08:49:37 GMT\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 200 "),
            "If-None-Match wins: {out}"
        );
        let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=6-\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 206 Partial Content\r\n"));
        assert_eq!(header(&out, "Content-Range"), Some("bytes 6-11/12"));
        assert!(out.ends_with("Content-Length: 6\r\n\r\nworld\n"));
        let out = c.feed(format!("GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\nIf-Range: {etag}\r\n\r\n").as_bytes());
        assert!(out.starts_with("HTTP/1.1 206 ") && out.ends_with("hello"));
        let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\nIf-Range: \"stale\"\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 ") && out.ends_with("hello world\n"));
        let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=12-\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"));
        assert_eq!(header(&out, "Content-Range"), Some("bytes */12"));
        let out = c.feed(b"HEAD /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 "), "HEAD ignores Range");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn precompressed_index_redirect_and_methods() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        let out =
            c.feed(b"GET /page.html HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br\r\n\r\n");
        assert_eq!(header(&out, "Content-Encoding"), Some("gzip"));
        assert_eq!(header(&out, "Vary"), Some("Accept-Encoding"));
        assert_eq!(
            header(&out, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(out.ends_with("\r\n\r\nGZ"));
        let out = c.feed(b"GET /page.html HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.ends_with("<p>x</p>") && header(&out, "Content-Encoding").is_none());
        let out = c.feed(b"GET /d?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 301 "));
        assert_eq!(header(&out, "Location"), Some("/d/?x=1"));
        let out = c.feed(b"GET /d/ HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.ends_with("\r\n\r\nindex"));
        let out = c.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.contains("<a href=\"./hello.txt\">hello.txt</a>") && out.contains("./d/"));
        let out = c.feed(b"DELETE /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 405 ") && header(&out, "Allow") == Some("GET, HEAD"));
        let out = c.feed(b"GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
        let out = c.feed(b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
        let out = c.feed(b"GET /hello.txt%00.html HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
        assert!(!c.closed);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bodies_and_stats() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        // A body split across reads, then a pipelined request right behind it.
        let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhe");
        assert_eq!(out, "");
        assert!(c.timer, "the body has a deadline");
        let out = c.feed(b"lloGET /_stats HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.contains("\r\n\r\nhello"), "{out}");
        let json = out.rsplit("\r\n\r\n").next().unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["model"], "epoll");
        assert_eq!(v["connections"], 1);
        assert_eq!(v["requests"], 2);
        assert!(!c.timer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_close_and_slow_heads_get_408() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        let out = c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\nGET / HTTP/1.1\r\n");
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n") && out.contains("Connection: close")
        );
        assert!(c.closed && out.matches("HTTP/1.1").count() == 1);

        let (dir2, s) = site();
        let mut c = Conn::new(s);
        assert_eq!(c.feed(b"GET / HT"), "");
        assert!(c.timer);
        c.session.on_timer(&mut c.cx);
        let out = c.flush();
        assert!(
            out.starts_with("HTTP/1.1 408 Request Timeout\r\n") && c.closed,
            "{out}"
        );

        let (dir3, s) = site();
        let mut c = Conn::new(s);
        let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413 ") && c.closed);
        for d in [dir, dir2, dir3] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn shutdown_finishes_a_request_in_flight() {
        let (dir, s) = site();
        let mut c = Conn::new(s);
        assert_eq!(c.feed(b"GET /hi HTTP/1.1\r\nHo"), "");
        c.cx.set_shutting_down();
        c.session.on_shutdown(&mut c.cx);
        assert_eq!(c.flush(), "");
        assert!(!c.closed, "the half-received request is answered first");
        let out = c.feed(b"st: h\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 ") && out.contains("Connection: close\r\n"));
        assert!(c.closed);

        let (dir2, s) = site();
        let mut idle = Conn::new(s);
        idle.cx.set_shutting_down();
        idle.session.on_shutdown(&mut idle.cx);
        idle.flush();
        assert!(idle.closed, "an idle keep-alive connection closes at once");
        for d in [dir, dir2] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
