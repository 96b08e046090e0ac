//! Names that come from a server (listings, URLs) are untrusted. Before one becomes a local
//! file name it is reduced to a single harmless path component, and before one is printed its
//! control characters are escaped so a listing cannot drive the user's terminal.

/// The local file name for a server-supplied `name`: its last component (after any `/` or
/// `\`), with control characters replaced by `_`. `None` when nothing usable remains
/// (empty, `.`, `..`).
pub fn local_name(name: &str) -> Option<String> {
    let last = name
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("");
    let clean: String = last
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    match clean.as_str() {
        "" | "." | ".." => None,
        _ => Some(clean),
    }
}

/// `name` with control characters shown as escapes (`\u{1b}`), for printing.
pub fn display_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        assert_eq!(local_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(local_name("/abs/evil").as_deref(), Some("evil"));
        assert_eq!(local_name("..\\win.ini").as_deref(), Some("win.ini"));
        assert_eq!(local_name("a\x1b[31mred\n").as_deref(), Some("a_[31mred_"));
        assert_eq!(local_name("dir/"), Some("dir".into()));
        for bad in ["", ".", "..", "/", "../", "a/..", "x/."] {
            assert_eq!(local_name(bad), None, "{bad:?}");
        }
        assert_eq!(local_name("ok name.txt").as_deref(), Some("ok name.txt"));
        assert_eq!(local_name("...").as_deref(), Some("..."));
    }

    #[test]
    fn display_escapes_controls() {
        assert_eq!(display_name("a\x1b[2Jb\r"), "a\\u{1b}[2Jb\\r");
        assert_eq!(display_name("fé"), "fé");
    }
}
