//! `Event`: a flag processes and threads can wait for (Python's `multiprocessing.Event`).
//!
//! One futex word holds the flag in bit 0 and a generation count above it, bumped by every
//! `set`. A waiter returns when it sees the flag, or when the generation moved on: a `set`
//! immediately followed by `clear` still releases everyone who was waiting, as in Python.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Shm;
use crate::sys;

#[repr(C)]
struct Header {
    word: AtomicU32,
}

/// A shared flag. Clone it or pass it to a child to share it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Event {
    shm: Shm<Header>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// A new, clear event.
    pub fn new() -> std::io::Result<Event> {
        Ok(Event {
            shm: Shm::new(|_| Ok(()))?,
        })
    }

    fn word(&self) -> &AtomicU32 {
        &self.shm.get().word
    }

    /// Is the flag set?
    pub fn is_set(&self) -> bool {
        self.word().load(Ordering::Acquire) & 1 == 1
    }

    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        let w = self.word();
        let mut cur = w.load(Ordering::Relaxed);
        loop {
            if cur & 1 == 1 {
                return;
            }
            // New generation, flag on.
            let next = (cur | 1).wrapping_add(2);
            match w.compare_exchange_weak(cur, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        sys::futex_wake(w, i32::MAX);
    }

    /// Clear the flag; later waiters block until the next `set`.
    pub fn clear(&self) {
        self.word().fetch_and(!1, Ordering::Release);
    }

    /// Wait until the flag is set.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Wait at most `timeout`; true if the event was set (Python's `wait(timeout)` result).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let w = self.word();
        let start = w.load(Ordering::Acquire);
        if start & 1 == 1 {
            return true;
        }
        let mut cur = start;
        loop {
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return false;
            }
            sys::futex_wait(w, cur, left);
            cur = w.load(Ordering::Acquire);
            if cur & 1 == 1 || cur >> 1 != start >> 1 {
                return true;
            }
        }
    }
}
