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

mod engine;
mod worker;

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{de::DeserializeOwned, Serialize};

use crate::process::offset_of;
use crate::{codec, StartMethod};
use worker::{Init, InitEntry, Outcome, TaskEntry};

/// Why a pool task, or the pool, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The task's function panicked; the panic message is carried back.
    #[error("task panicked: {message}")]
    Panicked { message: String },
    /// The worker running the task died (killed, crashed, exited) before answering.
    #[error("worker process {pid} died (exit code {exitcode}) while running the task")]
    WorkerLost { pid: u32, exitcode: i32 },
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
/// The results of one chunk, one per item.
type Chunk<R> = Vec<Result<R, PoolError>>;
/// Where the results of chunk `i` of a `map`-like call go.
type Sink<R> = Arc<dyn Fn(usize, Chunk<R>) + Send + Sync>;

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

pub(crate) struct State {
    pending: VecDeque<Job>,
    closed: bool,
    terminated: bool,
    finished: bool,
    broken: Option<PoolError>,
    /// The pool thread is (about to be) asleep in poll: submitters must poke the eventfd.
    sleeping: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    wake: OwnedFd,
}

impl Shared {
    fn poke_if_sleeping(&self, st: &mut State) {
        if std::mem::replace(&mut st.sleeping, false) {
            engine::poke(&self.wake);
        }
    }
}

/// Configures a [`Pool`].
#[derive(Clone, Default)]
pub struct Builder {
    processes: Option<usize>,
    maxtasks: u64,
    method: StartMethod,
    init: Option<Init>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasks)
            .field("start_method", &self.method)
            .field("initializer", &self.init.is_some())
            .finish()
    }
}

impl Builder {
    /// Number of workers (default [`crate::cpu_count`]).
    pub fn processes(mut self, n: usize) -> Builder {
        self.processes = Some(n.max(1));
        self
    }

    /// Run `f(args)` once in every worker before its first task. `args` may hold handles
    /// (`Value`, `Queue`, `Lock`…): each worker gets its own copy of the descriptors.
    pub fn initializer<A>(mut self, f: fn(A), args: A) -> Builder
    where
        A: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.init = Some(Init {
            entry: offset_of(worker::init_entry::<A> as InitEntry as usize) as u64,
            func: offset_of(f as usize) as u64,
            args: Arc::new(move || codec::encode(&args)),
        });
        self
    }

    /// Replace each worker after it has run `k` tasks (chunks), as Python's
    /// `maxtasksperchild`; 0 (the default) keeps workers for the pool's life.
    pub fn maxtasksperchild(mut self, k: u64) -> Builder {
        self.maxtasks = k;
        self
    }

    pub fn start_method(mut self, m: StartMethod) -> Builder {
        self.method = m;
        self
    }

    /// Start the workers.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                closed: false,
                terminated: false,
                finished: false,
                broken: None,
                sleeping: false,
            }),
            wake: engine::eventfd().map_err(|e| PoolError::Start(e.to_string()))?,
        });
        let cfg = engine::Config {
            processes,
            maxtasks: self.maxtasks,
            method: self.method,
            init: self.init,
        };
        let (tx, rx) = mpsc::channel();
        let sh = shared.clone();
        // The workers are started by the pool thread itself: their death signal is tied to the
        // thread that starts them, and this one lives exactly as long as they should.
        let thread = std::thread::Builder::new()
            .name("bingfa-mp-pool".into())
            .spawn(move || {
                let sh2 = sh.clone();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let mut e = engine::Engine::new(sh, cfg);
                    match e.start() {
                        Ok(()) => {
                            let _ = tx.send(Ok(()));
                            e.run();
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err));
                            e.terminate_after_failed_start();
                        }
                    }
                }));
                if let Err(p) = ran {
                    // A bug, not a user error: the jobs it held completed as `Terminated` when
                    // they were dropped; refuse new ones rather than queue them for nobody.
                    eprintln!(
                        "bingfa-mp: the pool thread panicked: {}",
                        crate::process::panic_message(p)
                    );
                    let pending: Vec<Job> = {
                        let mut st = sh2.state.lock();
                        st.terminated = true;
                        st.finished = true;
                        st.pending.drain(..).collect()
                    };
                    drop(pending);
                }
            })
            .map_err(|e| PoolError::Start(e.to_string()))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(Pool {
                shared,
                thread: Mutex::new(Some(thread)),
                processes,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PoolError::Start("the pool thread died".into()))
            }
        }
    }
}

/// A pool of worker processes. Dropping it terminates it (Python's context-manager exit).
pub struct Pool {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .finish_non_exhaustive()
    }
}

