//! A process-shared, robust mutex living in shared memory (glibc's `PTHREAD_MUTEX_ROBUST`): if
//! its owner dies, the kernel marks it and the next locker is told so instead of blocking
//! forever. Queues repair their state on that signal; `Lock` reports it as `OwnerDied`.

use std::cell::UnsafeCell;
use std::io;
use std::time::Instant;

/// What `lock` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// Taken normally.
    Clean,
    /// Taken, but the previous owner died holding it; the protected state may be half-updated.
    /// The mutex has already been marked consistent again.
    OwnerDied,
}

/// Must be placed in shared memory and initialised once with [`RawRobustMutex::init`].
#[repr(C)]
pub struct RawRobustMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a pthread mutex is made to be locked and unlocked from many threads (and, being
// PTHREAD_PROCESS_SHARED, processes) at once; the UnsafeCell is only ever handed to pthread.
unsafe impl Sync for RawRobustMutex {}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

impl RawRobustMutex {
    /// Initialise in place.
    ///
    /// # Safety
    /// `this` must point to writable memory that no other thread or process uses yet.
    pub unsafe fn init(this: *mut RawRobustMutex) -> io::Result<()> {
        Self::init_kind(this, libc::PTHREAD_MUTEX_NORMAL)
    }

    /// Initialise in place as a recursive mutex: the owning thread may lock it again, and must
    /// unlock it as many times (the basis of `RLock`).
    ///
    /// # Safety
    /// As for [`RawRobustMutex::init`].
    pub unsafe fn init_recursive(this: *mut RawRobustMutex) -> io::Result<()> {
        Self::init_kind(this, libc::PTHREAD_MUTEX_RECURSIVE)
    }

    /// # Safety
    /// As for [`RawRobustMutex::init`].
    unsafe fn init_kind(this: *mut RawRobustMutex, kind: libc::c_int) -> io::Result<()> {
        // SAFETY: the body's calls get a live attr (initialised before use, destroyed once) and
        // `this`, which the caller promises is writable and not yet shared.
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        check(libc::pthread_mutexattr_init(&mut attr))?;
        let r = (|| {
            check(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            check(libc::pthread_mutexattr_setrobust(
                &mut attr,
                libc::PTHREAD_MUTEX_ROBUST,
            ))?;
            check(libc::pthread_mutexattr_settype(&mut attr, kind))?;
            check(libc::pthread_mutex_init((*this).inner.get(), &attr))
        })();
        libc::pthread_mutexattr_destroy(&mut attr);
        r
    }

    fn finish(&self, r: libc::c_int) -> io::Result<Option<Acquired>> {
        match r {
            0 => Ok(Some(Acquired::Clean)),
            libc::EOWNERDEAD => {
                // SAFETY: EOWNERDEAD means this thread now holds the (initialised) mutex, the
                // one state in which pthread_mutex_consistent may be called.
                unsafe { libc::pthread_mutex_consistent(self.inner.get()) };
                Ok(Some(Acquired::OwnerDied))
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Block until acquired.
    pub fn lock(&self) -> io::Result<Acquired> {
        // SAFETY: `inner` is an initialised mutex: a RawRobustMutex is never built in safe code
        // (no constructor), only found in shared memory whose creator called `init` (zeroed
        // memory, before that, is glibc's static initialiser, also valid).
        let r = unsafe { libc::pthread_mutex_lock(self.inner.get()) };
        self.finish(r)
            .map(|a| a.expect("blocking lock cannot time out"))
    }

    /// Acquire if free; `None` if someone else holds it.
    pub fn try_lock(&self) -> io::Result<Option<Acquired>> {
        // SAFETY: as in `lock`.
        let r = unsafe { libc::pthread_mutex_trylock(self.inner.get()) };
        self.finish(r)
    }

    /// Acquire before `deadline`; `None` on timeout.
    pub fn lock_until(&self, deadline: Instant) -> io::Result<Option<Acquired>> {
        // pthread_mutex_timedlock takes CLOCK_REALTIME; convert the monotonic deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: timespec is two integers; all-zero is valid.
        let mut now: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `now` is a live timespec for clock_gettime to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
        let mut sec = now.tv_sec + left.as_secs() as libc::time_t;
        let mut nsec = now.tv_nsec + left.subsec_nanos() as libc::c_long;
        if nsec >= 1_000_000_000 {
            sec += 1;
            nsec -= 1_000_000_000;
        }
        let ts = libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        };
        // SAFETY: as in `lock`; `ts` is live for the call.
        let r = unsafe { libc::pthread_mutex_timedlock(self.inner.get(), &ts) };
        self.finish(r)
    }

    /// Release. Must be called by the thread that holds it.
    pub fn unlock(&self) {
        // SAFETY: an initialised mutex (see `lock`). It is robust, and glibc checks a robust
        // mutex's owner: an unlock by a thread that does not hold it returns EPERM, harmlessly.
        unsafe { libc::pthread_mutex_unlock(self.inner.get()) };
    }
}
