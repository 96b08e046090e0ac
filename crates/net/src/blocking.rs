//! Blocking work a session must not do on its event loop (an argon2 password check, reading
//! and rendering a directory of 100,000 entries): a small pool of threads per process runs it,
//! and the session polls the answer from its timer — a session has no other wake-up, since
//! only socket readiness, hub messages and timers reach it.
//!
//! The shape, as a session uses it: [`run`] a job, keep the [`Task`], pause input (so later
//! pipelined requests wait their turn), `set_timer` a few milliseconds, and in `on_timer` call
//! [`Task::try_take`] — not yet: set the timer again; ready: answer, resume input, restore the
//! session's normal timer. Dropping the task (the connection closed) cancels the job if it
//! has not started, and tells a running one through [`Cancel`].
//!
//! The pool has one thread per CPU (at most 8), so concurrent heavy jobs queue rather than each
//! taking its memory at once. It is per process and started on first use, recognised by the
//! pid it was started in: a `fork` or `prefork` child starts its own after the fork (threads
//! do not survive `fork`), never uses an inherited one. The forking parent itself must not
//! use it (it only accepts or supervises; sessions run in the children).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue and the pid of the process that started it.
static POOL: Mutex<Option<(u32, Sender<Job>)>> = Mutex::new(None);

/// Most threads a pool has, whatever the CPU count.
const MAX_THREADS: usize = 8;

/// A job's result, to be polled.
pub struct Task<T> {
    rx: Receiver<T>,
    cancelled: Arc<AtomicBool>,
}

/// The job ended without a result (it panicked; the panic is contained in the pool).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Lost;

impl<T> Task<T> {
    /// The result once the job is done (`Ok(Some)`, given once), `Ok(None)` while it runs or
    /// waits; `Err(Lost)` if it panicked, was cancelled, or its result was already taken.
    pub fn try_take(&self) -> Result<Option<T>, Lost> {
        match self.rx.try_recv() {
            Ok(v) => Ok(Some(v)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Lost),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Given to a job: whether its [`Task`] has been dropped, so a long job may stop early.
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token that is never cancelled, for running a job in place.
    pub fn never() -> Cancel {
        Cancel(Arc::new(AtomicBool::new(false)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `job` on this process's pool (started now if it has none).
pub fn run<T, F>(job: F) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce(&Cancel) -> T + Send + 'static,
{
    let (tx, rx) = channel();
    let cancelled = Arc::new(AtomicBool::new(false));
    let cancel = Cancel(cancelled.clone());
    let job: Job = Box::new(move || {
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
    Task { rx, cancelled }
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
    use std::time::{Duration, Instant};

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
