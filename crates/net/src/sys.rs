//! Thin, safe wrappers over the few libc calls the drivers need that std does not offer:
//! pipes for wake-ups, `sendfile(2)`, SO_REUSEPORT listeners, fork/wait/kill, and a counter in
//! shared memory that survives `fork` (for `max_connections` across prefork workers).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array; pipe2 fills it on success.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A non-blocking, close-on-exec eventfd (a counter the kernel can wait on).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers and touches no memory of ours; the descriptor it
    // returns is owned below.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Add one to an eventfd (makes it readable).
pub(crate) fn eventfd_poke(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64; errors (counter overflow) are irrelevant here.
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}

/// Write one byte, ignoring a full pipe (the reader is already due to wake). Async-signal-safe.
pub(crate) fn poke(fd: RawFd) {
    let b = 1u8;
    // SAFETY: writes one byte from a valid buffer; errors are deliberately ignored.
    unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
}

/// Read and discard everything in a non-blocking pipe.
pub(crate) fn drain(fd: RawFd) {
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reads into a valid local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n <= 0 {
            break;
        }
    }
}

/// Whether `fd` is readable right now (used to test a never-drained shutdown pipe).
pub(crate) fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// `sendfile(2)` from `file` at `offset` to socket `out`; returns bytes sent.
pub(crate) fn sendfile(out: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = offset as libc::off_t;
    // SAFETY: valid fds; `off` is a valid pointer the kernel updates.
    let n = unsafe { libc::sendfile(out, file, &mut off, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// TCP_CORK on or off: while on, only full segments leave (a response's head goes out with
/// the first of its file's bytes); turning it off sends what is held.
pub(crate) fn set_cork(fd: RawFd, on: bool) {
    let v: libc::c_int = on as libc::c_int;
    // SAFETY: valid fd and option pointer of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// TCP_NOTSENT_LOWAT: the socket counts as writable (and `sendfile`/`write` queue more) only
/// while fewer than `bytes` queued bytes wait unsent. Best effort: an old kernel without it just
/// keeps the default (no limit).
pub(crate) fn set_notsent_lowat(fd: RawFd, bytes: u32) {
    let v = bytes as libc::c_int;
    // SAFETY: valid fd and option pointer of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// `pread(2)` into `buf`.
pub(crate) fn pread(file: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: buf is a valid writable buffer of the given length.
    let n = unsafe {
        libc::pread(
            file,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            offset as libc::off_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A non-blocking listener; `reuse_port` lets several event loops bind the same port and
/// have the kernel spread connections over them.
pub(crate) fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    if reuse_port && addr.port() != 0 {
        // SO_REUSEPORT would let us silently share a port another server (of the same user)
        // already holds; probe with a plain bind first so that case is a clear EADDRINUSE.
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        probe.set_reuse_address(true)?;
        probe.bind(&addr.into())?;
    }
    bind_listener(addr, reuse_port)
}

/// Another SO_REUSEPORT listener on the port a first one (from [`listen`]) already holds.
pub(crate) fn listen_twin(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_listener(addr, true)
}

fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

/// A non-blocking TCP connect that may still be in progress (FTP active data connections).
pub(crate) fn connect_nonblocking(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(sock.into())
}

/// The pending error of a socket (SO_ERROR), used to finish a non-blocking connect.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(if err == 0 {
        None
    } else {
        Some(io::Error::from_raw_os_error(err))
    })
}

/// Whether the peer of TCP socket `fd` has sent its FIN (the socket's state is past
/// ESTABLISHED on the receiving side: CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT or CLOSE),
/// whatever is still queued before it. `false` for what is not TCP. select(2) has no
/// `POLLRDHUP`; this is how `poller/select.rs` sees a half-close while input is paused.
pub(crate) fn peer_sent_fin(fd: RawFd) -> bool {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a live tcp_info and `len` its size, so the kernel writes within it; a
    // bad `fd` only makes the call fail.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // linux/tcp_states.h: TIME_WAIT 6, CLOSE 7, CLOSE_WAIT 8, LAST_ACK 9, CLOSING 11.
    r == 0 && matches!(info.tcpi_state, 6..=9 | 11)
}

/// Bytes waiting to be read on socket `fd` (`FIONREAD`); 0 on error.
pub(crate) fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

/// Per-address buckets of the per-IP limit (slot 0 of the mapping is the global count).
const IP_BUCKETS: usize = 4094;
/// The count of Unix-domain connections (an admin socket), after the per-address buckets.
const LOCAL: usize = IP_BUCKETS + 1;
/// One region: the total count, the per-address buckets, the local count.
const REGION: usize = IP_BUCKETS + 2;

/// Connection counters in an anonymous shared mapping: threads share them like any atomic, and
/// forked children share them too, so `max_connections` and `max_per_ip` hold across prefork
/// workers. The per-IP count is kept in 4095 buckets by address hash: two addresses that share
/// a bucket share a budget (conservative: a limit is never exceeded, at worst reached early).
///
/// Region 0 holds the counts; with `ledgers`, region `1 + w` records what prefork worker `w`
/// holds, so when a worker is killed outright its parent can give its places back.
pub(crate) struct SharedCounter {
    ptr: *const AtomicUsize,
    bytes: usize,
    max: usize,
    max_per_ip: Option<usize>,
    /// Unix-domain connections at once: a budget of their own (see [`SharedCounter::try_acquire`]).
    max_local: usize,
    /// This process's ledger (`usize::MAX` = none); process-local memory, set after fork.
    ledger: AtomicUsize,
}

// SAFETY: the raw pointer is the only non-Send field; it points at atomics in a shared
// mapping that lives as long as the counter (unmapped in Drop) and is only ever accessed
// through atomic operations, so moving the counter to another thread is sound.
unsafe impl Send for SharedCounter {}
// SAFETY: as for Send: every access through `&SharedCounter` is an atomic operation (on the
// mapping or on `ledger`), so sharing it between threads cannot race.
unsafe impl Sync for SharedCounter {}

fn bucket(ip: std::net::IpAddr) -> usize {
    // FNV-1a over the address bytes (an IPv4-mapped IPv6 address counts as its IPv4 self).
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    let bytes: Vec<u8> = match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    1 + (h % IP_BUCKETS as u64) as usize
}

impl SharedCounter {
    pub(crate) fn new(
        max: usize,
        max_per_ip: Option<usize>,
        max_local: usize,
        ledgers: usize,
    ) -> io::Result<Self> {
        let bytes = (1 + ledgers) * REGION * std::mem::size_of::<AtomicUsize>();
        // SAFETY: a fresh anonymous shared mapping, zero-filled, page aligned.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedCounter {
            ptr: p as *const AtomicUsize,
            bytes,
            max,
            max_per_ip,
            max_local,
            ledger: AtomicUsize::new(usize::MAX),
        })
    }

    fn slot(&self, i: usize) -> &AtomicUsize {
        debug_assert!(i * std::mem::size_of::<AtomicUsize>() < self.bytes);
        // SAFETY: i is within the mapping, which is live, aligned and zero-initialised.
        unsafe { &*self.ptr.add(i) }
    }

    /// Record this process's places in ledger `w` (a prefork worker, right after fork).
    pub(crate) fn use_ledger(&self, w: usize) {
        self.ledger.store(w, Ordering::Relaxed);
    }

    /// Give back every place ledger `w` records (its worker is dead) and clear it; returns how
    /// many connections (TCP and local) that was.
    pub(crate) fn reclaim_ledger(&self, w: usize) -> usize {
        let base = (1 + w) * REGION;
        let mut conns = 0;
        for i in 0..REGION {
            let n = self.slot(base + i).swap(0, Ordering::AcqRel);
            if i == 0 || i == LOCAL {
                conns += n;
            }
            if n > 0 {
                let _ = self
                    .slot(i)
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                        Some(c.saturating_sub(n))
                    });
            }
        }
        conns
    }

    fn note(&self, i: usize, up: bool) {
        let w = self.ledger.load(Ordering::Relaxed);
        if w != usize::MAX {
            let s = self.slot((1 + w) * REGION + i);
            if up {
                s.fetch_add(1, Ordering::AcqRel);
            } else {
                let _ = s.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    }

    fn take(&self, i: usize, max: usize) -> bool {
        self.slot(i)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                if n < max {
                    Some(n + 1)
                } else {
                    None
                }
            })
            .is_ok()
    }

    fn give(&self, i: usize) {
        let _ = self
            .slot(i)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Admit a connection from `ip` if both the global and its address's limit allow.
    /// A Unix-domain connection (its peer is the unspecified address, which no TCP peer can
    /// have) counts only against `max_local`: a flood of public clients can never lock the
    /// operator's admin tool out, and admin tools never take a public client's place.
    pub(crate) fn try_acquire(&self, ip: std::net::IpAddr) -> bool {
        if ip.is_unspecified() {
            if !self.take(LOCAL, self.max_local) {
                return false;
            }
            self.note(LOCAL, true);
            return true;
        }
        if !self.take(0, self.max) {
            return false;
        }
        if let Some(per_ip) = self.max_per_ip {
            if !self.take(bucket(ip), per_ip) {
                self.give(0);
                return false;
            }
            self.note(bucket(ip), true);
        }
        self.note(0, true);
        true
    }

    pub(crate) fn release(&self, ip: std::net::IpAddr) {
        if ip.is_unspecified() {
            self.give(LOCAL);
            self.note(LOCAL, false);
            return;
        }
        if self.max_per_ip.is_some() {
            self.give(bucket(ip));
            self.note(bucket(ip), false);
        }
        self.give(0);
        self.note(0, false);
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new(); no references outlive self.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.bytes) };
    }
}

