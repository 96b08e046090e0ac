//! The access log (`--access-log PATH|-`): one line per answered request, in nginx's
//! `combined` format or as JSON, written the way nginx's `access_log ... buffer=64k flush=1s`
//! writes: appended to a per-process buffer on the request path, written by a flusher thread of
//! that process at least every flush interval ([`FLUSH`] by default, as `--access-log-flush`
//! says) and at once when [`WAKE_AT`] bytes are waiting, so a busy event loop neither blocks on
//! the disk nor makes a syscall per request.
//!
//! Processes: the flusher is started by the first line a process logs (a fork/prefork parent
//! logs nothing, so it stays single-threaded and safe to fork). A forked child leaves with
//! `_exit`, so [`flush_all`] runs from bingfa-net's child-exit hook: a worker's last lines are
//! written at shutdown. Every write is whole lines on an `O_APPEND` descriptor (at most
//! `PIPE_BUF` bytes at a time on a pipe), so lines of several processes never interleave.
//!
//! Rotation: SIGUSR1 bumps a counter in a `MAP_SHARED` page made before any fork
//! (`bingfa_net::linelog`, shared with the FTP transfer log); each process notices at its next line or
//! tick, writes what it buffered to the old file and reopens the path.
//!
//! Bytes from the peer (request line, Referer, User-Agent) are escaped as nginx escapes them:
//! `"`, `\`, controls and bytes above 0x7e as `\xHH` (JSON: `\"`, `\\`, `\uXXXX`).

use std::fs::File;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;

mod format;
use format::{combined, json};
pub use format::{escape, format_times, json_escape};

/// How often a process's flusher writes what is buffered (and looks for a rotation), unless
/// told otherwise: nginx's `flush=1s`.
pub const FLUSH: Duration = Duration::from_secs(1);
/// Buffered bytes that wake the flusher before its tick.
pub const WAKE_AT: usize = 64 * 1024;
/// Buffered bytes past which the request path writes itself (the flusher is stuck on a slow
/// disk): the log is never dropped, and memory stays bounded.
const WRITE_AT: usize = 4 * 1024 * 1024;

/// The line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"`.
    Combined,
    /// One JSON object per line, fields named after nginx's variables.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "combined" => Ok(Format::Combined),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown access log format {s:?} (combined, json)")),
        }
    }
}

/// What one line says about a request. Peer bytes are raw here; formatting escapes them.
pub struct Entry<'a> {
    /// The client's address (`None`: not known, e.g. a session driven by hand).
    pub peer: Option<IpAddr>,
    /// The request line as received (`-` when there was none).
    pub request: &'a [u8],
    /// The status answered.
    pub status: u16,
    /// Body bytes of the response (0 for HEAD, 204, 304).
    pub body_bytes: u64,
    /// The `Referer` header, if sent.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` header, if sent.
    pub user_agent: Option<&'a [u8]>,
}

/// What a line needs from a request head, copied from its raw bytes (only while a log is on):
/// the request line and two fields exactly as the client sent them.
#[derive(Debug, Default)]
pub(crate) struct Logged {
    pub line: Vec<u8>,
    pub referer: Option<Vec<u8>>,
    pub user_agent: Option<Vec<u8>>,
}

impl Logged {
    /// From a complete head (leading empty lines allowed, lines end with CRLF).
    pub(crate) fn from_head(head: &[u8]) -> Logged {
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .skip_while(|l| l.is_empty());
        let mut out = Logged {
            line: lines.next().unwrap_or_default().to_vec(),
            ..Logged::default()
        };
        for l in lines {
            let Some(colon) = l.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = l[colon + 1..].trim_ascii();
            let name = &l[..colon];
            if name.eq_ignore_ascii_case(b"referer") {
                out.referer.get_or_insert_with(|| value.to_vec());
            } else if name.eq_ignore_ascii_case(b"user-agent") {
                out.user_agent.get_or_insert_with(|| value.to_vec());
            }
        }
        out
    }

    /// From input that couldn't be parsed: its first line, at most 2 KiB of it.
    pub(crate) fn from_garbage(input: &[u8]) -> Logged {
        let input = input.trim_ascii_start();
        let end = input
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(input.len())
            .min(2048);
        Logged {
            line: input[..end].to_vec(),
            ..Logged::default()
        }
    }
}

/// An open access log; clones share one buffer and descriptor.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: standard output (never reopened).
    path: Option<PathBuf>,
    format: Format,
    /// The flusher's interval.
    tick: Duration,
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    out: Mutex<Out>,
    /// `Out::generation`, readable without waiting for a write in progress.
    seen: AtomicU64,
    /// The fork epoch the flusher thread was started in (`u64::MAX`: none yet).
    flusher: AtomicU64,
}

struct Out {
    file: Option<File>,
    /// A pipe or terminal: writes go at most `PIPE_BUF` bytes at a time, cut at line ends.
    small_writes: bool,
    /// The rotation generation the file was opened at.
    generation: u64,
    /// The buffer swapped out for writing (kept for its capacity).
    spare: Vec<u8>,
}

