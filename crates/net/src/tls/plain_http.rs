//! A plain-HTTP request on a TLS port (`curl http://host:443/`): the client gets a readable
//! answer instead of a TLS alert it would show as "wrong version number" or nothing at all, as
//! nginx's `497` does. Only for HTTP listeners ([`TlsConfig::answer_plain_http`]).
//!
//! A TLS connection starts with a handshake record (`0x16`; SSLv2-style hellos `0x80`); an
//! HTTP/1 request with its method's first letter, which is an ASCII capital. That first byte
//! alone decides, so the answer never waits for more input. The answer goes out in the clear
//! and the connection closes lingering (the rest of the request is read and dropped), so the
//! client's unread request cannot turn the close into a reset that destroys the answer.
//!
//! [`TlsConfig::answer_plain_http`]: super::TlsConfig::answer_plain_http

const BODY: &str = "400 Bad Request: this port speaks HTTPS, and a plain HTTP request was \
                    sent to it. Use an https:// URL.\n";

/// Whether a connection whose first byte is `first` is a plain HTTP request.
pub(super) fn looks_like_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// The answer, a complete HTTP/1.1 response.
pub(super) fn answer() -> Vec<u8> {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}
