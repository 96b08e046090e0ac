//! Server-wide counters for `/_stats` and `--metrics`. They live in shared memory
//! ([`bingfa_net::Counters`]) made before the server starts, so the children of `fork` and
//! `prefork` (which inherit the mapping) count into the same atomics as the parent and every
//! worker, and a metrics responder in another process, reports the whole server.

use bingfa_net::Counters;

const OPEN: usize = 0;
const ACCEPTED: usize = 1;
const REQUESTS: usize = 2;
/// Responses by status class: slot `CLASSES + k` for `(k+1)xx`, k in 0..5.
const CLASSES: usize = 3;
const SLOTS: usize = CLASSES + 5;

/// Counters shared by every thread and every forked process of one server.
#[derive(Clone, Debug)]
pub struct Stats {
    c: Counters,
}

/// A consistent-enough reading of the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Requests answered since the start.
    pub requests: u64,
    /// Responses sent by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]` (interim `100 Continue`
    /// included).
    pub by_class: [u64; 5],
}

impl Stats {
    /// Counters at zero, in memory shared with processes forked later.
    ///
    /// # Panics
    /// If no shared memory can be had at all (no descriptor left at startup).
    pub fn new() -> Stats {
        Stats {
            c: Counters::new(SLOTS).expect("shared memory for the HTTP counters"),
        }
    }

    /// A connection was accepted.
    pub fn conn_opened(&self) {
        self.c.add(OPEN, 1);
        self.c.add(ACCEPTED, 1);
    }

    /// A connection closed.
    pub fn conn_closed(&self) {
        self.c.sub(OPEN, 1);
    }

    /// A request was answered.
    pub fn request(&self) {
        self.c.add(REQUESTS, 1);
    }

    /// A response with `status` went out (counted by class; a status outside 100..=599 is not
    /// counted, none is ever sent).
    pub fn response(&self, status: u16) {
        if (100..600).contains(&status) {
            self.c.add(CLASSES + (status / 100 - 1) as usize, 1);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let mut by_class = [0; 5];
        for (k, n) in by_class.iter_mut().enumerate() {
            *n = self.c.get(CLASSES + k);
        }
        Snapshot {
            open: self.c.get(OPEN),
            accepted: self.c.get(ACCEPTED),
            requests: self.c.get(REQUESTS),
            by_class,
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
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
            s.response(404);
            s.request();
            s.response(200);
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
                requests: 2,
                by_class: [0, 1, 0, 1, 0],
            }
        );
    }
}
