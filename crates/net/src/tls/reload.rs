//! SIGHUP → "reload the certificate" across every process of a server.
//!
//! The signal handler writes a byte to a pipe (async-signal-safe). A thread of the process
//! that installed the handler reads the pipe and reloads that process's certificate stores at
//! once, logging the outcome then, once; good files are published to memory the worker
//! processes share, and each worker takes them up at its next handshake (`store.rs`,
//! `snapshot.rs`). A worker that receives the signal itself wakes the same thread (the pipe
//! is inherited). Connections already established keep the keys they negotiated: nothing is
//! dropped.
//!
//! The thread shares its process with `fork`'s per-connection forks: a fork taken while it
//! held a lock (the store's, the log writer's) would leave the child that lock held forever.
//! So it reloads under [`FORK_GUARD`], which `pthread_atfork` takes around every `fork`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

static INSTALLED: OnceLock<()> = OnceLock::new();

/// The pipe's write end (-1 until installed): the handler's wake-up for the reload thread.
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Held while the reload thread works, and by `fork` (via `pthread_atfork`) around forking.
static mut FORK_GUARD: libc::pthread_mutex_t = libc::PTHREAD_MUTEX_INITIALIZER;

extern "C" fn on_hup(_: libc::c_int) {
    let w = WAKE.load(Ordering::Relaxed);
    if w >= 0 {
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe
        // (a burst of signals the thread has not read yet) drops the byte, not the process.
        unsafe { libc::write(w, b"h".as_ptr().cast(), 1) };
    }
}

extern "C" fn guard_lock() {
    // SAFETY: FORK_GUARD is statically initialised (PTHREAD_MUTEX_INITIALIZER), never moves,
    // and is only ever reached through this raw pointer (no Rust reference to the `static mut`
    // exists), so pthread may lock it from any thread. The only holders are the reload thread
    // and a forking thread, which never take it twice, so this does not self-deadlock.
    unsafe { libc::pthread_mutex_lock(std::ptr::addr_of_mut!(FORK_GUARD)) };
}

extern "C" fn guard_unlock() {
    // SAFETY: held by this thread (taken in `guard_lock` before the fork, in the parent and
    // in the child, whose only thread is the one that forked).
    unsafe { libc::pthread_mutex_unlock(std::ptr::addr_of_mut!(FORK_GUARD)) };
}

/// The reload thread: wait for the handler's byte, then reload this process's stores.
fn watch(read: libc::c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `read` is the pipe's read end, which only this thread uses and nothing ever
        // closes; read writes at most `buf.len()` bytes into the live local `buf`.
        let n = unsafe { libc::read(read, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return;
        }
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        guard_lock();
        super::store::reload_all();
        guard_unlock();
    }
}

/// The pipe, the fork guard and the thread; errors leave reloading to the next handshake.
fn start_watcher() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds`; close-on-exec so no exec'd program inherits it.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fds[1]` is the write end pipe2 just made; fcntl on it touches no memory. The
    // atfork handlers are plain `extern "C"` functions (they live for the whole process) that
    // only lock and unlock FORK_GUARD, as `guard_lock` and `guard_unlock` explain.
    unsafe {
        let fl = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, fl | libc::O_NONBLOCK);
        libc::pthread_atfork(Some(guard_lock), Some(guard_unlock), Some(guard_unlock));
    }
    let read = fds[0];
    std::thread::Builder::new()
        .name("tls-reload".into())
        .spawn(move || watch(read))?;
    WAKE.store(fds[1], Ordering::Release);
    Ok(())
}

/// Make SIGHUP reload the certificate files (instead of ending the process). Idempotent.
/// Call it before the server forks workers, so they share the pipe.
pub fn install_sighup() -> std::io::Result<()> {
    let mut err = None;
    INSTALLED.get_or_init(|| {
        if let Err(e) = start_watcher() {
            err = Some(e);
            return;
        }
        // SAFETY: all-zero bytes are a valid sigaction (plain C data); it gets a handler with
        // the one-argument signature that a sigaction without SA_SIGINFO calls, and an empty
        // mask. The handler is async-signal-safe: an atomic load and write(2), nothing else.
        // sigaction only reads `sa`, which is alive for the call.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_hup as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut());
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
