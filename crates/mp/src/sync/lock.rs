//! `Lock`: a mutual-exclusion lock shared by processes and threads (Python's
//! `multiprocessing.Lock`), held through a guard.
//!
//! Unlike Python's, it is released by the thread that acquired it (the guard is not `Send`):
//! that is what lets the kernel tell the next acquirer when an owner died holding it.

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{guarded, raw_acquire, LockError, Shm, Wait};
use crate::robust::RawRobustMutex;

/// A process-shared, robust, non-recursive lock. Clone it or pass it to a child to share it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Lock {
    shm: Shm<RawRobustMutex>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").finish_non_exhaustive()
    }
}

/// Holds a [`Lock`]; dropping it (or [`LockGuard::release`]) releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    _not_send: PhantomData<*const ()>,
}

impl Lock {
    /// A new, unlocked lock in its own shared segment.
    pub fn new() -> std::io::Result<Lock> {
        Ok(Lock {
            // SAFETY: a fresh segment nobody else sees yet.
            shm: Shm::new(|m| unsafe { RawRobustMutex::init(m) })?,
        })
    }

    fn raw(&self) -> &RawRobustMutex {
        self.shm.get()
    }

    pub(crate) fn raw_mutex(&self) -> &RawRobustMutex {
        self.shm.get()
    }

    fn take(&self, wait: Wait) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        guarded(raw_acquire(self.raw(), wait), || LockGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Block until the lock is ours. `Err(OwnerDied(guard))` means it is ours, but its previous
    /// holder died inside the critical section.
    pub fn acquire(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.take(Wait::Forever)
    }

    /// Take the lock only if it is free now (`Err(WouldBlock)` otherwise).
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.take(Wait::No)
    }

    /// Wait at most `timeout` (`Err(Timeout)`).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.take(Wait::timeout(timeout))
    }

    /// Do the two handles name the same lock?
    pub fn same_as(&self, other: &Lock) -> bool {
        self.shm.same(&other.shm)
    }
}

impl<'a> LockGuard<'a> {
    /// Release now (same as dropping the guard).
    pub fn release(self) {}

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.raw().unlock();
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}
