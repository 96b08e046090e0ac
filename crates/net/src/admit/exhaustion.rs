//! Running out of file descriptors without spinning and without leaving clients hanging.
//!
//! `accept(2)` takes a descriptor before it looks at the queue, so once the process is at
//! `RLIMIT_NOFILE` every accept fails with EMFILE while the listener stays readable: a
//! level-triggered loop would wake at once, fail again, and burn a core (and a log line a turn),
//! while the clients in the queue wait forever. Two defences, as nginx does:
//!
//! - a **reserve descriptor** (`/dev/null`, opened up front): on EMFILE it is closed, the
//!   connection at the head of the queue is accepted into the freed number, sent
//!   [`Protocol::refusal`] and closed, and the reserve is opened again. Over-limit clients are
//!   refused at once, and the loop only wakes when a client actually arrives;
//! - prefork workers share a queue but not a table: one that is out while a sibling is not
//!   backs off (below) and leaves the queue to the sibling, refusing only when all are out;
//! - when the reserve cannot be had, the caller stops watching the listener for [`BACKOFF`]
//!   instead of waking on it, and the reserve is taken again as soon as a descriptor frees.
//!
//! Loops of one process share its descriptor table, so a number one loop frees for its
//! refusal could be taken by another loop's accept, leaving the first with no reserve and
//! its queue hanging. [`FD_LOCK`] prevents that: accepts (and the per-connection loops'
//! eventfds) take it shared, the free-accept-refuse-reopen step takes it exclusively.
//!
//! The exception is `--model uring`, whose loops accept inside the kernel (a multishot
//! accept, `poller/uring/accept.rs`), where no lock can be held: there another loop's accept
//! can take the number a refusal freed. The loop that spent its reserve then finds none to
//! reopen, and is in the state below (no reserve: back off, retry, take it back as soon as a
//! descriptor frees); the connection that took the number is served by the other loop. The
//! descriptors one loop's accept delivers while the process is out come as EMFILE
//! completions, on which that loop runs [`Reserve::accept`] here as every model does.
//!
//! Either way the warning is logged once per episode (state in shared memory, so prefork
//! workers count as one server), and the end of the episode is logged with the refusals it made.
//! [`check_rlimit`] raises the soft limit towards what `max_connections` needs at start and
//! warns if that is still short.

use super::{refuse, Shared};
use crate::config::{Config, Model};
use crate::listener::Listener;
use crate::session::Protocol;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

/// How long a loop stops watching its listeners when it cannot even refuse.
pub(crate) const BACKOFF: Duration = Duration::from_millis(100);
/// Exhaustion this long after the last one is a new episode (and is logged again).
const EPISODE_GAP_MS: u64 = 5_000;
/// A normal accept this long after the last exhaustion ends the episode.
const EPISODE_END_MS: u64 = 1_000;

/// The outcome of one [`Reserve::accept`].
pub(crate) enum Accepted {
    Conn(TcpStream, SocketAddr),
    /// Out of descriptors: one client was accepted on the reserve, refused and closed.
    Refused,
    /// Nothing (more) waiting.
    Empty,
    /// Out of descriptors with no reserve to spend (or another accept error): stop watching
    /// the listener for [`BACKOFF`].
    BackOff,
}

/// Held shared while allocating a descriptor on a hot path, exclusively while a reserve is
/// briefly given up (see the module comment). Process-local: forked workers have their own
/// descriptor tables.
static FD_LOCK: RwLock<()> = RwLock::new(());

/// Hold while allocating descriptors that must not take a number a refusal is using.
pub(crate) fn fd_guard() -> RwLockReadGuard<'static, ()> {
    FD_LOCK.read().unwrap_or_else(|e| e.into_inner())
}

/// One loop's spare descriptor.
pub(crate) struct Reserve {
    fd: Option<OwnedFd>,
}