fn entry_of<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> (u64, u64) {
    (
        offset_of(worker::task_entry::<A, R> as TaskEntry as usize) as u64,
        offset_of(f as usize) as u64,
    )
}

/// Postcard reduces serializer errors to one generic message; name the usual cause.
fn args_error(e: postcard::Error) -> PoolError {
    PoolError::Codec(format!(
        "encoding task arguments: {e} (handles such as Value, Array, Queue, locks and pipe \
         ends cannot be task arguments: pass them to the workers with Builder::initializer)"
    ))
}

/// Turn a worker's answer for a chunk of `n` tasks into one result per task.
fn outcomes<R: DeserializeOwned>(
    r: Result<&[u8], PoolError>,
    n: usize,
) -> Vec<Result<R, PoolError>> {
    let all = |e: PoolError| (0..n).map(|_| Err(e.clone())).collect();
    let bytes = match r {
        Err(e) => return all(e),
        Ok(b) => b,
    };
    match codec::decode::<Vec<Outcome<R>>>(bytes) {
        Ok(v) if v.len() == n => v
            .into_iter()
            .map(|o| match o {
                Outcome::Ok(r) => Ok(r),
                Outcome::Panic(message) => Err(PoolError::Panicked { message }),
                Outcome::Codec(m) => Err(PoolError::Codec(m)),
            })
            .collect(),
        Ok(mut v) if v.len() == 1 => match v.pop() {
            Some(Outcome::Codec(m)) => all(PoolError::Codec(m)),
            _ => all(PoolError::Codec(
                "result count does not match the chunk".into(),
            )),
        },
        Ok(_) => all(PoolError::Codec(
            "result count does not match the chunk".into(),
        )),
        Err(e) => all(PoolError::Codec(format!("decoding the task result: {e}"))),
    }
}

