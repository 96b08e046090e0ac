//! The users file (TOML with PHC password hashes): whatever parses names users with costs
//! inside the documented bounds, so a login can never be made to allocate past MAX_M_KIB.
use bingfa_ftp::users::{parse, MAX_M_KIB, MAX_P, MAX_T};

fn main() {
    bingfa_fuzz::set_limits(4 << 20, 32 << 20);
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(users) = parse(text) {
            let mut names = std::collections::HashSet::new();
            for u in &users {
                assert!(names.insert(u.name.clone()), "duplicate user {:?}", u.name);
                let (_, _, m, t, p, _) = u.password.cost();
                assert!(
                    m <= MAX_M_KIB && t <= MAX_T && p <= MAX_P,
                    "cost {m} {t} {p}"
                );
            }
        }
    });
}
