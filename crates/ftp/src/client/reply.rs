//! Reading replies from the control connection, single- and multi-line (RFC 959 §4.2): a
//! multi-line reply starts with `123-` and ends at the first line that starts with the same
//! code followed by a space; lines in between are free text (some servers prefix them with
//! `123-` too, which is stripped). Lines and replies are bounded so a hostile server cannot
//! make the client buffer without limit.

use super::{Error, Result};
use std::io::{BufRead, Read};

/// The longest reply line kept; longer lines are an error.
pub(super) const MAX_LINE: usize = 8 * 1024;
/// The most lines in one multi-line reply.
pub(super) const MAX_LINES: usize = 10_000;

/// One complete server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, without the code prefix.
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of all lines joined with '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// 1 preliminary, 2 completion, 3 intermediate, 4 transient error, 5 permanent error.
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

fn read_line<R: BufRead>(r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(Error::Closed);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(Error::Protocol(format!(
                "reply line longer than {MAX_LINE} bytes"
            )));
        }
        return Err(Error::Closed);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    // Servers may send names in any encoding; a lossy decode keeps the reply readable.
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn code_of(line: &str) -> Option<u16> {
    let head = line.get(..3)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) || !(b'1'..=b'5').contains(&head.as_bytes()[0]) {
        return None;
    }
    head.parse().ok()
}

/// Reads one reply (all its lines).
pub fn read_reply<R: BufRead>(r: &mut R) -> Result<Reply> {
    let first = read_line(r)?;
    let code =
        code_of(&first).ok_or_else(|| Error::Protocol(format!("not an FTP reply: {first:?}")))?;
    let sep = first.as_bytes().get(3).copied();
    let rest = first.get(4..).unwrap_or("").to_string();
    match sep {
        None | Some(b' ') => Ok(Reply {
            code,
            lines: vec![rest],
        }),
        Some(b'-') => {
            let mut lines = vec![rest];
            let end = format!("{code} ");
            let cont = format!("{code}-");
            loop {
                let line = read_line(r)?;
                if line.starts_with(&end) || line == end.trim_end() {
                    lines.push(line.get(4..).unwrap_or("").to_string());
                    return Ok(Reply { code, lines });
                }
                if lines.len() >= MAX_LINES {
                    return Err(Error::Protocol(format!(
                        "multi-line reply longer than {MAX_LINES} lines"
                    )));
                }
                let text = line.strip_prefix(&cont).unwrap_or(&line);
                lines.push(text.to_string());
            }
        }
        Some(_) => Err(Error::Protocol(format!("not an FTP reply: {first:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Reply> {
        read_reply(&mut s.as_bytes())
    }

    #[test]
    fn single_line() {
        let r = parse("220 ready\r\n").unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(r.lines, vec!["ready"]);
        assert_eq!(r.class(), 2);
    }

    #[test]
    fn bare_code() {
        assert_eq!(parse("200\r\n").unwrap().lines, vec![""]);
    }

    #[test]
    fn multi_line_with_free_text_and_false_ends() {
        // "211 x" inside must not end a 220 reply; "220-" continuations are stripped.
        let s = "220-Welcome\r\n 211 not the end\r\n220-still going\r\n220 done\r\n200 next\r\n";
        let mut input = s.as_bytes();
        let r = read_reply(&mut input).unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(
            r.lines,
            vec!["Welcome", " 211 not the end", "still going", "done"]
        );
        assert_eq!(read_reply(&mut input).unwrap().code, 200);
    }

    #[test]
    fn feat_reply() {
        let r = parse("211-Features:\r\n MLST type*;size*;\r\n UTF8\r\n211 End\r\n").unwrap();
        assert_eq!(
            r.lines,
            vec!["Features:", " MLST type*;size*;", " UTF8", "End"]
        );
    }

    #[test]
    fn malformed_and_closed() {
        assert!(matches!(parse("hello\r\n"), Err(Error::Protocol(_))));
        assert!(matches!(parse("600 x\r\n"), Err(Error::Protocol(_))));
        assert!(matches!(parse(""), Err(Error::Closed)));
        assert!(matches!(parse("220-a\r\n"), Err(Error::Closed)));
        let long = format!("220 {}\r\n", "x".repeat(MAX_LINE));
        assert!(matches!(parse(&long), Err(Error::Protocol(_))));
    }
}
