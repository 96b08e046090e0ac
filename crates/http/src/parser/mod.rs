//! The strict, incremental HTTP/1.1 request-head parser (RFC 9112). Sans-IO: the session feeds
//! it the bytes it has buffered and gets back a parsed [`Request`] head, "need more", or a
//! [`ParseError`] carrying the status to answer with. Every error closes the connection,
//! because once a head is malformed the framing of whatever follows can't be trusted.

pub use crate::request::{Method, Request, Version};

/// Size limits of a request head. Exceeding them is answered 414 or 431, never buffered on.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request-target accepted (414 beyond it).
    pub max_uri: usize,
    /// Longest whole head, request line included (431 beyond it).
    pub max_head: usize,
    /// Most header field lines in one head (431 beyond it).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// Why a head was rejected, and the status that says so. The connection is closed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub struct ParseError {
    /// The status to answer with (400, 414, 431, 501, 505).
    pub status: u16,
    /// Why, for the log.
    pub reason: &'static str,
}

fn err<T>(status: u16, reason: &'static str) -> Result<T, ParseError> {
    Err(ParseError { status, reason })
}

/// tchar from RFC 9110 §5.6.2: the characters of methods and field names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field-value characters: VCHAR, obs-text, SP, HTAB. Every other control is rejected.
fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Incremental head parser. It remembers how far it has scanned so a head that arrives one
/// byte at a time costs linear, not quadratic, work.
#[derive(Debug, Default)]
pub struct HeadParser {
    scanned: usize,
    /// Leading CRLFs before the request line, which RFC 9112 §2.2 says to skip.
    skip: usize,
    /// End of the request line, once seen.
    line_end: Option<usize>,
    headers: usize,
    /// The shape of the request line so far, checked byte by byte as it arrives.
    line: LineCheck,
}

/// Checks a request line while it arrives, so garbage (a TLS hello, a line of text, a
/// version-less `GET /x`) is answered 400 at once instead of waiting for a CRLF or the head
/// timer. It only accepts what can still become `token SP target SP HTTP/d.d`.
#[derive(Debug, Default)]
struct LineCheck {
    /// 0: method, 1: request-target, 2: version.
    part: u8,
    /// Bytes of the current part seen so far.
    len: usize,
}

impl LineCheck {
    fn push(&mut self, c: u8) -> Result<(), ParseError> {
        let ok = match (self.part, c) {
            (0 | 1, b' ') if self.len > 0 => {
                self.part += 1;
                self.len = 0;
                return Ok(());
            }
            (0, c) => is_tchar(c),
            (1, c) => (0x21..=0x7e).contains(&c),
            (_, c) => match self.len {
                0..=4 => c == b"HTTP/"[self.len],
                5 | 7 => c.is_ascii_digit(),
                6 => c == b'.',
                _ => false,
            },
        };
        if !ok {
            return err(400, "malformed request line");
        }
        self.len += 1;
        Ok(())
    }
}

