//! The chat name and line rules: a normalised name is within MAX_NAME_CHARS, is its own
//! normal form (idempotent), is valid, and keys like itself; checked text has no control,
//! bidi or separator character and no long blank run.
use bingfa_chat::input::{check, check_controls};
use bingfa_chat::name::{is_valid, key, normalize, MAX_NAME_CHARS};

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(n) = normalize(s) {
            let count = n.chars().count();
            assert!(count > 0 && count <= MAX_NAME_CHARS);
            assert_eq!(
                normalize(&n).as_deref(),
                Ok(n.as_str()),
                "normalize is not idempotent"
            );
            assert!(is_valid(&n));
            assert_eq!(key(&n), key(s));
            assert!(!n.contains(|c: char| c.is_whitespace() || c.is_control() || c == ':'));
        }
        if check(s).is_ok() {
            assert!(check_controls(s).is_ok());
            assert!(!s.contains(['\n', '\r', '\u{1b}', '\u{202e}', '\u{2028}']));
        }
    });
}
