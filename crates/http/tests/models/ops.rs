//! Issue 24 items 2 and 3, as an operator coming from nginx relies on them: the access log's
//! exact lines (nginx's `combined`, peer bytes escaped as nginx escapes them), written at
//! shutdown when buffered, and reopened on SIGUSR1 after logrotate renamed it; the header
//! fields added to every response (exact bytes on the wire), HSTS over TLS only, nosniff by
//! default, and `--listing off`.

use super::*;

/// The head with the Date field's value replaced by `D`.
fn dateless(head: &str) -> String {
    let start = head.find("\r\nDate: ").expect("a Date field") + 8;
    let end = start + head[start..].find("\r\n").unwrap();
    format!("{}D{}", &head[..start], &head[end..])
}

/// The defaults, on the main suite's server: nosniff on every response, no HSTS (not even
/// over TLS: it was not asked for), nothing else added.
pub(super) fn default_headers(s: &Server) {
    let mut c = s.connect();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let (head, _) = read_response(&mut c, &mut pending, false);
    assert_eq!(
        dateless(&head),
        "HTTP/1.1 200 OK\r\nServer: bingfa\r\nDate: D\r\n\
         Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Length: 19\r\n\r\n",
        "[{}]",
        s.model
    );
    let (head, _) = read_response(&mut c, &mut pending, false);
    assert!(head.starts_with("HTTP/1.1 404 "), "[{}] {head}", s.model);
    assert_eq!(header(&head, "X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(header(&head, "Strict-Transport-Security"), None);
}

/// `(before, after)` as `$time_local` shows them, and whether `t` lies between.
fn time_between(t: &str, before: u64, after: u64) -> bool {
    (before..=after).any(|s| bingfa_http::access_log::format_times(s as libc::time_t).0 == t)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks the lines of `log` against `expected` (time left out), in any order (several
/// worker processes write their own buffers), and their times against the window.
fn assert_lines(model: &str, log: &str, expected: &[String], window: (u64, u64)) {
    let mut got: Vec<String> = Vec::new();
    for line in log.lines() {
        let (addr, rest) = line
            .split_once(" [")
            .unwrap_or_else(|| panic!("[{model}] {line}"));
        let (time, rest) = rest.split_once("] ").unwrap();
        assert!(
            time_between(time, window.0, window.1),
            "[{model}] time {time} outside the test's window: {line}"
        );
        got.push(format!("{addr} {rest}"));
    }
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "[{model}] access log:\n{log}");
}

/// A directory of the test's own, removed when the test ends, failed or not.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: String) -> TempDir {
        let dir = site_parent().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn error_len(status: u16) -> u64 {
    bingfa_http::Response::error(status).body.len()
}

pub(super) fn access_log_and_headers(model: &str, transport: Transport, extra: &[&str]) {
    let tmp = TempDir::new(format!(
        "bingfa-http-log-{}-{model}{}{}",
        std::process::id(),
        if extra.is_empty() { "" } else { "-et" },
        if transport == Transport::Tls {
            "-tls"
        } else {
            ""
        }
    ));
    let dir = &tmp.0;
    let log = dir.join("access.log");
    let log_arg = log.to_str().unwrap().to_string();
    let mut args = extra.to_vec();
    args.extend_from_slice(&[
        "--access-log",
        &log_arg,
        // Nothing is written before shutdown but what a rotation makes the server write: the
        // test sees what the buffer holds at each step.
        "--access-log-flush",
        "600",
        "--header",
        "X-Frame-Options: DENY",
        "--header",
        "Content-Security-Policy:  default-src 'self' ",
        "--hsts",
        "600",
        "--hsts-include-subdomains",
        "--listing",
        "off",
    ]);
    let before = now_secs();
    let s = Server::start_opts(
        model,
        Opts {
            extra: &args,
            tag: Some("log"),
            transport,
            ..Opts::default()
        },
    );
    let hsts = if transport == Transport::Tls {
        "Strict-Transport-Security: max-age=600; includeSubDomains\r\n"
    } else {
        ""
    };
    let added = format!(
        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
         Content-Security-Policy: default-src 'self'\r\n{hsts}"
    );

    // Four requests on one connection, with hostile bytes where the parser lets them through.
    let mut c = s.connect();
    c.write_all(
        b"GET /hello HTTP/1.1\r\nHost: x\r\nReferer: http://example.com/a\"b\r\n\
          User-Agent: ua\\x\xff\t\"q\r\n\r\n\
          HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope\"\\ HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /list/ HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut pending = Vec::new();
    let (head, body) = read_response(&mut c, &mut pending, false);
    assert_eq!(
        dateless(&head),
        format!(
            "HTTP/1.1 200 OK\r\nServer: bingfa\r\nDate: D\r\n\
             Content-Type: text/plain; charset=utf-8\r\n{added}Content-Length: 19\r\n\r\n"
        ),
        "[{model}]"
    );
    assert_eq!(body, b"hello from a route\n");
    let (head, _) = read_response(&mut c, &mut pending, true);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains(&added));
    let (head, _) = read_response(&mut c, &mut pending, false);
    assert!(head.starts_with("HTTP/1.1 404 ") && head.contains(&added));
    let (head, _) = read_response(&mut c, &mut pending, false);
    assert!(
        head.starts_with("HTTP/1.1 403 Forbidden\r\n") && head.contains(&added),
        "[{model}] a directory without index.html under --listing off: {head}"
    );
    drop(c);
    // A client's view of the same: curl sees the 403 and the fields.
    let (status, head, _) = s.curl_text(&[&s.url("/list/")]);
    assert_eq!(status, 403, "[{model}] {head}");
    assert_eq!(header(&head, "X-Frame-Options"), Some("DENY"));
    let (status, _, body) = s.curl_text(&[&s.url("/sub/")]);
    assert_eq!((status, body.as_slice()), (200, &b"sub index\n"[..]));
    // Garbage where a request line belongs (a TLS hello on a plain port, terminal escapes).
    let (reply, closed) = s.raw_until_close(b"\x16\x03\x01\x00\x1b[2J\r\n");
    assert!(
        reply.starts_with("HTTP/1.1 400 ") && closed,
        "[{model}] {reply}"
    );
    let after = now_secs();

    // Buffered: nothing is written yet (under fork each connection's process has exited and
    // written its own lines).
    std::thread::sleep(Duration::from_millis(300));
    let written = std::fs::read_to_string(&log).unwrap();
    if model != "fork" {
        assert_eq!(written, "", "[{model}] written before a flush was due");
    }

    // logrotate: rename, SIGUSR1, and what comes next goes to a new file at the path.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.proc.signal(libc::SIGUSR1);
    // The signal reaches the server (the parent, under fork and prefork) before its workers
    // serve the next request: give it the time a loaded machine may take.
    std::thread::sleep(Duration::from_millis(500));
    let mut c = s.connect();
    c.write_all(b"GET /hello?after HTTP/1.1\r\nHost: x\r\nUser-Agent: later\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut c, &mut Vec::new(), false);
    assert!(head.starts_with("HTTP/1.1 200 "), "[{model}] {head}");
    drop(c);
    let after_rotation = now_secs();
    // SIGTERM: every process writes what it buffered before it exits.
    drop(s);

    let ip = "127.0.0.1 - -";
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_lines(
        model,
        &old,
        &[
            format!(
                "{ip} \"GET /hello HTTP/1.1\" 200 19 \"http://example.com/a\\x22b\" \
                 \"ua\\x5Cx\\xFF\\x09\\x22q\""
            ),
            format!("{ip} \"HEAD /hello.txt HTTP/1.1\" 200 0 \"-\" \"-\""),
            format!(
                "{ip} \"GET /nope\\x22\\x5C HTTP/1.1\" 404 {} \"-\" \"-\"",
                error_len(404)
            ),
            format!(
                "{ip} \"GET /list/ HTTP/1.1\" 403 {} \"-\" \"-\"",
                error_len(403)
            ),
            format!(
                "{ip} \"GET /list/ HTTP/1.1\" 403 {} \"-\" \"curl/{}\"",
                error_len(403),
                curl_version()
            ),
            format!(
                "{ip} \"GET /sub/ HTTP/1.1\" 200 10 \"-\" \"curl/{}\"",
                curl_version()
            ),
            format!(
                "{ip} \"\\x16\\x03\\x01\\x00\\x1B[2J\" 400 {} \"-\" \"-\"",
                error_len(400)
            ),
        ],
        (before, after),
    );
    let new = std::fs::read_to_string(&log).unwrap();
    assert_lines(
        model,
        &new,
        &[format!(
            "{ip} \"GET /hello?after HTTP/1.1\" 200 19 \"-\" \"later\""
        )],
        (after, after_rotation),
    );
}

/// A line is written within a second when the server is left alone (the default flush), and
/// `--access-log-format json` lines are JSON with every byte of the peer's escaped.
pub(super) fn json_within_a_second(model: &str, transport: Transport, extra: &[&str]) {
    let tmp = TempDir::new(format!(
        "bingfa-http-json-{}-{model}{}{}",
        std::process::id(),
        if extra.is_empty() { "" } else { "-et" },
        if transport == Transport::Tls {
            "-tls"
        } else {
            ""
        }
    ));
    let dir = &tmp.0;
    let log = dir.join("access.json");
    let log_arg = log.to_str().unwrap().to_string();
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--access-log", &log_arg, "--access-log-format", "json"]);
    let s = Server::start_opts(
        model,
        Opts {
            extra: &args,
            tag: Some("json"),
            transport,
            ..Opts::default()
        },
    );
    let mut c = s.connect();
    c.write_all(b"GET /hello?\"x HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xc3\xa9 \xff\\\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut c, &mut Vec::new(), false);
    assert!(head.starts_with("HTTP/1.1 200 "), "[{model}] {head}");
    // The connection stays open: the line must come from the flusher, not from a close or
    // an exit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.is_empty() || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(c);
    drop(s);
    assert!(
        text.is_ascii() && text.ends_with("}\n"),
        "[{model}] {text:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(v["remote_addr"], "127.0.0.1", "[{model}] {text}");
    assert_eq!(v["request"], "GET /hello?\"x HTTP/1.1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["body_bytes_sent"], 19);
    assert_eq!(v["http_referer"], "");
    // é as \u00e9; the byte that isn't UTF-8 as the text \xFF; the backslash as \\.
    assert_eq!(v["http_user_agent"], "caf\u{e9} \\xFF\\");
    assert!(text.contains(r#""caf\u00e9 \\xFF\\""#), "{text}");
}

fn curl_version() -> String {
    let out = Command::new("curl")
        .arg("--version")
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).unwrap_or("").to_string()
}
