//! The session driven by hand on bingfa-net's rig, as a driver would: bytes in, actions out.
//! Keep-alive and pipelining, HTTP/1.0, preconditions and ranges, bodies (unwanted ones answered
//! at once and dropped, refusals final before the body), the head timer (408, and a silent
//! connection closed quietly), shutdown finishing a request in flight, and a listing pending on
//! the blocking pool: requests pipelined behind it wait in order, and the connection ending
//! meanwhile drops it.

use super::*;
use crate::server::HttpServer;
use bingfa_net::rig::{loopback, Rig};
use bingfa_net::{Action, Model, Protocol};

/// The session on bingfa-net's rig, with the driver's loop for a deferred response.
struct Conn {
    rig: Rig<HttpSession>,
}

impl Conn {
    fn new(server: HttpServer) -> Conn {
        let proto = server.into_protocol(Model::Epoll, 1);
        let info = loopback(1);
        Conn {
            rig: Rig::opened(proto.new_session(&info), info),
        }
    }

    /// Feeds bytes like a driver, and lets any deferred response (a listing) be made and
    /// sent, with the input behind it, before returning everything written.
    fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = self.feed_now(bytes);
        out += &self.finish_deferred();
        out
    }

    /// Feeds bytes like a driver: call on_data while input is not paused, it consumes and
    /// input remains. A deferred response is left pending.
    fn feed_now(&mut self, bytes: &[u8]) -> String {
        self.rig.feed(bytes);
        self.flush()
    }

    /// Waits for the blocking-pool task the session watches while input is paused (a deferred
    /// response) and tells the session, as a driver's wake-up does, then feeds the input that
    /// waited behind it.
    fn finish_deferred(&mut self) -> String {
        let mut out = String::new();
        while self.rig.paused() && !self.rig.closed() {
            assert!(
                self.rig.watching() > 0,
                "input paused with no task to wait for"
            );
            assert!(
                self.rig.finish_task(std::time::Duration::from_secs(20)),
                "the task never ended"
            );
            out += &self.flush();
            if !self.rig.paused() {
                out += &self.feed_now(b"");
            }
        }
        out
    }

    /// What was written since the last flush; only the actions an HTTP session may take.
    fn flush(&mut self) -> String {
        let out = self.rig.take_output();
        for a in &out.other {
            match a {
                Action::SetTimer(t, _) => assert_eq!(*t, super::HEAD),
                Action::Close | Action::PauseInput(_) | Action::Watch(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        out.text()
    }

    fn closed(&self) -> bool {
        self.rig.closed()
    }

    /// Whether the head timer is set.
    fn timer(&self) -> bool {
        self.rig.timer(super::HEAD).is_some()
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
    assert!(!c.closed());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn http10_closes_unless_keep_alive() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(b"GET /hi HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(out.starts_with("HTTP/1.0 200 OK\r\n") && out.contains("Connection: keep-alive\r\n"));
    assert!(!c.closed());
    let out = c.feed(b"GET /hi HTTP/1.0\r\n\r\nGET /hi HTTP/1.0\r\n\r\n");
    assert_eq!(
        out.matches("HTTP/1.0 200").count(),
        1,
        "nothing after close: {out}"
    );
    assert!(out.contains("Connection: close\r\n") && c.closed());
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
        format!("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    assert!(
        out.starts_with("HTTP/1.1 304 Not Modified\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );
    assert!(!out.contains("Content-Length"));
    let out = c.feed(
        format!("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: {lm}\r\n\r\n").as_bytes(),
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
    let out = c.feed(
        format!(
            "GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\nIf-Range: {etag}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 206 ") && out.ends_with("hello"));
    let out = c.feed(
        b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\nIf-Range: \"stale\"\r\n\r\n",
    );
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
    let out = c.feed(b"GET /page.html HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br\r\n\r\n");
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
    assert!(
        out.starts_with("HTTP/1.1 405 ") && header(&out, "Allow") == Some("GET, HEAD, OPTIONS")
    );
    let out = c.feed(b"GET /../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    let out = c.feed(b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    let out = c.feed(b"GET /hello.txt%00.html HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
    assert!(!c.closed());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bodies_and_stats() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    // A body split across reads, then a pipelined request right behind it.
    let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhe");
    assert_eq!(out, "");
    assert!(c.timer(), "the body has a deadline");
    let out = c.feed(b"lloGET /_stats HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.contains("\r\n\r\nhello"), "{out}");
    let json = out.rsplit("\r\n\r\n").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["model"], "epoll");
    assert_eq!(v["connections"], 1);
    assert_eq!(v["requests"], 2);
    assert!(!c.timer());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_close_and_slow_heads_get_408() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\nGET / HTTP/1.1\r\n");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n") && out.contains("Connection: close"));
    assert!(c.closed() && out.matches("HTTP/1.1").count() == 1);

    let (dir2, s) = site();
    let mut c = Conn::new(s);
    assert_eq!(c.feed(b"GET / HT"), "");
    assert!(c.timer());
    c.rig.call(|s, cx| s.on_timer(super::HEAD, cx));
    let out = c.flush();
    assert!(
        out.starts_with("HTTP/1.1 408 Request Timeout\r\n") && c.closed(),
        "{out}"
    );

    let (dir3, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 413 ") && c.closed());
    for d in [dir, dir2, dir3] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn shutdown_finishes_a_request_in_flight() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    assert_eq!(c.feed(b"GET /hi HTTP/1.1\r\nHo"), "");
    c.rig.set_shutting_down();
    c.rig.call(|s, cx| s.on_shutdown(cx));
    assert_eq!(c.flush(), "");
    assert!(!c.closed(), "the half-received request is answered first");
    let out = c.feed(b"st: h\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 ") && out.contains("Connection: close\r\n"));
    assert!(c.closed());

    let (dir2, s) = site();
    let mut idle = Conn::new(s);
    idle.rig.set_shutting_down();
    idle.rig.call(|s, cx| s.on_shutdown(cx));
    idle.flush();
    assert!(
        idle.closed(),
        "an idle keep-alive connection closes at once"
    );
    for d in [dir, dir2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn unwanted_bodies_are_answered_at_once_and_dropped() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    // A GET with a body: answered from the head, before any of the body arrived.
    let out = c.feed(b"GET /hello.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nhello world\n"));
    assert!(
        !c.closed() && c.timer(),
        "the body still has the head deadline"
    );
    let chunk = vec![b'x'; 64 * 1024];
    for i in 0..16 {
        assert_eq!(c.feed(&chunk), "");
        assert!(c.rig.pending_input().is_empty(), "consumed as it arrives");
        match &c.rig.session().body {
            Pending::Discard(n) => assert_eq!(*n, (15 - i) * 64 * 1024),
            Pending::None => assert_eq!(i, 15),
            Pending::Collect(..) => panic!("an unwanted body is being held"),
        }
    }
    assert!(matches!(c.rig.session().body, Pending::None));
    assert!(!c.timer());
    let out = c.feed(b"GET /hi HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.ends_with("\r\n\r\nhi"), "{out}");
    // A body sent to a route that takes one is still collected.
    let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
    assert!(out.ends_with("\r\n\r\nabc"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_silent_connection_is_closed_at_the_head_timeout() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    c.flush();
    assert!(c.timer(), "the head timer starts at accept");
    c.rig.call(|s, cx| s.on_timer(super::HEAD, cx));
    assert_eq!(c.flush(), "", "nothing was asked, nothing is said");
    assert!(c.closed());
    // Between keep-alive requests the idle timeout rules, not the head timer.
    let (dir2, s) = site();
    let mut c = Conn::new(s);
    c.feed(b"GET /hi HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(!c.timer());
    for d in [dir, dir2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn refusals_before_the_body_are_final_at_once() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(b"HEAD /hello.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{out}"
    );
    assert!(
        out.ends_with("Connection: close\r\n\r\n"),
        "HEAD: no body: {out}"
    );
    assert!(c.closed());

    let (dir2, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9999999999\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 413 "), "no 100 first: {out}");
    assert!(c.closed());

    // Not wanted: the final answer at once, and the connection ends (the client may or may
    // not send the body now, so its framing is unknown).
    let (dir3, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(
        b"PUT /hello.txt HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
    assert!(out.contains("Connection: close\r\n") && c.closed());

    // Wanted: 100 Continue, then the answer once the body is in.
    let (dir4, s) = site();
    let mut c = Conn::new(s);
    let out = c.feed(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    let out = c.feed(b"hello");
    assert!(out.starts_with("HTTP/1.1 200 ") && out.ends_with("hello") && !c.closed());
    for d in [dir, dir2, dir3, dir4] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A listing is made off the loop: nothing behind it is answered (or even read) before it,
/// the timer polls meanwhile, and the timers are as before once it is sent.
#[test]
fn pipelining_behind_a_pending_listing() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    let listing = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let behind = b"GET /hi HTTP/1.1\r\nHost: h\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n";
    let out = c.feed_now(&[&listing[..], &behind[..]].concat());
    assert_eq!(out, "", "nothing goes out before the listing");
    assert!(c.rig.paused(), "input waits behind the listing");
    assert_eq!(
        c.rig.pending_input(),
        behind,
        "the requests behind it are not consumed"
    );
    assert_eq!(
        c.rig.watching(),
        1,
        "the session is told when the listing is ready"
    );
    assert!(!c.timer(), "no timer runs while the listing is made");
    let out = c.finish_deferred();
    let parts: Vec<&str> = out.split("HTTP/1.1 ").filter(|p| !p.is_empty()).collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert!(parts[0].starts_with("200 OK\r\n") && parts[0].contains("./hello.txt"));
    assert!(parts[0].ends_with("</ul>\n</body></html>\n"));
    assert!(parts[1].ends_with("\r\n\r\nhi"), "{out}");
    assert!(parts[2].contains("Content-Length: 12\r\n") && parts[2].ends_with("\r\n\r\n"));
    assert!(!c.rig.paused() && !c.closed() && c.rig.pending_input().is_empty());
    assert!(
        !c.timer(),
        "between requests the idle timeout rules, not a timer"
    );

    // A listing asked with an unwanted body: the body's head deadline starts again after.
    let out = c.feed_now(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab");
    assert_eq!(out, "");
    let out = c.finish_deferred();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    let head_at = c.rig.timer(super::HEAD).expect("the head timer is back");
    assert!(head_at > std::time::Instant::now() + std::time::Duration::from_secs(5));
    let out = c.feed(b"cdeGET /hi HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(out.ends_with("\r\n\r\nhi") && !c.timer(), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// While a listing is made: a half-close still gets it (then the connection ends), shutdown
/// waits for it (sent with `Connection: close`), and a closed connection just drops it.
#[test]
fn a_pending_listing_and_the_connection_ending() {
    let (dir, s) = site();
    let mut c = Conn::new(s);
    assert_eq!(c.feed_now(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "");
    c.rig.call(|s, cx| s.on_eof(cx));
    c.flush();
    assert!(!c.closed(), "the listing is still owed");
    let out = c.finish_deferred();
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && c.closed(),
        "{out}"
    );

    let (dir2, s) = site();
    let mut c = Conn::new(s);
    assert_eq!(c.feed_now(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "");
    c.rig.set_shutting_down();
    c.rig.call(|s, cx| s.on_shutdown(cx));
    c.flush();
    assert!(!c.closed());
    let out = c.finish_deferred();
    assert!(out.contains("Connection: close\r\n") && out.ends_with("</html>\n"));
    assert!(c.closed());

    let (dir3, s) = site();
    let mut c = Conn::new(s);
    assert_eq!(c.feed_now(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "");
    c.rig.session_mut().on_close();
    assert!(
        c.rig.session().deferred.is_none(),
        "the task (and its job) is dropped"
    );
    for d in [dir, dir2, dir3] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