impl AccessLog {
    /// Opens `path` for appending (created 0644), or standard output for `-`; lines are
    /// written at least every `flush`. Installs the SIGUSR1 handler (reopen); call before the
    /// server forks.
    pub fn open(path: &Path, format: Format, flush: Duration) -> io::Result<AccessLog> {
        install_sigusr1()?;
        let path = (path != Path::new("-")).then(|| path.to_path_buf());
        let file = match &path {
            Some(p) => open(p)?,
            None => {
                use std::os::fd::AsFd;
                File::from(io::stdout().as_fd().try_clone_to_owned()?)
            }
        };
        let inner = Arc::new(Inner {
            path,
            format,
            tick: flush.max(Duration::from_millis(10)),
            buf: Mutex::new(Vec::with_capacity(WAKE_AT)),
            wake: Condvar::new(),
            out: Mutex::new(Out {
                small_writes: !is_regular(&file),
                file: Some(file),
                generation: generation(),
                spare: Vec::new(),
            }),
            flusher: AtomicU64::new(u64::MAX),
            seen: AtomicU64::new(generation()),
        });
        lock(registry()).push(Arc::downgrade(&inner));
        Ok(AccessLog { inner })
    }

    /// The line format this log writes.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// Appends the line for `e` to this process's buffer (no syscall unless a rotation is due
    /// or the flusher fell [`WRITE_AT`] bytes behind).
    pub fn log(&self, e: &Entry) {
        let inner = &self.inner;
        if inner.flusher.load(Ordering::Relaxed) != FORK_EPOCH.load(Ordering::Relaxed) {
            inner.start_flusher();
        }
        // After a SIGUSR1 this line goes to the new file: what was buffered goes to the old
        // one first, then the path is reopened (once per rotation and process).
        if inner.seen.load(Ordering::Relaxed) != generation() {
            inner.flush();
        }
        let len = {
            let mut buf = lock(&inner.buf);
            let before = buf.len();
            match inner.format {
                Format::Combined => combined(&mut buf, e),
                Format::Json => json(&mut buf, e),
            }
            if before < WAKE_AT && buf.len() >= WAKE_AT {
                inner.wake.notify_one();
            }
            buf.len()
        };
        if len >= WRITE_AT {
            inner.flush();
        }
    }

    /// Writes whatever this process has buffered (and reopens the file if SIGUSR1 came).
    pub fn flush(&self) {
        self.inner.flush();
    }
}

impl Inner {
    /// One flusher thread per process, started by the process's first line.
    fn start_flusher(self: &Arc<Self>) {
        let epoch = FORK_EPOCH.load(Ordering::Relaxed);
        let prev = self.flusher.swap(epoch, Ordering::AcqRel);
        if prev == epoch {
            return; // another thread of this process got there first
        }
        install_atfork();
        let weak: Weak<Inner> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || flusher(weak));
        if let Err(e) = spawned {
            // Lines still reach the file: at WRITE_AT, at rotation and at exit.
            tracing::warn!("cannot start the access log flusher: {e}");
        }
    }

    fn flush(&self) {
        let mut out = lock(&self.out);
        let out = &mut *out;
        std::mem::swap(&mut *lock(&self.buf), &mut out.spare);
        if !out.spare.is_empty() {
            if let Some(f) = &mut out.file {
                if let Err(e) = write_lines(f, &out.spare, out.small_writes) {
                    tracing::warn!("access log: {e}");
                }
            }
            out.spare.clear();
        }
        let generation = generation();
        if out.generation != generation {
            out.generation = generation;
            self.seen.store(generation, Ordering::Relaxed);
            if let Some(p) = &self.path {
                match open(p) {
                    Ok(f) => {
                        out.small_writes = !is_regular(&f);
                        out.file = Some(f);
                    }
                    // Keep writing to the old file rather than lose lines.
                    Err(e) => tracing::warn!("cannot reopen {}: {e}", p.display()),
                }
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flush();
    }
}

fn flusher(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        {
            let buf = lock(&inner.buf);
            if buf.len() < WAKE_AT {
                let _ = inner.wake.wait_timeout(buf, inner.tick);
            }
        }
        inner.flush();
    }
}

/// Flushes every access log of this process: bingfa-net calls it before a forked child
/// `_exit`s (a prefork worker at shutdown, a fork child after its connection).
pub fn flush_all() {
    let logs: Vec<Arc<Inner>> = lock(registry()).iter().filter_map(Weak::upgrade).collect();
    for l in logs {
        l.flush();
    }
}

fn registry() -> &'static Mutex<Vec<Weak<Inner>>> {
    static LOGS: OnceLock<Mutex<Vec<Weak<Inner>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        bingfa_net::shutdown::at_child_exit(flush_all);
        Mutex::new(Vec::new())
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn open(p: &Path) -> io::Result<File> {
    bingfa_net::linelog::open_append(p)
}

fn is_regular(f: &File) -> bool {
    f.metadata().is_ok_and(|m| m.file_type().is_file())
}

/// Writes whole lines; on a pipe no write exceeds `PIPE_BUF`, so it is atomic.
fn write_lines(f: &mut File, mut data: &[u8], small: bool) -> io::Result<()> {
    const PIPE_BUF: usize = 4096;
    while !data.is_empty() {
        let n = if small && data.len() > PIPE_BUF {
            // A line longer than PIPE_BUF can't be atomic anyway: cut it there.
            data[..PIPE_BUF]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(PIPE_BUF, |p| p + 1)
        } else {
            data.len()
        };
        f.write_all(&data[..n])?;
        data = &data[n..];
    }
    Ok(())
}

// ---- the counters shared with signal handlers and fork ----

/// Bumped in a child by `pthread_atfork`: the child has no flusher thread yet.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);
extern "C" fn in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

fn install_atfork() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: registering a plain function that only touches an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// SIGUSR1 bumps the rotation generation shared with every line log (bingfa-net's
/// `linelog`). Idempotent.
fn install_sigusr1() -> io::Result<()> {
    bingfa_net::linelog::install_sigusr1()
}

/// How many SIGUSR1s the server has seen.
fn generation() -> u64 {
    bingfa_net::linelog::generation()
}
