//! Who may open the room's WebSocket: the browser's `Origin` rule, and the page's
//! Content-Security-Policy.
//!
//! A browser lets any page open a WebSocket to any address and sends the page's origin along;
//! the server is the only one who can say no. So an upgrade is accepted only when `Origin` is
//! absent (not a browser: `websockets`, `websocat`, our own tools), or is the page's own
//! origin (the scheme of this face, `https` under TLS, with the host and port of the `Host`
//! header), or is listed with `--allow-origin`. `Origin: null` (a sandboxed frame, a `file:`
//! page) and the same host on another port are other origins. Without this, a page from
//! anywhere, opened on the same machine, joined a loopback room, read it and posted.
//!
//! The page itself is served with a policy that lets it load and connect to nothing but its
//! own origin, run only its own inline script and style (by hash, computed from the page as
//! served, so editing the page needs no second edit here), and never be framed.

use super::http::Request;

/// `(scheme, host, port)`, lower-cased, the port filled in from the scheme's default.
type Tuple = (String, String, u16);

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (an IPv6 host in brackets) with `scheme`'s default port when there is none.
fn authority(scheme: &str, auth: &str) -> Option<Tuple> {
    let auth = auth.to_ascii_lowercase();
    if auth.is_empty() || auth.contains(['/', '?', '#', '@', ' ', ',']) {
        return None;
    }
    let (host, port) = match auth.rfind(':') {
        // `[::1]` has colons but no port after its bracket.
        Some(i) if !auth[i..].contains(']') => (&auth[..i], Some(&auth[i + 1..])),
        _ => (&auth[..], None),
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port(scheme)?,
    };
    Some((scheme.to_string(), host.to_string(), port))
}

/// An origin as a browser serialises it: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Option<Tuple> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    authority(&scheme, rest.strip_suffix('/').unwrap_or(rest))
}

/// Whether the upgrade request `req`, arriving on a face that is `secure` (TLS) or not, may
/// become a member; `allowed` is `--allow-origin`. `Err` is the text of the 403.
pub fn check(req: &Request, secure: bool, allowed: &[String]) -> Result<(), &'static str> {
    let Some(origin) = req.header("origin") else {
        return Ok(()); // not a browser: nothing to protect a user from
    };
    const REFUSED: &str = "cross-origin WebSocket refused: this room accepts pages from its own \
                           origin only (the server can allow others with --allow-origin)";
    let Some(theirs) = parse_origin(&origin) else {
        return Err(REFUSED); // `null`, or not one origin
    };
    let scheme = if secure { "https" } else { "http" };
    let own = req.header("host").and_then(|h| authority(scheme, h.trim()));
    if own.as_ref() == Some(&theirs)
        || allowed
            .iter()
            .any(|a| parse_origin(a) == Some(theirs.clone()))
    {
        Ok(())
    } else {
        Err(REFUSED)
    }
}

/// Whether `origin` is one `--allow-origin` can name: `http(s)://host[:port]`.
pub fn valid_origin(origin: &str) -> bool {
    parse_origin(origin).is_some_and(|(s, _, _)| s == "http" || s == "https")
}

/// The Content-Security-Policy for `page`: its own origin only, and its inline `<script>` and
/// `<style>` blocks by their SHA-256.
pub fn policy(page: &str) -> String {
    let hashes = |tag: &str| -> String {
        inline_blocks(page, tag)
            .map(|b| format!(" 'sha256-{}'", sha256_b64(b)))
            .collect()
    };
    format!(
        "default-src 'none'; script-src 'self'{}; style-src 'self'{}; img-src 'self'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style")
    )
}

/// The contents of every inline `<tag …>…</tag>` of `page` (a `src=` script is not inline).
fn inline_blocks<'a>(page: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = page;
    std::iter::from_fn(move || loop {
        let i = rest.find(&open)?;
        let after = &rest[i + open.len()..];
        // `<style>` / `<script …>`, not `<styles>` or `<scripting>`.
        if !after.starts_with(['>', ' ', '\t', '\n']) {
            rest = after;
            continue;
        }
        let gt = after.find('>')?;
        let attrs = &after[..gt];
        let body = &after[gt + 1..];
        let end = body.find(&close)?;
        rest = &body[end + close.len()..];
        if !attrs.contains("src=") {
            return Some(&body[..end]);
        }
    })
}

fn sha256_b64(data: &str) -> String {
    use base64::Engine as _;
    let d = ring::digest::digest(&ring::digest::SHA256, data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(headers: &str) -> Request {
        let raw = format!("GET /ws HTTP/1.1\r\n{headers}\r\n");
        Request::parse(raw.as_bytes(), 4096).unwrap().unwrap().0
    }

    #[test]
    fn only_the_pages_own_origin_or_an_allowed_one() {
        let ok = |h: &str, secure: bool, allow: &[&str]| {
            let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
            check(&upgrade(h), secure, &allow).is_ok()
        };
        assert!(ok("Host: 127.0.0.1:8080\r\n", false, &[]), "no Origin");
        assert!(ok(
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
            false,
            &[]
        ));
        assert!(ok(
            "Host: Chat.Example\r\nOrigin: http://chat.example:80\r\n",
            false,
            &[]
        ));
        assert!(ok(
            "Host: chat.example\r\nOrigin: https://chat.example\r\n",
            true,
            &[]
        ));
        assert!(ok(
            "Host: [::1]:9\r\nOrigin: http://[::1]:9\r\n",
            false,
            &[]
        ));
        assert!(
            !ok(
                "Host: chat.example\r\nOrigin: http://chat.example\r\n",
                true,
                &[]
            ),
            "scheme"
        );
        assert!(!ok(
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8081\r\n",
            false,
            &[]
        ));
        assert!(!ok("Host: 127.0.0.1:8080\r\nOrigin: null\r\n", false, &[]));
        assert!(!ok(
            "Host: 127.0.0.1:8080\r\nOrigin: http://evil.example\r\n",
            false,
            &[]
        ));
        assert!(
            !ok("Origin: http://127.0.0.1:8080\r\n", false, &[]),
            "no Host"
        );
        assert!(!ok(
            "Host: a:1\r\nOrigin: http://a:1\r\nOrigin: http://b:1\r\n",
            false,
            &[]
        ));
        assert!(ok(
            "Host: 127.0.0.1:8080\r\nOrigin: https://Front.Example\r\n",
            false,
            &["https://front.example:443"]
        ));
        assert!(valid_origin("https://front.example") && !valid_origin("null"));
        assert!(!valid_origin("https://front.example/path") && !valid_origin("ftp://x"));
    }

    #[test]
    fn the_policy_hashes_each_inline_block() {
        let page = "<style>a{}</style><script>x()</script><script src=\"/a.js\"></script>";
        let p = policy(page);
        assert!(
            p.contains(&format!(
                "script-src 'self' 'sha256-{}';",
                sha256_b64("x()")
            )),
            "{p}"
        );
        assert!(
            p.contains(&format!("style-src 'self' 'sha256-{}';", sha256_b64("a{}"))),
            "{p}"
        );
        assert!(p.contains("frame-ancestors 'none'") && p.contains("connect-src 'self'"));
        // What the page's head carries (`http::page` puts it there as it is).
        assert!(p.starts_with("default-src 'none'; "), "{p}");
        assert_eq!(inline_blocks(super::super::PAGE, "script").count(), 1);
    }
}
