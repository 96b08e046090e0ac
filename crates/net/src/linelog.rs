//! Log files that several processes of one server append to, and that logrotate rotates:
//! the SIGUSR1 rotation counter every such log shares ([`install_sigusr1`], [`generation`]),
//! and [`LineLog`], a file written one whole line per `write(2)` on an `O_APPEND` descriptor
//! (lines of fork/prefork children never interleave) and reopened after a SIGUSR1.
//!
//! The counter lives in a `MAP_SHARED` page made before any fork (as SIGHUP does for
//! certificates, `tls::reload`), so a SIGUSR1 that reaches any process of the tree (the
//! parent, when `kill -USR1` names it; every worker, when the group gets it) is seen by all;
//! each log notices at its next line, and reopens its path once per rotation and process.
//! bingfa-http's buffered access log and bingfa-ftp's transfer log both use it: one handler,
//! one counter.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

static ROTATIONS: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_usr1(_: libc::c_int) {
    let p = ROTATIONS.load(Ordering::Relaxed);
    if !p.is_null() {
        // SAFETY: the mapping is never unmapped once published.
        unsafe { (*p).fetch_add(1, Ordering::Relaxed) };
    }
}

/// SIGUSR1 bumps the rotation generation, in a page every forked process shares. Idempotent;
/// call before the server forks.
pub fn install_sigusr1() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        // SAFETY: an anonymous shared mapping of one page; checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // Zero-filled memory is a valid AtomicU64 holding 0.
        ROTATIONS.store(p.cast(), Ordering::Release);
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
        Ok(())
    });
    r.map_err(io::Error::from_raw_os_error)
}

/// How many SIGUSR1s the server has seen (0 before [`install_sigusr1`]).
pub fn generation() -> u64 {
    let p = ROTATIONS.load(Ordering::Acquire);
    if p.is_null() {
        0
    } else {
        // SAFETY: see on_usr1.
        unsafe { (*p).load(Ordering::Relaxed) }
    }
}

/// Opens `p` for appending, created 0644.
pub fn open_append(p: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(p)
}

/// A log file written a line at a time, unbuffered (for events that are rare next to their
/// cost, e.g. a file transfer): each line is one `write(2)`, so it is on disk (in the page
/// cache) when the call returns, and a forked child leaving with `_exit` loses nothing.
/// Clones share the descriptor.
#[derive(Clone)]
pub struct LineLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    out: Mutex<(File, u64)>,
}

impl std::fmt::Debug for LineLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineLog")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl LineLog {
    /// Opens `path` for appending and installs the SIGUSR1 handler (reopen); call before the
    /// server forks.
    pub fn open(path: &Path) -> io::Result<LineLog> {
        install_sigusr1()?;
        let file = open_append(path)?;
        Ok(LineLog {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                out: Mutex::new((file, generation())),
            }),
        })
    }

    /// The path the log was opened at.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends `line` (which must end with `\n` and hold no other) in one write.
    pub fn write_line(&self, line: &[u8]) {
        let mut out = self.inner.out.lock().unwrap_or_else(|e| e.into_inner());
        let now = generation();
        if out.1 != now {
            out.1 = now;
            match open_append(&self.inner.path) {
                Ok(f) => out.0 = f,
                // Keep writing to the old file rather than lose lines.
                Err(e) => tracing::warn!("cannot reopen {}: {e}", self.inner.path.display()),
            }
        }
        // A regular file opened O_APPEND takes the whole buffer in one write (short writes
        // only happen on a full disk, where the rest would fail too).
        if let Err(e) = out.0.write_all(line) {
            tracing::warn!("{}: {e}", self.inner.path.display());
        }
    }
}
