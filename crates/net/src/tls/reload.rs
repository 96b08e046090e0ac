//! SIGHUP → "reload the certificate" across every process of a server.
//!
//! The signal handler only bumps a counter (async-signal-safe); each certificate store compares
//! it with the generation it last loaded at its next handshake and re-reads its files then.
//! The counter lives in a `MAP_SHARED` anonymous mapping made before any fork, so the workers
//! of `fork` and `prefork` see a bump made by whichever process received the signal (the
//! parent, usually), and each reloads in its own address space. Connections already
//! established keep the keys they negotiated: nothing is dropped.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;

static COUNTER: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
static INSTALLED: OnceLock<()> = OnceLock::new();

extern "C" fn on_hup(_: libc::c_int) {
    let p = COUNTER.load(Ordering::Relaxed);
    if !p.is_null() {
        // SAFETY: the mapping is never unmapped once published.
        unsafe { (*p).fetch_add(1, Ordering::Relaxed) };
    }
}

/// Make SIGHUP bump the reload generation (instead of ending the process). Idempotent. Call it
/// before the server forks workers, so they share the counter.
pub fn install_sighup() -> std::io::Result<()> {
    let mut err = None;
    INSTALLED.get_or_init(|| {
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
            err = Some(std::io::Error::last_os_error());
            return;
        }
        // Zero-filled memory is a valid AtomicU64 holding 0.
        COUNTER.store(p.cast(), Ordering::Release);
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument.
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

/// How many SIGHUPs this server has seen (0 until [`install_sighup`]).
pub(crate) fn generation() -> u64 {
    let p = COUNTER.load(Ordering::Acquire);
    if p.is_null() {
        0
    } else {
        // SAFETY: see on_hup.
        unsafe { (*p).load(Ordering::Relaxed) }
    }
}
