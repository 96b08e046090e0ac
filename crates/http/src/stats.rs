//! Server-wide counters for `/_stats`. They live in an anonymous *shared* mapping made before
//! the server starts, so the children of `fork` and `prefork` (which inherit the mapping) count
//! into the same atomics as the parent and every worker reports the whole server.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
#[repr(C)]
struct Block {
    open: AtomicU64,
    accepted: AtomicU64,
    requests: AtomicU64,
}

/// Counters shared by every thread and every forked process of one server.
pub struct Stats {
    block: NonNull<Block>,
    /// False when mmap failed and the block is on the heap (then counts are per process).
    mapped: bool,
}

// SAFETY: `Stats` owns its block (a private mapping or leaked box, freed only in its own drop),
// and the block holds only atomics, which may be used from any thread; moving the owner to
// another thread moves nothing the old thread could still reach.
unsafe impl Send for Stats {}
// SAFETY: `&Stats` only ever yields `&Block` (see `b`), and every use of that is an atomic
// operation, so concurrent shared access from any number of threads is race-free.
unsafe impl Sync for Stats {}

/// A consistent-enough reading of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Requests answered since the start.
    pub requests: u64,
}

impl Stats {
    /// Counters at zero, in memory shared with processes forked later.
    pub fn new() -> Stats {
        let size = std::mem::size_of::<Block>();
        // SAFETY: mmap with a null hint and MAP_ANONYMOUS reads no memory of ours and maps
        // fresh pages; they are zero-filled and page-aligned, and all-zero bytes are a valid
        // Block (three AtomicU64 at 0).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let b = Box::leak(Box::<Block>::default());
            return Stats {
                block: NonNull::from(b),
                mapped: false,
            };
        }
        Stats {
            block: NonNull::new(p.cast()).expect("mmap returned null"),
            mapped: true,
        }
    }

    fn b(&self) -> &Block {
        // SAFETY: `block` points to a Block that is initialised (zeroed mapping or boxed
        // default), aligned, and freed only by `drop`, so it outlives `&self`; only shared
        // references to it are ever made.
        unsafe { self.block.as_ref() }
    }

    /// A connection was accepted.
    pub fn conn_opened(&self) {
        self.b().open.fetch_add(1, Ordering::Relaxed);
        self.b().accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn conn_closed(&self) {
        self.b().open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request was answered.
    pub fn request(&self) {
        self.b().requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let b = self.b();
        Snapshot {
            open: b.open.load(Ordering::Relaxed),
            accepted: b.accepted.load(Ordering::Relaxed),
            requests: b.requests.load(Ordering::Relaxed),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: exactly the address and length mmap'd in new(); every `&Block` borrows
            // `self`, so none is alive now, and this runs once.
            unsafe { libc::munmap(self.block.as_ptr().cast(), std::mem::size_of::<Block>()) };
        } else {
            // SAFETY: the block came from Box::leak in new() and is turned back into a box once,
            // here, with no `&Block` alive (they all borrow `self`).
            drop(unsafe { Box::from_raw(self.block.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_with_a_forked_child() {
        let s = Stats::new();
        s.conn_opened();
        // SAFETY: the test harness has other threads, so the child may only do what is safe
        // after fork in a multithreaded process: it touches only atomics in the shared mapping
        // (no locks, no allocation) and leaves with _exit, never returning into the harness.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            s.request();
            s.request();
            // SAFETY: _exit ends the child at once, without running the parent's exit
            // handlers or destructors (which belong to the parent's copy of the state).
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our own child (fork succeeded in the parent) and `status` is a live
        // int for waitpid to write.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(
            s.snapshot(),
            Snapshot {
                open: 1,
                accepted: 1,
                requests: 2
            }
        );
    }
}
