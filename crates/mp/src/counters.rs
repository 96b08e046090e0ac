//! `Counters`: a fixed row of `u64` counters in shared memory, for statistics that every thread
//! and every process of a server adds to without a lock (a server's requests, bytes, logins).
//!
//! The row lives in a [`Segment`](crate::shm::Segment) mapped `MAP_SHARED`, so a process forked
//! after [`Counters::new`] (a `fork` child, a `prefork` worker, a metrics responder) counts into
//! the same memory as its parent and any of them reads the server's totals. Every access is a
//! relaxed atomic: counts are exact once the writers are quiet, and a reader never blocks one.
//! Unlike [`Value`](crate::Value) there is no lock: a counter is only ever added to, so a
//! process that dies half-way cannot leave it inconsistent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::shm::Segment;

/// `n` counters in shared memory; cloning shares them.
#[derive(Clone, Debug)]
pub struct Counters {
    seg: Arc<Segment>,
    n: usize,
}

impl Counters {
    /// `n` counters at zero, in a fresh shared segment.
    pub fn new(n: usize) -> std::io::Result<Counters> {
        let seg = Segment::new(n.max(1) * std::mem::size_of::<AtomicU64>())?;
        Ok(Counters {
            seg: Arc::new(seg),
            n,
        })
    }

    /// How many counters there are.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn slot(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.n, "counter {i} of {}", self.n);
        // SAFETY: the segment is at least `n` u64 long (made so in `new`), page aligned, zero
        // filled (a valid AtomicU64) and mapped while `self.seg` lives, which outlives `&self`;
        // it is only ever accessed through atomics, by any thread or process.
        unsafe { &*(self.seg.as_ptr() as *const AtomicU64).add(i) }
    }

    /// Add `v` to counter `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn add(&self, i: usize, v: u64) {
        self.slot(i).fetch_add(v, Ordering::Relaxed);
    }

    /// Take `v` from counter `i` (a gauge going down), never below zero.
    pub fn sub(&self, i: usize, v: u64) {
        let _ = self
            .slot(i)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(v))
            });
    }

    /// Counter `i` now.
    pub fn get(&self, i: usize) -> u64 {
        self.slot(i).load(Ordering::Relaxed)
    }

    /// Every counter now, in order.
    pub fn to_vec(&self) -> Vec<u64> {
        (0..self.n).map(|i| self.get(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_with_a_forked_child() {
        let c = Counters::new(3).unwrap();
        c.add(0, 5);
        // SAFETY: the test harness has other threads, so the child only touches atomics in the
        // shared mapping (no locks, no allocation) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            c.add(1, 2);
            c.sub(0, 1);
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our own child and `status` a live int.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(c.to_vec(), vec![4, 2, 0]);
        c.sub(2, 9);
        assert_eq!(c.get(2), 0, "a gauge never goes below zero");
    }
}
