//! Blocking work a session must not do on its event loop (an argon2 password check, reading
//! and rendering a directory of 100,000 entries): a small pool of threads per process runs it,
//! and the driver tells the session when it is done.
//!
//! The shape, as a session uses it: [`Context::spawn_blocking`](crate::Context::spawn_blocking)
//! a job and keep the [`Task`] (pause input meanwhile if later pipelined requests must wait
//! their turn). When the job is done the pool wakes the connection the way the hub does, and
//! the driver calls [`Session::on_task_done`](crate::Session::on_task_done) with the task's
//! [`TaskId`]; there [`Task::try_take`] gives the result (`Ok(Some)`) or `Err(Lost)`, never
//! "not yet". No polling, whatever the model. Dropping the task (the connection closed, or the
//! session gave up) means no callback for it, cancels the job if it has not started, and tells
//! a running one through [`Cancel`].
//!
//! [`run`] starts a job without a connection (startup checks, tests); a session can still ask
//! to be told about such a task with [`Context::watch`](crate::Context::watch).
//!
//! The pool has one thread per CPU (at most 8), so concurrent heavy jobs queue rather than each
//! taking its memory at once. It is per process and started on first use, recognised by the
//! pid it was started in: a `fork` or `prefork` child starts its own after the fork (threads
//! do not survive `fork`), never uses an inherited one. The forking parent itself must not
//! use it (it only accepts or supervises; sessions run in the children).

use crate::wake::Waker;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue and the pid of the process that started it.
static POOL: Mutex<Option<(u32, Sender<Job>)>> = Mutex::new(None);

/// Most threads a pool has, whatever the CPU count.
const MAX_THREADS: usize = 8;

/// A task's name in [`Session::on_task_done`](crate::Session::on_task_done): unique within the
/// process, never reused.
pub type TaskId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a job, its [`Task`] and the connection watching it share.
struct Signal {
    id: TaskId,
    /// The task was dropped: the job may stop, and nobody is told when it ends.
    cancelled: AtomicBool,
    state: Mutex<SigState>,
    ended: Condvar,
}

#[derive(Default)]
struct SigState {
    /// The job ended (its result, or its loss, is in the channel).
    done: bool,
    /// Who to tell when it ends (set by the driver carrying out [`Action::Watch`]).
    ///
    /// [`Action::Watch`]: crate::Action::Watch
    notify: Option<Box<dyn FnOnce() + Send>>,
}

impl Signal {
    /// The job ended: tell the watcher, if any. Runs on the pool thread, after the result was
    /// sent or the sender dropped, so the woken session's `try_take` never says "not yet".
    fn finish(&self) {
        let notify = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.done = true;
            st.notify.take()
        };
        self.ended.notify_all();
        if let Some(f) = notify {
            f();
        }
    }
}

