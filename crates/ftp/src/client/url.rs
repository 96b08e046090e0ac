//! `ftp://user:pass@host:port/path` URLs, and `ftps://` for implicit FTPS (TLS from the first
//! byte, port 990 by default, as curl and lftp read it). User, password and path are percent-decoded. As in
//! RFC 1738 and curl, the path is relative to the login directory; `%2F` at its start makes it
//! absolute. A trailing `/` marks a directory.

use super::{Error, Result};
use percent_encoding::percent_decode_str;

/// A parsed ftp:// or ftps:// URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// `ftps://`: implicit FTPS.
    pub implicit_tls: bool,
    /// The user, decoded; `None` is anonymous.
    pub user: Option<String>,
    /// The password, decoded, if the URL has one.
    pub password: Option<String>,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port (21, or 990 for `ftps://`, unless given).
    pub port: u16,
    /// The decoded path: relative to the login directory unless it starts with '/'; empty
    /// for the login directory itself.
    pub path: String,
}

fn decode(s: &str, what: &str) -> Result<String> {
    let v = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| Error::Url(format!("the {what} is not UTF-8 once decoded")))?
        .into_owned();
    if v.contains(['\r', '\n', '\0']) {
        return Err(Error::Url(format!("the {what} contains CR, LF or NUL")));
    }
    Ok(v)
}

impl FtpUrl {
    /// Parses `ftp[s]://[user[:pass]@]host[:port][/path]`.
    pub fn parse(s: &str) -> Result<Self> {
        let scheme_end = s
            .find("://")
            .ok_or_else(|| Error::Url(format!("{s:?} does not start with ftp:// or ftps://")))?;
        let implicit_tls = match s[..scheme_end].to_ascii_lowercase().as_str() {
            "ftp" => false,
            "ftps" => true,
            _ => {
                return Err(Error::Url(format!(
                    "{s:?} does not start with ftp:// or ftps://"
                )))
            }
        };
        let rest = &s[scheme_end + 3..];
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        // The last '@' separates userinfo: a password may contain an unencoded '@'.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(decode(u, "user")?), Some(decode(p, "password")?)),
                None => (Some(decode(ui, "user")?), None),
            },
        };
        let user = user.filter(|u| !u.is_empty());
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| Error::Url("unclosed '[' in the host".into()))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(Error::Url(format!("no host in {s:?}")));
        }
        let port = match port {
            None | Some("") if implicit_tls => 990,
            None | Some("") => 21,
            Some(p) => p
                .parse()
                .map_err(|_| Error::Url(format!("bad port {p:?}")))?,
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        Ok(FtpUrl {
            implicit_tls,
            user,
            password,
            host: host.to_string(),
            port,
            path: decode(path, "path")?,
        })
    }

    /// Whether the URL names a directory (empty path or a trailing '/').
    pub fn is_dir(&self) -> bool {
        self.path.is_empty() || self.path.ends_with('/')
    }

    /// The last path component ("" for a directory URL).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// `host:port` for connecting (brackets around IPv6).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_is_decoded() {
        let u = FtpUrl::parse("ftp://ann:p%40ss%3Aw@127.0.0.1:2121/dir%20x/f%C3%A9.txt").unwrap();
        assert_eq!(u.user.as_deref(), Some("ann"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, 2121);
        assert_eq!(u.path, "dir x/fé.txt");
        assert_eq!(u.file_name(), "fé.txt");
        assert!(!u.is_dir());
    }

    #[test]
    fn defaults_and_forms() {
        let u = FtpUrl::parse("ftp://example.org").unwrap();
        assert_eq!(
            (u.user, u.password, u.port, u.path.as_str()),
            (None, None, 21, "")
        );
        let u = FtpUrl::parse("ftp://bob@[::1]:99/%2Fetc/").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.host, "::1");
        assert_eq!(u.authority(), "[::1]:99");
        assert_eq!(u.path, "/etc/");
        assert!(u.is_dir());
        // an unencoded '@' in the password
        let u = FtpUrl::parse("ftp://a:b@c@h/").unwrap();
        assert_eq!(u.password.as_deref(), Some("b@c"));
    }

    #[test]
    fn ftps_is_implicit_tls_on_990() {
        let u = FtpUrl::parse("ftps://h/x").unwrap();
        assert!(u.implicit_tls);
        assert_eq!((u.port, u.path.as_str()), (990, "x"));
        let u = FtpUrl::parse("FTPS://h:2990/").unwrap();
        assert!(u.implicit_tls);
        assert_eq!(u.port, 2990);
        assert!(!FtpUrl::parse("ftp://h/").unwrap().implicit_tls);
    }

    #[test]
    fn bad_urls() {
        for s in [
            "http://h/",
            "sftp://h/",
            "ftp:/h/",
            "ftp://",
            "ftp://h:x/",
            "ftp://h/a%0d%0aDELE%20b",
            "ftp://[::1/",
        ] {
            assert!(matches!(FtpUrl::parse(s), Err(Error::Url(_))), "{s}");
        }
    }
}
