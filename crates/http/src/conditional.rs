//! Conditional requests (RFC 9110 §13): the preconditions evaluated in the order §13.2.2
//! prescribes — If-Match, else If-Unmodified-Since; then If-None-Match, else
//! If-Modified-Since (GET/HEAD only); If-Range is asked separately, only when a Range is.

use crate::parser::{Method, Request};

/// What the preconditions say about a request for a representation.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on and answer normally (200, or 206 if a Range applies).
    Proceed,
    /// 304 Not Modified (a GET or HEAD whose cached copy is current).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the preconditions against a representation with strong tag `etag` and, when
/// it has one that can be sent, modification time `mtime` (seconds since the epoch).
pub fn evaluate(req: &Request, etag: &str, mtime: Option<i64>) -> Outcome {
    // Step 1/2: the client's idea of the current state must hold.
    if let Some(im) = req.header("If-Match") {
        if !strong_match(im, etag) {
            return Outcome::Failed;
        }
    } else if let (Some(ius), Some(mtime)) = (req.header("If-Unmodified-Since"), mtime) {
        // An invalid date is ignored (§13.1.4).
        if date_secs(ius).is_some_and(|since| mtime > since) {
            return Outcome::Failed;
        }
    }
    let get_like = matches!(req.method, Method::Get | Method::Head);
    // Step 3/4: the client's copy may already be current.
    if let Some(inm) = req.header("If-None-Match") {
        if weak_match(inm, etag) {
            return if get_like {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if let (true, Some(ims), Some(mtime)) =
        (get_like, req.header("If-Modified-Since"), mtime)
    {
        if date_secs(ims).is_some_and(|since| mtime <= since) {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// If-Range: the Range applies only if the validator still matches (strong comparison for a
/// tag, exact match for a date; a weak tag never matches).
pub fn if_range_holds(req: &Request, etag: &str, last_modified: Option<&str>) -> bool {
    match req.header("If-Range") {
        None => true,
        Some(v) if v.starts_with("W/") => false,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => Some(v) == last_modified,
    }
}

/// An HTTP date as seconds since the epoch (negative before 1970).
fn date_secs(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s).ok()?;
    Some(match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

/// `*` or a list of tags, one of which is `etag` itself (weak tags never match strongly).
fn strong_match(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

/// `*` or a list of tags, one of which equals `etag` once `W/` is set aside on both.
fn weak_match(list: &str, etag: &str) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let mine = weak(etag);
    list.split(',').any(|t| t.trim() == "*" || weak(t) == mine)
}

#[cfg(test)]
mod tests {
    use super::Outcome::*;
    use super::*;
    use crate::parser::Version;

    const TAG: &str = "\"abc\"";
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const T: i64 = 784111777;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request {
        Request {
            method,
            path: "/f".into(),
            query: None,
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            content_length: 0,
            keep_alive: true,
            body: vec![],
        }
    }

    fn eval(method: Method, headers: &[(&str, &str)]) -> Outcome {
        evaluate(&req(method, headers), TAG, Some(T))
    }

    const BEFORE: &str = "Sat, 05 Nov 1994 08:49:37 GMT";
    const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn if_match_and_if_unmodified_since() {
        assert_eq!(eval(Method::Get, &[("If-Match", "\"x\"")]), Failed);
        assert_eq!(
            eval(Method::Get, &[("If-Match", "\"x\", \"abc\"")]),
            Proceed
        );
        assert_eq!(eval(Method::Get, &[("If-Match", "*")]), Proceed);
        assert_eq!(eval(Method::Get, &[("If-Match", "W/\"abc\"")]), Failed);
        assert_eq!(
            eval(Method::Get, &[("If-Unmodified-Since", BEFORE)]),
            Failed
        );
        assert_eq!(eval(Method::Get, &[("If-Unmodified-Since", AT)]), Proceed);
        assert_eq!(
            eval(Method::Get, &[("If-Unmodified-Since", "junk")]),
            Proceed
        );
        // If-Match present: If-Unmodified-Since is not looked at.
        assert_eq!(
            eval(
                Method::Get,
                &[("If-Match", TAG), ("If-Unmodified-Since", BEFORE)]
            ),
            Proceed
        );
        // No date to compare with: ignored.
        let r = req(Method::Get, &[("If-Unmodified-Since", BEFORE)]);
        assert_eq!(evaluate(&r, TAG, None), Proceed);
    }

    #[test]
    fn precedence() {
        // If-Match fails before If-None-Match could say 304.
        assert_eq!(
            eval(
                Method::Get,
                &[("If-None-Match", TAG), ("If-Match", "\"x\"")]
            ),
            Failed
        );
        // If-None-Match wins over If-Modified-Since, both ways.
        assert_eq!(
            eval(
                Method::Get,
                &[("If-None-Match", "\"x\""), ("If-Modified-Since", AT)]
            ),
            Proceed
        );
        assert_eq!(
            eval(
                Method::Get,
                &[
                    ("If-None-Match", "W/\"abc\""),
                    ("If-Modified-Since", BEFORE)
                ]
            ),
            NotModified
        );
        assert_eq!(
            eval(Method::Head, &[("If-Modified-Since", AT)]),
            NotModified
        );
        assert_eq!(eval(Method::Get, &[("If-Modified-Since", BEFORE)]), Proceed);
        // If-None-Match on a non-GET is 412; If-Modified-Since is for GET/HEAD only.
        assert_eq!(eval(Method::Post, &[("If-None-Match", "*")]), Failed);
        assert_eq!(eval(Method::Post, &[("If-Modified-Since", AT)]), Proceed);
    }

    #[test]
    fn if_range() {
        let r = |v: &str| req(Method::Get, &[("If-Range", v)]);
        assert!(if_range_holds(&r(TAG), TAG, Some(AT)));
        assert!(!if_range_holds(&r("W/\"abc\""), TAG, Some(AT)));
        assert!(if_range_holds(&r(AT), TAG, Some(AT)));
        assert!(!if_range_holds(&r(AT), TAG, None));
        assert!(if_range_holds(&req(Method::Get, &[]), TAG, None));
    }
}
