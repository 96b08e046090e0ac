//! The server side of the opening handshake (RFC 6455 §4.2): check that a parsed request is a
//! valid upgrade and compute `Sec-WebSocket-Accept`. SHA-1 and base64 come from the `sha1` and
//! `base64` crates; the HTTP head itself is parsed by the caller.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the client's key (RFC 6455 §1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request was refused; [`HandshakeError::status`] is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not `GET`.
    #[error("the method must be GET")]
    Method,
    /// HTTP/1.0.
    #[error("HTTP/1.1 or later is required")]
    Version,
    /// No `Host`.
    #[error("missing Host header")]
    Host,
    /// `Upgrade` without `websocket`.
    #[error("Upgrade must include the token websocket")]
    Upgrade,
    /// `Connection` without `Upgrade`.
    #[error("Connection must include the token Upgrade")]
    Connection,
    /// `Sec-WebSocket-Version` other than 13.
    #[error("Sec-WebSocket-Version must be 13")]
    WsVersion,
    /// `Sec-WebSocket-Key` missing or not 16 bytes in base64.
    #[error("Sec-WebSocket-Key must be 16 bytes in base64")]
    Key,
}

impl HandshakeError {
    /// 405 for a wrong method, 426 (with `Sec-WebSocket-Version: 13`) for a version we do not
    /// speak, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Method => 405,
            HandshakeError::WsVersion => 426,
            _ => 400,
        }
    }
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// True when the comma-separated header value contains `token` (case-insensitive), as
/// `Connection: keep-alive, Upgrade` does.
fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Check an upgrade request. `http_minor` is the minor version of `HTTP/1.x`; `header` looks a
/// header up by name (case-insensitive; repeated headers joined with `, `). Returns the
/// `Sec-WebSocket-Accept` value for the 101 response.
pub fn check_upgrade<'a>(
    method: &str,
    http_minor: u8,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, HandshakeError> {
    if method != "GET" {
        return Err(HandshakeError::Method);
    }
    if http_minor < 1 {
        return Err(HandshakeError::Version);
    }
    if header("host").is_none() {
        return Err(HandshakeError::Host);
    }
    if !has_token(header("upgrade"), "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !has_token(header("connection"), "upgrade") {
        return Err(HandshakeError::Connection);
    }
    if header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(HandshakeError::WsVersion);
    }
    let key = header("sec-websocket-key")
        .ok_or(HandshakeError::Key)?
        .trim();
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(accept_key(key)),
        _ => Err(HandshakeError::Key),
    }
}

/// The `101 Switching Protocols` response head.
pub fn response_101(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_accept_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn headers(
        list: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<&'static str> {
        move |name| {
            list.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    const GOOD: &[(&str, &str)] = &[
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    #[test]
    fn a_valid_upgrade_is_accepted() {
        assert_eq!(
            check_upgrade("GET", 1, headers(GOOD)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mixed: &[(&str, &str)] = &[
            ("host", "h"),
            ("UPGRADE", "WebSocket"),
            ("connection", "upgrade"),
            ("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="),
            ("sec-websocket-version", " 13 "),
        ];
        assert!(check_upgrade("GET", 1, headers(mixed)).is_ok());
    }

    #[test]
    fn each_missing_piece_has_its_error() {
        let without = |skip: &str| -> Vec<(&'static str, &'static str)> {
            GOOD.iter().filter(|(n, _)| *n != skip).copied().collect()
        };
        let run = |list: Vec<(&'static str, &'static str)>| {
            let list: &'static [(&str, &str)] = Box::leak(list.into_boxed_slice());
            check_upgrade("GET", 1, headers(list)).unwrap_err()
        };
        assert_eq!(run(without("Host")), HandshakeError::Host);
        assert_eq!(run(without("Upgrade")), HandshakeError::Upgrade);
        assert_eq!(run(without("Connection")), HandshakeError::Connection);
        assert_eq!(
            run(without("Sec-WebSocket-Version")),
            HandshakeError::WsVersion
        );
        assert_eq!(run(without("Sec-WebSocket-Key")), HandshakeError::Key);
        assert_eq!(
            check_upgrade("POST", 1, headers(GOOD))
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            check_upgrade("GET", 0, headers(GOOD)).unwrap_err(),
            HandshakeError::Version
        );
        let mut v8 = without("Sec-WebSocket-Version");
        v8.push(("Sec-WebSocket-Version", "8"));
        assert_eq!(run(v8).status(), 426);
        let mut short = without("Sec-WebSocket-Key");
        short.push(("Sec-WebSocket-Key", "c2hvcnQ="));
        assert_eq!(run(short), HandshakeError::Key);
        let mut not_b64 = without("Sec-WebSocket-Key");
        not_b64.push(("Sec-WebSocket-Key", "not base64 at all!!!!!!!"));
        assert_eq!(run(not_b64), HandshakeError::Key);
    }

    #[test]
    fn the_101_head_carries_the_accept_value() {
        let head = String::from_utf8(response_101("abc=")).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(head.contains("\r\nSec-WebSocket-Accept: abc=\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }
}