fn open_spare() -> Option<OwnedFd> {
    // SAFETY: a plain open(2) of a constant path; the descriptor is owned below.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: fd was just opened and is owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Reserve {
    pub(crate) fn new() -> Self {
        Reserve { fd: open_spare() }
    }

    /// A connection got a descriptor of its own (here, or from an accept made by the ring):
    /// a reserve lost earlier is taken back, and an episode of exhaustion may be over.
    pub(crate) fn took<P: Protocol>(&mut self, shared: &Shared<P>) {
        if self.fd.is_none() {
            // Lost earlier: take it back the moment a descriptor is free.
            self.fd = open_spare();
        }
        shared.episode.accepted();
    }

    /// Accept one connection from `l` (non-blocking), refusing it on the reserve if the process
    /// is out of descriptors.
    pub(crate) fn accept<P: Protocol>(
        &mut self,
        l: &Listener,
        index: usize,
        shared: &Shared<P>,
    ) -> Accepted {
        loop {
            let r = {
                let _g = fd_guard();
                l.accept()
            };
            let e = match r {
                Ok((s, peer)) => {
                    self.took(shared);
                    return Accepted::Conn(s, peer);
                }
                Err(e) => e,
            };
            match e.kind() {
                io::ErrorKind::WouldBlock => return Accepted::Empty,
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ if is_exhaustion(&e) => {}
                _ => {
                    tracing::warn!("accept: {e}");
                    return Accepted::BackOff;
                }
            }
            shared.episode.exhausted(&e);
            if shared.episode.sibling_has_room() {
                return Accepted::BackOff;
            }
            let exclusive = FD_LOCK.write().unwrap_or_else(|e| e.into_inner());
            if self.fd.take().is_none() {
                // Lost earlier and not yet recovered: try again, and wait meanwhile.
                self.fd = open_spare();
                return Accepted::BackOff;
            }
            let r = l.accept();
            let outcome = match r {
                Ok((s, _)) => {
                    // Closed (by `refuse`) before the reserve is opened again: same number.
                    refuse(shared, s, index);
                    shared.episode.refused();
                    Accepted::Refused
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Empty,
                // The system itself is out (ENFILE), or something outside the lock took it.
                Err(_) => Accepted::BackOff,
            };
            self.fd = open_spare();
            drop(exclusive);
            return outcome;
        }
    }
}

/// When descriptors last ran out, and how many clients were refused since; in an anonymous
/// shared mapping so that prefork workers (and fork children) log one episode, not one each.
pub(crate) struct Episode {
    ptr: *const AtomicU64,
    /// Prefork worker processes sharing the listener (0 = one process).
    workers: usize,
    /// This process's worker index (`usize::MAX` = not a prefork worker); set after fork.
    me: std::sync::atomic::AtomicUsize,
}

// SAFETY: the raw pointer is the only non-Send field; it points at atomics in a shared
// mapping that lives as long as the Episode and is only ever accessed through atomic
// operations, so moving the Episode to another thread is sound.
unsafe impl Send for Episode {}
// SAFETY: as for Send: every access through `&Episode` is an atomic operation on the mapping
// (or on `me`, itself atomic), so sharing it between threads cannot race.
unsafe impl Sync for Episode {}

const LAST_MS: usize = 0;
const REFUSED: usize = 1;
/// Then, per prefork worker, when it last ran out.
const WORKER0: usize = 2;
const MAP_BYTES: usize = 4096;
/// A worker that ran out this recently counts as out (its back-off retries refresh it).
const STILL_OUT_MS: u64 = 300;

/// CLOCK_MONOTONIC in milliseconds (+1, so 0 can mean "never"): the same clock in every
/// process of the server.
fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the kernel writes; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000 + 1
}

impl Episode {
    /// `workers`: prefork worker processes (0 otherwise).
    pub(crate) fn new(workers: usize) -> io::Result<Self> {
        let workers = workers.min(MAP_BYTES / 8 - WORKER0);
        // SAFETY: a fresh anonymous shared mapping, zero-filled, page aligned.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Episode {
            ptr: p as *const AtomicU64,
            workers,
            me: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }

    /// This process is prefork worker `w` (right after fork).
    pub(crate) fn use_slot(&self, w: usize) {
        self.me.store(w, Ordering::Relaxed);
    }

