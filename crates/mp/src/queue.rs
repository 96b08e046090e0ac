//! `Queue`: Python's `multiprocessing.Queue` without the feeder thread.
//!
//! The queue is a ring of length-prefixed records in one shared memory segment, guarded by a
//! robust process-shared mutex, with two futex words for "not empty" and "not full". `put`
//! copies the encoded message into the ring before it returns, so nothing sits in a per-process
//! buffer that could be lost at exit or deadlock a join (the CPython pitfall), and `qsize` is
//! exact. Many producers and consumers, in any processes, may share one queue.
//!
//! "Unbounded" queues are bounded by bytes, not items: the ring is 1 GiB of address space
//! (configurable), of which only the pages holding unread messages are resident — consumed
//! pages are handed back to the kernel every megabyte. A put that would overflow the ring waits
//! like a put on a full bounded queue.
//!
//! If a process dies while holding the lock, the next locker repairs the item count from the
//! records themselves; a record is only published (tail advanced) once fully written, so a
//! half-written message is never seen.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpcError;
use crate::robust::{Acquired, RawRobustMutex};
use crate::shm::Segment;
use crate::{codec, sys};

/// Default ring size for both bounded and unbounded queues.
pub const DEFAULT_CAPACITY: usize = 1 << 30;
const DATA_OFFSET: usize = 4096;
const WRAP: u32 = u32::MAX;
const RELEASE_CHUNK: u64 = 1 << 20;
const SPINS: u32 = 200;

#[repr(C)]
struct Header {
    mutex: RawRobustMutex,
    not_empty: AtomicU32,
    not_full: AtomicU32,
    getters: AtomicU32,
    putters: AtomicU32,
    count: AtomicU64,
    head: AtomicU64,
    tail: AtomicU64,
    released: AtomicU64,
    maxsize: u64,
    capacity: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= DATA_OFFSET);

fn record_len(payload: usize) -> u64 {
    ((4 + payload as u64) + 7) & !7
}

/// A multi-producer, multi-consumer queue shared between processes and threads.
/// Clone it to get another handle; pass a clone to a child as a spawn argument.
pub struct Queue<T> {
    seg: Arc<Segment>,
    closed: Arc<AtomicBool>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            seg: self.seg.clone(),
            closed: Arc::new(AtomicBool::new(false)),
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

/// The lock held over the ring; unlocks on drop, so a panic while decoding can't wedge it.
struct Locked<'a> {
    h: &'a Header,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.h.mutex.unlock();
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
    /// (rounded up to whole megabytes). The largest message is `capacity - 8` bytes.
    pub fn with_limits(maxsize: usize, capacity: usize) -> Result<Queue<T>, IpcError> {
        let capacity = (capacity.max(1) as u64).div_ceil(RELEASE_CHUNK) * RELEASE_CHUNK;
        let seg = Segment::new(DATA_OFFSET + capacity as usize)?;
        let h = seg.as_ptr() as *mut Header;
        // SAFETY: a fresh zeroed segment nobody else has seen yet; zero is a valid state for
        // every atomic field.
        unsafe {
            RawRobustMutex::init(std::ptr::addr_of_mut!((*h).mutex))?;
            (*h).maxsize = maxsize as u64;
            (*h).capacity = capacity;
        }
        Ok(Queue {
            seg: Arc::new(seg),
            closed: Arc::new(AtomicBool::new(false)),
            _t: PhantomData,
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the segment starts with an initialised Header and outlives `self`.
        unsafe { &*(self.seg.as_ptr() as *const Header) }
    }

    fn data(&self) -> *mut u8 {
        unsafe { self.seg.as_ptr().add(DATA_OFFSET) }
    }

    /// Exact number of items in the queue. Takes the lock, so that a count left half-updated
    /// by a process killed mid-`put` is repaired before it is reported.
    pub fn qsize(&self) -> usize {
        match self.lock() {
            Ok(_g) => self.header().count.load(Ordering::Acquire) as usize,
            Err(_) => self.header().count.load(Ordering::Acquire) as usize,
        }
    }

    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    pub fn full(&self) -> bool {
        let max = self.header().maxsize;
        max > 0 && self.qsize() as u64 >= max
    }

    /// The item limit (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.header().maxsize as usize
    }

    /// This handle will put and get no more (Python's `close()`); other handles, in this or
    /// other processes, keep working. Everything already put stays in the queue.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn check_open(&self) -> Result<(), IpcError> {
        if self.closed.load(Ordering::Acquire) {
            Err(IpcError::Closed)
        } else {
            Ok(())
        }
    }

