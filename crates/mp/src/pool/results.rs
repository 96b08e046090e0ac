//! The results of submitted tasks: [`AsyncResult`] (one task's, or one `map_async`'s list) and
//! [`Imap`] (an iterator over a `map`'s results as their chunks arrive, in order or not).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::PoolError;

/// The results of one chunk, one per item.
pub(super) type Chunk<R> = Vec<Result<R, PoolError>>;

enum SlotState<R> {
    Pending,
    Done(Result<R, PoolError>),
    Taken,
}

/// Where one [`AsyncResult`]'s value lands: filled once by the pool thread, taken by `get`.
pub(super) struct Slot<R> {
    state: Mutex<SlotState<R>>,
    cv: Condvar,
}

impl<R> Slot<R> {
    pub(super) fn new() -> Slot<R> {
        Slot {
            state: Mutex::new(SlotState::Pending),
            cv: Condvar::new(),
        }
    }

    pub(super) fn put(&self, r: Result<R, PoolError>) {
        *self.state.lock() = SlotState::Done(r);
        self.cv.notify_all();
    }
}

/// The future result of [`Pool::apply_async`](super::Pool::apply_async) (Python's
/// `AsyncResult`).
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
    /// The result that `slot` will hold.
    pub(super) fn new(slot: Arc<Slot<R>>) -> AsyncResult<R> {
        AsyncResult { slot }
    }

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

/// Results of [`Pool::imap`](super::Pool::imap) /
/// [`Pool::imap_unordered`](super::Pool::imap_unordered), one `Result` per item.
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
    /// The results of `chunks` chunks, which arrive on `rx` tagged with their index; in order
    /// unless [`Imap::unordered`] is called.
    pub(super) fn new(rx: mpsc::Receiver<(usize, Chunk<R>)>, chunks: usize) -> Imap<R> {
        Imap {
            rx,
            chunks_left: chunks,
            next_chunk: 0,
            early: BTreeMap::new(),
            ready: VecDeque::new(),
            ordered: true,
        }
    }

    /// Yield results in the order they complete.
    pub(super) fn unordered(mut self) -> Imap<R> {
        self.ordered = false;
        self
    }

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
