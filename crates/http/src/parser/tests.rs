//! The parser on exact inputs: what it accepts, and the status of everything it refuses.

use super::*;

fn parse_all(bytes: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    HeadParser::new().parse(bytes, &Limits::default())
}

fn status(bytes: &[u8]) -> u16 {
    match parse_all(bytes) {
        Err(e) => e.status,
        Ok(Some(_)) => 200,
        Ok(None) => 0,
    }
}

#[test]
fn simple_get() {
    let raw = b"GET /a%20b?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\nNEXT";
    let (req, used) = parse_all(raw).unwrap().unwrap();
    assert_eq!(used, raw.len() - 4);
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.path, "/a%20b");
    assert_eq!(req.query.as_deref(), Some("x=1"));
    assert_eq!(req.version, Version::Http11);
    assert_eq!(req.header("HOST"), Some("example"));
    assert!(req.keep_alive);
    assert_eq!(req.content_length, 0);
}

#[test]
fn byte_at_a_time_is_the_same() {
    let raw = b"\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let mut p = HeadParser::new();
    for n in 1..raw.len() {
        assert!(
            p.parse(&raw[..n], &Limits::default()).unwrap().is_none(),
            "at {n}"
        );
    }
    let (req, used) = p.parse(raw, &Limits::default()).unwrap().unwrap();
    assert_eq!(used, raw.len());
    assert_eq!(req.method, Method::Head);
    assert!(req.keep_alive);
}

#[test]
fn keep_alive_rules() {
    let ka = |raw: &[u8]| parse_all(raw).unwrap().unwrap().0.keep_alive;
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    ));
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n"
    ));
}

#[test]
fn absolute_form() {
    let (req, _) = parse_all(b"GET http://h:1/x?y HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!((req.path.as_str(), req.query.as_deref()), ("/x", Some("y")));
    let (req, _) = parse_all(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(req.path, "/");
}

#[test]
fn rejects_with_exact_status() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET /\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        (b"GET / FOO/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
        (b"get / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
        (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX\t: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-\x01: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\tok\r\n\r\n", 200),
    ];
    for (raw, want) in cases {
        assert_eq!(status(raw), *want, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn bad_request_lines_fail_before_the_head_ends() {
    // No blank line follows: each must be refused from what has arrived so far.
    for raw in [
        &b"GET /x\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01",
        b"hello there\r\n",
        b"GET / HTTX",
        b"GET / HTTP/1.1 extra",
        b"GET /a\x01",
        b" GET",
        b"GET  /",
        b"GET / HTTP/1.10",
    ] {
        let got = HeadParser::new().parse(raw, &Limits::default());
        assert_eq!(
            got.map(|_| ()).unwrap_err().status,
            400,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    for raw in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"GET / HTT",
        b"\r\nGET /",
        b"OPTIONS * HTTP/1.0\r\nX: y",
    ] {
        assert!(
            HeadParser::new()
                .parse(raw, &Limits::default())
                .unwrap()
                .is_none(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        status(b"GET / HTTP/2.0\r\n"),
        505,
        "refused at the line end"
    );
    assert_eq!(status(b"BREW / HTTP/1.1\r\n"), 501);
}

#[test]
fn limits() {
    let limits = Limits {
        max_uri: 100,
        max_head: 300,
        max_headers: 3,
    };
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 200));
    // Too long before the line even ends: 414 without waiting for the rest.
    assert_eq!(
        HeadParser::new().parse(&long, &limits).unwrap_err().status,
        414
    );
    let mut garbage = vec![b'x'; 200];
    garbage[0] = b'(';
    assert_eq!(
        HeadParser::new()
            .parse(&garbage, &limits)
            .unwrap_err()
            .status,
        400
    );
    long.extend(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        HeadParser::new().parse(&long, &limits).unwrap_err().status,
        414
    );
    let just_over = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
    let e = HeadParser::new()
        .parse(just_over.as_bytes(), &limits)
        .unwrap_err();
    assert_eq!(e.status, 414);
    let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'v', 400));
    assert_eq!(
        HeadParser::new().parse(&big, &limits).unwrap_err().status,
        431
    );
    let many = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        HeadParser::new().parse(many, &limits).unwrap_err().status,
        431
    );
}

#[test]
fn content_length_and_pipelining() {
    let raw = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
    let (req, used) = parse_all(raw).unwrap().unwrap();
    assert_eq!(req.content_length, 5);
    assert_eq!(&raw[used..used + 5], b"hello");
    let mut p = HeadParser::new();
    assert!(p
        .parse(&raw[used + 5..], &Limits::default())
        .unwrap()
        .is_none());
}
