//! Password checks off the event loop. Argon2 costs ~25 ms and 19 MiB per check on purpose;
//! run inline, every login would stall all the other sessions of an event-loop worker. The
//! check runs on bingfa-net's per-process blocking pool ([`bingfa_net::blocking`]: one thread
//! per CPU, so concurrent logins queue instead of each taking 19 MiB; a `fork`/`prefork` child
//! starts its own); the session polls the answer from its timer and defers its input meanwhile.

use bingfa_net::blocking::{self, Task};

/// Queue a check of `password` against `hash`; poll the task for the answer.
pub fn verify(hash: &str, password: &str) -> Task<bool> {
    let (hash, password) = (hash.to_string(), password.to_string());
    blocking::run(move |_| crate::users::verify(&hash, &password))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn answers_from_the_pool() {
        let h = crate::users::hash("pw");
        let good = super::verify(&h, "pw");
        let bad = super::verify(&h, "nope");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut answers = (None, None);
        while answers.0.is_none() || answers.1.is_none() {
            assert!(Instant::now() < deadline, "no answer from the pool");
            if answers.0.is_none() {
                answers.0 = good.try_take().unwrap();
            }
            if answers.1.is_none() {
                answers.1 = bad.try_take().unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(answers, (Some(true), Some(false)));
    }
}
