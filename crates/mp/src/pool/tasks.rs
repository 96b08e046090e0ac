//! [`Pool`]'s methods: tasks go in (`apply`, `map`, `imap`, `starmap` and their async forms,
//! encoded in chunks and queued for the pool thread), and the pool ends (`close`, `terminate`,
//! `join`, and `Drop`).

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Serialize};

use super::results::{AsyncResult, Chunk, Imap, Slot};
use super::worker::{self, Outcome, TaskEntry};
use super::{engine, Done, Job, PoolError, Shared};
use crate::codec;
use crate::process::offset_of;

/// Where the results of chunk `i` of a `map`-like call go.
type Sink<R> = Arc<dyn Fn(usize, Chunk<R>) + Send + Sync>;

/// A pool of worker processes. Dropping it terminates it (Python's context-manager exit).
pub struct Pool {
    pub(super) shared: Arc<Shared>,
    /// The pool thread; taken by the first `join` or `terminate` that waits for it.
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) processes: usize,
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
        let res = AsyncResult::new(slot.clone());
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
        let res = AsyncResult::new(slot.clone());
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
        Imap::new(rx, chunks)
    }

    /// Results in the order they complete.
    pub fn imap_unordered<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Imap<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap(f, items).unordered()
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
