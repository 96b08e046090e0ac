//! How OS handles (pipe ends, shared memory) travel to a child as ordinary spawn arguments.
//!
//! While spawn arguments are being serialized, every handle inside them records its file
//! descriptor in a thread-local outbox and writes only its index. The spawn machinery then hands
//! those descriptors to the child (SCM_RIGHTS for spawn, inheritance for fork), and the child
//! deserializes with an inbox of the received descriptors. Outside that window a handle refuses
//! to serialize, so it can never silently turn into a dangling number.
//!
//! The module also keeps the registry of "EOF-relevant" descriptors (pipe ends, bootstrap
//! sockets): a fork child closes every registered descriptor it was not given, so a pipe's
//! reader sees EOF when the writers it knows of are gone — the classic fork pitfall.

use std::cell::RefCell;
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

thread_local! {
    static OUTBOX: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
    static INBOX: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Run `f` (a serialization) with an outbox; returns its result and the descriptors it recorded.
pub(crate) fn collecting<T>(f: impl FnOnce() -> T) -> (T, Vec<RawFd>) {
    OUTBOX.with(|o| *o.borrow_mut() = Some(Vec::new()));
    let out = f();
    let fds = OUTBOX.with(|o| o.borrow_mut().take()).unwrap_or_default();
    (out, fds)
}

/// Run `f` (a deserialization) with `fds` as the inbox. Unclaimed descriptors are closed.
pub(crate) fn providing<T>(fds: Vec<OwnedFd>, f: impl FnOnce() -> T) -> T {
    INBOX.with(|i| *i.borrow_mut() = Some(fds.into_iter().map(Some).collect()));
    let out = f();
    INBOX.with(|i| i.borrow_mut().take());
    out
}

/// Serialize a descriptor as its index in the outbox.
pub fn serialize_fd<S: Serializer>(fd: &impl AsRawFd, s: S) -> Result<S::Ok, S::Error> {
    let idx = OUTBOX.with(|o| {
        o.borrow_mut().as_mut().map(|v| {
            v.push(fd.as_raw_fd());
            v.len() - 1
        })
    });
    match idx {
        Some(i) => s.serialize_u32(i as u32),
        None => Err(S::Error::custom(
            "bingfa-mp handles (pipe ends, queues, shared memory) can only travel as spawn arguments",
        )),
    }
}

/// Take ownership of the descriptor a handle was serialized as.
pub fn deserialize_fd<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    let idx = u32::deserialize(d)? as usize;
    INBOX
        .with(|i| {
            i.borrow_mut()
                .as_mut()
                .and_then(|v| v.get_mut(idx).and_then(Option::take))
        })
        .ok_or_else(|| D::Error::custom("handle index not among the descriptors received"))
}

static TRACKED: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

fn tracked() -> MutexGuard<'static, Option<HashSet<RawFd>>> {
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A descriptor whose copies in fork children must not outlive its purpose (pipe ends,
/// bootstrap sockets). Registered while alive.
#[derive(Debug)]
pub struct Tracked(std::mem::ManuallyDrop<OwnedFd>);

impl Tracked {
    /// Take `fd` and register it, so fork children close their copy.
    pub fn new(fd: OwnedFd) -> Self {
        tracked()
            .get_or_insert_with(HashSet::new)
            .insert(fd.as_raw_fd());
        Tracked(std::mem::ManuallyDrop::new(fd))
    }

    /// Create a pair of descriptors and register them under the registry lock, so that a fork
    /// in another thread never copies them untracked.
    pub fn create_pair(
        make: impl FnOnce() -> std::io::Result<(OwnedFd, OwnedFd)>,
    ) -> std::io::Result<(Tracked, Tracked)> {
        let mut g = tracked();
        let (a, b) = make()?;
        let set = g.get_or_insert_with(HashSet::new);
        set.insert(a.as_raw_fd());
        set.insert(b.as_raw_fd());
        Ok((
            Tracked(std::mem::ManuallyDrop::new(a)),
            Tracked(std::mem::ManuallyDrop::new(b)),
        ))
    }
}

impl AsRawFd for Tracked {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Unregister and close under the lock: a fork in between would keep the descriptor
        // alive, untracked, in the child.
        let mut g = tracked();
        if let Some(set) = g.as_mut() {
            set.remove(&self.0.as_raw_fd());
        }
        // SAFETY: dropped exactly once, here.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.0) };
    }
}

/// Held across `fork()` so no other thread is mid-update of the registry when memory is copied.
pub(crate) struct ForkGuard(MutexGuard<'static, Option<HashSet<RawFd>>>);

pub(crate) fn fork_guard() -> ForkGuard {
    ForkGuard(tracked())
}

impl ForkGuard {
    /// In the fork child: duplicate the passed descriptors (so each gets a fresh owner), then
    /// close every tracked descriptor but `keep`, returning the duplicates in outbox order.
    pub(crate) fn child_adopt(mut self, passed: &[RawFd], keep: RawFd) -> Vec<OwnedFd> {
        let dups: Vec<OwnedFd> = passed
            .iter()
            .map(|&fd| {
                // SAFETY: F_DUPFD_CLOEXEC takes no pointer. We are the only thread of a fresh fork
                // child, and `fd` is one of the parent's descriptors passed to it, inherited open
                // by the fork.
                let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                if n < 0 {
                    // Out of descriptors in a fresh fork child: nothing sensible to run.
                    // SAFETY: _exit is async-signal-safe and ends the process without running the
                    // parent's copied destructors.
                    unsafe { libc::_exit(71) };
                }
                // SAFETY: fcntl succeeded: `n` is a new descriptor that nothing else owns.
                unsafe { OwnedFd::from_raw_fd(n) }
            })
            .collect();
        let set = self.0.get_or_insert_with(HashSet::new);
        for fd in set.drain() {
            if fd != keep {
                // SAFETY: this fork child is single-threaded and `fd` was registered by a live
                // Tracked (open, inherited by fork). Its OwnedFd copy in this address space is
                // never dropped: the fork child ends in _exit (run_child) without unwinding the
                // parent's frames.
                unsafe { libc::close(fd) };
            }
        }
        set.insert(keep);
        dups
    }
}
