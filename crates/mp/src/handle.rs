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
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The registered descriptors, each with the id of the `Tracked` that owns it. The id tells a
/// `Tracked` copied into a fork child (whose descriptor the child closed, and whose number the
/// child may have given to a new descriptor since) from the owner of that number now.
type Registry = Option<HashMap<RawFd, u64>>;

static TRACKED: Mutex<Registry> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn tracked() -> MutexGuard<'static, Registry> {
    TRACKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A descriptor whose copies in fork children must not outlive its purpose (pipe ends,
/// bootstrap sockets). Registered while alive.
#[derive(Debug)]
pub struct Tracked {
    fd: std::mem::ManuallyDrop<OwnedFd>,
    id: u64,
}

impl Tracked {
    /// Register `fd` in `g`, under the registry lock the caller holds.
    fn register(g: &mut Registry, fd: OwnedFd) -> Tracked {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        g.get_or_insert_with(HashMap::new)
            .insert(fd.as_raw_fd(), id);
        Tracked {
            fd: std::mem::ManuallyDrop::new(fd),
            id,
        }
    }

    /// Take `fd` and register it, so fork children close their copy.
    pub fn new(fd: OwnedFd) -> Self {
        Tracked::register(&mut tracked(), fd)
    }

    /// Create a pair of descriptors and register them under the registry lock, so that a fork
    /// in another thread never copies them untracked.
    pub fn create_pair(
        make: impl FnOnce() -> std::io::Result<(OwnedFd, OwnedFd)>,
    ) -> std::io::Result<(Tracked, Tracked)> {
        let mut g = tracked();
        let (a, b) = make()?;
        Ok((Tracked::register(&mut g, a), Tracked::register(&mut g, b)))
    }
}

impl AsRawFd for Tracked {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Unregister and close under the lock: a fork in between would keep the descriptor
        // alive, untracked, in the child.
        let mut g = tracked();
        let fd = self.fd.as_raw_fd();
        let ours = g
            .as_mut()
            .is_some_and(|m| m.get(&fd) == Some(&self.id) && m.remove(&fd).is_some());
        if ours {
            // SAFETY: the registry still names this Tracked as the owner of `fd`, so no fork
            // child's `child_adopt` closed it: it is open and ours. Dropped exactly once, here.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.fd) };
        }
        // Otherwise this is a copy, inherited by a fork child, of a descriptor the child closed
        // in `child_adopt`; its number may belong to a newer descriptor now. Closing it would
        // close that one: leave it (the ManuallyDrop is simply not dropped).
    }
}

/// Held across `fork()` so no other thread is mid-update of the registry when memory is copied.
pub(crate) struct ForkGuard(MutexGuard<'static, Registry>);

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
        let map = self.0.get_or_insert_with(HashMap::new);
        let kept = map.get(&keep).copied();
        for (fd, _) in map.drain() {
            if fd != keep {
                // SAFETY: this fork child is single-threaded and `fd` was registered by a live
                // Tracked (open, inherited by fork). Its OwnedFd copy in this address space is
                // never dropped: the fork child ends in _exit (run_child) without unwinding the
                // parent's frames.
                unsafe { libc::close(fd) };
            }
        }
        if let Some(id) = kept {
            map.insert(keep, id);
        }
        dups
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::os::fd::AsRawFd;

    use super::Tracked;
    use crate::{Process, StartMethod};

    thread_local! {
        /// A pipe end the parent holds; a fork child (the same thread, copied) finds it here.
        static STALE: RefCell<Option<Tracked>> = const { RefCell::new(None) };
    }

    /// In a fork child: give the stale end's number to a new file, then drop the stale end.
    /// True if the new file survived.
    fn reuse_then_drop_the_stale_copy(_: ()) -> bool {
        let stale = STALE
            .with(|s| s.borrow_mut().take())
            .expect("copied by fork");
        let n = stale.as_raw_fd();
        // child_adopt closed `n`; descriptors are handed out lowest first, so opening files
        // reaches it.
        let mut others = Vec::new();
        let file = loop {
            let f = std::fs::File::open("/dev/null").unwrap();
            if f.as_raw_fd() == n {
                break f;
            }
            others.push(f);
            assert!(others.len() < 100_000, "descriptor {n} never came back");
        };
        drop(stale);
        file.metadata().is_ok()
    }

    /// Found writing the SAFETY comments: a `Tracked` copied into a fork child was closed
    /// again when the child dropped it, closing whatever descriptor had taken its number since.
    #[test]
    fn a_fork_childs_stale_copy_closes_nobody_elses_descriptor() {
        let (a, _b) = Tracked::create_pair(crate::sys::pipe).unwrap();
        STALE.with(|s| *s.borrow_mut() = Some(a));
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(reuse_then_drop_the_stale_copy, ())
            .unwrap();
        let survived = p.join().unwrap();
        STALE.with(|s| s.borrow_mut().take());
        assert!(survived, "dropping the stale copy closed the new file");
    }
}
