//! The only way a network path becomes a file: the percent-decoded path is resolved by the
//! kernel *beneath* the root handle ([`Root`], from bingfa-root, which FTP shares) with
//! openat2(2) `RESOLVE_BENEATH`, so `..`, absolute paths and symlinks that lead outside fail in
//! the kernel instead of depending on string cleaning.

pub use bingfa_root::{fstat, OpenError, Root};

/// Decodes `%XX` exactly once. A malformed escape is `None` (the caller's 400).
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes a file name for use in a URL path segment.
pub fn percent_encode_segment(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    for &c in name {
        if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("/a%20b%2e%2E").unwrap(), b"/a b..");
        assert_eq!(
            percent_decode("/%252e").unwrap(),
            b"/%2e",
            "decoded once only"
        );
        assert!(percent_decode("/%2").is_none());
        assert!(percent_decode("/%zz").is_none());
        assert_eq!(
            percent_encode_segment(b"a b<\"&>.txt"),
            "a%20b%3C%22&%3E.txt"
        );
    }
}