impl Pool {
    /// A pool of `n` workers with the default start method.
    pub fn new(n: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(n).build()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Number of workers.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Queue chunks; a pool that is not running fails them at once.
    fn submit(&self, jobs: impl IntoIterator<Item = (u64, u64, Vec<u8>, Done)>) {
        let mut st = self.shared.state.lock();
        let refuse = if st.closed || st.terminated {
            Some(PoolError::NotRunning)
        } else {
            st.broken.clone()
        };
        if let Some(e) = refuse {
            drop(st);
            for (_, _, _, done) in jobs {
                done(Err(e.clone()));
            }
            return;
        }
        for (entry, func, args, done) in jobs {
            st.pending.push_back(Job {
                seq: 0,
                entry,
                func,
                args,
                done: Some(done),
            });
        }
        self.shared.poke_if_sleeping(&mut st);
    }

    /// Run `f(args)` in a worker and wait for the result.
    pub fn apply<A, R>(&self, f: fn(A) -> R, args: A) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args).get()
    }

    /// Run `f(args)` in a worker; the result arrives in the returned [`AsyncResult`].
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, args: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async_with(f, args, |_| {}, |_| {})
    }

    /// [`Pool::apply_async`] with Python's `callback` (given the result, which `get` still
    /// returns) and `error_callback`. Both run on the pool thread.
    pub fn apply_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        args: A,
        callback: impl FnOnce(&R) + Send + 'static,
        error_callback: impl FnOnce(&PoolError) + Send + 'static,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let slot = Arc::new(Slot::new());
        let res = AsyncResult { slot: slot.clone() };
        let (entry, func) = entry_of(f);
        let args = match codec::encode(std::slice::from_ref(&args)) {
            Ok(a) => a,
            Err(e) => {
                let e = args_error(e);
                error_callback(&e);
                slot.put(Err(e));
                return res;
            }
        };
        let done: Done = Box::new(move |r| {
            let r = outcomes::<R>(r, 1).pop().expect("one outcome");
            // A panicking callback must neither take the pool thread down nor leave `get`
            // waiting: catch it, report it, and deliver the result regardless.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &r {
                Ok(v) => callback(v),
                Err(e) => error_callback(e),
            }));
            if let Err(p) = ran {
                eprintln!(
                    "bingfa-mp: a pool callback panicked: {}",
                    crate::process::panic_message(p)
                );
            }
            slot.put(r);
        });
        self.submit([(entry, func, args, done)]);
        res
    }

    /// Encode `items` in chunks and submit them; each chunk's results go to `sink(index, ..)`.
    fn submit_chunks<A, R>(
        &self,
        f: fn(A) -> R,
        items: Vec<A>,
        chunksize: usize,
        sink: Sink<R>,
    ) -> usize
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (entry, func) = entry_of(f);
        let chunksize = chunksize.max(1);
        let mut jobs = Vec::with_capacity(items.len().div_ceil(chunksize));
        for (i, chunk) in items.chunks(chunksize).enumerate() {
            let n = chunk.len();
            let sink = sink.clone();
            match codec::encode(chunk) {
                Ok(args) => {
                    let done: Done = Box::new(move |r| sink(i, outcomes::<R>(r, n)));
                    jobs.push((entry, func, args, done));
                }
                Err(e) => {
                    let e = args_error(e);
                    sink(i, (0..n).map(|_| Err(e.clone())).collect());
                }
            }
        }
        let chunks = items.len().div_ceil(chunksize);
        self.submit(jobs);
        chunks
    }

    /// Python's default chunk size for `map`: about four chunks per worker.
    fn default_chunksize(&self, len: usize) -> usize {
        len.div_ceil(self.processes * 4).max(1)
    }

    /// `f` over every item, results in order; the first failure (by position) is returned.
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let cs = self.default_chunksize(items.len());
        self.map_chunked(f, items, cs)
    }

    /// [`Pool::map`] sending `chunksize` items per task (Python's `map(f, it, chunksize)`).
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_chunked(f, items, chunksize).collect()
    }

    /// `map` without waiting (Python's `map_async`): the whole result list, in order, arrives
    /// in one [`AsyncResult`]; it fails with the first failure by position.
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = self.default_chunksize(items.len());
        let chunks = items.len().div_ceil(chunksize);
        let slot = Arc::new(Slot::new());
        let res = AsyncResult { slot: slot.clone() };
        if chunks == 0 {
            slot.put(Ok(Vec::new()));
            return res;
        }
        // The chunks arrived so far, and how many are still to come.
        let parts: Mutex<(Vec<Option<Chunk<R>>>, usize)> =
            Mutex::new(((0..chunks).map(|_| None).collect(), chunks));
        let sink: Sink<R> = Arc::new(move |i, v| {
            let mut g = parts.lock();
            g.0[i] = Some(v);
            g.1 -= 1;
            if g.1 == 0 {
                let all = std::mem::take(&mut g.0);
                drop(g);
                slot.put(all.into_iter().flatten().flatten().collect());
            }
        });
        self.submit_chunks(f, items, chunksize, sink);
        res
    }

    /// Python's `starmap`: a Rust function takes its several arguments as one tuple, so this
    /// is [`Pool::map`] over tuples, kept for the familiar name.
    pub fn starmap<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map(f, items)
    }

    /// Python's `starmap_async`: [`Pool::map_async`] over tuples (see [`Pool::starmap`]).
    pub fn starmap_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)
    }

    /// Results in order, each as soon as it and those before it are done. All items are
    /// submitted at once (the input is collected first).
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Imap<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`Pool::imap`] with `chunksize` items per task.
    pub fn imap_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Imap<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let sink: Sink<R> = Arc::new(move |i, v| {
            let _ = tx.send((i, v));
        });
        let chunks = self.submit_chunks(f, items.into_iter().collect(), chunksize, sink);
        Imap {
            rx,
            chunks_left: chunks,
            next_chunk: 0,
            early: BTreeMap::new(),
            ready: VecDeque::new(),
            ordered: true,
        }
    }

    /// Results in the order they complete.
    pub fn imap_unordered<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Imap<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let mut it = self.imap(f, items);
        it.ordered = false;
        it
    }

    /// Accept no more tasks; the workers finish those already submitted, then exit.
    pub fn close(&self) {
        let mut st = self.shared.state.lock();
        st.closed = true;
        drop(st);
        engine::poke(&self.shared.wake);
    }

    /// Stop the workers now; unfinished tasks fail with [`PoolError::Terminated`]. Waits until
    /// the workers are gone.
    pub fn terminate(&self) {
        {
            let mut st = self.shared.state.lock();
            st.terminated = true;
            drop(st);
            engine::poke(&self.shared.wake);
        }
        self.join_thread();
    }

    /// Join the pool thread, unless this *is* the pool thread (a callback calling
    /// `terminate`): it then finishes on its own once the callback returns.
    fn join_thread(&self) {
        let mut t = self.thread.lock();
        if t.as_ref()
            .is_some_and(|h| h.thread().id() == std::thread::current().id())
        {
            return;
        }
        if let Some(t) = t.take() {
            let _ = t.join();
        }
    }

    /// Wait for the workers to exit: after `close()`, once every task is done. Before
    /// `close()` or `terminate()` it is an error, as in Python.
    pub fn join(&self) -> Result<(), PoolError> {
        {
            let st = self.shared.state.lock();
            if !st.closed && !st.terminated {
                return Err(PoolError::StillRunning);
            }
        }
        self.join_thread();
        Ok(())
    }

    /// True once the pool's workers are all gone (after `join` or `terminate`).
    pub fn is_finished(&self) -> bool {
        self.shared.state.lock().finished
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

enum SlotState<R> {
    Pending,
    Done(Result<R, PoolError>),
    Taken,
}

struct Slot<R> {
    state: Mutex<SlotState<R>>,
    cv: Condvar,
}

impl<R> Slot<R> {
    fn new() -> Slot<R> {
        Slot {
            state: Mutex::new(SlotState::Pending),
            cv: Condvar::new(),
        }
    }

    fn put(&self, r: Result<R, PoolError>) {
        *self.state.lock() = SlotState::Done(r);
        self.cv.notify_all();
    }
}

/// The future result of [`Pool::apply_async`] (Python's `AsyncResult`).
pub struct AsyncResult<R> {
    slot: Arc<Slot<R>>,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<R> AsyncResult<R> {
    /// Has the task finished (or failed)?
    pub fn ready(&self) -> bool {
        !matches!(*self.slot.state.lock(), SlotState::Pending)
    }

    /// `None` while not ready (Python raises); then whether the task succeeded.
    pub fn successful(&self) -> Option<bool> {
        match &*self.slot.state.lock() {
            SlotState::Pending => None,
            SlotState::Done(r) => Some(r.is_ok()),
            SlotState::Taken => Some(true),
        }
    }

    /// Wait until ready.
    pub fn wait(&self) {
        let mut g = self.slot.state.lock();
        while matches!(*g, SlotState::Pending) {
            self.slot.cv.wait(&mut g);
        }
    }

    /// Wait at most `timeout`; true if ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.slot.state.lock();
        while matches!(*g, SlotState::Pending) {
            if self.slot.cv.wait_until(&mut g, deadline).timed_out() {
                break;
            }
        }
        !matches!(*g, SlotState::Pending)
    }

    /// Wait for the result and take it.
    pub fn get(self) -> Result<R, PoolError> {
        self.wait();
        self.take()
    }

    /// Wait at most `timeout`: `Err(Timeout)` leaves the result to a later call; a result is
    /// taken once (later calls return `AlreadyTaken`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, PoolError> {
        if !self.wait_timeout(timeout) {
            return Err(PoolError::Timeout);
        }
        self.take()
    }

    fn take(&self) -> Result<R, PoolError> {
        let mut g = self.slot.state.lock();
        match std::mem::replace(&mut *g, SlotState::Taken) {
            SlotState::Done(r) => r,
            SlotState::Taken => Err(PoolError::AlreadyTaken),
            SlotState::Pending => {
                *g = SlotState::Pending;
                Err(PoolError::Timeout)
            }
        }
    }
}

