//! `Barrier`: `parties` processes or threads wait until all have arrived (Python's
//! `multiprocessing.Barrier`).
//!
//! A futex word holds the generation (bits 1..) and a "broken" bit (bit 0); the last arriver
//! resets the count and bumps the generation, waking everyone. A wait that times out, or
//! [`Barrier::abort`], breaks the barrier so nobody waits forever for a party that will not come:
//! every waiter gets `BrokenBarrier` until [`Barrier::reset`].
//!
//! **A party that dies breaks it too.** Python's barrier waits forever for a process that was
//! killed; here each process that waits is recorded in a table beside the header (pid, its start
//! time so a reused pid is not mistaken for it, and the generation it last arrived at). Waiters
//! sleep in short slices and, between slices, look for a recorded process that is gone without
//! having arrived at the current generation: finding one breaks the barrier for everyone. A
//! process leaves the table when it drops its last handle, so one that finished its part and
//! exited normally is not mistaken for a dead party; one killed (or ending with `_exit` or
//! `std::process::exit`, which skip destructors) while still holding a handle is.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Entries in the party table that follows the header.
    slots: u32,
    _pad: u32,
}

/// One process that has waited on the barrier.
#[repr(C)]
struct Slot {
    pid: AtomicU32,
    /// `generation + 1` of its last arrival (0: none yet).
    arrived: AtomicU32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22); 0 while unknown.
    start: AtomicU64,
}

const BROKEN: u32 = 1;
/// At most this many processes are watched; more still synchronise, unwatched.
const MAX_SLOTS: u32 = 256;
/// How often a waiter looks for dead parties.
const CHECK: Duration = Duration::from_millis(50);

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

/// `(start time, alive)` of a process from `/proc`: gone, a zombie, or a different process with
/// the same pid all count as dead.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Fields after the state: ppid is field 4 of the line, starttime field 22.
    f.nth(22 - 4)?.parse().ok()
}

impl Barrier {
    /// A barrier for `parties` (at least 1) participants.
    pub fn new(parties: u32) -> std::io::Result<Barrier> {
        let parties = parties.max(1);
        let slots = parties.min(MAX_SLOTS);
        let len = std::mem::size_of::<Header>() + slots as usize * std::mem::size_of::<Slot>();
        Ok(Barrier {
            shm: Shm::with_len(len, |h: *mut Header| {
                // SAFETY: fresh memory nobody else sees yet.
                unsafe {
                    (*h).parties = parties;
                    (*h).slots = slots;
                }
                Ok(())
            })?,
        })
    }

    fn h(&self) -> &Header {
        self.shm.get()
    }

    fn slots(&self) -> &[Slot] {
        let room = (self.shm.len() - std::mem::size_of::<Header>()) / std::mem::size_of::<Slot>();
        let n = (self.h().slots as usize).min(room);
        // SAFETY: the table follows the header inside the segment (checked against its length
        // above); Slot is atomics only, so any bytes are a valid Slot.
        unsafe {
            let first = self.shm.base().add(std::mem::size_of::<Header>()) as *const Slot;
            std::slice::from_raw_parts(first, n)
        }
    }

    /// This process's entry, claiming a free one the first time.
    fn my_slot(&self) -> Option<&Slot> {
        let me = std::process::id();
        let slots = self.slots();
        if let Some(s) = slots.iter().find(|s| s.pid.load(Ordering::Acquire) == me) {
            return Some(s);
        }
        for s in slots {
            if s.pid
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                s.arrived.store(0, Ordering::Release);
                s.start
                    .store(process_start(me).unwrap_or(0), Ordering::Release);
                return Some(s);
            }
        }
        None
    }

    /// Is a process recorded in the table gone without having arrived at generation `gen`?
    fn party_lost(&self, gen: u32) -> bool {
        let me = std::process::id();
        self.slots().iter().any(|s| {
            let pid = s.pid.load(Ordering::Acquire);
            let start = s.start.load(Ordering::Acquire);
            pid != 0
                && pid != me
                && start != 0
                && s.arrived.load(Ordering::Acquire) != gen.wrapping_add(1)
                && process_start(pid) != Some(start)
                // Re-read: it may have left the table (dropped its handle) meanwhile.
                && s.pid.load(Ordering::Acquire) == pid
        })
    }

    /// How many parties must arrive for the barrier to open.
    pub fn parties(&self) -> u32 {
        self.h().parties
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.h().count.load(Ordering::Relaxed)
    }

    /// True once the barrier was aborted, or a party timed out (Python's `broken`).
    pub fn broken(&self) -> bool {
        self.h().state.load(Ordering::Acquire) & BROKEN != 0
    }

    /// Wait for all parties. Returns this party's arrival index, `0..parties` (Python's
    /// `wait()` result; exactly one party gets `parties - 1`, handy to elect a leader).
    ///
    /// `Err(BrokenBarrier)` if the barrier is or becomes broken: by [`Barrier::abort`], by a
    /// [`Barrier::wait_timeout`] that ran out, by [`Barrier::reset`] while waiting, or because a
    /// process that waited on this barrier before died (killed, or exited without dropping its
    /// handle) without arriving at this generation. Such a death is noticed within about 50 ms.
    /// A process that dies before its *first* wait is unknown to the barrier: use
    /// `wait_timeout` if that can happen.
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
        let gen = start >> 1;
        // Arrive in the table before counting, so a waiter never sees our arrival counted
        // but our entry still behind.
        if let Some(slot) = self.my_slot() {
            slot.arrived.store(gen.wrapping_add(1), Ordering::SeqCst);
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
            if cur >> 1 != gen {
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
            let slice = left.map_or(CHECK, |l| l.min(CHECK));
            if !sys::futex_wait(&h.state, cur, Some(slice)) && self.party_lost(gen) {
                // Only if the generation is still the one we wait for.
                if h.state.load(Ordering::Acquire) == cur {
                    self.abort();
                }
            }
        }
    }

    /// Break the barrier: current and future waiters get `BrokenBarrier`.
    pub fn abort(&self) {
        let h = self.h();
        h.state.fetch_or(BROKEN, Ordering::AcqRel);
        sys::futex_wake(&h.state, i32::MAX);
    }

    /// Return to the initial, unbroken state (waiters now get `BrokenBarrier`, as in Python).
    /// The table of known parties is cleared too.
    pub fn reset(&self) {
        let h = self.h();
        h.resets.fetch_add(1, Ordering::SeqCst);
        h.state.fetch_or(BROKEN, Ordering::SeqCst);
        sys::futex_wake(&h.state, i32::MAX);
        for s in self.slots() {
            s.pid.store(0, Ordering::SeqCst);
        }
        h.count.store(0, Ordering::SeqCst);
        let cur = h.state.load(Ordering::SeqCst);
        h.state
            .store((cur & !BROKEN).wrapping_add(2), Ordering::SeqCst);
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        // The last handle of this process: it is no longer a party anyone should wait for.
        if Arc::strong_count(&self.shm.seg) == 1 {
            let me = std::process::id();
            for s in self.slots() {
                let _ = s
                    .pid
                    .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Acquire);
            }
        }
    }
}