pub(crate) enum Fork {
    Child,
    Parent(libc::pid_t),
}

/// `fork(2)`. The child must only run this crate's single-threaded code and end with `_exit`.
pub(crate) fn fork() -> io::Result<Fork> {
    // Hold the stdout and stderr locks across fork(2): another thread of this process (an
    // uplink's, a console) may be writing a log line right now, and the child would inherit
    // that lock held by a thread it does not have, and hang on its first log line. stdout is
    // flushed under its lock, or the child would write the buffered bytes a second time.
    let mut out = io::stdout().lock();
    let _ = io::Write::flush(&mut out);
    let err = io::stderr().lock();
    // SAFETY: the callers keep the child to async-signal-safe-in-practice code paths on a
    // single thread and never return into the caller's stack frames (they `_exit`).
    let pid = unsafe { libc::fork() };
    // Both sides release them: in the child the forking thread (the same ThreadId) owns them.
    drop(err);
    drop(out);
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p)),
    }
}

/// Ask for SIGTERM when the parent dies (Linux `PR_SET_PDEATHSIG`); if it is already gone,
/// signal ourselves now.
pub(crate) fn die_with_parent(parent: libc::pid_t) {
    // SAFETY: prctl(PR_SET_PDEATHSIG), getppid and kill take plain integers and touch no
    // memory of ours; at worst they fail.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent {
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
    }
}