    fn lock(&self) -> Result<Locked<'_>, IpcError> {
        let h = self.header();
        if h.mutex.lock()? == Acquired::OwnerDied {
            self.repair(h);
        }
        Ok(Locked { h })
    }

    /// After an owner died mid-operation: recount the published records.
    fn repair(&self, h: &Header) {
        let cap = h.capacity;
        let (mut pos, tail) = (
            h.head.load(Ordering::Relaxed),
            h.tail.load(Ordering::Relaxed),
        );
        let mut n = 0;
        while pos < tail {
            let off = pos % cap;
            let len = unsafe { (self.data().add(off as usize) as *const u32).read() };
            if len == WRAP {
                pos += cap - off;
                continue;
            }
            pos += record_len(len as usize);
            n += 1;
        }
        h.count.store(n, Ordering::Release);
    }

    /// Space needed to append `need` bytes at `tail` (including a wrap marker's skip).
    fn space_for(h: &Header, need: u64) -> u64 {
        let off = h.tail.load(Ordering::Relaxed) % h.capacity;
        let contiguous = h.capacity - off;
        if need <= contiguous {
            need
        } else {
            contiguous + need
        }
    }

    fn put_bytes(
        &self,
        body: &[u8],
        deadline: Option<Instant>,
        block: bool,
    ) -> Result<(), IpcError> {
        self.check_open()?;
        let need = record_len(body.len());
        let h = self.header();
        if need > h.capacity || body.len() >= WRAP as usize {
            return Err(IpcError::MessageTooLarge {
                size: body.len(),
                max: (h.capacity - 8) as usize,
            });
        }
        let mut g = self.lock()?;
        loop {
            let used = h.tail.load(Ordering::Relaxed) - h.head.load(Ordering::Relaxed);
            let room_items = h.maxsize == 0 || h.count.load(Ordering::Relaxed) < h.maxsize;
            if room_items && Self::space_for(h, need) <= h.capacity - used {
                break;
            }
            if !block {
                return Err(IpcError::Full);
            }
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Err(IpcError::Full);
            }
            let seq = h.not_full.load(Ordering::Acquire);
            h.putters.fetch_add(1, Ordering::Relaxed);
            drop(g);
            sys::futex_wait(&h.not_full, seq, left);
            g = self.lock()?;
            h.putters.fetch_sub(1, Ordering::Relaxed);
        }
        let cap = h.capacity;
        let mut tail = h.tail.load(Ordering::Relaxed);
        let off = tail % cap;
        let data = self.data();
        unsafe {
            if need > cap - off {
                (data.add(off as usize) as *mut u32).write(WRAP);
                tail += cap - off;
            }
            let at = data.add((tail % cap) as usize);
            (at as *mut u32).write(body.len() as u32);
            std::ptr::copy_nonoverlapping(body.as_ptr(), at.add(4), body.len());
        }
        // Publish: count first, then tail; repair() recounts if we die in between.
        h.count.fetch_add(1, Ordering::Release);
        h.tail.store(tail + need, Ordering::Release);
        if h.getters.load(Ordering::Relaxed) > 0 {
            h.not_empty.fetch_add(1, Ordering::Release);
            sys::futex_wake(&h.not_empty, 1);
        }
        drop(g);
        Ok(())
    }

    fn get_with<R>(
        &self,
        deadline: Option<Instant>,
        block: bool,
        f: impl FnOnce(&[u8]) -> Result<R, IpcError>,
    ) -> Result<R, IpcError> {
        self.check_open()?;
        let h = self.header();
        let mut spins = 0;
        let mut g = self.lock()?;
        while h.count.load(Ordering::Relaxed) == 0 {
            if !block {
                return Err(IpcError::Empty);
            }
            let left = sys::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Err(IpcError::Empty);
            }
            if spins < SPINS {
                // A producer on the other core is usually microseconds away: spinning briefly
                // saves a futex sleep and wake-up on both sides.
                drop(g);
                while spins < SPINS && h.count.load(Ordering::Relaxed) == 0 {
                    std::hint::spin_loop();
                    spins += 1;
                }
                g = self.lock()?;
                continue;
            }
            let seq = h.not_empty.load(Ordering::Acquire);
            h.getters.fetch_add(1, Ordering::Relaxed);
            drop(g);
            sys::futex_wait(&h.not_empty, seq, left);
            g = self.lock()?;
            h.getters.fetch_sub(1, Ordering::Relaxed);
        }
        let cap = h.capacity;
        let mut head = h.head.load(Ordering::Relaxed);
        let data = self.data();
        let (len, at) = unsafe {
            let mut at = data.add((head % cap) as usize);
            let mut len = (at as *const u32).read();
            if len == WRAP {
                head += cap - head % cap;
                at = data;
                len = (at as *const u32).read();
            }
            (len as usize, at.add(4))
        };
        // Decode straight from the ring while we hold the lock: no intermediate copy.
        let out = f(unsafe { std::slice::from_raw_parts(at, len) });
        let new_head = head + record_len(len);
        h.head.store(new_head, Ordering::Release);
        h.count.fetch_sub(1, Ordering::Release);
        let released = h.released.load(Ordering::Relaxed);
        if new_head - released >= RELEASE_CHUNK {
            let upto = new_head / RELEASE_CHUNK * RELEASE_CHUNK;
            // A consumed position p shares its offset with p + cap; once the producers have
            // written there (p + cap < tail) the page holds live data and must stay.
            let live_from = h.tail.load(Ordering::Relaxed).saturating_sub(cap);
            let mut pos = released.max(live_from.div_ceil(RELEASE_CHUNK) * RELEASE_CHUNK);
            while pos < upto {
                let off = pos % cap;
                let len = (upto - pos).min(cap - off);
                self.seg.release(DATA_OFFSET + off as usize, len as usize);
                pos += len;
            }
            h.released.store(upto, Ordering::Relaxed);
        }
        if h.putters.load(Ordering::Relaxed) > 0 {
            h.not_full.fetch_add(1, Ordering::Release);
            sys::futex_wake(&h.not_full, 1);
        }
        drop(g);
        out
    }

    /// Put raw bytes as one item (pair with `get_bytes`).
    pub fn put_bytes_blocking(&self, bytes: &[u8]) -> Result<(), IpcError> {
        self.put_bytes(bytes, None, true)
    }

    /// Take one item as raw bytes.
    pub fn get_bytes(&self) -> Result<Vec<u8>, IpcError> {
        self.get_with(None, true, |b| Ok(b.to_vec()))
    }
}

impl<T: Serialize> Queue<T> {
    fn put_impl(&self, item: &T, deadline: Option<Instant>, block: bool) -> Result<(), IpcError> {
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
        Ok(Queue {
            seg: Arc::new(seg),
            closed: Arc::new(AtomicBool::new(false)),
            _t: PhantomData,
        })
    }
}
