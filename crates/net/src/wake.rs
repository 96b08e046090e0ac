//! How a loop is woken from other threads: the hub (a message for a connection), another loop
//! (a connection handed over) or a session that yielded its turn. A [`Waker`] is what a
//! connection holds; a [`Wake`] is the loop's side (an eventfd plus the slots that were woken);
//! a [`Route`] lets a connection that moves between loops (threadpool) keep one waker while the
//! loop behind it changes.
//!
//! It sits below `conn/` and `model/`: a connection names a `Waker` and a `Route` without
//! knowing which loop, or which model, drives it.

use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Wakes whoever drives a connection (a loop's [`Wake`], a tokio task's `Notify`).
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// Hub wake-ups from any thread: which connection slots have mail, and a pipe to interrupt wait.
pub(crate) struct Wake {
    /// An eventfd: one descriptor, not a pipe's two, which matters when every connection of
    /// the thread model has its own loop.
    fd: OwnedFd,
    armed: AtomicBool,
    ready: Mutex<Vec<usize>>,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Arc<Self>> {
        Ok(Arc::new(Wake {
            fd: sys::eventfd()?,
            armed: AtomicBool::new(false),
            ready: Mutex::new(Vec::new()),
        }))
    }

    /// The descriptor a loop watches for reading.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(crate) fn wake(&self, slot: usize) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
        if !self.armed.swap(true, Ordering::AcqRel) {
            sys::eventfd_poke(self.fd.as_raw_fd());
        }
    }

    pub(crate) fn take(&self) -> Vec<usize> {
        sys::drain(self.fd.as_raw_fd());
        self.take_read()
    }

    /// [`Wake::take`] when the eventfd was already read (the `uring` poller reads it through
    /// the ring: its completion is the wake-up, and no read or drain call is left to make).
    pub(crate) fn take_read(&self) -> Vec<usize> {
        self.armed.store(false, Ordering::Release);
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Where a moving connection's hub wake-ups go: the loop that holds it now, and its slot
/// there. Threadpool connections move between the shared poller and the workers; each new
/// owner points the route at itself, re-arms the inbox and then looks for mail itself, so a
/// wake-up that raced to the old owner (a spurious turn there) loses nothing.
pub(crate) struct Route(Mutex<(Arc<Wake>, usize)>);

impl Route {
    pub(crate) fn new(wake: &Arc<Wake>, slot: usize) -> Arc<Self> {
        Arc::new(Route(Mutex::new((wake.clone(), slot))))
    }

    pub(crate) fn waker(route: &Arc<Route>) -> Waker {
        let route = route.clone();
        Arc::new(move || {
            let (wake, slot) = route.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
            wake.wake(slot);
        })
    }

    pub(crate) fn point(&self, wake: &Arc<Wake>, slot: usize) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (wake.clone(), slot);
    }
}
