//! Issue 8's gaps beside nginx, checked on the wire under every model: Vary on every variant
//! of a resource with a compressed sibling, preconditions (412) in RFC 9110 order,
//! multipart/byteranges, hidden names, OPTIONS, Cache-Control, and listings that stay beneath
//! the root and stream past the output bound.

use super::*;

pub(super) fn vary_on_every_variant(s: &Server) {
    let url = s.url("/page.html");
    let (_, head, _) = s.curl_text(&[&url]);
    let etag = header(&head, "ETag").unwrap().to_string();
    let cases: Vec<(Vec<&str>, u16)> = vec![
        (vec![], 200),
        (vec!["--compressed"], 200),
        (vec!["-I"], 200),
        (vec!["-r", "0-9"], 206),
        (vec!["-H", "Accept-Encoding: gzip", "-r", "0-9"], 206),
        (vec!["-r", "999999-"], 416),
        (vec!["-H", "If-Match: \"nope\""], 412),
    ];
    for (args, want) in cases {
        let mut all = args.clone();
        all.push(&url);
        let (status, head, _) = s.curl_text(&all);
        assert_eq!(status, want, "[{}] {args:?}", s.model);
        assert_eq!(
            header(&head, "Vary"),
            Some("Accept-Encoding"),
            "[{}] {args:?}: {head}",
            s.model
        );
    }
    let inm = format!("If-None-Match: {etag}");
    let (status, head, _) = s.curl_text(&["-H", &inm, &url]);
    assert_eq!(
        (status, header(&head, "Vary")),
        (304, Some("Accept-Encoding")),
        "[{}] {head}",
        s.model
    );
    let (_, head, _) = s.curl_text(&[&s.url("/hello.txt")]);
    assert_eq!(header(&head, "Vary"), None, "no sibling, no Vary");
}

pub(super) fn preconditions(s: &Server) {
    let url = s.url("/hello.txt");
    let (_, head, _) = s.curl_text(&[&url]);
    let etag = header(&head, "ETag").unwrap().to_string();
    let if_match = format!("If-Match: {etag}");
    let inm = format!("If-None-Match: {etag}");
    let old = "If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT";
    let cases: Vec<(Vec<&str>, u16)> = vec![
        (vec!["-H", "If-Match: \"nope\""], 412),
        (vec!["-I", "-H", "If-Match: \"nope\""], 412),
        (vec!["-H", &if_match], 200),
        (vec!["-H", "If-Match: *"], 200),
        (vec!["-H", old], 412),
        (
            vec!["-H", "If-Unmodified-Since: Mon, 01 Jan 2091 00:00:00 GMT"],
            200,
        ),
        (vec!["-H", "If-Unmodified-Since: not a date"], 200),
        // If-Match present: If-Unmodified-Since is not evaluated.
        (vec!["-H", &if_match, "-H", old], 200),
        // If-Match fails before If-None-Match could say 304.
        (vec!["-H", "If-Match: \"nope\"", "-H", &inm], 412),
        (vec!["-H", &if_match, "-H", &inm], 304),
        // A failed precondition wins over a Range.
        (vec!["-H", old, "-r", "0-1"], 412),
    ];
    for (args, want) in cases {
        let mut all = args.clone();
        all.push(&url);
        let (status, _, _) = s.curl_text(&all);
        assert_eq!(status, want, "[{}] {args:?}", s.model);
    }
}

/// Splits a multipart/byteranges body into (Content-Range, content) parts, checking the
/// framing exactly.
fn byteranges(head: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let ct = header(head, "Content-Type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("Content-Type {ct}"));
    let delim = format!("--{boundary}");
    let end = format!("\r\n--{boundary}--\r\n");
    assert!(body.ends_with(end.as_bytes()), "closing delimiter");
    assert!(body.starts_with(delim.as_bytes()), "first delimiter");
    let mut parts = Vec::new();
    let mut rest = &body[delim.len()..body.len() - end.len()];
    let next = format!("\r\n--{boundary}");
    loop {
        let at = rest
            .windows(next.len())
            .position(|w| w == next.as_bytes())
            .unwrap_or(rest.len());
        let part = &rest[..at];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let phead = String::from_utf8_lossy(&part[..split]).into_owned();
        let range = header(&phead, "Content-Range").unwrap().to_string();
        parts.push((range, part[split + 4..].to_vec()));
        if at == rest.len() {
            return parts;
        }
        rest = &rest[at + next.len()..];
    }
}

pub(super) fn multiple_ranges(s: &Server) {
    let (status, head, body) = s.curl_text(&["-r", "0-1,6-10", &s.url("/hello.txt")]);
    assert_eq!(status, 206, "[{}] {head}", s.model);
    assert_eq!(
        header(&head, "Content-Length").unwrap(),
        body.len().to_string()
    );
    let boundary = header(&head, "Content-Type")
        .unwrap()
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    let want = format!(
        "--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/12\r\n\r\nhe\
         \r\n--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 6-10/12\r\n\r\nworld\
         \r\n--{b}--\r\n",
        b = boundary
    );
    assert_eq!(String::from_utf8_lossy(&body), want, "[{}]", s.model);

    // Big parts go out as file ranges (sendfile) between the part headers.
    let big = std::fs::read(s.base.join("root/big.bin")).unwrap();
    let (status, head, body) = s.curl_text(&[
        "-r",
        "2000000-2999999,0-999999,3000000-",
        &s.url("/big.bin"),
    ]);
    assert_eq!(status, 206, "[{}]", s.model);
    let parts = byteranges(&head, &body);
    let n = big.len();
    let want = [(2_000_000, 2_999_999), (0, 999_999), (3_000_000, n - 1)];
    assert_eq!(parts.len(), want.len());
    for ((range, data), (a, b)) in parts.iter().zip(want) {
        assert_eq!(range, &format!("bytes {a}-{b}/{n}"));
        assert!(data[..] == big[a..=b], "[{}] part {range} differs", s.model);
    }

    // Abusive sets get the whole file; none satisfiable is 416.
    let seventeen: Vec<String> = (0..17).map(|i| format!("{i}-{i}")).collect();
    for spec in ["0-5,3-8", "0-0,0-0", &seventeen.join(",")] {
        let (status, _, body) = s.curl_text(&["-r", spec, &s.url("/hello.txt")]);
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"hello world\n"[..]),
            "[{}] {spec}",
            s.model
        );
    }
    let (status, head, _) = s.curl_text(&["-r", "50-60,70-", &s.url("/hello.txt")]);
    assert_eq!(
        (status, header(&head, "Content-Range")),
        (416, Some("bytes */12"))
    );
}

