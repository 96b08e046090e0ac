//! Issue 8's availability and robustness items, checked on the wire under every model: bodies
//! nobody wants are not held, silent connections don't outlive the head timeout, garbage is
//! refused at once, refusals come before the body, odd dates and numbers don't break answers,
//! and an execute-only root is served by an unprivileged server.

use super::*;
use std::os::unix::fs::MetadataExt;

/// A GET with a 1 MiB body is answered from its head, the body is dropped as it arrives,
/// and the connection then serves the next request; a body over the limit is 413.
pub(super) fn unwanted_body(s: &Server) {
    let mut c = s.connect();
    let mut pending = Vec::new();
    c.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    let (h, b) = read_response(&mut c, &mut pending, false);
    assert!(
        h.starts_with("HTTP/1.1 200 OK\r\n") && b == b"hello world\n",
        "[{}] answered before the body: {h}",
        s.model
    );
    let mut rest = vec![b'x'; 1 << 20];
    rest.extend_from_slice(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    c.write_all(&rest).unwrap();
    let (h, b) = read_response(&mut c, &mut pending, false);
    assert!(
        h.starts_with("HTTP/1.1 200 OK\r\n") && b == b"hello world\n",
        "[{}] the request after the body: {h}",
        s.model
    );
    drop(c); // `iterative` serves the next connection only once this one is gone
    let (resp, closed) =
        s.raw_until_close(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
    assert!(
        resp.starts_with("HTTP/1.1 413 Content Too Large\r\n") && closed,
        "[{}] {resp}",
        s.model
    );
}

/// `GET /x` with no version, a TLS hello and a line of text are 400 now, not 408 later.
pub(super) fn bad_request_lines_are_400_at_once(s: &Server) {
    for bytes in [
        &b"GET /x\r\n"[..],
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"hello there\r\n",
    ] {
        let started = Instant::now();
        let (resp, closed) = s.raw_until_close(bytes);
        let took = started.elapsed();
        assert!(
            resp.starts_with("HTTP/1.1 400 Bad Request\r\n") && closed,
            "[{}] {bytes:?} → {resp:?}",
            s.model
        );
        assert!(
            took < Duration::from_secs(2),
            "[{}] {bytes:?} waited {took:?} (the head timeout is {HEAD_TIMEOUT_SECS} s)",
            s.model
        );
    }
}

/// A 413 to a HEAD has no body; with `Expect: 100-continue`, a refused request gets its final
/// status at once, never a 100 first.
pub(super) fn refusals_are_final_and_bodiless(s: &Server) {
    let (resp, closed) = s
        .raw_until_close(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
    assert!(
        resp.starts_with("HTTP/1.1 413 ") && resp.ends_with("\r\n\r\n") && closed,
        "[{}] HEAD 413 must end with its head: {resp:?}",
        s.model
    );
    assert_eq!(
        resp.matches("\r\n\r\n").count(),
        1,
        "[{}] {resp:?}",
        s.model
    );
    for (request, status) in [
        (
            &b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n"[..],
            "413",
        ),
        (
            b"PUT /hello.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "405",
        ),
    ] {
        // The body is never sent: a server that says 100 first would leave us waiting.
        let started = Instant::now();
        let (resp, closed) = s.raw_until_close(request);
        assert!(
            resp.starts_with(&format!("HTTP/1.1 {status} ")) && closed,
            "[{}] {resp:?}",
            s.model
        );
        assert!(!resp.contains("100 Continue"), "[{}] {resp:?}", s.model);
        assert!(started.elapsed() < Duration::from_secs(2), "[{}]", s.model);
    }
}

/// A last-byte position past u64 means "to the end", not a malformed header.
pub(super) fn range_past_u64(s: &Server) {
    let (status, head, body) = s.curl_text(&["-r", "1-99999999999999999999", &s.url("/hello.txt")]);
    assert_eq!(
        (status, header(&head, "Content-Range"), body.as_slice()),
        (206, Some("bytes 1-11/12"), &b"ello world\n"[..]),
        "[{}]",
        s.model
    );
}

/// A file modified in year 10000 is served without Last-Modified (no panic, and the requests
/// pipelined behind it are answered too).
pub(super) fn mtime_after_year_9999(s: &Server) {
    let path = s.base.join("root/future.txt");
    let mtime = std::fs::metadata(&path).unwrap().mtime();
    if mtime < FUTURE_SECS {
        eprintln!(
            "[{}] skipped: the file system of {} clamps times to {mtime}",
            s.model,
            path.display()
        );
        return;
    }
    let mut c = s.connect();
    c.write_all(
        b"GET /future.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /future.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let mut pending = Vec::new();
    for want in [
        &b"from the future\n"[..],
        b"from the future\n",
        b"hello world\n",
    ] {
        let (h, b) = read_response(&mut c, &mut pending, false);
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\n") && b == want,
            "[{}] {h}",
            s.model
        );
        if want != b"hello world\n" {
            assert!(header(&h, "Last-Modified").is_none(), "[{}] {h}", s.model);
            assert!(header(&h, "ETag").is_some());
        }
    }
}

/// A connection that never sends a byte is closed when the head timeout passes, not after the
/// idle timeout (60 s), and is told nothing (nothing was asked).
pub(super) fn silent_connection_closed_at_head_timeout(s: &Server) {
    // Over TLS: silent after the handshake (a stalled handshake is the TLS suite's, in cli).
    let mut c = s.connect();
    let started = Instant::now();
    let (got, closed) = s.read_until_close(&mut c);
    let took = started.elapsed();
    assert!(closed, "[{}] still open after {took:?}", s.model);
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(7),
        "[{}] closed after {took:?}, head timeout {HEAD_TIMEOUT_SECS} s",
        s.model
    );
    assert!(
        got.is_empty(),
        "[{}] {:?}",
        s.model,
        String::from_utf8_lossy(&got)
    );
}

/// An execute-only root (and an execute-only directory with a readable index.html) served by
/// an unprivileged server: it starts, and `/sub/` is the same page as `/sub/index.html`.
pub(super) fn execute_only_root(model: &str, transport: Transport, extra: &[&str]) {
    let mut args = vec!["--hidden"];
    args.extend_from_slice(extra);
    let s = Server::start_opts(
        model,
        Opts {
            extra: &args,
            unprivileged: true,
            transport,
            ..Opts::default()
        },
    );
    for path in ["/sub/", "/sub/index.html"] {
        let (status, _, body) = s.curl_text(&[&s.url(path)]);
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"sub index\n"[..]),
            "[{}] {path} under a 0711 root",
            s.model
        );
    }
    let (status, _, body) = s.curl_text(&[&s.url("/hello.txt")]);
    assert_eq!((status, body.as_slice()), (200, &b"hello world\n"[..]));
    // It can't be read, so it can't be listed.
    let (status, _, _) = s.curl_text(&[&s.url("/")]);
    assert_eq!(status, 403, "[{}] listing an execute-only root", s.model);
    // --hidden: dot names are served.
    let (status, _, body) = s.curl_text(&[&s.url("/.env")]);
    assert_eq!((status, body.as_slice()), (200, &b"SECRET=1\n"[..]));
}
