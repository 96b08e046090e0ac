//! Range and conditional headers: ranges are inside the representation, ordered start <= end,
//! at most MAX_RANGES; the conditional evaluation never panics on any header value.
use bingfa_http::range::{parse, RangeRequest, MAX_RANGES};
use bingfa_http::{conditional, Method, Request, Version};

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        if data.len() < 8 {
            return;
        }
        // The first 8 bytes: the representation's length (often small, sometimes huge).
        let raw = u64::from_le_bytes(data[..8].try_into().unwrap());
        let len = if raw & 1 == 0 { raw >> 48 } else { raw };
        let Ok(text) = std::str::from_utf8(&data[8..]) else {
            return;
        };
        let mut lines = text.splitn(4, '\n');
        let range = lines.next().unwrap_or("");
        match parse(range, len) {
            RangeRequest::Full | RangeRequest::Unsatisfiable => {}
            RangeRequest::Partial(rs) => {
                assert!(!rs.is_empty() && rs.len() <= MAX_RANGES);
                for (s, e) in rs {
                    assert!(s <= e && e < len, "range {s}-{e} outside {len}");
                }
            }
        }
        let mut headers = Vec::new();
        for (i, l) in lines.enumerate() {
            let name = ["If-None-Match", "If-Modified-Since", "If-Range"][i % 3];
            headers.push((name.to_string(), l.to_string()));
        }
        let req = Request {
            method: Method::Get,
            path: "/".into(),
            query: None,
            version: Version::Http11,
            headers,
            content_length: 0,
            keep_alive: true,
            body: Vec::new(),
        };
        let mtime = (raw as i64).checked_rem(1 << 40);
        let _ = conditional::evaluate(&req, "\"abc\"", mtime);
        let _ = conditional::if_range_holds(&req, "\"abc\"", Some("Thu, 01 Jan 1970 00:00:00 GMT"));
    });
}
