//! What a member's name may be: 1–32 characters, no whitespace or control characters, none
//! of `:` `*` `!` (they would make a message look like a notice, an error or another member's
//! line), and not `admin` (announcements speak as `* admin: …`). Compared case-insensitively.

/// Why a name was refused; the text is what the client is told after `! `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name is 1 to 32 characters")]
    Length,
    #[error("a name has no spaces, control characters, ':', '*' or '!'")]
    Character,
    #[error("the name admin is reserved")]
    Reserved,
}

pub const MAX_NAME_CHARS: usize = 32;

pub fn validate(name: &str) -> Result<(), NameError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '*' | '!'))
    {
        return Err(NameError::Character);
    }
    if fold(name) == "admin" {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// The form names are compared in.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("alice"), Ok(()));
        assert_eq!(validate("Zoë_42"), Ok(()));
        assert_eq!(validate(&"x".repeat(32)), Ok(()));
        assert_eq!(validate(&"é".repeat(32)), Ok(()), "characters, not bytes");
        assert_eq!(validate(""), Err(NameError::Length));
        assert_eq!(validate(&"x".repeat(33)), Err(NameError::Length));
        for bad in ["a b", "a:b", "*a", "a!", "a\tb", "a\u{7}"] {
            assert_eq!(validate(bad), Err(NameError::Character), "{bad:?}");
        }
        assert_eq!(validate("Admin"), Err(NameError::Reserved));
    }
}
