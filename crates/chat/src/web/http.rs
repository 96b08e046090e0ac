//! The small HTTP/1.1 the web face needs before a WebSocket upgrade: parse one request head
//! (bounded), and build the few responses it gives (the page, 101, and errors). Deliberately
//! not bingfa-http: chat may not depend on it (arrows go cli → {http, chat} → net), and this
//! face serves two routes, never a body.

/// A parsed request head. Header names are kept as sent; look them up with [`Request::header`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent.
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// `x` in `HTTP/1.x`.
    pub minor: u8,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
}

/// Why a head could not be parsed: the status to answer with before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not a well-formed HTTP/1.x request head.
    Bad,
    /// 431: the head (or the number of headers) is over the limit.
    TooLarge,
    /// 505: not HTTP/1.x.
    Version,
}

impl HeadError {
    /// The HTTP status to answer with.
    pub fn status(self) -> u16 {
        match self {
            HeadError::Bad => 400,
            HeadError::TooLarge => 431,
            HeadError::Version => 505,
        }
    }
}

/// More headers than a browser ever sends on a page or an upgrade request.
const MAX_HEADERS: usize = 64;

impl Request {
    /// Parse the head at the start of `input`. `Ok(None)`: not complete yet (and still under
    /// `max_head`); `Ok(Some((request, head_len)))`; `Err` answers with a status and closes.
    pub fn parse(input: &[u8], max_head: usize) -> Result<Option<(Request, usize)>, HeadError> {
        let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if input.len() >= max_head {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        };
        let len = end + 4;
        if len > max_head {
            return Err(HeadError::TooLarge);
        }
        let head = std::str::from_utf8(&input[..end]).map_err(|_| HeadError::Bad)?;
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HeadError::Bad);
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(HeadError::Bad);
        }
        if !target.starts_with('/') {
            return Err(HeadError::Bad);
        }
        let minor = match version.strip_prefix("HTTP/1.") {
            Some(d) if d.len() == 1 && d.as_bytes()[0].is_ascii_digit() => d.as_bytes()[0] - b'0',
            _ if version.starts_with("HTTP/") => return Err(HeadError::Version),
            _ => return Err(HeadError::Bad),
        };
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or(HeadError::Bad)?;
            // No space before the colon and no obsolete line folding (RFC 9112 §5).
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(HeadError::Bad);
            }
            if headers.len() == MAX_HEADERS {
                return Err(HeadError::TooLarge);
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let path = target.split('?').next().unwrap_or(target).to_string();
        Ok(Some((
            Request {
                method: method.to_string(),
                path,
                minor,
                headers,
            },
            len,
        )))
    }

    /// The value of header `name` (case-insensitive); repeated headers are joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut found: Option<String> = None;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name) {
                found = Some(match found {
                    Some(f) => format!("{f}, {v}"),
                    None => v.clone(),
                });
            }
        }
        found
    }

    /// Whether the connection stays open after the answer (HTTP/1.1 default, unless `close`).
    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or_default();
        let has = |t: &str| conn.split(',').any(|x| x.trim().eq_ignore_ascii_case(t));
        if self.minor >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A short plain-text error answer; the connection closes after it.
pub fn error(status: u16, extra_headers: &str, text: &str) -> Vec<u8> {
    let body = format!("{status} {}: {text}\n", reason(status));
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// The page (or only its head, for `HEAD`), under the Content-Security-Policy `csp` (the web
/// face passes `origin::policy`: only its own origin and its own inline code).
pub fn page(body: &str, csp: &str, head_only: bool, keep_alive: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: {}\r\nReferrer-Policy: no-referrer\r\n{}\r\n",
        body.len(),
        csp,
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_browser_upgrade_head() {
        let raw = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n\r\nrest";
        let (req, len) = Request::parse(raw, 1024).unwrap().unwrap();
        assert_eq!(len, raw.len() - 4);
        assert_eq!(
            (req.method.as_str(), req.path.as_str(), req.minor),
            ("GET", "/ws", 1)
        );
        assert_eq!(req.header("CONNECTION").unwrap(), "keep-alive, Upgrade");
        assert!(req.keep_alive());
    }

    #[test]
    fn incomplete_then_bounded() {
        assert_eq!(
            Request::parse(b"GET / HTTP/1.1\r\nHost: a\r\n", 64),
            Ok(None)
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(100));
        assert_eq!(
            Request::parse(long.as_bytes(), 64),
            Err(HeadError::TooLarge)
        );
        let many: String = (0..65).map(|i| format!("H{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            Request::parse(raw.as_bytes(), 8192),
            Err(HeadError::TooLarge)
        );
    }

    #[test]
    fn malformed_heads_are_400_or_505() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"get / HTTP/1.1\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
        ] {
            assert_eq!(Request::parse(raw, 1024), Err(HeadError::Bad), "{raw:?}");
        }
        assert_eq!(
            Request::parse(b"GET / HTTP/2.0\r\n\r\n", 1024),
            Err(HeadError::Version)
        );
    }

    #[test]
    fn keep_alive_rules() {
        let parse = |raw: &[u8]| Request::parse(raw, 1024).unwrap().unwrap().0;
        assert!(!parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn responses_are_framed() {
        let e = String::from_utf8(error(404, "", "no such page")).unwrap();
        assert_eq!(
            e,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 28\r\nConnection: close\r\n\r\n404 Not Found: no such page\n"
        );
        let csp = "default-src 'none'; frame-ancestors 'none'";
        let p = String::from_utf8(page("<p>hi</p>", csp, false, true)).unwrap();
        assert!(p.contains("Content-Length: 9\r\n") && p.ends_with("\r\n\r\n<p>hi</p>"));
        assert!(p.contains("\r\nX-Content-Type-Options: nosniff\r\n"));
        assert!(p.contains("\r\nContent-Security-Policy: default-src 'none'; "));
        assert!(!p.contains("Connection: close"));
        let h = page("<p>hi</p>", csp, true, false);
        assert!(String::from_utf8(h)
            .unwrap()
            .ends_with("Connection: close\r\n\r\n"));
    }
}