    /// Prefork: another worker process (it has its own descriptor table) was not out of
    /// descriptors just now. An exhausted worker then leaves the shared queue to it rather
    /// than refuse clients it could serve.
    fn sibling_has_room(&self) -> bool {
        let me = self.me.load(Ordering::Relaxed);
        if me >= self.workers {
            return false;
        }
        let now = now_ms();
        (0..self.workers).any(|w| {
            w != me
                && now.saturating_sub(self.slot(WORKER0 + w).load(Ordering::Relaxed)) > STILL_OUT_MS
        })
    }

    fn slot(&self, i: usize) -> &AtomicU64 {
        // SAFETY: i < MAP_BYTES / 8, within the live, aligned, zero-initialised mapping.
        unsafe { &*self.ptr.add(i) }
    }

    /// Out of descriptors (`e` says how): warns if this starts an episode.
    pub(crate) fn exhausted(&self, e: &io::Error) {
        let now = now_ms();
        let me = self.me.load(Ordering::Relaxed);
        if me < self.workers {
            self.slot(WORKER0 + me).store(now, Ordering::Relaxed);
        }
        let prev = self.slot(LAST_MS).swap(now, Ordering::AcqRel);
        if prev == 0 || now.saturating_sub(prev) >= EPISODE_GAP_MS {
            tracing::warn!(
                "accept: {e}; refusing new connections until descriptors are freed \
                 (logged once per episode; see RLIMIT_NOFILE / ulimit -n)"
            );
        }
    }

    pub(crate) fn refused(&self) {
        self.slot(REFUSED).fetch_add(1, Ordering::Relaxed);
    }

    /// A connection got a descriptor of its own: if descriptors ran out a while ago, the
    /// episode is over.
    fn accepted(&self) {
        let last = self.slot(LAST_MS).load(Ordering::Relaxed);
        if last == 0 || now_ms().saturating_sub(last) < EPISODE_END_MS {
            return;
        }
        if self
            .slot(LAST_MS)
            .compare_exchange(last, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let n = self.slot(REFUSED).swap(0, Ordering::AcqRel);
            tracing::info!(
                "accepting again: {n} connection(s) were refused while out of descriptors"
            );
        }
    }
}

impl Episode {
    /// A connection that was accepted but could not be served (its loop, thread or process
    /// could not be made): refused, and logged once per episode if descriptors ran out.
    pub(crate) fn failed_setup(&self, what: &str, e: &io::Error) {
        self.refused();
        if is_exhaustion(e) {
            self.exhausted(e);
        } else {
            tracing::warn!("{what}: {e}");
        }
    }
}

impl Drop for Episode {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new(); no references outlive self.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, MAP_BYTES) };
    }
}

/// Descriptors one connection holds under `model` (data channels not counted): the socket,
/// plus the eventfd of its own loop where each connection has one (`thread`, and `threadpool`
/// while a worker serves it).
pub(crate) fn fds_per_connection(model: Model) -> u64 {
    match model {
        Model::Thread => 2,
        _ => 1,
    }
}

/// At start: raise the soft `RLIMIT_NOFILE` towards what `max_connections` needs (never past the
/// hard limit), and warn if it is still short, so an operator learns it before clients do.
pub(crate) fn check_rlimit(config: &Config, workers: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the kernel writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    // Listeners, loops, pipes, the shutdown trigger, stdio, a reserve per loop: a margin.
    let overhead = 32 + 4 * workers as u64;
    // Prefork workers each have their own table, but one may end up holding most of the
    // connections: count them all against every process.
    let need = (config.limits.max_connections as u64)
        .saturating_mul(fds_per_connection(config.model))
        .saturating_add(overhead);
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < need {
        let raised = libc::rlimit {
            rlim_cur: need.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        if raised.rlim_cur > lim.rlim_cur
            // SAFETY: `raised` is a valid, initialised rlimit that outlives the call, which
            // only reads it.
            && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0
        {
            lim.rlim_cur = raised.rlim_cur;
        }
    }
    if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < need {
        let fit = lim.rlim_cur.saturating_sub(overhead) / fds_per_connection(config.model);
        tracing::warn!(
            "max_connections {} under --model {} needs about {need} descriptors, but \
             RLIMIT_NOFILE allows {}: past about {fit} connections clients will be refused \
             (raise `ulimit -n` or lower --max-connections)",
            config.limits.max_connections,
            config.model,
            lim.rlim_cur
        );
    }
}
