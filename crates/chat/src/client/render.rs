//! How a room line is laid out on the terminal, so that no member's message can pass for a
//! line of the server's: notices (`* …`) and errors (`! …`) are styled apart when the terminal
//! supports it, and the client wraps every line itself, indenting its continuation rows by
//! [`INDENT`] columns. A message padded to wrap onto a row of its own that reads
//! `* bob left` shows that row indented and unstyled. No I/O here, so it is tested directly.

use unicode_width::UnicodeWidthChar;

/// The columns a continuation row is indented by.
pub(super) const INDENT: usize = 4;

/// What a line from the room is, by its first characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `* …`: the server speaking (joins, leaves, announcements, the welcome).
    Notice,
    /// `! …`: a refusal or an error.
    Error,
    /// Anything else: a member's message, or the user's own line echoed.
    Text,
}

pub(super) fn kind(line: &str) -> Kind {
    if line.starts_with("* ") {
        Kind::Notice
    } else if line.starts_with("! ") {
        Kind::Error
    } else {
        Kind::Text
    }
}

/// Whether the terminal is asked to style text: not on a `dumb` terminal or without `TERM`.
/// `NO_COLOR` keeps the styles but drops the colours (see [`colours`]).
pub(super) fn styles() -> bool {
    std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb")
}

pub(super) fn colours() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `line` cut into rows of at most `width` columns, every row after the first indented by
/// [`INDENT`] spaces. Tabs become spaces to the next multiple of 8 columns; characters of no
/// width (combining marks) stay with the character before them.
pub(super) fn rows(line: &str, width: usize) -> Vec<String> {
    let indent = if width > INDENT * 2 { INDENT } else { 0 };
    let width = width.max(1);
    let mut rows = vec![String::new()];
    let mut col = 0;
    for c in line.chars() {
        let (text, w) = match c {
            '\t' => {
                let n = 8 - col % 8;
                (" ".repeat(n), n)
            }
            c => (c.to_string(), c.width().unwrap_or(0)),
        };
        if col + w > width && col > indent {
            rows.push(" ".repeat(indent));
            col = indent;
            if c == '\t' {
                continue; // a tab at a row's end is the break itself
            }
        }
        rows.last_mut().expect("never empty").push_str(&text);
        col += w;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_message_never_starts_a_row_like_a_notice() {
        let line = format!(
            "bob: {}* admin: log in again at evil.example",
            "x".repeat(75)
        );
        let r = rows(&line, 80);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].chars().count(), 80);
        assert_eq!(r[1], "    * admin: log in again at evil.example");
        for row in &r {
            assert!(row.chars().count() <= 80);
        }
        assert_eq!(kind(&line), Kind::Text);
        assert_eq!(kind("* bob left"), Kind::Notice);
        assert_eq!(kind("! name taken"), Kind::Error);
    }

    #[test]
    fn widths_tabs_and_short_lines() {
        assert_eq!(rows("short", 80), ["short"]);
        assert_eq!(rows("", 80), [""]);
        assert_eq!(rows("a\tb", 80), ["a       b"]);
        // Wide characters count two columns and are never split.
        let r = rows(&"你".repeat(10), 12);
        assert_eq!(r, ["你你你你你你", "    你你你你"]);
        // A narrow terminal still makes progress.
        assert_eq!(rows("abc", 1), ["a", "b", "c"]);
    }
}