impl HeadParser {
    /// A parser at the start of a head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at `buf` (everything buffered since the previous request ended). Returns the head
    /// and the bytes it used once complete, `Ok(None)` if more bytes are needed.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(Request, usize)>, ParseError> {
        let mut req = Request::default();
        Ok(self
            .parse_into(buf, limits, &mut req)?
            .map(|used| (req, used)))
    }

    /// [`HeadParser::parse`] into a request kept from the previous one: its strings and
    /// header list are refilled in place, so a connection's steady stream of requests
    /// allocates nothing once they have grown. Returns the bytes used once the head is
    /// complete (then `req` is the new request), `Ok(None)` while more are needed.
    pub fn parse_into(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        req: &mut Request,
    ) -> Result<Option<usize>, ParseError> {
        let mut i = self.scanned;
        while i < buf.len() {
            let b = buf[i];
            if self.line_end.is_none() && i == self.skip && b == b'\r' {
                // A leading empty line: skip it if its LF follows.
                match buf.get(i + 1) {
                    None => break,
                    Some(b'\n') if self.skip < 64 => {
                        self.skip += 2;
                        i += 2;
                        continue;
                    }
                    Some(b'\n') => return err(400, "too many empty lines"),
                    _ => return err(400, "bare CR"),
                }
            }
            match b {
                b'\r' => match buf.get(i + 1) {
                    None => break, // wait for the next byte
                    Some(b'\n') => {
                        let line_start = self.line_start(buf, i);
                        let line_end = i;
                        i += 2;
                        if self.line_end.is_none() {
                            self.line_end = Some(line_end);
                            if line_end - self.skip > limits.max_uri + 32 {
                                return err(414, "URI too long");
                            }
                            // A complete but wrong request line is refused now, not after
                            // a header block that may never come.
                            request_line(&buf[self.skip..line_end], limits)?;
                        } else if line_end == line_start {
                            // Blank line: the head is complete.
                            let head_end = i;
                            let (skip, first_end) = (self.skip, self.line_end.take().unwrap());
                            *self = HeadParser::new();
                            if head_end > limits.max_head + skip {
                                return err(431, "request head too large");
                            }
                            finish(&buf[skip..head_end], first_end - skip, limits, req)?;
                            return Ok(Some(head_end));
                        } else {
                            self.headers += 1;
                            if self.headers > limits.max_headers {
                                return err(431, "too many header fields");
                            }
                        }
                    }
                    Some(_) => return err(400, "bare CR"),
                },
                b'\n' => return err(400, "bare LF"),
                c => {
                    if self.line_end.is_none() {
                        self.line.push(c)?;
                    }
                    i += 1
                }
            }
        }
        self.scanned = i;
        // Enforce the limits on what is buffered so far, not only on complete heads.
        match self.line_end {
            None if buf.len() - self.skip > limits.max_uri + 32 => {
                // Tell a long target (414) from garbage (400) by the shape of what came.
                let line = &buf[self.skip..];
                match line.iter().position(|&c| c == b' ') {
                    Some(sp) if sp > 0 && line[..sp].iter().all(|&c| is_tchar(c)) => {
                        err(414, "URI too long")
                    }
                    _ => err(400, "malformed request line"),
                }
            }
            Some(_) if buf.len() - self.skip > limits.max_head => {
                err(431, "request head too large")
            }
            _ => Ok(None),
        }
    }

    fn line_start(&self, buf: &[u8], cr: usize) -> usize {
        // Lines are short; a backwards scan to the previous LF is cheap.
        buf[..cr]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(self.skip, |p| p + 1)
    }
}

