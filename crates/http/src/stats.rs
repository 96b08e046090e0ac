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

// SAFETY: the block only holds atomics, which are safe to use from any thread or process.
unsafe impl Send for Stats {}
// SAFETY: as for `Send`: shared use is atomic operations only.
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
        // SAFETY: a fresh anonymous mapping; zeroed memory is a valid Block of atomics.
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
        // SAFETY: the block stays mapped until drop.
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
            // SAFETY: unmapping exactly the mapping made in new(); no references outlive self.
            unsafe { libc::munmap(self.block.as_ptr().cast(), std::mem::size_of::<Block>()) };
        } else {
            // SAFETY: the block came from Box::leak in new().
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
        // SAFETY: the child only touches atomics and exits without unwinding.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            s.request();
            s.request();
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
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
