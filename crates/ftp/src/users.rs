//! The users file: one `[[user]]` table per user, `name`, `password` (an argon2 PHC string
//! made by `bingfa ftp passwd`), `home` (opened as that user's own root at startup, so a
//! missing home stops the server instead of failing at login) and `write`.
//!
//! Everything that could never work is refused at load, naming the line: a hash of another
//! algorithm (it would fail every login, silently), an empty name, a duplicate, and argon2
//! parameters past [`MAX_M_KIB`] and [`MAX_T`] (a guess must not cost the server gigabytes;
//! RFC 9106's second recommended set, 64 MiB with t=3 and p=4, and OWASP's 19 MiB with t=2
//! fit). A hash is parsed once, into a [`Phc`], and checked with a caller's memory block
//! (`Phc::verify_with`): see `crate::verify` for why that block is kept.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most memory one check may take, in KiB (256 MiB).
pub const MAX_M_KIB: u32 = 256 * 1024;
/// Most passes one check may take.
pub const MAX_T: u32 = 10;
/// Most lanes (RFC 9106 recommends 4).
pub const MAX_P: u32 = 16;

/// Why a users file was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file cannot be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Not TOML of the expected shape.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// A password that is not an argon2 PHC string within the cost bounds.
    #[error("line {line}: user {name:?}: the password is not a usable argon2 hash ({why})")]
    Hash {
        /// Where the user is in the file.
        line: usize,
        /// The user's name.
        name: String,
        /// What is wrong with the hash.
        why: String,
    },
    /// A user named `""`.
    #[error("line {0}: a user with an empty name")]
    EmptyName(usize),
    /// Two users with one name.
    #[error("line {0}: user {1:?} appears twice")]
    Duplicate(usize, String),
}

/// One `[[user]]` of the file.
#[derive(Debug, Clone)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The password's argon2 hash.
    pub password: Phc,
    /// The directory the user sees as `/`.
    pub home: PathBuf,
    /// Whether the user may change files (else read only).
    pub write: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: toml::Spanned<String>,
    password: toml::Spanned<String>,
    home: PathBuf,
    #[serde(default)]
    write: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    user: Vec<RawUser>,
}

/// A parsed argon2 hash: what a check needs, so a login parses nothing.
#[derive(Debug, Clone)]
pub struct Phc {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    /// Parses a PHC string, refusing what could never verify or costs past the bounds.
    pub(crate) fn parse(s: &str) -> Result<Phc, String> {
        let h = PasswordHash::new(s).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(h.algorithm).map_err(|_| {
            format!(
                "algorithm {:?}: only argon2id, argon2i and argon2d are checked",
                h.algorithm.as_str()
            )
        })?;
        let version = match h.version {
            None => Version::default(),
            Some(v) => Version::try_from(v).map_err(|e| format!("version {v}: {e}"))?,
        };
        let params = Params::try_from(&h).map_err(|e| e.to_string())?;
        if params.m_cost() > MAX_M_KIB || params.t_cost() > MAX_T || params.p_cost() > MAX_P {
            return Err(format!(
                "m={} t={} p={} is past the bounds m={MAX_M_KIB} (256 MiB), t={MAX_T}, p={MAX_P}",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            ));
        }
        let salt = h.salt.ok_or("no salt")?;
        let mut buf = [0u8; 64];
        let salt = salt
            .decode_b64(&mut buf)
            .map_err(|e| format!("salt: {e}"))?
            .to_vec();
        if salt.len() < argon2::MIN_SALT_LEN {
            return Err("the salt is shorter than 8 bytes".into());
        }
        let hash = h.hash.ok_or("no hash")?.as_bytes().to_vec();
        Ok(Phc {
            algorithm,
            version,
            params,
            salt,
            hash,
        })
    }

    /// A hash nothing matches that costs what `like` costs (same algorithm, parameters and
    /// lengths, a fresh salt): checked for unknown users, so their `530` takes as long.
    pub(crate) fn dummy_like(like: &Phc) -> Phc {
        let mut salt = vec![0u8; like.salt.len()];
        let mut hash = vec![0u8; like.hash.len()];
        fill_random(&mut salt);
        fill_random(&mut hash);
        Phc {
            salt,
            hash,
            ..like.clone()
        }
    }

