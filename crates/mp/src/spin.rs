//! The adaptive spin that comes before every sleep in a pipe or queue wait.
//!
//! A peer running on the other core answers within a microsecond or two; a futex sleep and
//! wake-up costs two system calls, two context switches and, on a VM, tens of microseconds. So
//! a waiter polls its shared-memory word for a while first. How long is learned per handle:
//!
//! - a wait that ends while spinning after `t` keeps the budget at least `2t` (the answer came
//!   in time, and the next one will likely take as long);
//! - a wait that had to sleep but ended soon (within [`MAX`]) sets the budget to twice that
//!   wait, so the next one catches it spinning;
//! - a wait that slept long (an idle peer, or a machine so busy the peer was not running)
//!   halves the budget, down to [`MIN`]: on an oversubscribed machine a spinner only steals the
//!   time slice its peer needs, so the budget collapses after a few such waits.
//!
//! An idle process therefore costs nothing: after a few long waits it sleeps almost at once.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The longest spin, in nanoseconds. Longer than a round trip through a busy peer, far shorter
/// than a scheduler tick.
const MAX: u32 = 50_000;
/// The shortest spin: enough to catch a message already on its way, no more.
const MIN: u32 = 500;
/// Where a new handle starts.
const START: u32 = 20_000;

/// A handle's spin budget (nanoseconds), shareable between threads.
#[derive(Debug)]
pub(crate) struct Spin(AtomicU32);

impl Default for Spin {
    fn default() -> Self {
        Spin(AtomicU32::new(START))
    }
}

/// How a spin ended.
pub(crate) enum Spun {
    /// `ready()` held.
    Ready,
    /// The budget ran out; the caller sleeps, then reports with [`Spin::slept`].
    Sleep(Instant),
}

impl Spin {
    /// Poll `ready` for at most the current budget.
    pub(crate) fn spin(&self, ready: impl Fn() -> bool) -> Spun {
        let start = Instant::now();
        let budget = Duration::from_nanos(self.0.load(Relaxed) as u64);
        loop {
            for _ in 0..16 {
                if ready() {
                    let t = start.elapsed().as_nanos().min(MAX as u128) as u32;
                    let b = self.0.load(Relaxed);
                    if b < 2 * t {
                        self.0.store((2 * t).clamp(MIN, MAX), Relaxed);
                    }
                    return Spun::Ready;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= budget {
                return Spun::Sleep(start);
            }
        }
    }

    /// Report the end of a sleep that followed [`Spun::Sleep`]`(start)`.
    pub(crate) fn slept(&self, start: Instant) {
        self.record_sleep(start.elapsed())
    }

    fn record_sleep(&self, waited: Duration) {
        let waited = waited.as_nanos();
        let b = self.0.load(Relaxed);
        let next = if waited < MAX as u128 {
            (2 * waited as u32).max(b)
        } else {
            b / 2
        };
        self.0.store(next.clamp(MIN, MAX), Relaxed);
    }

    /// The current budget (for tests and the lab).
    #[cfg(test)]
    pub(crate) fn budget(&self) -> u32 {
        self.0.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sleeps_shrink_the_budget_and_short_waits_grow_it() {
        let s = Spin::default();
        assert!(matches!(s.spin(|| false), Spun::Sleep(_)));
        for _ in 0..10 {
            s.record_sleep(Duration::from_millis(1));
        }
        assert_eq!(s.budget(), MIN);
        // A sleep that ended soon: the next wait spins long enough to catch it.
        s.record_sleep(Duration::from_micros(10));
        assert_eq!(s.budget(), 20_000);
        assert!(matches!(s.spin(|| true), Spun::Ready));
    }
}
