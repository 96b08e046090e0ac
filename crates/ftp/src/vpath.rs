//! The client's view of paths: an absolute virtual path (`/a/b`) made from the working
//! directory and an argument. `.` is dropped and `..` pops a component; a `..` above the root
//! is refused (550) rather than clamped, so the client learns it cannot go there. The result,
//! without its leading slash, is what the `Root` resolves beneath the user's directory: the
//! kernel then refuses symlinks that lead outside, so no string trick escapes.

/// An absolute virtual path, normalised: starts with `/`, no `.`/`..`/empty components.
pub fn resolve(cwd: &str, arg: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let start = if arg.starts_with('/') { "" } else { cwd };
    for comp in start.split('/').chain(arg.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The path relative to the root, as bytes for `bingfa_root` (empty = the root itself).
pub fn rel(vpath: &str) -> &[u8] {
    vpath.trim_start_matches('/').as_bytes()
}

/// The last component (the name a file is created under); `None` for the root.
pub fn split(vpath: &str) -> Option<(&str, &str)> {
    let i = vpath.rfind('/')?;
    let name = &vpath[i + 1..];
    (!name.is_empty()).then(|| (if i == 0 { "/" } else { &vpath[..i] }, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolving() {
        assert_eq!(resolve("/", "a/b").unwrap(), "/a/b");
        assert_eq!(resolve("/a", "../b/./c/").unwrap(), "/b/c");
        assert_eq!(resolve("/a", "/x").unwrap(), "/x");
        assert_eq!(resolve("/a/b", "..").unwrap(), "/a");
        assert_eq!(resolve("/", "").unwrap(), "/");
        assert!(resolve("/", "..").is_none());
        assert!(resolve("/a", "../../etc/passwd").is_none());
        assert!(resolve("/", "/../etc").is_none());
        assert_eq!(rel("/a/b"), b"a/b");
        assert_eq!(rel("/"), b"");
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/b"), Some(("/", "b")));
        assert_eq!(split("/"), None);
    }
}
