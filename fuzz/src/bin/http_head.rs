//! The HTTP request-head parser, fed all at once and byte-chunk by chunk: both must agree,
//! limits hold, what it used is within the input, and a parsed head written back out parses
//! to the same request.
use bingfa_http::parser::{HeadParser, Limits};
use bingfa_http::{Request, Version};

fn once(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Request, usize)>, bingfa_http::parser::ParseError> {
    HeadParser::new().parse(buf, limits)
}

/// Feeds `buf` growing by `step` bytes, as a session does with its read buffer.
fn stepwise(
    buf: &[u8],
    step: usize,
    limits: &Limits,
) -> Result<Option<(Request, usize)>, bingfa_http::parser::ParseError> {
    let mut p = HeadParser::new();
    let mut end = 0;
    loop {
        end = (end + step).min(buf.len());
        match p.parse(&buf[..end], limits)? {
            Some(r) => return Ok(Some(r)),
            None if end == buf.len() => return Ok(None),
            None => {}
        }
    }
}

fn write_back(r: &Request) -> Vec<u8> {
    let v = if r.version == Version::Http11 {
        "1.1"
    } else {
        "1.0"
    };
    let mut s = format!("{} {}", r.method, r.path);
    if let Some(q) = &r.query {
        s.push('?');
        s.push_str(q);
    }
    s.push_str(&format!(" HTTP/{v}\r\n"));
    for (n, val) in &r.headers {
        s.push_str(&format!("{n}: {val}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn same(a: &Request, b: &Request) -> bool {
    a.method == b.method
        && a.path == b.path
        && a.query == b.query
        && a.version == b.version
        && a.headers == b.headers
        && a.content_length == b.content_length
        && a.keep_alive == b.keep_alive
}

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let (step, buf) = bingfa_fuzz::chunks(data);
        // Small limits so the fuzzer reaches them.
        let limits = Limits {
            max_uri: 64,
            max_head: 256,
            max_headers: 8,
        };
        let a = once(buf, &limits);
        let b = stepwise(buf, step, &limits);
        match (&a, &b) {
            (Ok(Some((ra, ua))), Ok(Some((rb, ub)))) => {
                assert_eq!(ua, ub, "one-shot and stepwise disagree on length");
                assert!(same(ra, rb), "one-shot and stepwise disagree");
            }
            (Ok(None), Ok(None)) => {}
            // Stepwise may see a limit or an error earlier; it must never accept what one-shot
            // refuses, nor refuse a head that one-shot accepts.
            (Err(_), Err(_)) => {}
            _ => panic!("one-shot {a:?} vs stepwise {b:?}"),
        }
        if let Ok(Some((r, used))) = a {
            assert!(used <= buf.len());
            // At most 64 bytes of leading empty lines are skipped before the head counts.
            assert!(used <= limits.max_head + 64, "head past max_head: {used}");
            assert!(r.headers.len() <= limits.max_headers);
            let target = r.path.len() + r.query.as_ref().map_or(0, |q| q.len() + 1);
            assert!(
                target <= limits.max_uri + 32,
                "target past max_uri: {target}"
            );
            let again = write_back(&r);
            let limits2 = Limits {
                max_uri: 1 << 20,
                max_head: 1 << 20,
                max_headers: 1 << 10,
            };
            match once(&again, &limits2) {
                Ok(Some((r2, u2))) => {
                    assert_eq!(u2, again.len());
                    assert!(same(&r, &r2), "round trip differs: {r:?} vs {r2:?}");
                }
                other => panic!(
                    "written-back head {:?} fails: {other:?}",
                    String::from_utf8_lossy(&again)
                ),
            }
        }
    });
}
