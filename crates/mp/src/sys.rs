//! Thin, checked wrappers over the few Linux system calls bingfa-mp needs (futex, socketpair,
//! pipe2, poll, fd flags). Everything returns `io::Result`; `unsafe` stays in this file and the
//! few modules that map shared memory.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Turn a libc `-1` return into the current `errno`.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retry a call while it fails with EINTR.
pub(crate) fn retry<T: PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live, writable array of the two ints socketpair fills.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded, so both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An OS pipe `(read end, write end)`, close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live, writable array of the two ints pipe2 fills.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Wait until `fd` is readable (or hung up). `None` waits forever. Returns false on timeout.
pub(crate) fn poll_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    poll_for(fd, libc::POLLIN, timeout)
}

/// Is the other end of this pipe or socket still open? Asked without waiting.
pub(crate) fn peer_open(fd: RawFd, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd, and the count says one. poll only reads the descriptor
    // number: a stale one reports POLLNVAL, never touches memory.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents & (libc::POLLHUP | libc::POLLERR) == 0
}

/// Make reads and writes on `fd` return EAGAIN instead of blocking.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL take no pointers; the caller owns `fd` (a bad one is EBADF).
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

fn poll_for(fd: RawFd, events: libc::c_short, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so a sub-millisecond remainder still waits rather than spinning.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one live pollfd, count one (see `peer_open`).
        match cvt(unsafe { libc::poll(&mut p, 1, ms) }) {
            Ok(0) => {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Clear FD_CLOEXEC so the descriptor survives `exec`.
pub(crate) fn set_inheritable(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD takes no pointer; the caller owns `fd` (a bad one is EBADF).
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Sleep on a process-shared futex word while it still holds `expected`.
/// Returns `false` when the timeout expired; spurious wake-ups return `true`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts;
    let tsp = match timeout {
        None => std::ptr::null(),
        Some(t) => {
            ts = libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
    };
    // Not FUTEX_PRIVATE: the word lives in memory shared between processes.
    // SAFETY: `word` is a live, aligned u32 (borrowed for the call); `tsp` is null or points to
    // `ts`, which outlives the call; the last two arguments are unused by FUTEX_WAIT.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            0,
            0,
        )
    };
    !(r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wake up to `n` sleepers on a process-shared futex word.
pub(crate) fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a live, aligned u32 (borrowed for the call); FUTEX_WAKE reads no other
    // pointer.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0, 0, 0);
    }
}

/// Time left until `deadline`, or `None` for "no deadline".
pub(crate) fn remaining(deadline: Option<std::time::Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()))
}

/// Raise the soft limit of open descriptors to the hard limit. True if it went up.
pub(crate) fn raise_nofile_limit() -> bool {
    // SAFETY: rlimit is two integers; all-zero is a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a live rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur >= lim.rlim_max
    {
        return false;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a live, initialised rlimit that setrlimit only reads.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}