pub(super) fn hidden_options_cache_control(s: &Server) {
    for path in [
        "/.env",
        "/.git/config",
        "/.git/",
        "/%2egit/config",
        "/sub/../.env",
    ] {
        let (status, _, body) = s.curl_text(&["--path-as-is", &s.url(path)]);
        assert_eq!(status, 404, "[{}] {path}", s.model);
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"));
    }
    for dir in ["/", "/list/"] {
        let (_, _, body) = s.curl_text(&[&s.url(dir)]);
        let page = String::from_utf8_lossy(&body);
        assert!(
            !page.contains("./.env") && !page.contains("./.git") && !page.contains(".hidden"),
            "[{}] {dir} lists a hidden name",
            s.model
        );
    }

    let (status, head, body) = s.curl_text(&["-X", "OPTIONS", &s.url("/hello.txt")]);
    assert_eq!(
        (status, header(&head, "Allow"), body.len()),
        (204, Some("GET, HEAD, OPTIONS"), 0),
        "[{}] {head}",
        s.model
    );
    let (status, head, _) = s.curl_text(&["-X", "OPTIONS", &s.url("/sub/")]);
    assert_eq!(
        (status, header(&head, "Allow")),
        (204, Some("GET, HEAD, OPTIONS"))
    );
    let (status, _, _) = s.curl_text(&["-X", "OPTIONS", &s.url("/missing")]);
    assert_eq!(status, 404);
    let (status, _, _) = s.curl_text(&["-X", "OPTIONS", &s.url("/.env")]);
    assert_eq!(status, 404);
    let mut c = s.connect();
    c.write_all(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (h, b) = read_response(&mut c, &mut Vec::new(), false);
    assert!(
        h.starts_with("HTTP/1.1 204 No Content\r\n") && b.is_empty(),
        "{h}"
    );
    assert!(
        header(&h, "Allow").is_some_and(|a| a.starts_with("GET, HEAD, OPTIONS")),
        "{h}"
    );
    drop(c); // `iterative` serves the next connection only once this one is gone

    let (status, head, _) = s.curl_text(&[&s.url("/hello.txt")]);
    assert_eq!(
        (status, header(&head, "Cache-Control")),
        (200, Some("max-age=60")),
        "[{}]",
        s.model
    );
    let etag = header(&head, "ETag").unwrap().to_string();
    let (status, head, _) = s.curl_text(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &s.url("/hello.txt"),
    ]);
    assert_eq!(
        (status, header(&head, "Cache-Control")),
        (304, Some("max-age=60"))
    );
    let (status, head, _) = s.curl_text(&["-r", "0-1", &s.url("/hello.txt")]);
    assert_eq!(
        (status, header(&head, "Cache-Control")),
        (206, Some("max-age=60"))
    );
    let (status, head, _) = s.curl_text(&[&s.url("/missing")]);
    assert_eq!((status, header(&head, "Cache-Control")), (404, None));
}

/// Symlinks in a listing are typed by what they resolve to beneath the root: `etc` → `/etc`
/// is a plain entry, `sublink` → `sub` a directory.
pub(super) fn listing_beneath_the_root(s: &Server) {
    let (status, _, body) = s.curl_text(&[&s.url("/")]);
    let page = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(
        page.contains("<a href=\"./etc\">etc</a>") && !page.contains("./etc/"),
        "[{}] a link out of the root was stat'ed: {page}",
        s.model
    );
    assert!(
        page.contains("<a href=\"./sublink/\">sublink/</a>"),
        "{page}"
    );
    assert!(page.contains("<a href=\"./sub/\">sub/</a>"));
}

/// A listing larger than the 4 MiB output bound arrives whole, with the length HEAD said.
pub(super) fn huge_listing(s: &Server) {
    let (status, head, body) = s.curl_text(&[&s.url("/huge/")]);
    assert_eq!(status, 200, "[{}]", s.model);
    assert!(body.len() > 4 << 20, "[{}] {} bytes", s.model, body.len());
    assert_eq!(
        header(&head, "Content-Length").unwrap(),
        body.len().to_string()
    );
    let page = String::from_utf8(body).unwrap();
    assert!(page.ends_with("</ul>\n</body></html>\n"), "[{}]", s.model);
    assert_eq!(
        page.matches("<li>").count(),
        HUGE_ENTRIES + 1,
        "entries and ../"
    );
    let last = format!("{:04}{}", HUGE_ENTRIES - 1, "&lt;".repeat(HUGE_NAME_LEN));
    assert!(page.contains(&last));
    let (status, head, _) = s.curl_text(&["-I", &s.url("/huge/")]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "Content-Length").unwrap(),
        page.len().to_string()
    );
}
