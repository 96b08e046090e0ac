//! Responses: status, header fields and a body that is either bytes in memory or a range of an
//! open file (so a driver can hand it to sendfile). Serialisation adds the fields every
//! response carries (Date, Content-Length, Connection) in one place.

use std::fs::File;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What follows the head.
#[derive(Clone, Debug, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`: never copied into user space by drivers that can
    /// sendfile.
    File {
        /// The open file.
        file: Arc<File>,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Bytes and file ranges interleaved, sent in this order (a `multipart/byteranges` body:
    /// part headers as bytes, part contents as file ranges so they still go by sendfile).
    Parts(Vec<Body>),
}

impl Body {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Parts(parts) => parts.iter().map(Body::len).sum(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An HTTP response. Handlers of dynamic routes build one with the constructors below.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields, in order (framing fields are added when the head is written).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// A response with a body and its Content-Type.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status)
            .header("Content-Type", content_type)
            .body(Body::Bytes(body.into()))
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::with_body(
            status,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    /// A `text/html` response.
    pub fn html(status: u16, html: impl Into<String>) -> Self {
        Response::with_body(status, "text/html; charset=utf-8", html.into().into_bytes())
    }

    /// An `application/json` response.
    pub fn json(status: u16, json: impl Into<String>) -> Self {
        Response::with_body(status, "application/json", json.into().into_bytes())
    }

    /// A short HTML page for an error status.
    pub fn error(status: u16) -> Self {
        let reason = reason(status);
        Response::html(
            status,
            format!(
                "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
                 <body><h1>{status} {reason}</h1></body></html>\n"
            ),
        )
    }

    /// Add the header `name: value`.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// The value of header `name` (case-insensitive), the first if repeated.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Serialises the status line and header fields, ending with the blank line. `keep_alive`
    /// is what the connection will do next; HTTP/1.0 clients have to be told it explicitly.
    pub fn head_bytes(&self, http10: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        head_start(&mut out, http10, self.status);
        for (n, v) in &self.headers {
            write_field(&mut out, n, v);
        }
        let len = self
            .get_header("Content-Length")
            .is_none()
            .then(|| self.body.len());
        head_end(&mut out, self.status, len, http10, keep_alive);
        out
    }
}

/// The status line, `Server` and `Date`: how every head starts.
pub(crate) fn head_start(out: &mut Vec<u8>, http10: bool, status: u16) {
    use std::io::Write;
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let _ = write!(out, "{version} {status} {}\r\n", reason(status));
    out.extend_from_slice(b"Server: bingfa\r\nDate: ");
    with_http_date_now(|d| out.extend_from_slice(d.as_bytes()));
    out.extend_from_slice(b"\r\n");
}

/// One header field `name: value`, unless either holds CR, LF or NUL: a handler may build a
/// value from client input, and such a byte would split the response, so the field is
/// dropped rather than sent.
pub(crate) fn write_field(out: &mut Vec<u8>, n: &str, v: &str) {
    let unsafe_byte = |b: u8| b == b'\r' || b == b'\n' || b == 0;
    if n.bytes().any(unsafe_byte) || v.bytes().any(unsafe_byte) {
        tracing::warn!(name = %n.escape_debug(), "dropping a header field with CR/LF/NUL");
        return;
    }
    out.extend_from_slice(n.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The framing fields and the blank line: `Content-Length` (`len`, when the handler set none
/// itself) and `Connection`.
pub(crate) fn head_end(
    out: &mut Vec<u8>,
    status: u16,
    len: Option<u64>,
    http10: bool,
    keep_alive: bool,
) {
    use std::io::Write;
    // 1xx, 204 and 304 carry no Content-Length of their own payload (RFC 9110 §8.6);
    // a 304 may repeat it, but omitting it is always correct.
    if let Some(len) = len.filter(|_| !(status < 200 || status == 204 || status == 304)) {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        409 => "Conflict",
        410 => "Gone",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        // The reason phrase is informational only (RFC 9112 §4); clients read the code.
        _ => "Unknown",
    }
}

/// Last second an IMF-fixdate can show (9999-12-31T23:59:59Z); httpdate panics beyond it.
const LAST_HTTP_DATE: i64 = 253_402_300_799;

/// A file time (seconds since the epoch) as an IMF-fixdate, or `None` when the year has more
/// than four digits: such a Last-Modified is omitted rather than sent wrong (or panicking).
/// Times before 1970 show as the epoch.
pub fn http_date(secs: i64) -> Option<String> {
    (secs <= LAST_HTTP_DATE).then(|| {
        httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
    })
}

/// The current time as an IMF-fixdate, formatted at most once a second per thread: every
/// response needs it and formatting dates is not free (nginx does the same).
pub fn http_date_now() -> String {
    with_http_date_now(str::to_string)
}

/// Calls `f` with the current time as an IMF-fixdate, from the per-thread string that is
/// formatted again only when the second changes (no allocation otherwise).
pub(crate) fn with_http_date_now<R>(f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        f(&c.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_past_year_9999_are_omitted() {
        assert_eq!(
            http_date(784111777).as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(
            http_date(LAST_HTTP_DATE).as_deref(),
            Some("Fri, 31 Dec 9999 23:59:59 GMT")
        );
        assert_eq!(http_date(LAST_HTTP_DATE + 1), None);
        assert_eq!(http_date(i64::MAX), None);
        assert_eq!(
            http_date(-5).as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
    }

    #[test]
    fn head_fields() {
        let r = Response::text(200, "hi");
        let h = String::from_utf8(r.head_bytes(false, true)).unwrap();
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nServer: bingfa\r\nDate: "),
            "{h}"
        );
        assert!(
            h.contains("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n")
        );
        assert!(!h.contains("Connection"));
        let h = String::from_utf8(r.head_bytes(true, true)).unwrap();
        assert!(
            h.starts_with("HTTP/1.0 200 OK\r\n") && h.ends_with("Connection: keep-alive\r\n\r\n")
        );
        let split = Response::new(302).header("Location", "/x\r\nSet-Cookie: evil=1");
        let h = String::from_utf8(split.head_bytes(false, true)).unwrap();
        assert!(!h.contains("Set-Cookie") && !h.contains("Location"), "{h}");
        let h = String::from_utf8(Response::new(304).head_bytes(false, false)).unwrap();
        assert!(!h.contains("Content-Length") && h.ends_with("Connection: close\r\n\r\n"));
    }
}
