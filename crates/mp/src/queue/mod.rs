//! `Queue`: Python's `multiprocessing.Queue` without the feeder thread.
//!
//! The queue is a ring of length-prefixed records in one shared memory segment. Producers and
//! consumers have a robust process-shared mutex each (a two-lock queue), so a put and a get
//! never wait for each other; each side publishes its progress with a single atomic store of
//! `(sequence << 32) | position`, which makes the item count exact (`put_seq - get_seq`) and
//! leaves nothing half-updated if a process dies holding a lock. Two futex words ("not empty",
//! "not full") carry sleeps and wake-ups between processes, and are only touched when somebody
//! actually sleeps.
//!
//! `put` copies the encoded message into the ring before it returns, so nothing sits in a
//! per-process buffer that could be lost at exit or deadlock a join (the CPython pitfall). Many
//! producers and consumers, in any processes and threads, may share one queue.
//!
//! "Unbounded" queues are bounded by bytes, not items: the ring is 1 GiB of address space
//! (configurable), of which only pages holding unread messages stay resident — consumed pages
//! are handed back to the kernel every megabyte. A put that would overflow the ring waits like
//! a put on a full bounded queue.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpcError;
use crate::robust::RawRobustMutex;
use crate::shm::Segment;
use crate::spin::Spin;
use crate::{codec, sys};

mod ring;

/// Default ring size for both bounded and unbounded queues.
pub(crate) const DEFAULT_CAPACITY: usize = 1 << 30;
/// Positions and sizes are counted in 8-byte units; a u32 of them spans 32 GiB.
const UNIT: usize = 8;
const MAX_CAPACITY: usize = 1 << 34;
const DATA_OFFSET: usize = 4096;
const WRAP: u32 = u32::MAX;
const CHUNK_UNITS: u32 = (1 << 20) / UNIT as u32;
/// Tries (`pthread_mutex_trylock`) of a taken side lock before sleeping on it.
const LOCK_SPINS: u32 = 32;
/// A put encodes in place into at most this much of the ring (in units, length word included):
/// small messages; a bigger one is encoded outside the lock, so the lock is held briefly.
const IN_PLACE_UNITS: u32 = 256 / UNIT as u32;

fn pack(seq: u32, pos: u32) -> u64 {
    ((seq as u64) << 32) | pos as u64
}

fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

fn record_units(payload: usize) -> u32 {
    (4 + payload).div_ceil(UNIT) as u32
}

/// One side's lock and private state, alone on its cache line: in a 1→1 queue nobody else
/// touches it, so the lock's atomic operations stay in this side's cache.
#[repr(C, align(64))]
struct Side {
    lock: RawRobustMutex,
    /// The other side's progress as last read, so the hot path reads the other side's cache
    /// line only when this copy says "full" (producers) or "empty" (consumers).
    seen: AtomicU64,
    /// Consumer side only: position up to which pages were given back.
    released: AtomicU32,
}

/// One side's published progress, `(items done << 32) | position in units` (both wrapping),
/// on a cache line of its own: the other side reads it while polling, and that must not pull
/// the lock's line away from its owner.
#[repr(C, align(64))]
struct Progress(AtomicU64);

/// The futex word of one condition ("not empty", "not full"). Bit 0 is set by a waiter about
/// to sleep; the first waker to find it set clears it (adding 1 also counts a wake-up in the
/// upper bits, so a waiter that read the word before never sleeps through it) and wakes every
/// sleeper. So a wake-up costs one system call per sleep, not one per put or get while the
/// sleeper is still on its way back to the CPU.
#[repr(C, align(64))]
struct Waiters(AtomicU32);

#[repr(C)]
struct Header {
    put: Side,
    put_progress: Progress,
    get: Side,
    get_progress: Progress,
    not_empty: Waiters,
    not_full: Waiters,
    maxsize: u64,
    cap_units: u32,
}

const _: () = assert!(std::mem::size_of::<Header>() <= DATA_OFFSET);

