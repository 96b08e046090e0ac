//! Names and texts that come from a server (listings, URLs, replies) are untrusted. Before a
//! name becomes a local file name it is reduced to a single harmless path component, and
//! before anything from the server is printed its control characters are escaped, so a
//! hostile server cannot drive the user's terminal (OSC titles, colours, a CR that overwrites
//! the line, a screen clear) or reorder what is shown (bidirectional overrides).

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

/// Whether printing `c` raw could act on a terminal or change how the text around it reads:
/// C0, DEL and C1 controls (ESC, CR, BEL, CSI...), and the invisible format characters that
/// reorder or hide text (bidirectional overrides and isolates, zero-width marks, line and
/// paragraph separators, the BOM).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// `name` with control and invisible format characters shown as escapes (`\u{1b}`), for
/// printing: the result is one line that cannot drive a terminal.
pub fn display_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    escape_into(&mut out, name);
    out
}

/// Server text for printing (a reply, a multi-line error): as [`display_name`], except that
/// the line breaks between lines are kept.
pub fn display_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        escape_into(&mut out, line);
    }
    out
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
        // C1 CSI, BEL, DEL, a right-to-left override, a zero-width space.
        assert_eq!(
            display_name("a\u{9b}2J\x07\x7f\u{202e}b\u{200b}"),
            "a\\u{9b}2J\\u{7}\\u{7f}\\u{202e}b\\u{200b}"
        );
        assert_eq!(display_name("x\ny"), "x\\ny");
        assert_eq!(
            display_text("x\r\ny\x1b]0;t\x07"),
            "x\\r\ny\\u{1b}]0;t\\u{7}"
        );
    }
}
