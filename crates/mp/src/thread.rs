//! Python's `threading`, for threads inside one process: the few pieces `std` lacks, built on
//! `parking_lot` and `thread_local` rather than rewritten. (For the same primitives across
//! processes, use [`crate::sync`]; those work between threads too, at the cost of a shared
//! memory segment each.)
//!
//! # What `std` already does
//!
//! | Python `threading`                              | Rust                                                                  |
//! |-------------------------------------------------|-----------------------------------------------------------------------|
//! | `Thread(target=f, args=(a,), name="w").start()` | `std::thread::Builder::new().name("w".into()).spawn(move \|\| f(a))`  |
//! | `t.join()`                                      | `handle.join()`: `Err` carries the panic payload                      |
//! | `t.join(timeout)`                               | no timed join in std: send on a channel at the end of the thread and `recv_timeout` it, or poll `handle.is_finished()` |
//! | `t.is_alive()`                                  | `!handle.is_finished()`                                               |
//! | `daemon=True`                                   | every Rust thread is a daemon: `main` returning ends the process without waiting. A non-daemon thread is one you `join` before `main` returns |
//! | `current_thread().name`, `.ident`               | `std::thread::current().name()`, `.id()`                              |
//! | `active_count()`, `enumerate()`                 | no registry in std (threads may come from any library): keep your `JoinHandle`s in a `Vec` and count those not `is_finished()`; the OS count is the number of entries in `/proc/self/task` ([`os_thread_count`]) |
//! | `threading.local()`                             | `thread_local!` for a static; [`ThreadLocal`] for one per object      |
//! | `Lock`                                          | `std::sync::Mutex<T>` (the lock owns the data); [`Mutex`] adds timed `try_lock_for` |
//! | `Condition`                                     | `std::sync::Condvar`                                                  |
//! | `Barrier`                                       | `std::sync::Barrier`                                                  |
//! | `queue.Queue(maxsize)`                          | `std::sync::mpsc::sync_channel(maxsize)`                              |
//! | `RLock`                                         | [`RLock`] (parking_lot's `ReentrantMutex`)                            |
//! | `Event`                                         | [`Event`]                                                             |
//! | `Semaphore`, `BoundedSemaphore`                 | [`Semaphore`]                                                         |

use std::time::{Duration, Instant};

pub use parking_lot::{Condvar, Mutex, MutexGuard, ReentrantMutex, ReentrantMutexGuard};
/// Per-object thread-local storage (Python's `threading.local()` as a field, not a static):
/// each thread sees its own `T` in the same object; `iter()` visits all of them.
pub use thread_local::ThreadLocal;

/// A re-entrant lock (Python's `threading.RLock`); `T` defaults to no data.
pub type RLock<T = ()> = ReentrantMutex<T>;

/// A flag threads wait for (Python's `threading.Event`).
#[derive(Debug, Default)]
pub struct Event {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Event {
        Event::default()
    }

    /// Is the flag set?
    pub fn is_set(&self) -> bool {
        *self.flag.lock()
    }

    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        *self.flag.lock() = true;
        self.cv.notify_all();
    }

    /// Reset the flag; later `wait`s block until it is set again.
    pub fn clear(&self) {
        *self.flag.lock() = false;
    }

    /// Wait until set.
    pub fn wait(&self) {
        let mut g = self.flag.lock();
        while !*g {
            self.cv.wait(&mut g);
        }
    }

    /// Wait at most `timeout`; true if the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.flag.lock();
        while !*g {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        *g
    }
}

/// A counting semaphore for threads (Python's `threading.Semaphore`, or `BoundedSemaphore`
/// with [`Semaphore::bounded`]).
#[derive(Debug)]
pub struct Semaphore {
    value: Mutex<usize>,
    cv: Condvar,
    bound: Option<usize>,
}

/// `BoundedSemaphore::release` beyond the initial value (Python's `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("semaphore released too many times")]
pub struct ReleasedTooManyTimes;

impl Semaphore {
    /// A semaphore holding `value` units, with no upper bound on `release`.
    pub fn new(value: usize) -> Semaphore {
        Semaphore {
            value: Mutex::new(value),
            cv: Condvar::new(),
            bound: None,
        }
    }

    /// A semaphore whose `release` fails rather than exceed `value`.
    pub fn bounded(value: usize) -> Semaphore {
        Semaphore {
            bound: Some(value),
            ..Semaphore::new(value)
        }
    }

    /// Take one unit, waiting until one is free.
    pub fn acquire(&self) {
        let mut g = self.value.lock();
        while *g == 0 {
            self.cv.wait(&mut g);
        }
        *g -= 1;
    }

    /// Take one unit if one is free now.
    pub fn try_acquire(&self) -> bool {
        let mut g = self.value.lock();
        if *g == 0 {
            return false;
        }
        *g -= 1;
        true
    }

    /// Take one unit within `timeout`; false on timeout.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.value.lock();
        while *g == 0 {
            if self.cv.wait_until(&mut g, deadline).timed_out() && *g == 0 {
                return false;
            }
        }
        *g -= 1;
        true
    }

    /// Give one unit back; a bounded semaphore refuses to go past its start value.
    pub fn release(&self) -> Result<(), ReleasedTooManyTimes> {
        let mut g = self.value.lock();
        if self.bound.is_some_and(|b| *g >= b) {
            return Err(ReleasedTooManyTimes);
        }
        *g += 1;
        drop(g);
        self.cv.notify_one();
        Ok(())
    }

    /// Units free now.
    pub fn get_value(&self) -> usize {
        *self.value.lock()
    }
}

/// Threads of this process as the OS counts them (`/proc/self/task`), every library's included:
/// the closest thing to Python's `active_count()`.
pub fn os_thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}