/// Ends a job's signal when dropped: after the job returns, or while its panic unwinds.
struct Finish(Arc<Signal>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// A job's result, taken once the job is done.
pub struct Task<T> {
    rx: Receiver<T>,
    sig: Arc<Signal>,
}

/// The job ended without a result (it panicked; the panic is contained in the pool).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Lost;

impl<T> Task<T> {
    /// The result once the job is done (`Ok(Some)`, given once), `Ok(None)` while it runs or
    /// waits; `Err(Lost)` if it panicked, was cancelled, or its result was already taken.
    /// In [`Session::on_task_done`](crate::Session::on_task_done) it is never `Ok(None)`.
    pub fn try_take(&self) -> Result<Option<T>, Lost> {
        match self.rx.try_recv() {
            Ok(v) => Ok(Some(v)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Lost),
        }
    }

    /// This task's name in [`Session::on_task_done`](crate::Session::on_task_done).
    pub fn id(&self) -> TaskId {
        self.sig.id
    }

    /// What [`Context::watch`](crate::Context::watch) hands the driver.
    pub(crate) fn watch(&self) -> TaskWatch {
        TaskWatch(self.sig.clone())
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.sig.cancelled.store(true, Ordering::Relaxed);
        // Nobody is told about a task nobody holds (and the watcher's wake-up is released).
        let notify = self
            .sig
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .notify
            .take();
        drop(notify);
    }
}

/// Given to a job: whether its [`Task`] has been dropped, so a long job may stop early.
pub struct Cancel(Arc<Signal>);

impl Cancel {
    /// A token that is never cancelled, for running a job in place.
    pub fn never() -> Cancel {
        Cancel(Arc::new(Signal {
            id: 0,
            cancelled: AtomicBool::new(false),
            state: Mutex::default(),
            ended: Condvar::new(),
        }))
    }

    /// Whether the job's result is no longer wanted (its task was dropped: the connection
    /// went away); a long job checks now and then and stops early.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }
}

/// A session's request to be told when a task ends ([`Action::Watch`](crate::Action::Watch)).
/// Drivers carry it out; a test driving a session by hand may [`TaskWatch::wait`] for the task
/// and then call [`Session::on_task_done`](crate::Session::on_task_done) itself.
#[derive(Clone)]
pub struct TaskWatch(Arc<Signal>);

impl TaskWatch {
    /// The watched task's id (what `on_task_done` is called with).
    pub fn id(&self) -> TaskId {
        self.0.id
    }

    /// Block until the job has ended (true), or `timeout` passed (false).
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        while !st.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .0
                .ended
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl std::fmt::Debug for TaskWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskWatch({})", self.0.id)
    }
}

/// One connection's ended tasks, as the driver sees them: the pool threads push, the
/// connection's own loop takes. Wakes the connection with its hub waker (so under every model
/// the wake-up follows it wherever it is served, as hub mail does).
pub(crate) struct Completions {
    inbox: Arc<Inbox>,
    /// The tasks being watched, to skip one the session dropped before hearing of it.
    held: Vec<Arc<Signal>>,
}

struct Inbox {
    /// Ended tasks not yet told, and whether the connection is gone (then nothing is kept).
    ready: Mutex<(VecDeque<TaskId>, bool)>,
    waker: Waker,
}

impl Inbox {
    fn push(&self, id: TaskId) {
        {
            let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            if r.1 {
                return;
            }
            r.0.push_back(id);
        }
        (self.waker)();
    }
}

impl Completions {
    pub(crate) fn new(waker: Waker) -> Self {
        Completions {
            inbox: Arc::new(Inbox {
                ready: Mutex::new((VecDeque::new(), false)),
                waker,
            }),
            held: Vec::new(),
        }
    }

    /// Carry out [`Action::Watch`](crate::Action::Watch). A task already ended is queued now.
    pub(crate) fn watch(&mut self, w: TaskWatch) {
        let sig = w.0;
        if sig.cancelled.load(Ordering::Relaxed) || self.held.iter().any(|h| h.id == sig.id) {
            return;
        }
        let id = sig.id;
        let inbox = self.inbox.clone();
        let notify: Box<dyn FnOnce() + Send> = Box::new(move || inbox.push(id));
        let now = {
            let mut st = sig.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.done {
                Some(notify)
            } else {
                st.notify = Some(notify);
                None
            }
        };
        self.held.push(sig);
        if let Some(f) = now {
            f();
        }
    }

    /// An ended task may be waiting to be told (a threadpool poller hands such a connection to
    /// a worker).
    pub(crate) fn pending(&self) -> bool {
        !self
            .inbox
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .is_empty()
    }

    /// The next ended task whose [`Task`] the session still holds.
    pub(crate) fn next(&mut self) -> Option<TaskId> {
        loop {
            let id = self
                .inbox
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .pop_front()?;
            let Some(i) = self.held.iter().position(|h| h.id == id) else {
                continue;
            };
            let sig = self.held.swap_remove(i);
            if !sig.cancelled.load(Ordering::Relaxed) {
                return Some(id);
            }
        }
    }
}

