//! A lane: a single-writer, single-reader byte stream in shared memory, beside a pipe, that
//! carries the bodies of large messages. The pipe keeps the order (it carries a 4-byte header
//! saying "the next N bytes are in the lane"); the lane moves the bytes with plain `memcpy` on
//! both sides, in parallel — a pipe serialises its reader and writer on one kernel mutex and
//! allocates a page per 4 KiB, which held bulk transfers under 1 GB/s.
//!
//! Progress is two monotonically increasing byte counters on separate cache lines. Waits spin
//! briefly, then sleep on a futex in short slices, checking between slices whether the peer's
//! end of the pipe is gone, so a dead peer is an error, never a hang.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::error::IpcError;
use crate::robust::RawRobustMutex;
use crate::shm::Segment;
use crate::sys;

/// Bytes of ring per direction (address space; pages become resident as they are used).
pub const LANE_BYTES: usize = 4 << 20;
const DATA_OFFSET: usize = 4096;
/// At most this much is copied before it is published, so the reader starts copying while the
/// writer is still at work on the same message.
const PIECE: usize = 256 << 10;
const SPIN: Duration = Duration::from_micros(50);
const SLICE: Duration = Duration::from_millis(20);

#[repr(C, align(64))]
struct Counter {
    bytes: AtomicU64,
    /// Futex word bumped when `bytes` moves and the other side sleeps.
    seq: AtomicU32,
    /// The other side is sleeping on `seq`.
    sleeping: AtomicU32,
}

#[repr(C)]
struct Header {
    written: Counter,
    read: Counter,
    /// Held by a writer from its frame header to the last byte of its body, so that several
    /// processes sharing one sending end (e.g. through a pool initializer) can't interleave.
    writers: RawRobustMutex,
}

/// The writer lock of a lane, held for one whole message.
pub struct WriterGuard<'a>(&'a RawRobustMutex);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Take the lane's writer lock. A writer that died holding it left at most a torn message,
/// which its reader reports; the lock itself carries on.
pub fn lock_writers(seg: &Segment) -> Result<WriterGuard<'_>, IpcError> {
    let m = &header(seg).writers;
    m.lock()?;
    Ok(WriterGuard(m))
}

/// Create the shared segment for one direction.
pub fn new_segment() -> std::io::Result<Segment> {
    let seg = Segment::new(DATA_OFFSET + LANE_BYTES)?;
    // SAFETY: fresh zeroed memory nobody else has seen.
    unsafe {
        let h = seg.as_ptr() as *mut Header;
        RawRobustMutex::init(std::ptr::addr_of_mut!((*h).writers))?;
    }
    Ok(seg)
}

fn header(seg: &Segment) -> &Header {
    // SAFETY: the segment was created by new_segment (zeroed, large enough) and outlives the
    // reference.
    unsafe { &*(seg.as_ptr() as *const Header) }
}

fn data(seg: &Segment) -> *mut u8 {
    unsafe { seg.as_ptr().add(DATA_OFFSET) }
}

/// Wait until `ready()` holds. `mine` is the counter the other side moves to wake us.
fn wait(
    mine: &Counter,
    ready: impl Fn() -> bool,
    peer_alive: &dyn Fn() -> bool,
) -> Result<(), IpcError> {
    let start = Instant::now();
    while start.elapsed() < SPIN {
        if ready() {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    loop {
        mine.sleeping.fetch_add(1, SeqCst);
        let seq = mine.seq.load(SeqCst);
        if ready() {
            mine.sleeping.fetch_sub(1, SeqCst);
            return Ok(());
        }
        sys::futex_wait(&mine.seq, seq, Some(SLICE));
        mine.sleeping.fetch_sub(1, SeqCst);
        if ready() {
            return Ok(());
        }
        // Look once more after seeing the hang-up: the peer may have published its last piece
        // and exited between our two looks.
        if !peer_alive() && !ready() {
            return Err(IpcError::Corrupt(
                "peer went away in the middle of a large message".into(),
            ));
        }
    }
}

/// Move a counter, waking the other side if it sleeps on it.
fn publish(counter: &Counter, value: u64) {
    counter.bytes.store(value, SeqCst);
    if counter.sleeping.load(SeqCst) > 0 {
        counter.seq.fetch_add(1, SeqCst);
        sys::futex_wake(&counter.seq, 1);
    }
}

/// Copy all of `src` into the lane, waiting for room as the reader drains it.
pub fn write(seg: &Segment, mut src: &[u8], peer_alive: &dyn Fn() -> bool) -> Result<(), IpcError> {
    let h = header(seg);
    let cap = LANE_BYTES as u64;
    let mut w = h.written.bytes.load(Relaxed);
    while !src.is_empty() {
        let free = || cap - (w - h.read.bytes.load(SeqCst));
        if free() == 0 {
            // We sleep on `read`'s futex: the reader bumps it when it frees room.
            wait(&h.read, || free() > 0, peer_alive).map_err(|_| IpcError::BrokenPipe)?;
        }
        let off = (w % cap) as usize;
        let n = (free() as usize)
            .min(src.len())
            .min(LANE_BYTES - off)
            .min(PIECE);
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), data(seg).add(off), n) };
        w += n as u64;
        src = &src[n..];
        publish(&h.written, w);
    }
    Ok(())
}

/// Fill all of `dst` from the lane, waiting for the writer.
pub fn read(
    seg: &Segment,
    mut dst: &mut [std::mem::MaybeUninit<u8>],
    peer_alive: &dyn Fn() -> bool,
) -> Result<(), IpcError> {
    let h = header(seg);
    let cap = LANE_BYTES as u64;
    let mut r = h.read.bytes.load(Relaxed);
    while !dst.is_empty() {
        let avail = || h.written.bytes.load(SeqCst) - r;
        if avail() == 0 {
            wait(&h.written, || avail() > 0, peer_alive)?;
        }
        let off = (r % cap) as usize;
        let n = (avail() as usize)
            .min(dst.len())
            .min(LANE_BYTES - off)
            .min(PIECE);
        unsafe { std::ptr::copy_nonoverlapping(data(seg).add(off), dst.as_mut_ptr().cast(), n) };
        r += n as u64;
        dst = &mut dst[n..];
        publish(&h.read, r);
    }
    Ok(())
}
