//! What a member's name may be, and when two names are the same.
//!
//! A name is taken in its NFKC form (`ａｌｉｃｅ` is `alice`), 1–32 characters of letters,
//! marks, decimal digits and `_` `-` `.`, each also allowed in identifiers by Unicode TR39
//! (no default-ignorable, format, private-use, unassigned or deprecated code point), with at
//! least one letter or digit (something shows). So a name holds no space, control, bidi
//! control or invisible character, and none of `:` `*` `!` (they would make a message look
//! like a notice, an error or another member's line).
//!
//! Two names are the same when their keys are ([`key`]): the TR39 confusable skeleton of the
//! case-folded name, folded again. `аlice` in Cyrillic, `ALICE` and `alice` are one name, and
//! none of them may be `admin` (announcements speak as `* admin: …`).
//!
//! The web page applies the same rule before it sends a name (`web/page.html`, `validName`);
//! the server's answer is the one that counts.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_security::GeneralSecurityProfile;

/// Why a name was refused; the text is what the client is told after `! `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, or longer than [`MAX_NAME_CHARS`].
    #[error("a name is 1 to 32 characters")]
    Length,
    /// A character outside letters, digits and `_ - .`.
    #[error("a name is letters, digits and _ - . only")]
    Character,
    /// Punctuation only.
    #[error("a name needs at least one letter or digit")]
    Invisible,
    /// `admin`, which announcements are signed with.
    #[error("the name admin is reserved")]
    Reserved,
}

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// The name `raw` stands for (its NFKC form), if it may be one.
pub fn normalize(raw: &str) -> Result<String, NameError> {
    // Bounded before normalizing: NFKC can expand a character many times (U+FDFA is 18).
    if raw.chars().count() > 4 * MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    let name: String = raw.nfkc().collect();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if !name.chars().all(allowed) {
        return Err(NameError::Character);
    }
    if !name.chars().any(|c| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
        )
    }) {
        return Err(NameError::Invisible);
    }
    static ADMIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| key("admin"));
    if key(&name) == *ADMIN {
        return Err(NameError::Reserved);
    }
    Ok(name)
}

/// [`normalize`] that only says yes or why not.
pub fn validate(raw: &str) -> Result<(), NameError> {
    normalize(raw).map(|_| ())
}

/// A name already in its form: what the backplane checks of names arriving from Redis.
pub fn is_valid(name: &str) -> bool {
    normalize(name).is_ok_and(|n| n == name)
}

fn allowed(c: char) -> bool {
    if matches!(c, '_' | '-' | '.') {
        return true;
    }
    let kind = matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Mark
    ) || c.general_category() == GeneralCategory::DecimalNumber;
    kind && c.identifier_allowed()
}

/// The form names are compared in: two names with the same key are one name.
pub fn key(name: &str) -> String {
    let folded = fold(&name.nfkc().collect::<String>());
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    fold(&skeleton)
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("alice"), Ok(()));
        assert_eq!(validate("Zoë_42"), Ok(()));
        assert_eq!(validate("ann-marie.k"), Ok(()));
        assert_eq!(validate("אבג"), Ok(()), "right-to-left letters are letters");
        assert_eq!(validate("李小龙"), Ok(()));
        assert_eq!(validate(&"x".repeat(32)), Ok(()));
        assert_eq!(validate(&"é".repeat(32)), Ok(()), "characters, not bytes");
        assert_eq!(validate(""), Err(NameError::Length));
        assert_eq!(validate(&"x".repeat(33)), Err(NameError::Length));
        for bad in [
            "a b",
            "a:b",
            "*a",
            "a!",
            "a\tb",
            "a\u{7}",
            "alice\u{200b}", // zero-width space
            "admin\u{200b}",
            "bo\u{feff}b", // zero-width no-break space
            "a\u{200d}b",  // zero-width joiner
            "x\u{202e}",   // right-to-left override
            "\u{e000}x",   // private use
            "x\u{378}",    // unassigned
            "a\u{a0}b",    // no-break space
            "\u{3164}x",   // Hangul filler (a letter that draws nothing)
        ] {
            assert_eq!(validate(bad), Err(NameError::Character), "{bad:?}");
        }
        for invisible in ["\u{200e}", "\u{2800}", "\u{202e}"] {
            assert!(validate(invisible).is_err(), "{invisible:?}");
        }
        assert_eq!(validate("__"), Err(NameError::Invisible));
        assert_eq!(validate("-.-"), Err(NameError::Invisible));
        assert_eq!(validate("Admin"), Err(NameError::Reserved));
        assert_eq!(validate("аdmin"), Err(NameError::Reserved), "Cyrillic а");
        assert_eq!(
            validate("ＡＤＭＩＮ"),
            Err(NameError::Reserved),
            "fullwidth"
        );
    }

    #[test]
    fn a_name_is_taken_in_its_nfkc_form() {
        assert_eq!(normalize("ａｌｉｃｅ").as_deref(), Ok("alice"));
        assert_eq!(normalize("e\u{301}"), Ok("é".to_string()));
        assert!(is_valid("zoë") && !is_valid("ａｌｉｃｅ") && !is_valid("a b"));
    }

    #[test]
    fn look_alikes_are_one_name() {
        let alice = key("alice");
        for same in ["Alice", "ALICE", "аlice", "ａｌｉｃｅ", "аlіcе"] {
            assert_eq!(key(same), alice, "{same:?}");
        }
        assert_eq!(key("paypal"), key("pаypаl"));
        assert_ne!(key("alice"), key("alicia"));
        assert_ne!(key("bob"), key("bobby"));
        assert_eq!(key("ÉCOLE"), key("école"));
    }
}
