//! The WebSocket upgrade: a request head from the HTTP parser checked by `check_upgrade`. An
//! accepted upgrade had a GET, HTTP/1.1, a Host, the tokens, version 13 and a 16-byte key, and
//! the answer is that key's accept value.
use bingfa_chat::ws::{accept_key, check_upgrade};
use bingfa_http::parser::{HeadParser, Limits};
use bingfa_http::Version;

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let Ok(Some((req, _))) = HeadParser::new().parse(data, &Limits::default()) else {
            return;
        };
        let minor = if req.version == Version::Http11 { 1 } else { 0 };
        let joined = |name: &str| {
            let v: Vec<&str> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            (!v.is_empty()).then(|| v.join(", "))
        };
        let owned: Vec<(String, Option<String>)> = [
            "host",
            "upgrade",
            "connection",
            "sec-websocket-version",
            "sec-websocket-key",
        ]
        .iter()
        .map(|n| (n.to_string(), joined(n)))
        .collect();
        let header = |name: &str| {
            owned
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_deref())
        };
        if let Ok(accept) = check_upgrade(req.method.as_str(), minor, header) {
            assert_eq!(req.method.as_str(), "GET");
            assert_eq!(minor, 1);
            let key = header("sec-websocket-key").unwrap().trim();
            assert_eq!(accept, accept_key(key));
            assert_eq!(accept.len(), 28);
        }
    });
}
