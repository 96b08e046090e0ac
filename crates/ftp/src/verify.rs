//! Password checks off the event loop. Argon2 costs ~25 ms and 19 MiB per check on purpose;
//! run inline, every login would stall all the other sessions of an event-loop worker. The
//! check runs on bingfa-net's per-process blocking pool ([`bingfa_net::blocking`]: one thread
//! per CPU, so concurrent logins queue instead of each taking 19 MiB; a `fork`/`prefork` child
//! starts its own); the session polls the answer from its timer and defers its input meanwhile.
//!
//! A process checks at most [`max_checks`] passwords at once (a session without a [`Permit`]
//! waits, as for its address's share: see `cmd::auth`), and keeps one argon2 memory block per
//! check it may run, reused for every check after. Allocated per check, the 19 MiB went back
//! to glibc, which kept most of it (per-thread arenas, a raised mmap threshold): a process grew
//! by ~19 MiB per login, to 0.8 GB under `prefork --workers 4`. Now a process holds at most
//! `max_checks` blocks (38 MiB with the defaults), whatever the number of logins or the number
//! of pool threads. (A `fork`/`prefork` child inherits no check: the parent never checks.)
//! Who may queue a check at all (per-address bans and shares) is [`crate::guard`]'s business.

use crate::guard::Lease;
use crate::users::Phc;
use argon2::Block;
use bingfa_net::blocking::{self, Task};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Checks running or queued in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// This process's argon2 memory blocks not in use (at most one per check it may run).
static BLOCKS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Checks one process runs at once: one more than an address may have in flight, so a flood
/// from one address always leaves a place for the others.
pub(crate) fn max_checks(checks_per_ip: u32) -> usize {
    checks_per_ip as usize + 1
}

/// A place among this process's checks (and so a memory block), given back when dropped.
pub(crate) struct Permit(());

impl Drop for Permit {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place for one more check in this process, if it has fewer than `max` running.
pub(crate) fn permit(max: usize) -> Option<Permit> {
    RUNNING
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Permit(()))
}

/// Queue a check of `password` against `hash`; poll the task for the answer. The `lease` (the
/// check's place among its address's) and the `permit` go with the job and are given back when
/// it ends, with a failure counted if the password was wrong — even if the client has hung up
/// meanwhile.
pub(crate) fn verify(hash: Arc<Phc>, password: &str, lease: Lease, permit: Permit) -> Task<bool> {
    let password = password.to_string();
    blocking::run(move |_| {
        let ok = check(&hash, password.as_bytes());
        lease.finish(ok);
        drop(permit);
        ok
    })
}

/// A check in one of this process's blocks (a new one only if every kept one is in use).
pub(crate) fn check(hash: &Phc, password: &[u8]) -> bool {
    let mut block = BLOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default();
    let ok = hash.verify_with(password, &mut block);
    BLOCKS.lock().unwrap_or_else(|e| e.into_inner()).push(block);
    ok
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// One test for the process-wide state (parallel tests would share it).
    #[test]
    fn answers_from_the_pool_with_bounded_checks_and_blocks() {
        let h = Arc::new(crate::users::Phc::parse(&crate::users::hash("pw")).unwrap());
        let cfg = crate::guard::GuardConfig {
            checks_per_ip: 4,
            ..Default::default()
        };
        let guard = crate::guard::Guard::new(cfg).unwrap();
        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        let (p1, p2) = (super::permit(2).unwrap(), super::permit(2).unwrap());
        assert!(super::permit(2).is_none(), "a third check at once");
        let good = super::verify(h.clone(), "pw", guard.begin(ip).unwrap(), p1);
        let bad = super::verify(h.clone(), "nope", guard.begin(ip).unwrap(), p2);
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
        // The permits came back with the answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        let p = loop {
            if let Some(p) = super::permit(1) {
                break p;
            }
            assert!(Instant::now() < deadline, "a permit was not given back");
            std::thread::sleep(Duration::from_millis(2));
        };
        drop(p);
        // Two blocks were made; 20 checks more, on any threads, make none.
        let kept = || super::BLOCKS.lock().unwrap().len();
        assert_eq!(kept(), 2);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let Some(_p) = super::permit(2) else {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        };
                        assert!(!super::check(&h, b"nope"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(kept(), 2, "checks took new blocks");
    }
}