/// Reap every exited child without blocking; returns the pids reaped.
pub(crate) fn reap_children() -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: `status` is a live int the kernel writes; WNOHANG keeps it from blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
        out.push(pid);
    }
    out
}

pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill takes plain integers and touches no memory of ours; an already-dead pid
    // just fails with ESRCH.
    unsafe { libc::kill(pid, sig) };
}

pub(crate) fn close_fd(fd: RawFd) {
    // SAFETY: only called on fds this process owns and will not use again (in a fresh child).
    unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_enforce_global_and_per_address_limits() {
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        assert_ne!(bucket(a), bucket(b));
        let c = SharedCounter::new(3, Some(2), 1, 1).unwrap();
        assert!(c.try_acquire(a) && c.try_acquire(a));
        assert!(!c.try_acquire(a), "per-address limit");
        assert!(c.try_acquire(b));
        assert!(!c.try_acquire(b), "global limit");
        c.release(a);
        assert!(c.try_acquire(b), "a freed place is reusable");
        // An IPv4-mapped IPv6 peer is the same address.
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(bucket(mapped), bucket(a));
        // A worker's ledger gives its places back when it dies without releasing them.
        c.release(a);
        c.release(b);
        c.release(b);
        c.use_ledger(0);
        assert!(c.try_acquire(a) && c.try_acquire(a) && c.try_acquire(b));
        assert!(!c.try_acquire(b));
        c.reclaim_ledger(0);
        assert!(c.try_acquire(a) && c.try_acquire(a), "places reclaimed");
    }
}
