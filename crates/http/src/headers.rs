//! Header fields the operator adds to every response (`--header`, `--hsts`) and the ones the
//! server adds by default (`X-Content-Type-Options: nosniff`), as nginx's `add_header ...
//! always` does. They are checked once, at start-up, so a bad one is an error then and never a
//! split response later.

/// Why an operator's header field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not a valid field name (a token).
    #[error("not a header field name: {0:?}")]
    BadName(String),
    /// The value holds CR, LF or another control.
    #[error("header {0}: the value may only hold visible characters, spaces and tabs (no CR, LF or other controls)")]
    BadValue(String),
    /// A field the server sets itself.
    #[error("header {0} is set by the server itself (framing, date, server name)")]
    Reserved(String),
    /// Not `Name: value`.
    #[error("expected `Name: value`, got {0:?}")]
    NoColon(String),
}

/// Names the server writes itself: an extra copy would contradict the framing or the date.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "trailer",
    "date",
    "server",
];

/// The fields added to every response.
#[derive(Clone, Debug)]
pub struct ExtraHeaders {
    fields: Vec<(String, String)>,
    /// `Strict-Transport-Security`'s value: sent over TLS only (RFC 6797 §7.2).
    hsts: Option<String>,
}

impl Default for ExtraHeaders {
    fn default() -> Self {
        ExtraHeaders {
            // Browsers must not guess a type other than the one the server says (a text file
            // rendered as HTML would run a visitor's upload as script).
            fields: vec![("X-Content-Type-Options".into(), "nosniff".into())],
            hsts: None,
        }
    }
}

impl ExtraHeaders {
    /// Adds `name: value` to every response; it replaces a default of the same name.
    pub fn add(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(HeaderError::BadName(name.to_string()));
        }
        let value = value.trim_matches([' ', '\t']);
        if !value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(HeaderError::BadValue(name.to_string()));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) || lower == "strict-transport-security" {
            return Err(HeaderError::Reserved(name.to_string()));
        }
        if lower == "x-content-type-options" {
            self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        self.fields.push((name.to_string(), value.to_string()));
        Ok(())
    }

    /// Parses `Name: value` (the command line's form) and adds it.
    pub fn add_line(&mut self, line: &str) -> Result<(), HeaderError> {
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| HeaderError::NoColon(line.to_string()))?;
        self.add(n, v)
    }

    /// Sends `X-Content-Type-Options: nosniff` (the default) or not.
    pub fn nosniff(&mut self, on: bool) {
        self.fields
            .retain(|(n, _)| !n.eq_ignore_ascii_case("x-content-type-options"));
        if on {
            self.fields
                .push(("X-Content-Type-Options".into(), "nosniff".into()));
        }
    }

    /// `Strict-Transport-Security: max-age=SECS[; includeSubDomains]` over TLS.
    pub fn hsts(&mut self, max_age: u64, include_subdomains: bool) {
        let sub = if include_subdomains {
            "; includeSubDomains"
        } else {
            ""
        };
        self.hsts = Some(format!("max-age={max_age}{sub}"));
    }

    /// The fields for a response sent over TLS (`secure`) or not.
    pub fn fields(&self, secure: bool) -> impl Iterator<Item = (&str, &str)> {
        let hsts = self
            .hsts
            .as_deref()
            .filter(|_| secure)
            .map(|v| ("Strict-Transport-Security", v));
        self.fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(hsts)
    }

    /// Adds the fields to `resp`, except those it already has (a route's own value wins).
    pub fn apply(&self, resp: &mut crate::Response, secure: bool) {
        for (n, v) in self.fields(secure) {
            if resp.get_header(n).is_none() {
                resp.headers.push((n.to_string(), v.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut h = ExtraHeaders::default();
        assert_eq!(
            h.add_line("X-Frame-Options: DENY"),
            Ok(()),
            "an ordinary field"
        );
        assert!(matches!(
            h.add_line("X-A: b\r\nSet-Cookie: x=1"),
            Err(HeaderError::BadValue(_))
        ));
        assert!(matches!(
            h.add("X-A", "b\nc"),
            Err(HeaderError::BadValue(_))
        ));
        assert!(matches!(h.add("X A", "b"), Err(HeaderError::BadName(_))));
        assert!(matches!(h.add("", "b"), Err(HeaderError::BadName(_))));
        assert!(matches!(
            h.add("content-length", "1"),
            Err(HeaderError::Reserved(_))
        ));
        assert!(matches!(
            h.add_line("nocolon"),
            Err(HeaderError::NoColon(_))
        ));
        h.add_line("X-Content-Type-Options:  nosniff2 ").unwrap();
        h.hsts(600, true);
        let plain: Vec<_> = h.fields(false).collect();
        assert_eq!(
            plain,
            vec![
                ("X-Frame-Options", "DENY"),
                ("X-Content-Type-Options", "nosniff2")
            ]
        );
        let tls: Vec<_> = h.fields(true).collect();
        assert_eq!(
            tls.last(),
            Some(&(
                "Strict-Transport-Security",
                "max-age=600; includeSubDomains"
            ))
        );
    }
}
