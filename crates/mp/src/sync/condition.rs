//! `Condition`: wait for a state change made under a [`Lock`], across processes and threads
//! (Python's `multiprocessing.Condition`).
//!
//! A sequence futex word is bumped by every notify. A waiter reads it while still holding the
//! lock, releases the lock and sleeps only if no notify happened since: no wake-up is lost.
//! Like every condition variable it may wake spuriously, so wait in a loop on the predicate
//! ([`Condition::wait_for`] does that for you).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{raw_acquire, Lock, LockError, LockGuard, Shm, SyncError, Wait};
use crate::robust::{Acquired, RawRobustMutex};
use crate::sys;

#[repr(C)]
struct Header {
    seq: AtomicU32,
}

/// A condition variable bound to one [`Lock`]. Clone it or pass it to a child to share it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Condition {
    lock: Lock,
    shm: Shm<Header>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

impl Condition {
    /// A condition with its own new lock.
    pub fn new() -> std::io::Result<Condition> {
        Self::with_lock(Lock::new()?)
    }

    /// A condition over an existing lock (Python's `Condition(lock)`).
    pub fn with_lock(lock: Lock) -> std::io::Result<Condition> {
        Ok(Condition {
            lock,
            shm: Shm::new(|_| Ok(()))?,
        })
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Acquire the underlying lock (Python's `with cond:`).
    pub fn acquire(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.lock.acquire()
    }

    fn check<'a>(&self, guard: &LockGuard<'a>) {
        assert!(
            guard.lock().same_as(&self.lock),
            "Condition::wait called with the guard of a different lock"
        );
    }

    /// Release the lock, sleep until notified, re-acquire. `Err(OwnerDied)` means the lock is
    /// held again but someone died holding it meanwhile.
    pub fn wait(&self, guard: &mut LockGuard<'_>) -> Result<(), SyncError> {
        self.wait_until(guard, None).map(|_| ())
    }

    /// As [`Condition::wait`], at most `timeout`; `Ok(false)` on timeout (lock held again).
    pub fn wait_timeout(
        &self,
        guard: &mut LockGuard<'_>,
        timeout: Duration,
    ) -> Result<bool, SyncError> {
        self.wait_until(guard, Some(Instant::now() + timeout))
    }

    /// Wait until `pred()` is true (checked under the lock), at most `timeout` if given.
    /// Returns the last value of the predicate, as Python's `wait_for`.
    pub fn wait_for(
        &self,
        guard: &mut LockGuard<'_>,
        timeout: Option<Duration>,
        mut pred: impl FnMut() -> bool,
    ) -> Result<bool, SyncError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if pred() {
                return Ok(true);
            }
            if !self.wait_until(guard, deadline)? {
                return Ok(pred());
            }
        }
    }

    fn wait_until(
        &self,
        guard: &mut LockGuard<'_>,
        deadline: Option<Instant>,
    ) -> Result<bool, SyncError> {
        self.check(guard);
        let raw: &RawRobustMutex = self.lock_raw();
        let seq = &self.shm.get().seq;
        let before = seq.load(Ordering::Acquire);
        raw.unlock();
        let woke = sys::futex_wait(seq, before, sys::remaining(deadline));
        // The guard still exists, so the lock must be held again whatever happens.
        match raw_acquire(raw, Wait::Forever) {
            Ok(Acquired::Clean) => Ok(woke),
            Ok(Acquired::OwnerDied) => Err(SyncError::OwnerDied),
            Err(LockError::Io(e)) => Err(SyncError::Io(e)),
            Err(_) => unreachable!("a blocking acquire neither times out nor would block"),
        }
    }

    fn lock_raw(&self) -> &RawRobustMutex {
        self.lock.raw_mutex()
    }

    /// Wake up to `n` waiters.
    pub fn notify(&self, n: u32) {
        let seq = &self.shm.get().seq;
        seq.fetch_add(1, Ordering::Release);
        sys::futex_wake(seq, n.min(i32::MAX as u32) as i32);
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }
}
