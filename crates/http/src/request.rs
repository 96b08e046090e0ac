//! What a parsed request is: its [`Method`], [`Version`] and the [`Request`] head (plus the
//! body a route asked for). The parser in [`crate::parser`] builds these; routes read them.

use std::fmt;

/// The request methods this server recognises. Anything else is 501.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `PATCH`.
    Patch,
    /// `CONNECT`.
    Connect,
    /// `TRACE`.
    Trace,
}

impl Method {
    pub(crate) fn from_token(t: &[u8]) -> Option<Method> {
        // Methods are case-sensitive (RFC 9110 §9.1): "get" is an unknown method.
        Some(match t {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => return None,
        })
    }

    /// The method's token, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Method::from_token(s.as_bytes()).ok_or(())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP version of a request (HTTP/1.x only; others are 505).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A parsed request head. Header names keep their case; look them up with [`Request::header`].
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path part of the target, still percent-encoded (absolute-form is reduced to it).
    pub path: String,
    /// The query string without its `?`, if any.
    pub query: Option<String>,
    /// The version.
    pub version: Version,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// Length of the body that follows the head (0 when there is none).
    pub content_length: u64,
    /// Whether the connection may stay open after the response (version + Connection).
    pub keep_alive: bool,
    /// The body (`content_length` bytes), filled in by the session before a route sees it.
    pub body: Vec<u8>,
}

impl Default for Request {
    /// An empty `GET` (what a parser fills in); allocates nothing.
    fn default() -> Self {
        Request {
            method: Method::Get,
            path: String::new(),
            query: None,
            version: Version::Http11,
            headers: Vec::new(),
            content_length: 0,
            keep_alive: true,
            body: Vec::new(),
        }
    }
}

impl Request {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
