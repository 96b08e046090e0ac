//! The users file: one `[[user]]` table per user, `name`, `password` (an argon2id PHC string
//! made by `bingfa ftp passwd`), `home` (opened as that user's own root at startup, so a
//! missing home stops the server instead of failing at login) and `write`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    #[error("user {0:?}: the password is not an argon2 hash ({1})")]
    Hash(String, String),
    #[error("user {0:?} appears twice")]
    Duplicate(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: String,
    pub home: PathBuf,
    #[serde(default)]
    pub write: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    user: Vec<User>,
}

/// Parses and checks a users file (every hash must parse, names must be unique).
pub fn load(path: &Path) -> Result<Vec<User>, UsersError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| UsersError::Read(path.to_path_buf(), e))?;
    parse(&text).map_err(|e| match e {
        UsersError::Parse(_, m) => UsersError::Parse(path.to_path_buf(), m),
        e => e,
    })
}

pub fn parse(text: &str) -> Result<Vec<User>, UsersError> {
    let f: File =
        toml::from_str(text).map_err(|e| UsersError::Parse(PathBuf::new(), e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for u in &f.user {
        PasswordHash::new(&u.password)
            .map_err(|e| UsersError::Hash(u.name.clone(), e.to_string()))?;
        if !seen.insert(u.name.clone()) {
            return Err(UsersError::Duplicate(u.name.clone()));
        }
    }
    Ok(f.user)
}

/// The argon2id hash of `password` with a fresh random salt (what `bingfa ftp passwd` prints).
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parse_verify() {
        let h = hash("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "s3cret") && !verify(&h, "s3cre") && !verify("junk", "s3cret"));
        let text = format!(
            "[[user]]\nname = \"ann\"\npassword = \"{h}\"\nhome = \"/tmp\"\nwrite = true\n"
        );
        let u = parse(&text).unwrap();
        assert_eq!(u.len(), 1);
        assert!(u[0].write && u[0].name == "ann");
        assert!(matches!(
            parse(&format!("{text}{text}")),
            Err(UsersError::Duplicate(_))
        ));
        assert!(matches!(
            parse("[[user]]\nname = \"x\"\npassword = \"plain\"\nhome = \"/\"\n"),
            Err(UsersError::Hash(..))
        ));
        assert!(matches!(
            parse("[[user]]\nnom = 1\n"),
            Err(UsersError::Parse(..))
        ));
    }
}
