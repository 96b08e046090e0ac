//! `Semaphore` and `BoundedSemaphore` shared by processes and threads (Python's
//! `multiprocessing.Semaphore` / `BoundedSemaphore`).
//!
//! The count is one futex word in shared memory: an uncontended acquire or release is a single
//! atomic operation, and a waiter sleeps in the kernel on the word itself. A semaphore has no
//! owner, so (as in Python) a unit taken by a process that dies is not given back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Shm, SyncError, Wait};
use crate::sys;

#[repr(C)]
struct Header {
    value: AtomicU32,
    waiters: AtomicU32,
    /// 0 for an unbounded semaphore, else the initial value release may not exceed.
    bound: u32,
}

#[derive(Clone, Serialize, Deserialize)]
struct Core {
    shm: Shm<Header>,
}

impl Core {
    fn new(value: u32, bound: u32) -> std::io::Result<Core> {
        Ok(Core {
            shm: Shm::new(|h: *mut Header| {
                // SAFETY: fresh memory nobody else sees yet.
                unsafe {
                    (*h).value = AtomicU32::new(value);
                    (*h).bound = bound;
                }
                Ok(())
            })?,
        })
    }

    fn h(&self) -> &Header {
        self.shm.get()
    }

    fn try_take(&self) -> bool {
        let v = &self.h().value;
        let mut cur = v.load(Ordering::Relaxed);
        while cur > 0 {
            match v.compare_exchange_weak(cur, cur - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
        false
    }

    fn acquire(&self, wait: Wait) -> bool {
        let deadline = wait.deadline();
        loop {
            if self.try_take() {
                return true;
            }
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return false;
            }
            let h = self.h();
            h.waiters.fetch_add(1, Ordering::SeqCst);
            // Sleeps only while the count is still 0; a release in between changes the word.
            sys::futex_wait(&h.value, 0, left);
            h.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn release(&self, n: u32) -> Result<(), SyncError> {
        let h = self.h();
        // SeqCst on the count and on `waiters` (here and in `acquire`): either the waiter sees
        // the new count before sleeping, or we see the waiter and wake it.
        if h.bound == 0 {
            h.value.fetch_add(n, Ordering::SeqCst);
        } else {
            let mut cur = h.value.load(Ordering::Relaxed);
            loop {
                if cur.checked_add(n).is_none_or(|v| v > h.bound) {
                    return Err(SyncError::ReleasedTooManyTimes);
                }
                match h.value.compare_exchange_weak(
                    cur,
                    cur + n,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(c) => cur = c,
                }
            }
        }
        if h.waiters.load(Ordering::SeqCst) > 0 {
            sys::futex_wake(&h.value, n.min(i32::MAX as u32) as i32);
        }
        Ok(())
    }
}

macro_rules! common {
    () => {
        /// Take one unit, waiting while there is none.
        pub fn acquire(&self) {
            self.core.acquire(Wait::Forever);
        }

        /// Take one unit only if one is free now.
        pub fn try_acquire(&self) -> bool {
            self.core.acquire(Wait::No)
        }

        /// Take one unit, waiting at most `timeout`; false on timeout.
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.core.acquire(Wait::timeout(timeout))
        }

        /// Units free right now (Python's `get_value()`).
        pub fn get_value(&self) -> u32 {
            self.core.h().value.load(Ordering::Relaxed)
        }
    };
}

/// A counting semaphore. Clone it or pass it to a child to share it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Semaphore {
    core: Core,
}

impl Semaphore {
    /// A semaphore with `value` free units.
    pub fn new(value: u32) -> std::io::Result<Semaphore> {
        Ok(Semaphore {
            core: Core::new(value, 0)?,
        })
    }

    common!();

    /// Give back one unit, waking a waiter.
    pub fn release(&self) {
        let _ = self.core.release(1);
    }

    /// Give back `n` units (Python 3.9's `release(n)`).
    pub fn release_n(&self, n: u32) {
        let _ = self.core.release(n);
    }
}

/// A semaphore that refuses to be released above its initial value (catches double releases).
#[derive(Clone, Serialize, Deserialize)]
pub struct BoundedSemaphore {
    core: Core,
}

impl BoundedSemaphore {
    /// A semaphore starting at `value`, whose `release` fails rather than exceed it.
    pub fn new(value: u32) -> std::io::Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            core: Core::new(value, value.max(1))?,
        })
    }

    common!();

    /// Give back one unit; `Err(ReleasedTooManyTimes)` if that would exceed the initial value.
    pub fn release(&self) -> Result<(), SyncError> {
        self.core.release(1)
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.get_value())
            .finish()
    }
}

impl std::fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.get_value())
            .finish()
    }
}
