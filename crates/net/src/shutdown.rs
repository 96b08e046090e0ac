//! Graceful shutdown: a per-server trigger every loop watches, and the SIGINT/SIGTERM (and, for
//! the process models, SIGCHLD) handlers that pull it.
//!
//! The trigger is a pipe that is written once and never drained: every event loop, in every
//! thread and in every forked child (they inherit it), sees it readable from then on. A signal
//! handler may only do async-signal-safe things, and `write(2)` to a pipe is one.

use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Starts a graceful shutdown of the server it came from; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    inner: Arc<Trigger>,
}

pub(crate) struct Trigger {
    r: OwnedFd,
    w: OwnedFd,
}

impl ShutdownHandle {
    pub(crate) fn new() -> io::Result<Self> {
        let (r, w) = sys::pipe()?;
        Ok(ShutdownHandle {
            inner: Arc::new(Trigger { r, w }),
        })
    }

    /// Stop accepting, let in-flight sessions finish up to the grace period, then return.
    pub fn shutdown(&self) {
        sys::poke(self.inner.w.as_raw_fd());
    }

    pub fn is_shutting_down(&self) -> bool {
        sys::readable_now(self.fd())
    }

    /// The read end loops watch; readable once shutdown has begun.
    pub(crate) fn fd(&self) -> RawFd {
        self.inner.r.as_raw_fd()
    }

    pub(crate) fn write_fd(&self) -> RawFd {
        self.inner.w.as_raw_fd()
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        // If this server's pipe took the signals, give them back before the pipe closes: the
        // descriptor number may be reused, and a later signal must not write into it.
        let w = self.w.as_raw_fd();
        if SIGNAL_FD
            .compare_exchange(w, -1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            set_handler(libc::SIGINT, libc::SIG_DFL, 0);
            set_handler(libc::SIGTERM, libc::SIG_DFL, 0);
        }
    }
}

static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);
static CHILD_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_term(_: libc::c_int) {
    let fd = SIGNAL_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        sys::poke(fd);
    }
}

extern "C" fn on_child(_: libc::c_int) {
    let fd = CHILD_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        sys::poke(fd);
    }
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t, flags: libc::c_int) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// SIGINT and SIGTERM start `handle`'s shutdown. Also ignores SIGPIPE, so a peer that vanished
/// is an EPIPE error on that connection rather than the end of the process.
pub(crate) fn install_signals(handle: &ShutdownHandle) {
    SIGNAL_FD.store(handle.write_fd(), Ordering::Relaxed);
    set_handler(
        libc::SIGINT,
        on_term as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    );
    set_handler(
        libc::SIGTERM,
        on_term as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    );
    ignore_sigpipe();
}

pub(crate) fn ignore_sigpipe() {
    set_handler(libc::SIGPIPE, libc::SIG_IGN, 0);
}

/// SIGCHLD pokes `fd` so a parent loop wakes to reap at once (no zombie waits for a timeout).
pub(crate) fn install_sigchld(fd: RawFd) {
    CHILD_FD.store(fd, Ordering::Relaxed);
    set_handler(
        libc::SIGCHLD,
        on_child as *const () as libc::sighandler_t,
        libc::SA_RESTART | libc::SA_NOCLDSTOP,
    );
}

/// In a freshly forked child: children of the server are not its business.
pub(crate) fn child_reset() {
    CHILD_FD.store(-1, Ordering::Relaxed);
    set_handler(libc::SIGCHLD, libc::SIG_DFL, 0);
}

static CHILD_EXIT: std::sync::Mutex<Vec<fn()>> = std::sync::Mutex::new(Vec::new());

/// Runs `hook` in every forked child of a `fork` or `prefork` server just before it leaves
/// with `_exit` (which skips destructors): a protocol that buffers per process (an access
/// log) writes out what it holds. Register before serving; a hook must not block for long.
pub fn at_child_exit(hook: fn()) {
    CHILD_EXIT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(hook);
}

fn run_child_exit_hooks() {
    let hooks = CHILD_EXIT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for hook in hooks {
        // A panicking hook must not keep the child from exiting.
        let _ = std::panic::catch_unwind(hook);
    }
}

/// Leave a forked child without running the parent's destructors or atexit handlers.
pub(crate) fn exit_child(code: i32) -> ! {
    // Protocols' own buffers (`at_child_exit`), then no other flushing: a buffer
    // inherited from the parent would be written twice.
    run_child_exit_hooks();
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}
