//! `Pool`: Python's `multiprocessing.Pool`, without its hangs.
//!
//! A fixed set of worker processes runs `fn(A) -> R` tasks. Results come back as
//! [`AsyncResult`]s, vectors or iterators. What differs from CPython, on purpose:
//! - a task that panics fails alone, with the panic message ([`PoolError::Panicked`]);
//! - a worker that dies (SIGKILL, OOM, segfault, `exit`) fails exactly the task it was running
//!   with [`PoolError::WorkerLost`] and is replaced; tasks queued behind it run elsewhere, and
//!   nothing waits forever;
//! - an initializer that fails breaks the pool with [`PoolError::Initializer`] instead of
//!   respawning workers in a loop;
//! - small tasks are cheap: tasks travel in batches over per-worker sockets (see `engine`).
//!
//! Like Python, task arguments and results are values (serde), not handles: pass shared memory,
//! queues or locks to the workers through [`Builder::initializer`], which runs once in each
//! worker and may stash them in a `static`. Completions and callbacks run on the pool's thread:
//! keep callbacks short, and never wait on the same pool from inside one.
//!
//! The files: [`Builder`] and the pool thread's start in `builder`; [`Pool`]'s methods (submit,
//! close, terminate, join) in `tasks`; [`AsyncResult`] and [`Imap`] in `results`; the pool
//! thread's loop over the workers' sockets in `engine`, and one worker as that loop sees it (its
//! socket, the tasks in flight, writing them and reading answers) in `link`; the worker process
//! in `worker`. This file holds what the submitting side and the pool thread share: the queue
//! of `Job`s and the pool's `State`.
//!
//! ```
//! use bingfa_mp::{Pool, PoolError};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() {
//!     let _rt = bingfa_mp::init(); // workers are re-executions of this binary: they start here
//!     let pool = Pool::new(2).unwrap();
//!     assert_eq!(pool.map(square, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
//!     let r = pool.apply_async(square, 12);
//!     assert_eq!(r.get().unwrap(), 144);
//!     let failed = pool.apply(|s: String| -> u8 { panic!("{s}") }, "bad input".into());
//!     assert_eq!(failed, Err(PoolError::Panicked { message: "bad input".into() }));
//!     pool.close();
//!     pool.join().unwrap();
//! }
//! ```

mod builder;
mod engine;
mod link;
mod results;
mod tasks;
mod worker;

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use parking_lot::Mutex;

pub use builder::Builder;
pub use results::{AsyncResult, Imap};
pub use tasks::Pool;

/// Why a pool task, or the pool, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The task's function panicked; the panic message is carried back.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The worker running the task died (killed, crashed, exited) before answering.
    #[error("worker process {pid} died (exit code {exitcode}) while running the task")]
    WorkerLost {
        /// The worker's process id.
        pid: u32,
        /// How it ended: its exit code, or minus the signal that killed it (Python's
        /// `exitcode`).
        exitcode: i32,
    },
    /// A timed wait for a result ran out of time; the result may still come.
    #[error("timed out waiting for the result")]
    Timeout,
    /// The pool was closed or terminated before the task was submitted (Python's
    /// `ValueError: Pool not running`).
    #[error("the pool is not running (closed or terminated)")]
    NotRunning,
    /// `join()` on a pool that is neither closed nor terminated (Python's `ValueError`).
    #[error("the pool is still running: close() or terminate() it before join()")]
    StillRunning,
    /// The pool was terminated (or dropped) before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// A worker's initializer panicked; the pool is broken and runs nothing more.
    #[error("worker initializer failed: {0}")]
    Initializer(String),
    /// A worker process could not be started.
    #[error("starting a worker process: {0}")]
    Start(String),
    /// Arguments or results could not be encoded or decoded.
    #[error("serialization: {0}")]
    Codec(String),
    /// The result was already taken by an earlier `get`.
    #[error("the result was already taken")]
    AlreadyTaken,
}

type Done = Box<dyn FnOnce(Result<&[u8], PoolError>) + Send>;

/// A chunk of tasks on its way to a worker.
pub(crate) struct Job {
    /// Its number in the stream of the worker it was last sent to (set at dispatch).
    seq: u64,
    entry: u64,
    func: u64,
    args: Vec<u8>,
    /// Taken when called; see `Drop`.
    done: Option<Done>,
}

impl Job {
    /// Deliver the worker's answer (or the reason there is none).
    pub(crate) fn complete(mut self, r: Result<&[u8], PoolError>) {
        if let Some(done) = self.done.take() {
            done(r);
        }
    }
}

/// A job dropped unanswered (a pool thread that died, a bug) still completes, as
/// `Terminated`: no `get` or `imap` can wait forever for it.
impl Drop for Job {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(Err(PoolError::Terminated));
        }
    }
}

/// What submitters and the pool thread share, under [`Shared::state`]'s lock.
pub(crate) struct State {
    pending: VecDeque<Job>,
    closed: bool,
    terminated: bool,
    finished: bool,
    broken: Option<PoolError>,
    /// The pool thread is (about to be) asleep in poll: submitters must poke the eventfd.
    sleeping: bool,
}

/// The pool's state and the eventfd that wakes the pool thread when it changes.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: OwnedFd,
}

impl Shared {
    /// The state of a pool that has not started yet, and the eventfd that wakes its thread.
    fn new() -> std::io::Result<Shared> {
        Ok(Shared {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                closed: false,
                terminated: false,
                finished: false,
                broken: None,
                sleeping: false,
            }),
            wake: engine::eventfd()?,
        })
    }

    /// Wake the pool thread if it sleeps (or is about to): new jobs are queued.
    fn poke_if_sleeping(&self, st: &mut State) {
        if std::mem::replace(&mut st.sleeping, false) {
            engine::poke(&self.wake);
        }
    }
}
