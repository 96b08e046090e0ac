//! Bookkeeping of the children this process started: their exit status, reaping without
//! zombies, and the exit path that joins non-daemon children and stops daemon ones.
//!
//! Every child is reaped exactly once, by `waitpid` on its own pid (never `waitpid(-1)`, which
//! would steal other libraries' children). A handle that is dropped while its child still runs
//! hands the child to a single background reaper thread that waits on pidfds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys;

/// One started child.
#[derive(Debug)]
pub(crate) struct ChildState {
    pub pid: libc::pid_t,
    pub name: String,
    pub daemon: bool,
    /// Readable once the child has exited (Linux ≥ 5.3); `None` falls back to polling.
    pidfd: Option<OwnedFd>,
    /// The raw wait status once reaped.
    status: Mutex<Option<libc::c_int>>,
}

impl ChildState {
    pub(crate) fn new(pid: libc::pid_t, name: String, daemon: bool) -> Arc<ChildState> {
        // SAFETY: pidfd_open takes a pid and flags, no pointer. `pid` is our unreaped child (just
        // forked or spawned), so the number cannot name a stranger yet.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: pidfd_open succeeded: a fresh descriptor that nothing else owns.
        let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
        let st = Arc::new(ChildState {
            pid,
            name,
            daemon,
            pidfd,
            status: Mutex::new(None),
        });
        let mut reg = registry();
        // Keep the registry (and the pidfds it holds) to the children still running.
        reg.retain(|c| !c.is_reaped());
        reg.push(st.clone());
        drop(reg);
        st
    }

    fn status_lock(&self) -> MutexGuard<'_, Option<libc::c_int>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reap if it has exited; never blocks. Returns the raw wait status once known.
    pub(crate) fn reap_nowait(&self) -> Option<libc::c_int> {
        let mut g = self.status_lock();
        if g.is_none() {
            let mut st = 0;
            // SAFETY: `st` is a live int for waitpid to fill; `pid` is our child, not yet reaped
            // (status is None under the lock, and only this path reaps).
            let r = unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) };
            if r == self.pid {
                *g = Some(st);
            } else if r == -1 {
                // ECHILD: someone else reaped it (e.g. a foreign waitpid(-1)); treat as gone.
                *g = Some(0);
            }
        }
        *g
    }

    /// Wait for exit until `deadline` (`None`: forever). Returns the raw status, or `None` on
    /// timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Option<libc::c_int> {
        let mut backoff = Duration::from_micros(50);
        loop {
            if let Some(s) = self.reap_nowait() {
                return Some(s);
            }
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return None;
            }
            match &self.pidfd {
                Some(fd) => {
                    let _ = sys::poll_readable(fd.as_raw_fd(), left);
                }
                None => {
                    let nap = left.map_or(backoff, |l| l.min(backoff));
                    std::thread::sleep(nap);
                    backoff = (backoff * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// Send `sig` unless the child was already reaped (its pid may then belong to a stranger).
    pub(crate) fn signal(&self, sig: libc::c_int) -> std::io::Result<()> {
        let g = self.status_lock();
        if g.is_none() {
            // SAFETY: kill takes no pointer. The status lock is held and shows the child unreaped,
            // so `pid` is still our child (a zombie at worst), never a recycled pid.
            sys::cvt(unsafe { libc::kill(self.pid, sig) })?;
        }
        Ok(())
    }

    pub(crate) fn is_reaped(&self) -> bool {
        self.status_lock().is_some()
    }
}

/// Python's exit code convention: the code, or minus the signal number.
pub(crate) fn exitcode(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

static REGISTRY: Mutex<Vec<Arc<ChildState>>> = Mutex::new(Vec::new());

pub(crate) fn registry() -> MutexGuard<'static, Vec<Arc<ChildState>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drop a finished child from the registry, closing its pidfd once no handle holds it.
pub(crate) fn forget(child: &Arc<ChildState>) {
    registry().retain(|c| !Arc::ptr_eq(c, child));
}

/// Live children, reaping the finished ones on the way (as Python's `active_children`).
pub(crate) fn active() -> Vec<Arc<ChildState>> {
    let mut reg = registry();
    reg.retain(|c| c.reap_nowait().is_none());
    reg.clone()
}

struct Detached {
    list: Mutex<Vec<Arc<ChildState>>>,
    cv: Condvar,
}

static DETACHED: Detached = Detached {
    list: Mutex::new(Vec::new()),
    cv: Condvar::new(),
};
static REAPER_STARTED: AtomicBool = AtomicBool::new(false);

/// The handle is gone but the child still runs: make sure it is reaped when it exits.
pub(crate) fn detach(child: Arc<ChildState>) {
    if child.reap_nowait().is_some() {
        return;
    }
    DETACHED
        .list
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child);
    DETACHED.cv.notify_one();
    if !REAPER_STARTED.swap(true, Ordering::AcqRel) {
        let _ = std::thread::Builder::new()
            .name("bingfa-mp-reaper".into())
            .spawn(reaper_loop);
    }
}

fn reaper_loop() {
    loop {
        let waiting: Vec<Arc<ChildState>> = {
            let mut list = DETACHED.list.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|c| c.reap_nowait().is_none());
            while list.is_empty() {
                list = DETACHED.cv.wait(list).unwrap_or_else(|e| e.into_inner());
                list.retain(|c| c.reap_nowait().is_none());
            }
            list.clone()
        };
        // Those reaped above leave the registry too (after the detached lock is released: the
        // fork path takes the registry lock first).
        registry().retain(|c| !c.is_reaped());
        // Sleep until one of them exits, or re-check the list every 100 ms for newcomers.
        let mut fds: Vec<libc::pollfd> = waiting
            .iter()
            .filter_map(|c| c.pidfd.as_ref())
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a live Vec of pollfd and the count is its length (an empty one just
        // sleeps). The pidfds stay open: `waiting` holds their ChildStates.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
    }
}

/// The exit path: terminate daemon children, then join the others (Python's `_exit_function`).
pub(crate) fn shutdown() {
    let kids = active();
    for c in kids.iter().filter(|c| c.daemon) {
        let _ = c.signal(libc::SIGTERM);
    }
    for c in kids.iter().filter(|c| c.daemon) {
        if c.wait(Some(Instant::now() + Duration::from_secs(1)))
            .is_none()
        {
            let _ = c.signal(libc::SIGKILL);
            c.wait(None);
        }
    }
    for c in kids.iter().filter(|c| !c.daemon) {
        c.wait(None);
    }
    registry().retain(|c| !c.is_reaped());
}

/// The registry locks, held across `fork()` so the child never inherits one mid-update.
pub(crate) struct ForkLocks {
    reg: MutexGuard<'static, Vec<Arc<ChildState>>>,
    det: MutexGuard<'static, Vec<Arc<ChildState>>>,
}

pub(crate) fn fork_locks() -> ForkLocks {
    let reg = registry();
    let det = DETACHED.list.lock().unwrap_or_else(|e| e.into_inner());
    ForkLocks { reg, det }
}

impl ForkLocks {
    /// In the fork child: the parent's children are not ours, and no reaper thread exists.
    pub(crate) fn child_reset(mut self) {
        // Forget rather than drop: dropping would close the parent's pidfds, harmless but
        // pointless, and the Arcs may be shared with handles we will never touch.
        std::mem::forget(std::mem::take(&mut *self.reg));
        std::mem::forget(std::mem::take(&mut *self.det));
        REAPER_STARTED.store(false, Ordering::Release);
    }
}
