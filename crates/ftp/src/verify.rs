//! Password checks off the event loop. Argon2 costs ~25 ms and 19 MiB per check on purpose;
//! run inline, every login would stall all the other sessions of an event-loop worker. The
//! check runs on bingfa-net's per-process blocking pool ([`bingfa_net::blocking`]: one thread
//! per CPU, so concurrent logins queue instead of each taking 19 MiB; a `fork`/`prefork` child
//! starts its own); the session polls the answer from its timer and defers its input meanwhile.
//!
//! Each pool thread keeps one argon2 memory block for all its checks. Allocated per check, the
//! 19 MiB went back to glibc, which kept most of it (per-thread arenas, a raised mmap
//! threshold): a process grew by ~19 MiB per login, to 0.8 GB under `prefork --workers 4`.
//! Kept, a process holds at most one block per pool thread, whatever the number of logins.
//! Who may queue a check at all (per-address bans and limits) is [`crate::guard`]'s business.

use crate::guard::Lease;
use crate::users::Phc;
use argon2::Block;
use bingfa_net::blocking::{self, Task};
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// This thread's argon2 memory, grown to the largest hash it checked.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Queue a check of `password` against `hash`; poll the task for the answer. The `lease` (the
/// check's place among its address's) goes with the job and is given back when it ends, with
/// a failure counted if the password was wrong — even if the client has hung up meanwhile.
pub fn verify(hash: Arc<Phc>, password: &str, lease: Lease) -> Task<bool> {
    let password = password.to_string();
    blocking::run(move |_| {
        let ok = check(&hash, password.as_bytes());
        lease.finish(ok);
        ok
    })
}

/// A check on this thread, in this thread's block.
pub fn check(hash: &Phc, password: &[u8]) -> bool {
    BLOCKS.with(|b| hash.verify_with(password, &mut b.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn answers_from_the_pool() {
        let h = Arc::new(crate::users::Phc::parse(&crate::users::hash("pw")).unwrap());
        let cfg = crate::guard::GuardConfig {
            checks_per_ip: 2,
            ..Default::default()
        };
        let guard = crate::guard::Guard::new(cfg).unwrap();
        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        let good = super::verify(h.clone(), "pw", guard.begin(ip).unwrap());
        let bad = super::verify(h, "nope", guard.begin(ip).unwrap());
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

    #[test]
    fn checks_on_one_thread_share_one_block() {
        let h = crate::users::Phc::parse(&crate::users::hash("pw")).unwrap();
        // On a thread of its own, as a pool thread: the first check takes the block, the
        // others reuse it (the RSS of a whole server is measured in the cli's ftp suite).
        std::thread::spawn(move || {
            let block = || super::BLOCKS.with(|b| (b.borrow().as_ptr(), b.borrow().len()));
            assert!(super::check(&h, b"pw"));
            let first = block();
            assert_eq!(first.1, argon2::Params::DEFAULT_M_COST as usize);
            for _ in 0..5 {
                assert!(!super::check(&h, b"nope"));
                assert_eq!(block(), first, "a check took a new block");
            }
        })
        .join()
        .unwrap();
    }
}