    /// The parameters (memory in KiB, passes, lanes) and the algorithm: what a check costs.
    pub fn cost(&self) -> (Algorithm, Version, u32, u32, u32, usize) {
        (
            self.algorithm,
            self.version,
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
            self.hash.len(),
        )
    }

    /// Whether `password` matches, computed in `blocks` (grown to this hash's size if it is
    /// smaller, never shrunk: the caller keeps it for the next check).
    pub(crate) fn verify_with(&self, password: &[u8], blocks: &mut Vec<Block>) -> bool {
        let need = self.params.block_count();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        let a = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = vec![0u8; self.hash.len()];
        if a.hash_password_into_with_memory(password, &self.salt, &mut out, &mut blocks[..need])
            .is_err()
        {
            return false;
        }
        // Constant time: how much of it matched must not show.
        out.iter()
            .zip(&self.hash)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

fn fill_random(b: &mut [u8]) {
    use argon2::password_hash::rand_core::RngCore;
    argon2::password_hash::rand_core::OsRng.fill_bytes(b);
}

/// Parses and checks a users file; warns when others than its owner may read it (the hashes
/// are what a guesser wants).
pub(crate) fn load(path: &Path) -> Result<Vec<User>, UsersError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| UsersError::Read(path.to_path_buf(), e))?;
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o044 != 0 {
            tracing::warn!(
                "the users file {} is readable by others than its owner (mode {:o}): its hashes \
                 can be guessed offline; chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
    parse(&text).map_err(|e| match e {
        UsersError::Parse(_, m) => UsersError::Parse(path.to_path_buf(), m),
        e => e,
    })
}

/// The users of a file's text, every hash checked (`load` reads them from a file).
pub fn parse(text: &str) -> Result<Vec<User>, UsersError> {
    let f: File =
        toml::from_str(text).map_err(|e| UsersError::Parse(PathBuf::new(), e.to_string()))?;
    let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let mut seen = std::collections::HashSet::new();
    let mut users = Vec::new();
    for u in f.user {
        let name_line = line(u.name.span().start);
        let name = u.name.into_inner();
        if name.is_empty() {
            return Err(UsersError::EmptyName(name_line));
        }
        let password = Phc::parse(u.password.get_ref()).map_err(|why| UsersError::Hash {
            line: line(u.password.span().start),
            name: name.clone(),
            why,
        })?;
        if !seen.insert(name.clone()) {
            return Err(UsersError::Duplicate(name_line, name));
        }
        users.push(User {
            name,
            password,
            home: u.home,
            write: u.write,
        });
    }
    Ok(users)
}

/// The hash unknown users are checked against: one costing what the file's hashes cost (the
/// most common parameters among them; the default ones for a file without users).
pub(crate) fn dummy_for(users: &[User]) -> Phc {
    let mut counts: Vec<(_, usize, &Phc)> = Vec::new();
    for u in users {
        let c = u.password.cost();
        match counts.iter_mut().find(|(k, ..)| *k == c) {
            Some((_, n, _)) => *n += 1,
            None => counts.push((c, 1, &u.password)),
        }
    }
    // The most common; on a tie, the costlier (a shorter dummy would give those users away).
    match counts
        .iter()
        .max_by_key(|(c, n, _)| (*n, c.2 as u64 * c.3 as u64))
    {
        Some((_, _, like)) => Phc::dummy_like(like),
        // What `hash` makes: argon2id, default parameters, a 16-byte salt, 32 bytes out.
        None => Phc::dummy_like(&Phc {
            algorithm: Algorithm::Argon2id,
            version: Version::default(),
            params: Params::default(),
            salt: vec![0; 16],
            hash: vec![0; Params::DEFAULT_OUTPUT_LEN],
        }),
    }
}

/// The argon2id hash of `password` with a fresh random salt (what `bingfa ftp passwd` prints).
pub fn hash(password: &str) -> String {
    hash_with_params(password, Params::default())
}

/// [`hash`] with other parameters: memory in KiB, passes, lanes (tests; a file made elsewhere).
pub fn hash_with(password: &str, m_kib: u32, t: u32, p: u32) -> String {
    let params = Params::new(m_kib, t, p, None).expect("valid argon2 parameters");
    hash_with_params(password, params)
}

fn hash_with_params(password: &str, params: Params) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::default(), params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with valid parameters")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (a fresh memory block: for tools and
/// tests; the server checks with `Phc::verify_with`).
pub fn verify(hash: &str, password: &str) -> bool {
    Phc::parse(hash)
        .map(|p| p.verify_with(password.as_bytes(), &mut Vec::new()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, hash: &str) -> String {
        format!("[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\nhome = \"/tmp\"\n")
    }

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
            Err(UsersError::Duplicate(7, _))
        ));
        assert!(matches!(
            parse("[[user]]\nname = \"x\"\npassword = \"plain\"\nhome = \"/\"\n"),
            Err(UsersError::Hash { line: 3, .. })
        ));
        assert!(matches!(
            parse("[[user]]\nnom = 1\n"),
            Err(UsersError::Parse(..))
        ));
    }