/// Results of [`Pool::imap`] / [`Pool::imap_unordered`], one `Result` per item.
pub struct Imap<R> {
    rx: mpsc::Receiver<(usize, Vec<Result<R, PoolError>>)>,
    chunks_left: usize,
    next_chunk: usize,
    early: BTreeMap<usize, Vec<Result<R, PoolError>>>,
    ready: VecDeque<Result<R, PoolError>>,
    ordered: bool,
}

impl<R> std::fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("chunks_left", &self.chunks_left)
            .finish_non_exhaustive()
    }
}

impl<R> Imap<R> {
    /// The next result, waiting at most `timeout` (Python's `next(timeout)`). `None` when
    /// every result has been returned.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, PoolError>> {
        self.next_until(Some(Instant::now() + timeout))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R, PoolError>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.ordered {
                if let Some(v) = self.early.remove(&self.next_chunk) {
                    self.next_chunk += 1;
                    self.ready.extend(v);
                    continue;
                }
            }
            if self.chunks_left == 0 {
                return None;
            }
            let got = match deadline {
                None => self
                    .rx
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => self
                    .rx
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok((i, v)) => {
                    self.chunks_left -= 1;
                    if self.ordered {
                        self.early.insert(i, v);
                    } else {
                        self.ready.extend(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Some(Err(PoolError::Timeout)),
                // Every completion was dropped without running: only if the pool vanished.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.chunks_left = 0;
                    return Some(Err(PoolError::Terminated));
                }
            }
        }
    }
}

impl<R> Iterator for Imap<R> {
    type Item = Result<R, PoolError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None)
    }
}
