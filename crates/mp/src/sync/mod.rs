//! Synchronisation primitives shared between processes *and* threads: Python's
//! `multiprocessing.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition` and
//! `Barrier`.
//!
//! Each primitive is a small header in its own shared memory segment ([`crate::shm::Segment`]).
//! Handles are cheap to clone inside a process and travel to children as spawn arguments; the
//! segment is freed by the kernel when the last handle in any process is gone. Locks are robust
//! pthread mutexes, so a process that dies holding one does not freeze the others (the next
//! acquirer gets [`LockError::OwnerDied`] with the lock); the counters are futex words.

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};

pub use crate::error::{LockError, SyncError};

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::robust::{Acquired, RawRobustMutex};
use crate::shm::Segment;

/// A `#[repr(C)]` header `H` at the start of a shared segment. Every primitive (and `Value`,
/// `Array`) is one of these, so handle passing and lifetime are written once.
pub(crate) struct Shm<H> {
    seg: Arc<Segment>,
    _h: PhantomData<H>,
}

impl<H> Clone for Shm<H> {
    fn clone(&self) -> Self {
        Shm {
            seg: self.seg.clone(),
            _h: PhantomData,
        }
    }
}

impl<H> Shm<H> {
    /// A zeroed segment of `len` bytes (at least the header), initialised by `init` before
    /// anyone else can see it.
    pub(crate) fn with_len(
        len: usize,
        init: impl FnOnce(*mut H) -> io::Result<()>,
    ) -> io::Result<Shm<H>> {
        let seg = Segment::new(len.max(std::mem::size_of::<H>()))?;
        debug_assert!(seg.as_ptr().cast::<H>().is_aligned());
        init(seg.as_ptr().cast())?;
        Ok(Shm {
            seg: Arc::new(seg),
            _h: PhantomData,
        })
    }

    pub(crate) fn new(init: impl FnOnce(*mut H) -> io::Result<()>) -> io::Result<Shm<H>> {
        Self::with_len(std::mem::size_of::<H>(), init)
    }

    pub(crate) fn get(&self) -> &H {
        // SAFETY: the segment starts with an H: initialised by `with_len`'s `init` before it was
        // shared, or received and checked to be at least an H long by `deserialize` (handles
        // travel only as spawn arguments, decoded as the type they were encoded as). The
        // mapping is page-aligned and lives as long as `self`, which the reference borrows.
        unsafe { &*(self.seg.as_ptr() as *const H) }
    }

    pub(crate) fn base(&self) -> *mut u8 {
        self.seg.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.seg.len()
    }

    pub(crate) fn same(&self, other: &Shm<H>) -> bool {
        Arc::ptr_eq(&self.seg, &other.seg)
    }
}

impl<H> Serialize for Shm<H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de, H> Deserialize<'de> for Shm<H> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let seg = Segment::deserialize(d)?;
        if seg.len() < std::mem::size_of::<H>() {
            return Err(serde::de::Error::custom(
                "shared segment too small for this primitive",
            ));
        }
        Ok(Shm {
            seg: Arc::new(seg),
            _h: PhantomData,
        })
    }
}

/// Lock a robust mutex with Python's three flavours of `acquire`.
pub(crate) fn raw_acquire(m: &RawRobustMutex, wait: Wait) -> Result<Acquired, LockError<()>> {
    let got = match wait {
        Wait::Forever => Some(m.lock()?),
        Wait::No => m.try_lock()?,
        Wait::Until(d) => m.lock_until(d)?,
    };
    match got {
        Some(a) => Ok(a),
        None if matches!(wait, Wait::No) => Err(LockError::WouldBlock),
        None => Err(LockError::Timeout),
    }
}

/// How long an acquire may block.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    No,
    Until(Instant),
}

impl Wait {
    pub(crate) fn timeout(d: Duration) -> Wait {
        Wait::Until(Instant::now() + d)
    }

    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Forever => None,
            Wait::No => Some(Instant::now()),
            Wait::Until(d) => Some(d),
        }
    }
}

/// Turn a raw acquisition into a guard, or the `OwnerDied` error carrying that guard.
pub(crate) fn guarded<G>(
    r: Result<Acquired, LockError<()>>,
    make: impl FnOnce() -> G,
) -> Result<G, LockError<G>> {
    match r {
        Ok(Acquired::Clean) => Ok(make()),
        Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(make())),
        Err(LockError::Timeout) => Err(LockError::Timeout),
        Err(LockError::WouldBlock) => Err(LockError::WouldBlock),
        Err(LockError::Io(e)) => Err(LockError::Io(e)),
        Err(LockError::OwnerDied(())) => unreachable!("raw_acquire reports OwnerDied as Ok"),
    }
}
