//! `RLock`: a re-entrant lock shared by processes and threads (Python's
//! `multiprocessing.RLock`). The thread that holds it may acquire it again; each guard releases
//! one level. Built on a recursive robust pthread mutex, so the kernel tracks the owner.

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{guarded, raw_acquire, LockError, Shm, Wait};
use crate::robust::RawRobustMutex;

/// A process-shared, robust, recursive lock.
#[derive(Clone, Serialize, Deserialize)]
pub struct RLock {
    shm: Shm<RawRobustMutex>,
}

impl std::fmt::Debug for RLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLock").finish_non_exhaustive()
    }
}

/// One level of ownership of an [`RLock`]; dropping it releases that level.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl RLock {
    /// A new, unlocked re-entrant lock in its own shared segment.
    pub fn new() -> std::io::Result<RLock> {
        Ok(RLock {
            // SAFETY: a fresh segment nobody else sees yet.
            shm: Shm::new(|m| unsafe { RawRobustMutex::init_recursive(m) })?,
        })
    }

    fn take(&self, wait: Wait) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        guarded(raw_acquire(self.shm.get(), wait), || RLockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Acquire (again, if this thread already holds it).
    pub fn acquire(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.take(Wait::Forever)
    }

    /// Acquire if free (or already ours); `Err(WouldBlock)` otherwise.
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.take(Wait::No)
    }

    /// Acquire within `timeout`; `Err(Timeout)` otherwise.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.take(Wait::timeout(timeout))
    }
}

impl RLockGuard<'_> {
    /// Release this level now (same as dropping the guard).
    pub fn release(self) {}
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.shm.get().unlock();
    }
}

impl std::fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RLockGuard")
    }
}