/// Parses a complete head (`head` ends with the blank line; `line_end` ends the request line)
/// into `req`, reusing its strings and header list (nothing is allocated once they are big
/// enough). On an error `req` holds a partial head: the connection is answered and closed.
fn finish(
    head: &[u8],
    line_end: usize,
    limits: &Limits,
    req: &mut Request,
) -> Result<(), ParseError> {
    let line = &head[..line_end];
    let (method, (slash, target), version) = request_line(line, limits)?;

    let mut used = 0;
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<String> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    // Every line between the request line and the blank line ends with CRLF (checked above).
    let fields = &head[line_end + 2..head.len() - 2];
    for raw in fields.split(|&b| b == b'\n') {
        if raw.is_empty() {
            continue; // the split after the last CRLF
        }
        let raw = &raw[..raw.len() - 1]; // drop CR
        if raw[0] == b' ' || raw[0] == b'\t' {
            return err(400, "obsolete line folding");
        }
        let colon = raw.iter().position(|&b| b == b':').ok_or(ParseError {
            status: 400,
            reason: "header line without colon",
        })?;
        let name = &raw[..colon];
        if name.is_empty() {
            return err(400, "empty header name");
        }
        if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
            return err(400, "whitespace before colon");
        }
        if !name.iter().all(|&b| is_tchar(b)) {
            return err(400, "invalid character in header name");
        }
        let value = &raw[colon + 1..];
        if !value.iter().all(|&b| is_field_vchar(b)) {
            return err(400, "control character in header value");
        }
        let value = trim_ows(value);
        // Names are tchar (ASCII); values may carry obs-text, kept lossily.
        let name = std::str::from_utf8(name).expect("tchar is ASCII");
        let value = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !value.bytes().all(is_host_char) {
                return err(400, "invalid Host");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return err(400, "duplicate Content-Length");
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return err(400, "invalid Content-Length");
            }
            content_length = Some(value.parse().map_err(|_| ParseError {
                status: 400,
                reason: "invalid Content-Length",
            })?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let te = transfer_encoding.get_or_insert_with(String::new);
            if !te.is_empty() {
                te.push(',');
            }
            te.push_str(&value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                conn_close |= token.eq_ignore_ascii_case("close");
                conn_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
        // Refill the strings of the previous request's field in this place, if it had one.
        match req.headers.get_mut(used) {
            Some((n, v)) => {
                n.clear();
                n.push_str(name);
                v.clear();
                v.push_str(&value);
            }
            None => req.headers.push((name.to_string(), value.into_owned())),
        }
        used += 1;
    }
    req.headers.truncate(used);

    if hosts > 1 {
        return err(400, "duplicate Host");
    }
    if hosts == 0 && version == Version::Http11 {
        return err(400, "missing Host");
    }
    if let Some(te) = transfer_encoding {
        if content_length.is_some() {
            return err(400, "Transfer-Encoding with Content-Length");
        }
        if version == Version::Http10 {
            return err(400, "Transfer-Encoding in HTTP/1.0");
        }
        let last = te.rsplit(',').next().unwrap_or("").trim();
        if !last.eq_ignore_ascii_case("chunked") {
            return err(400, "final transfer coding is not chunked");
        }
        // Request bodies are only for dynamic routes, which take Content-Length bodies.
        return err(501, "chunked request bodies are not supported");
    }

    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    req.path.clear();
    if slash {
        req.path.push('/');
    }
    req.path.push_str(path);
    match (query, &mut req.query) {
        (Some(q), Some(old)) => {
            old.clear();
            old.push_str(q);
        }
        (q, old) => *old = q.map(str::to_string),
    }
    req.method = method;
    req.version = version;
    req.keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    req.content_length = content_length.unwrap_or(0);
    req.body.clear();
    Ok(())
}

/// The request line's method, target and version. The target is `(slash, rest)`: the path is
/// `/` (when `slash`) followed by `rest`, a slice of `line` (absolute-form keeps only its path).
fn request_line<'a>(
    line: &'a [u8],
    limits: &Limits,
) -> Result<(Method, (bool, &'a str), Version), ParseError> {
    // Exactly: method SP request-target SP HTTP-version; one space each, no other whitespace.
    let mut parts = line.split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return err(400, "malformed request line");
    };
    if m.is_empty() || !m.iter().all(|&b| is_tchar(b)) {
        return err(400, "malformed method");
    }
    if t.is_empty() || !t.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return err(400, "malformed request target");
    }
    let version = match v {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            return err(505, "HTTP version not supported")
        }
        _ => return err(400, "malformed HTTP version"),
    };
    if t.len() > limits.max_uri {
        return err(414, "URI too long");
    }
    let Some(method) = Method::from_token(m) else {
        return err(501, "unknown method");
    };
    // The target is ASCII (checked above).
    let t = std::str::from_utf8(t).unwrap();
    let target = if t.starts_with('/') || (t == "*" && method == Method::Options) {
        (false, t)
    } else if let Some(rest) =
        strip_prefix_ci(t, "http://").or_else(|| strip_prefix_ci(t, "https://"))
    {
        // absolute-form: keep only the path (RFC 9112 §3.2.2); an empty path means "/".
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (false, &rest[i..]),
            Some(i) => (true, &rest[i..]),
            None => (true, ""),
        }
    } else {
        return err(400, "malformed request target");
    };
    Ok((method, target, version))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests;
