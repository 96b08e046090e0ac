//! What a message may contain: the one rule every face applies (line port, TLS line port,
//! WebSocket) and the backplane applies again to what arrives from Redis. A member's text ends
//! up on other members' screens, many of them plain terminals (`nc`, `openssl s_client`), so
//! nothing in it may steer a terminal or a renderer, or pose as a line of the server's own:
//!
//! - no C0 control except TAB (ESC starts every terminal sequence, CR redraws the row, BS and
//!   NUL hide text), no DEL, no C1 control (U+0080–U+009F: 8-bit CSI and OSC);
//! - no bidi control (U+202A–U+202E, U+2066–U+2069): they reorder the text around them;
//! - no line or paragraph separator (U+2028, U+2029): some renderers break the line there;
//! - no run of blank characters wider than [`MAX_BLANK_RUN`] columns (spaces, tabs, U+00A0
//!   and every other space separator, and the letters that draw as nothing, like U+3164):
//!   padding is how a message wraps onto a row of its own that reads as `* bob left`.
//!
//! A refused message reaches no one; its sender gets a `! ` line that says why.

/// The widest run of blank columns a message may hold (a tab counts as 8).
pub const MAX_BLANK_RUN: usize = 8;

/// Why a message was refused; the text follows `! message refused: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A control character (C0, C1, DEL) other than tab.
    #[error("control character {}", code(*.0))]
    Control(char),
    /// A bidirectional-text control (it could reorder what others see).
    #[error("bidi control character {}", code(*.0))]
    Bidi(char),
    /// A line or paragraph separator (the message would show as several lines).
    #[error("line separator {}", code(*.0))]
    Separator(char),
    /// Too many blank columns in a row.
    #[error("more than {MAX_BLANK_RUN} blank columns in a row")]
    Blank,
}

fn code(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// The rule for a message's text (members' messages, on every face and from Redis).
pub fn check(text: &str) -> Result<(), InputError> {
    check_controls(text)?;
    let mut run = 0;
    for c in text.chars() {
        run = match blank_width(c) {
            0 => 0,
            w => run + w,
        };
        if run > MAX_BLANK_RUN {
            return Err(InputError::Blank);
        }
    }
    Ok(())
}

/// The part of [`check`] that also holds for an announcement arriving from Redis (the
/// operator's text may be laid out with spaces; it may not steer a terminal either).
pub fn check_controls(text: &str) -> Result<(), InputError> {
    for c in text.chars() {
        match c {
            '\t' => {}
            '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => return Err(InputError::Control(c)),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => return Err(InputError::Bidi(c)),
            '\u{2028}' | '\u{2029}' => return Err(InputError::Separator(c)),
            _ => {}
        }
    }
    Ok(())
}

/// Columns a blank character fills (0: not blank). `White_Space` holds every space separator
/// (Zs: U+00A0, U+2000–U+200A, U+3000, …); the others here are letters or symbols that draw
/// as an empty cell (Hangul fillers, the blank Braille pattern).
fn blank_width(c: char) -> usize {
    match c {
        '\t' => 8,
        '\u{3000}' | '\u{3164}' => 2,
        '\u{115f}' | '\u{1160}' | '\u{ffa0}' | '\u{2800}' => 1,
        c if c.is_whitespace() => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_message_may_hold() {
        for ok in [
            "hello",
            "tab\tthere",
            "zoë: ✓ 你好 مرحبا",
            "eight    spaces?",
            "a        b", // 8 spaces: at the bound
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
        let refused = [
            ("\x1b[2J", InputError::Control('\x1b')),
            ("over\rwrite", InputError::Control('\r')),
            ("nul\0", InputError::Control('\0')),
            ("back\x08", InputError::Control('\x08')),
            ("del\x7f", InputError::Control('\x7f')),
            ("csi\u{9b}2J", InputError::Control('\u{9b}')),
            ("osc\u{9d}52", InputError::Control('\u{9d}')),
            ("rlo\u{202e}txt", InputError::Bidi('\u{202e}')),
            ("lri\u{2066}", InputError::Bidi('\u{2066}')),
            ("pdi\u{2069}", InputError::Bidi('\u{2069}')),
            ("ls\u{2028}", InputError::Separator('\u{2028}')),
            ("a         b", InputError::Blank), // 9 spaces
            ("a\t\tb", InputError::Blank),
            (
                "nbsp\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}",
                InputError::Blank,
            ),
            (
                "mix \u{2003}\u{3000}\u{3000}\u{2800}\u{3164}\u{a0}",
                InputError::Blank,
            ),
        ];
        for (text, want) in refused {
            assert_eq!(check(text), Err(want.clone()), "{text:?}");
        }
        assert_eq!(
            InputError::Control('\x1b').to_string(),
            "control character U+001B"
        );
        assert_eq!(
            InputError::Bidi('\u{202e}').to_string(),
            "bidi control character U+202E"
        );
    }
}