impl Waiters {
    /// Wake every sleeper, if one registered. Called holding the side lock under which the
    /// progress was just published, which is the lock sleepers register under
    /// ([`Waiters::register`]): so either this load sees the sleeper's bit or the sleeper's
    /// look sees the progress, without a fence on the publishing path.
    fn notify(&self) {
        let mut s = self.0.load(Relaxed);
        while s & 1 != 0 {
            match self
                .0
                .compare_exchange_weak(s, s.wrapping_add(1), Relaxed, Relaxed)
            {
                Ok(_) => {
                    sys::futex_wake(&self.0, i32::MAX);
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Announce a sleep; returns the word to sleep on. Called holding the lock of the side
    /// whose progress is awaited; the caller then looks at that progress once more and sleeps
    /// only if it has not moved. Leaving without sleeping (a timeout, or the look found
    /// progress) needs no undo: the bit costs one spare wake-up.
    fn register(&self) -> u32 {
        self.0.fetch_or(1, Relaxed) | 1
    }

    fn sleep(&self, word: u32, timeout: Option<Duration>) {
        sys::futex_wait(&self.0, word, timeout);
    }
}

/// A multi-producer, multi-consumer queue shared between processes and threads.
/// Clone it to get another handle; pass a clone to a child as a spawn argument.
pub struct Queue<T> {
    seg: Arc<Segment>,
    closed: Arc<AtomicBool>,
    /// How long this handle's gets spin before sleeping (learned, see [`crate::spin`]).
    spin: Spin,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            seg: self.seg.clone(),
            closed: Arc::new(AtomicBool::new(false)),
            spin: Spin::default(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .finish()
    }
}

/// A held side lock; unlocks on drop, so a panic while decoding can't wedge the queue.
struct Locked<'a>(&'a RawRobustMutex);

impl<'a> Locked<'a> {
    fn new(m: &'a RawRobustMutex) -> Result<Locked<'a>, IpcError> {
        // OwnerDied needs no repair: every published change is a single atomic store.
        // glibc's robust mutexes never spin, and a critical section here is tens of
        // nanoseconds: poll a little before sleeping on the futex.
        for _ in 0..LOCK_SPINS {
            if m.try_lock()?.is_some() {
                return Ok(Locked(m));
            }
            std::hint::spin_loop();
        }
        m.lock()?;
        Ok(Locked(m))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

thread_local! {
    static ENCODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<T> Queue<T> {
    /// An unbounded queue (bounded only by its 1 GiB ring).
    pub fn new() -> Result<Queue<T>, IpcError> {
        Self::with_limits(0, DEFAULT_CAPACITY)
    }

    /// A queue holding at most `maxsize` items (`maxsize` 0 means unbounded, as in Python).
    pub fn bounded(maxsize: usize) -> Result<Queue<T>, IpcError> {
        Self::with_limits(maxsize, DEFAULT_CAPACITY)
    }

    /// Full control: at most `maxsize` items (0: no item limit) in a ring of `capacity` bytes
    /// (rounded up to a power of two, at least 1 MiB, at most 16 GiB). The largest message
    /// is [`Queue::max_message`]: half the ring, at most 1 GiB.
    pub fn with_limits(maxsize: usize, capacity: usize) -> Result<Queue<T>, IpcError> {
        let capacity = capacity.clamp(1 << 20, MAX_CAPACITY).next_power_of_two();
        let seg = Segment::new(DATA_OFFSET + capacity)?;
        let h = seg.as_ptr() as *mut Header;
        // SAFETY: a fresh zeroed segment nobody else has seen yet; zero is a valid state for
        // every atomic field.
        unsafe {
            RawRobustMutex::init(std::ptr::addr_of_mut!((*h).put.lock))?;
            RawRobustMutex::init(std::ptr::addr_of_mut!((*h).get.lock))?;
            (*h).maxsize = maxsize as u64;
            (*h).cap_units = (capacity / UNIT) as u32;
        }
        Ok(Queue {
            seg: Arc::new(seg),
            closed: Arc::new(AtomicBool::new(false)),
            spin: Spin::default(),
            _t: PhantomData,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the segment starts with an initialised Header and outlives `self`.
        unsafe { &*(self.seg.as_ptr() as *const Header) }
    }

    fn at(&self, pos: u32) -> *mut u8 {
        let off = (pos & (self.header().cap_units - 1)) as usize * UNIT;
        // SAFETY: `cap_units` is a power of two (with_limits, checked again when a queue is
        // received), so `off < cap_units * UNIT`, and the segment is DATA_OFFSET plus that many
        // bytes.
        unsafe { self.seg.as_ptr().add(DATA_OFFSET + off) }
    }

    /// Exact number of items in the queue (a consistent snapshot: both sides are locked).
    pub fn qsize(&self) -> usize {
        let h = self.header();
        let _g = Locked::new(&h.get.lock).ok();
        let _p = Locked::new(&h.put.lock).ok();
        let (put, _) = unpack(h.put_progress.0.load(SeqCst));
        let (got, _) = unpack(h.get_progress.0.load(SeqCst));
        put.wrapping_sub(got) as usize
    }

    /// True if no item is in the queue at this moment (Python's `empty()`).
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// True if the queue is at its `maxsize` at this moment (Python's `full()`).
    pub fn full(&self) -> bool {
        let max = self.header().maxsize;
        max > 0 && self.qsize() as u64 >= max
    }

    /// Largest message this queue carries: half the ring (so that a record always fits in an
    /// empty queue, before or after the wrap point), at most 1 GiB.
    pub fn max_message(&self) -> usize {
        (self.header().cap_units as usize * UNIT / 2 - UNIT).min(crate::pipe::MAX_MESSAGE)
    }

    /// The item limit (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.header().maxsize as usize
    }

    /// This handle will put and get no more (Python's `close()`); other handles, in this or
    /// other processes, keep working. Everything already put stays in the queue.
    pub fn close(&self) {
        self.closed.store(true, Release);
    }

    fn check_open(&self) -> Result<(), IpcError> {
        if self.closed.load(Acquire) {
            Err(IpcError::Closed)
        } else {
            Ok(())
        }
    }
}

impl<T: Serialize> Queue<T> {
    fn put_impl(&self, item: &T, deadline: Option<Instant>, block: bool) -> Result<(), IpcError> {
        // Most messages are small: encode them straight into the ring (no buffer, no copy);
        // larger ones, or any when the queue is (nearly) full, into this thread's reused
        // buffer, then copy.
        if self.try_put_in_place(|room| Ok(codec::encode_small(item, room)?.map(|b| b.len())))? {
            return Ok(());
        }
        ENCODE_BUF.with(|cell| {
            let mut buf = cell.take();
            buf.clear();
            let r = codec::encode_into(item, &mut buf)
                .map_err(IpcError::from)
                .and_then(|()| self.put_bytes(&buf, deadline, block));
            if buf.capacity() <= 64 * 1024 {
                cell.replace(buf);
            }
            r
        })
    }

    /// Put an item, waiting while the queue is full.
    pub fn put(&self, item: T) -> Result<(), IpcError> {
        self.put_impl(&item, None, true)
    }

    /// Put an item, waiting at most `timeout` for room (`Err(Full)`).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), IpcError> {
        self.put_impl(&item, Some(Instant::now() + timeout), true)
    }

    /// Put an item only if there is room now (`Err(Full)`).
    pub fn put_nowait(&self, item: T) -> Result<(), IpcError> {
        self.put_impl(&item, None, false)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Take an item, waiting while the queue is empty.
    pub fn get(&self) -> Result<T, IpcError> {
        self.get_with(None, true, |b| Ok(codec::decode(b)?))
    }

    /// Take an item, waiting at most `timeout` (`Err(Empty)`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, IpcError> {
        self.get_with(Some(Instant::now() + timeout), true, |b| {
            Ok(codec::decode(b)?)
        })
    }

    /// Take an item only if one is there now (`Err(Empty)`).
    pub fn get_nowait(&self) -> Result<T, IpcError> {
        self.get_with(None, false, |b| Ok(codec::decode(b)?))
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let seg = Segment::deserialize(d)?;
        // Every ring access trusts the header's size: check it against the segment before use.
        if seg.len() < DATA_OFFSET {
            return Err(serde::de::Error::custom("a queue's segment is too small"));
        }
        // SAFETY: the segment has at least DATA_OFFSET >= size_of::<Header>() bytes, so the
        // header is inside it; cap_units is written once, before the segment is shared.
        let units = unsafe { (*(seg.as_ptr() as *const Header)).cap_units } as usize;
        if !units.is_power_of_two() || DATA_OFFSET + units * UNIT != seg.len() {
            return Err(serde::de::Error::custom(
                "a queue's segment does not match its header",
            ));
        }
        Ok(Queue {
            seg: Arc::new(seg),
            closed: Arc::new(AtomicBool::new(false)),
            spin: Spin::default(),
            _t: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{BorrowedFd, OwnedFd};

    use super::*;

    /// `seg` as a child receives it: serialized through the spawn outbox, decoded as a `T`.
    fn received<T: DeserializeOwned>(seg: &Segment) -> postcard::Result<T> {
        let (bytes, fds) = crate::handle::collecting(|| crate::codec::encode(seg));
        let fds: Vec<OwnedFd> = fds
            .iter()
            .map(|&fd| {
                // SAFETY: `seg` is alive and owns the descriptor for the whole call.
                unsafe { BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .unwrap()
            })
            .collect();
        crate::handle::providing(fds, || crate::codec::decode::<T>(&bytes.unwrap()))
    }

    #[test]
    fn a_received_queue_segment_must_match_its_header() {
        let q = Queue::<u32>::new().unwrap();
        q.put(7).unwrap();
        let same: Queue<u32> = received(&q.seg).unwrap();
        assert_eq!(same.get().unwrap(), 7);
        // Too small for the header, and a header (all zeros) that names no ring.
        assert!(received::<Queue<u32>>(&Segment::new(64).unwrap()).is_err());
        let zeroed = Segment::new(DATA_OFFSET + (1 << 20)).unwrap();
        assert!(received::<Queue<u32>>(&zeroed).is_err());
    }

    #[test]
    fn a_record_claiming_more_than_the_ring_is_corrupt() {
        let q = Queue::<u32>::with_limits(0, 1 << 20).unwrap();
        q.put_bytes_blocking(b"abcd").unwrap();
        // SAFETY: the first record's length word is at the start of the ring; this test's queue
        // is used by this thread alone.
        unsafe { (q.seg.as_ptr().add(DATA_OFFSET) as *mut u32).write(u32::MAX - 1) };
        assert!(matches!(q.get_bytes(), Err(IpcError::Corrupt(_))));
    }
}