    #[test]
    fn one_block_serves_every_check() {
        let h = Phc::parse(&hash("pw")).unwrap();
        let mut blocks = Vec::new();
        assert!(h.verify_with(b"pw", &mut blocks));
        let (ptr, len) = (blocks.as_ptr(), blocks.len());
        assert_eq!(len, Params::DEFAULT_M_COST as usize);
        for pw in [&b"pw"[..], b"nope", b""] {
            assert_eq!(h.verify_with(pw, &mut blocks), pw == b"pw");
        }
        assert_eq!((blocks.as_ptr(), blocks.len()), (ptr, len), "reallocated");
        // A smaller hash uses the front of the same block.
        let small = Phc::parse(&hash_with("x", 1024, 1, 1)).unwrap();
        assert!(small.verify_with(b"x", &mut blocks));
        assert_eq!(blocks.as_ptr(), ptr);
    }

    #[test]
    fn refuses_what_cannot_work() {
        // Another algorithm, well-formed: would fail every login.
        let pbkdf2 =
            "$pbkdf2-sha256$i=600000$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU";
        let scrypt = "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        for h in [pbkdf2, scrypt] {
            match parse(&format!("# users\n{}", file("ann", h))) {
                Err(e @ UsersError::Hash { line: 4, .. }) => {
                    let m = e.to_string();
                    assert!(m.starts_with("line 4: user \"ann\""), "{m}");
                }
                other => panic!("{h}: {other:?}"),
            }
        }
        // An empty name.
        assert!(matches!(
            parse(&format!("\n{}", file("", &hash("x")))),
            Err(UsersError::EmptyName(3))
        ));
        // Costs past the bounds: 4 GiB, 1000 passes.
        let big = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU";
        let slow = "$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU";
        for h in [big, slow] {
            let e = parse(&file("ann", h)).unwrap_err().to_string();
            assert!(e.contains("past the bounds"), "{e}");
        }
        // RFC 9106's second recommended set (64 MiB, t=3, p=4) and the bounds themselves pass.
        for (m, t, p) in [(65536, 3, 4), (MAX_M_KIB, 1, 1), (8, MAX_T, 1)] {
            let h = format!(
                "$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU"
            );
            parse(&file("ann", &h)).unwrap_or_else(|e| panic!("{h}: {e}"));
        }
    }

    #[test]
    fn the_dummy_costs_what_the_file_costs() {
        let rfc = hash_with("pw", 65536, 3, 4);
        let users = parse(&format!("{}\n{}", file("ann", &rfc), file("bob", &rfc))).unwrap();
        let dummy = dummy_for(&users);
        assert_eq!(dummy.cost(), users[0].password.cost());
        assert_eq!(dummy.cost().2, 65536);
        assert_ne!(dummy.salt, users[0].password.salt);
        assert!(!dummy.verify_with(b"pw", &mut Vec::new()));
        // No users: the default parameters (what `bingfa ftp passwd` makes).
        assert_eq!(
            dummy_for(&[]).cost(),
            Phc::parse(&hash("x")).unwrap().cost()
        );
    }
}