impl Drop for Completions {
    /// The connection is gone: later endings wake nobody.
    fn drop(&mut self) {
        let mut r = self.inbox.ready.lock().unwrap_or_else(|e| e.into_inner());
        r.1 = true;
        r.0.clear();
        drop(r);
        for sig in self.held.drain(..) {
            sig.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .notify
                .take();
        }
    }
}

/// Runs `job` on this process's pool (started now if it has none). A session uses
/// [`Context::spawn_blocking`](crate::Context::spawn_blocking) instead, to be told when it ends.
pub fn run<T, F>(job: F) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce(&Cancel) -> T + Send + 'static,
{
    let (tx, rx) = channel();
    let sig = Arc::new(Signal {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        cancelled: AtomicBool::new(false),
        state: Mutex::default(),
        ended: Condvar::new(),
    });
    let cancel = Cancel(sig.clone());
    let finish = Finish(sig.clone());
    let job: Job = Box::new(move || {
        // Declared first, dropped last: the result is sent (or the sender dropped, as a panic
        // unwinds) before anyone is told the job ended.
        let _finish = finish;
        let (tx, job, cancel) = (tx, job, cancel);
        if !cancel.is_cancelled() {
            let _ = tx.send(job(&cancel));
        }
    });
    match queue() {
        Some(q) => {
            if let Err(e) = q.send(job) {
                // Every thread is gone (cannot happen: they catch panics); do it here.
                (e.0)();
            }
        }
        // No thread could be started: correct but slow beats refusing.
        None => job(),
    }
    Task { rx, sig }
}

/// This process's queue, starting the pool if this process has none.
fn queue() -> Option<Sender<Job>> {
    let pid = std::process::id();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match &*pool {
        Some((p, tx)) if *p == pid => Some(tx.clone()),
        _ => {
            let tx = start()?;
            *pool = Some((pid, tx.clone()));
            Some(tx)
        }
    }
}

fn start() -> Option<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let n = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(MAX_THREADS);
    let mut started = 0;
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("bingfa-blocking-{i}"))
            .spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok(job) = job else { return };
                // A panicking job loses its own result (its task sees `Lost`), not the thread.
                let _ = catch_unwind(AssertUnwindSafe(job));
            });
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!("cannot start a blocking-pool thread: {e}"),
        }
    }
    (started > 0).then_some(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait<T>(t: &Task<T>) -> Result<T, Lost> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = t.try_take()? {
                return Ok(v);
            }
            assert!(Instant::now() < deadline, "no answer from the pool");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn answers_and_contains_panics() {
        let a = run(|_| 6 * 7);
        let b = run(|_| -> u32 { panic!("a job's panic stays in the pool") });
        assert_eq!(wait(&a), Ok(42));
        assert_eq!(wait(&b), Err(Lost));
        // The pool still answers after a panic.
        assert_eq!(wait(&run(|_| "still here")), Ok("still here"));
    }

    #[test]
    fn a_dropped_task_is_cancelled() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (started_tx, started) = std::sync::mpsc::channel();
        let t = run(move |c: &Cancel| {
            let _ = started_tx.send(());
            let deadline = Instant::now() + Duration::from_secs(10);
            while !c.is_cancelled() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = tx.send(c.is_cancelled());
        });
        // A running job is told; one not yet started would not run at all.
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(t);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let gate = run(move |_| rx.recv_timeout(Duration::from_secs(10)));
        // Fill every thread so the next job waits in the queue, then drop it there.
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(MAX_THREADS);
        let blockers: Vec<_> = (1..n)
            .map(|_| run(|_| std::thread::sleep(Duration::from_millis(200))))
            .collect();
        let (ran_tx, ran) = std::sync::mpsc::channel();
        drop(run(move |_| ran_tx.send(()).unwrap()));
        drop(tx);
        assert!(wait(&gate).is_ok());
        drop(blockers);
        assert!(
            ran.recv_timeout(Duration::from_secs(1)).is_err(),
            "a dropped queued job ran"
        );
    }
}
