//! `Barrier`: `parties` processes or threads wait until all have arrived (Python's
//! `multiprocessing.Barrier`).
//!
//! A futex word holds the generation (bits 1..) and a "broken" bit (bit 0); the last arriver
//! resets the count and bumps the generation, waking everyone. A wait that times out, or
//! [`Barrier::abort`], breaks the barrier so nobody waits forever for a party that will not come
//! (for example one that died): every waiter gets `BrokenBarrier` until [`Barrier::reset`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Shm, SyncError};
use crate::sys;

#[repr(C)]
struct Header {
    state: AtomicU32,
    count: AtomicU32,
    /// Bumped by `reset` before it moves the generation on, so a waiter released by a reset
    /// (not by the last party) can tell and report `BrokenBarrier`.
    resets: AtomicU32,
    parties: u32,
}

const BROKEN: u32 = 1;

/// A reusable barrier for `parties` participants. Clone it or pass it to a child to share it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Barrier {
    shm: Shm<Header>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` (at least 1) participants.
    pub fn new(parties: u32) -> std::io::Result<Barrier> {
        let parties = parties.max(1);
        Ok(Barrier {
            shm: Shm::new(|h: *mut Header| {
                // SAFETY: fresh memory nobody else sees yet.
                unsafe { (*h).parties = parties };
                Ok(())
            })?,
        })
    }

    fn h(&self) -> &Header {
        self.shm.get()
    }

    pub fn parties(&self) -> u32 {
        self.h().parties
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.h().count.load(Ordering::Relaxed)
    }

    pub fn broken(&self) -> bool {
        self.h().state.load(Ordering::Acquire) & BROKEN != 0
    }

    /// Wait for all parties. Returns this party's arrival index, `0..parties` (Python's
    /// `wait()` result; exactly one party gets `parties - 1`, handy to elect a leader).
    pub fn wait(&self) -> Result<u32, SyncError> {
        self.wait_until(None)
    }

    /// As [`Barrier::wait`], but break the barrier after `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, SyncError> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<u32, SyncError> {
        let h = self.h();
        let resets = h.resets.load(Ordering::SeqCst);
        let start = h.state.load(Ordering::SeqCst);
        if start & BROKEN != 0 {
            return Err(SyncError::BrokenBarrier);
        }
        let index = h.count.fetch_add(1, Ordering::AcqRel);
        if index + 1 >= h.parties {
            h.count.store(0, Ordering::Release);
            h.state.fetch_add(2, Ordering::AcqRel);
            sys::futex_wake(&h.state, i32::MAX);
            return Ok(index);
        }
        loop {
            let cur = h.state.load(Ordering::Acquire);
            if cur & BROKEN != 0 {
                return Err(SyncError::BrokenBarrier);
            }
            if cur >> 1 != start >> 1 {
                if h.resets.load(Ordering::SeqCst) != resets {
                    return Err(SyncError::BrokenBarrier);
                }
                return Ok(index);
            }
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                self.abort();
                return Err(SyncError::BrokenBarrier);
            }
            sys::futex_wait(&h.state, cur, left);
        }
    }

    /// Break the barrier: current and future waiters get `BrokenBarrier`.
    pub fn abort(&self) {
        let h = self.h();
        h.state.fetch_or(BROKEN, Ordering::AcqRel);
        sys::futex_wake(&h.state, i32::MAX);
    }

    /// Return to the initial, unbroken state (waiters now get `BrokenBarrier`, as in Python).
    pub fn reset(&self) {
        let h = self.h();
        h.resets.fetch_add(1, Ordering::SeqCst);
        h.state.fetch_or(BROKEN, Ordering::SeqCst);
        sys::futex_wake(&h.state, i32::MAX);
        h.count.store(0, Ordering::SeqCst);
        let cur = h.state.load(Ordering::SeqCst);
        h.state
            .store((cur & !BROKEN).wrapping_add(2), Ordering::SeqCst);
    }
}
