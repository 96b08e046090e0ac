//! A lane: the byte ring in shared memory that carries one direction of a pipe. Every message
//! is a *record* `[u64 seq][u64 len][body]`; writer and reader copy with plain `memcpy` and
//! publish their progress as two monotonically increasing byte counters on separate cache
//! lines, so a small message costs no system call at all while the reader is awake, and a large
//! one is copied by both sides in parallel (a pipe serialises reader and writer on one kernel
//! mutex and allocates a page per 4 KiB). The pipe's descriptor stays beside the lane as the
//! reader's *doorbell* (one byte, written only when the reader said it sleeps) and as the
//! detector of a hang-up: the kernel closes it when a peer dies.
//!
//! A reader that finds nothing spins briefly (adaptively, see [`crate::spin`]), then sleeps in
//! `poll(2)` on the descriptor. A writer waiting for room sleeps on a futex in short slices,
//! checking between slices whether the reader is gone, so a dead peer is an error, never a hang.
//!
//! ## Several writers, and a writer that dies in the middle of a message
//!
//! One sending end can be shared by several processes (a pool initializer hands the same
//! `Sender` to every worker), so writers take a robust mutex for a whole message. A writer can
//! be SIGKILLed half-way through a message; the lane must then neither splice the next writer's
//! bytes onto the torn message nor lose the next message, and a message whose sender died in
//! `send` is reported, not silently dropped. So:
//!
//! - A writer sets `cur` (the seq, start and end of the record it is writing) under the lock
//!   before it writes, and publishes the 16-byte prefix together with the first piece of the
//!   body, never alone (a small message is published whole, in one store).
//! - Whoever takes the writer lock next and finds `cur` unfinished (the lock said `OwnerDied`,
//!   to it or to a reader that took the lock in between) repairs it. If part of the record was published, the reader must consume it first and be told it is
//!   torn: the repairer raises `torn` and waits (holding the lock) for the reader's `torn_ack`.
//!   If none of it was published, the repairer writes a *tombstone* record in its place (a
//!   prefix whose length is [`TOMBSTONE`]), which the reader reports as [`IpcError::Torn`].
//!   Then the next record starts right behind.
//! - A reader waiting for bytes that never come (the writer died and nobody else writes) takes
//!   the writer lock itself with `try_lock` between sleeps: if it gets it while a record is
//!   unfinished, that record never will be, and it reports [`IpcError::Torn`].
//!
//! The reader keeps its progress in a [`ReadState`], so a timed receive can give up in the
//! middle of a body and a later receive carries on where it stopped.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::error::IpcError;
use crate::robust::RawRobustMutex;
use crate::shm::Segment;
use crate::sys;

/// Bytes of ring per direction (address space; pages become resident as they are used).
pub(super) const LANE_BYTES: usize = 4 << 20;
const DATA_OFFSET: usize = 4096;
/// At most this much is copied before it is published, so the reader starts copying while the
/// writer is still at work on the same message.
const PIECE: usize = 256 << 10;
/// How long a writer waiting for room spins before it sleeps on the futex.
const SPIN: Duration = Duration::from_micros(50);
const SLICE: Duration = Duration::from_millis(20);
/// Record prefix: sequence number and body length.
const PREFIX: u64 = 16;
/// The length of a tombstone: a record whose writer died before publishing any of it.
const TOMBSTONE: u64 = u64::MAX;

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
    /// Held by a writer from its token to the last byte of its body, so that several processes
    /// sharing one sending end can't interleave.
    writers: RawRobustMutex,
    /// The next record's sequence number (under `writers`).
    next_seq: AtomicU64,
    /// The record being written: its sequence number, first and one-past-last byte position.
    /// `cur_end == written` when no record is in progress.
    cur_seq: AtomicU64,
    cur_start: AtomicU64,
    cur_end: AtomicU64,
    /// `seq + 1` of a record a repairer declared torn after part of it was published; 0 if none.
    torn: AtomicU64,
    /// `seq + 1` of the torn record the reader has given up on.
    torn_ack: AtomicU64,
}

/// The size of a lane's segment: the header's page, then the ring.
const SEGMENT_BYTES: usize = DATA_OFFSET + LANE_BYTES;

/// Create the shared segment for one direction.
pub(super) fn new_segment() -> std::io::Result<Segment> {
    const _: () = assert!(std::mem::size_of::<Header>() <= DATA_OFFSET);
    let seg = Segment::new(SEGMENT_BYTES)?;
    // SAFETY: fresh zeroed memory nobody else has seen.
    unsafe {
        let h = seg.as_ptr() as *mut Header;
        RawRobustMutex::init(std::ptr::addr_of_mut!((*h).writers))?;
    }
    Ok(seg)
}

/// Check a segment received with a pipe end: every access below assumes the size
/// `new_segment` gives, so a segment of any other size is refused before it is used.
pub(super) fn check_segment(seg: &Segment) -> Result<(), String> {
    if seg.len() == SEGMENT_BYTES {
        Ok(())
    } else {
        Err(format!(
            "a pipe's lane segment has {} bytes, not {SEGMENT_BYTES}",
            seg.len()
        ))
    }
}

fn header(seg: &Segment) -> &Header {
    // SAFETY: the segment was created by new_segment (zeroed, then its mutex initialised) or
    // received and checked by check_segment, so it holds a Header at offset 0 (page-aligned);
    // every field is an atomic or the process-shared mutex, which other processes may change
    // under a shared reference. The reference borrows `seg`, so it cannot outlive the mapping.
    unsafe { &*(seg.as_ptr() as *const Header) }
}

fn data(seg: &Segment) -> *mut u8 {
    // SAFETY: a lane segment is SEGMENT_BYTES long (see `header`), so DATA_OFFSET is inside it.
    unsafe { seg.as_ptr().add(DATA_OFFSET) }
}

/// Copy `src` into the ring at stream position `pos`, wrapping at the end.
fn copy_in(seg: &Segment, pos: u64, src: &[u8]) {
    let off = (pos % LANE_BYTES as u64) as usize;
    let first = src.len().min(LANE_BYTES - off);
    assert!(src.len() <= LANE_BYTES, "a lane copy is at most one ring");
    // SAFETY: `off + first <= LANE_BYTES` and `src.len() - first <= LANE_BYTES` (asserted), so
    // both pieces land inside the ring; `src` is a live slice of our own memory, not the ring.
    // The writer lock and the counters make these bytes the writer's alone until published.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), data(seg).add(off), first);
        std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data(seg), src.len() - first);
    }
}

/// Copy from the ring at stream position `pos` into `dst`, wrapping at the end.
fn copy_out(seg: &Segment, pos: u64, dst: &mut [MaybeUninit<u8>]) {
    let off = (pos % LANE_BYTES as u64) as usize;
    let first = dst.len().min(LANE_BYTES - off);
    let d = dst.as_mut_ptr().cast::<u8>();
    assert!(dst.len() <= LANE_BYTES, "a lane copy is at most one ring");
    // SAFETY: as in `copy_in`, both pieces lie inside the ring; `dst` is a live, writable
    // slice of our own memory. The bytes were published by the writer (the counters), who does
    // not touch them again until the reader's counter passes them.
    unsafe {
        std::ptr::copy_nonoverlapping(data(seg).add(off), d, first);
        std::ptr::copy_nonoverlapping(data(seg), d.add(first), dst.len() - first);
    }
}

/// How one wait ended.
enum Woke {
    Ready,
    /// A slice passed without progress: time for the caller's own checks.
    Slice,
}

/// Wait (as a writer, for the reader's counter) until `ready()` holds or one sleep slice passes.
fn wait(mine: &Counter, ready: &dyn Fn() -> bool) -> Woke {
    let start = Instant::now();
    while start.elapsed() < SPIN {
        if ready() {
            return Woke::Ready;
        }
        std::hint::spin_loop();
    }
    mine.sleeping.fetch_add(1, SeqCst);
    let seq = mine.seq.load(SeqCst);
    if !ready() {
        sys::futex_wait(&mine.seq, seq, Some(SLICE));
    }
    mine.sleeping.fetch_sub(1, SeqCst);
    if ready() {
        Woke::Ready
    } else {
        Woke::Slice
    }
}

/// Move the reader's counter, waking a writer that sleeps on it.
fn publish_read(h: &Header, value: u64) {
    h.read.bytes.store(value, SeqCst);
    if h.read.sleeping.load(SeqCst) > 0 {
        h.read.seq.fetch_add(1, SeqCst);
        sys::futex_wake(&h.read.seq, i32::MAX);
    }
}

/// Move the writer's counter; ring the reader's doorbell if it said it sleeps. The store and
/// the load are both SeqCst, and so are the reader's (see [`sleeping`]): either the reader sees
/// the bytes before it sleeps, or we see it asleep.
fn publish_written(h: &Header, value: u64, ring: &dyn Fn()) {
    h.written.bytes.store(value, SeqCst);
    if h.written.sleeping.load(SeqCst) > 0 {
        ring();
    }
}

/// The reader's "I am about to sleep" count: raise it, look at [`has_data`] again, sleep, lower.
pub(super) fn sleeping(seg: &Segment) -> &AtomicU32 {
    &header(seg).written.sleeping
}

/// Are there bytes the reader has not taken?
pub(super) fn has_data(seg: &Segment) -> bool {
    let h = header(seg);
    h.written.bytes.load(SeqCst) != h.read.bytes.load(Relaxed)
}

/// The lane's writer lock, held for one whole message.
pub(super) struct WriterGuard<'a>(&'a RawRobustMutex);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Take the lane's writer lock. If its last holder died in the middle of a record, repair the
/// lane first (see the module docs): the torn record is reported to the reader, never spliced.
/// `reader_alive` says whether the receiving end is still open; `ring` rings its doorbell.
pub(super) fn lock_writers<'a>(
    seg: &'a Segment,
    reader_alive: &dyn Fn() -> bool,
    ring: &dyn Fn(),
) -> Result<WriterGuard<'a>, IpcError> {
    let h = header(seg);
    h.writers.lock()?;
    let guard = WriterGuard(&h.writers);
    // A record still in progress under a free lock was left by a writer that died (the lock
    // said OwnerDied to us, or to a reader that took it in `check_stalled` and had to leave the
    // record for us) or whose send failed half-way: either way it will never be finished.
    if h.cur_end.load(SeqCst) > h.written.bytes.load(SeqCst) {
        repair(seg, reader_alive, ring)?;
    }
    Ok(guard)
}

/// Wait until the ring has `n` free bytes at writer position `w`.
fn room_for(h: &Header, w: u64, n: u64, reader_alive: &dyn Fn() -> bool) -> Result<(), IpcError> {
    let free = || LANE_BYTES as u64 - (w - h.read.bytes.load(SeqCst));
    while free() < n {
        if let Woke::Slice = wait(&h.read, &|| free() >= n) {
            if !reader_alive() && free() < n {
                return Err(IpcError::BrokenPipe);
            }
        }
    }
    Ok(())
}

/// Close the record a dead writer left unfinished. Called with the writer lock held, when
/// `cur_end` is past what was published.
fn repair(seg: &Segment, reader_alive: &dyn Fn() -> bool, ring: &dyn Fn()) -> Result<(), IpcError> {
    let h = header(seg);
    let w = h.written.bytes.load(SeqCst);
    let seq = h.cur_seq.load(SeqCst);
    if w > h.cur_start.load(SeqCst) {
        // Part of it is out: the reader must take those bytes and learn the record is torn
        // before anyone writes behind them.
        let tag = seq + 1;
        h.torn.store(tag, SeqCst);
        ring();
        while h.torn_ack.load(SeqCst) != tag {
            let acked = || h.torn_ack.load(SeqCst) == tag;
            if let Woke::Slice = wait(&h.read, &acked) {
                if !reader_alive() && !acked() {
                    return Err(IpcError::BrokenPipe);
                }
            }
        }
        h.torn.store(0, SeqCst);
        h.cur_start.store(w, SeqCst);
        h.cur_end.store(w, SeqCst);
        return Ok(());
    }
    // Nothing of it is out: leave a tombstone where it would have been.
    room_for(h, w, PREFIX, reader_alive)?;
    let mut prefix = [0u8; PREFIX as usize];
    prefix[..8].copy_from_slice(&seq.to_le_bytes());
    prefix[8..].copy_from_slice(&TOMBSTONE.to_le_bytes());
    copy_in(seg, w, &prefix);
    h.cur_start.store(w + PREFIX, SeqCst);
    h.cur_end.store(w + PREFIX, SeqCst);
    publish_written(h, w + PREFIX, ring);
    Ok(())
}

/// Write one message as a lane record. Call with the writer lock held.
pub(super) fn write(
    seg: &Segment,
    body: &[u8],
    reader_alive: &dyn Fn() -> bool,
    ring: &dyn Fn(),
) -> Result<(), IpcError> {
    let h = header(seg);
    let seq = h.next_seq.load(Relaxed);
    h.next_seq.store(seq.wrapping_add(1), Relaxed);
    let start = h.written.bytes.load(Relaxed);
    let end = start + PREFIX + body.len() as u64;
    h.cur_seq.store(seq, Relaxed);
    h.cur_start.store(start, Relaxed);
    // SeqCst: a reader that takes the lock after we die must see the record as in progress.
    h.cur_end.store(end, SeqCst);
    let mut prefix = [0u8; PREFIX as usize];
    prefix[..8].copy_from_slice(&seq.to_le_bytes());
    prefix[8..].copy_from_slice(&(body.len() as u64).to_le_bytes());
    // The prefix is published with the first piece of the body, never on its own: a reader
    // that sees any byte of a record sees its whole prefix. A message up to a piece long goes
    // out whole, in one store, so a writer killed while sending it cannot tear it.
    let free = |w: u64| LANE_BYTES as u64 - (w - h.read.bytes.load(SeqCst));
    room_for(
        h,
        start,
        PREFIX + body.len().min(PIECE) as u64,
        reader_alive,
    )?;
    copy_in(seg, start, &prefix);
    let mut w = start + PREFIX;
    let mut src = body;
    loop {
        let n = (free(w) as usize).min(src.len()).min(PIECE);
        copy_in(seg, w, &src[..n]);
        w += n as u64;
        src = &src[n..];
        publish_written(h, w, ring);
        if src.is_empty() {
            return Ok(());
        }
        room_for(h, w, 1, reader_alive)?;
    }
}

/// A reader's progress through one record, kept across timed-out receives.
#[derive(Debug, Default)]
pub(super) struct ReadState {
    /// The record's sequence number and body length, once its prefix has been read.
    rec: Option<(u64, usize)>,
    /// The body so far.
    pub(super) body: Vec<u8>,
}

impl ReadState {
    /// True while a record's body is half read.
    pub(super) fn in_record(&self) -> bool {
        self.rec.is_some()
    }

    fn reset(&mut self) {
        self.rec = None;
        self.body.clear();
    }
}

/// What a reader found.
pub(super) enum Progress {
    /// A whole record lies in one piece in the ring: read it with [`inline`], then
    /// [`finish_inline`].
    Inline { at: usize, len: usize },
    /// `body` holds a whole record.
    Whole,
    /// Nothing more can be taken now.
    Empty,
}

/// Take what is there of the next record, without waiting. `Err(Torn)` reports a record whose
/// writer died before finishing it (a tombstone, or the repairer's flag).
pub(super) fn advance(seg: &Segment, st: &mut ReadState) -> Result<Progress, IpcError> {
    let h = header(seg);
    let mut r = h.read.bytes.load(Relaxed);
    loop {
        let avail = h.written.bytes.load(SeqCst) - r;
        match st.rec {
            None if avail < PREFIX => return Ok(Progress::Empty),
            None => {
                let mut prefix = [MaybeUninit::<u8>::uninit(); PREFIX as usize];
                copy_out(seg, r, &mut prefix);
                // SAFETY: copy_out filled every byte.
                let prefix: [u8; PREFIX as usize] = unsafe { std::mem::transmute(prefix) };
                let seq = u64::from_le_bytes(prefix[..8].try_into().unwrap());
                let len = u64::from_le_bytes(prefix[8..].try_into().unwrap());
                if len == TOMBSTONE {
                    publish_read(h, r + PREFIX);
                    return Err(IpcError::Torn);
                }
                if len > super::MAX_MESSAGE as u64 {
                    return Err(IpcError::Corrupt(format!("lane record claims {len} bytes")));
                }
                let off = (r % LANE_BYTES as u64) as usize + PREFIX as usize;
                if avail >= PREFIX + len && off + len as usize <= LANE_BYTES {
                    return Ok(Progress::Inline {
                        at: off,
                        len: len as usize,
                    });
                }
                r += PREFIX;
                publish_read(h, r);
                st.rec = Some((seq, len as usize));
                st.body.clear();
                st.body.reserve(len as usize);
            }
            Some((_, len)) if st.body.len() == len => {
                st.rec = None;
                return Ok(Progress::Whole);
            }
            Some(_) if avail == 0 => return Ok(Progress::Empty),
            Some((_, len)) => {
                let n = (avail as usize).min(len - st.body.len()).min(PIECE);
                let at = st.body.len();
                copy_out(seg, r, &mut st.body.spare_capacity_mut()[..n]);
                // SAFETY: copy_out initialised those n bytes.
                unsafe { st.body.set_len(at + n) };
                r += n as u64;
                publish_read(h, r);
            }
        }
    }
}

/// The body of a record [`advance`] found whole and in one piece.
pub(super) fn inline(seg: &Segment, at: usize, len: usize) -> &[u8] {
    assert!(
        at + len <= LANE_BYTES,
        "an inline record lies inside the ring"
    );
    // SAFETY: `at + len` is inside the ring (asserted), whose memory lives as long as `seg`.
    // The writer published these bytes and does not write there again until the reader's
    // counter passes them, which only `finish_inline` (called after the last use) does.
    unsafe { std::slice::from_raw_parts(data(seg).add(at), len) }
}

/// Consume the record [`inline`] showed.
pub(super) fn finish_inline(seg: &Segment, len: usize) {
    let h = header(seg);
    let r = h.read.bytes.load(Relaxed);
    publish_read(h, r + PREFIX + len as u64);
}

/// Called by a reader that slept a slice with nothing new: is the record it waits for (or the
/// one in progress) one that can never be finished? `Err(Torn)` if so (the lane is then ready
/// for the next record).
pub(super) fn check_stalled(seg: &Segment, st: &mut ReadState) -> Result<(), IpcError> {
    let h = header(seg);
    if let Some((seq, _)) = st.rec {
        if h.torn.load(SeqCst) == seq + 1 {
            // A repairer holds the writer lock and waits for us to let go of this record.
            h.torn_ack.store(seq + 1, SeqCst);
            h.read.seq.fetch_add(1, SeqCst);
            sys::futex_wake(&h.read.seq, i32::MAX);
            st.reset();
            return Err(IpcError::Torn);
        }
    }
    let Some(_acquired) = h.writers.try_lock()? else {
        return Ok(()); // a writer is at work
    };
    // Nobody is writing. Anything written before the lock was let go is visible now.
    let _guard = WriterGuard(&h.writers);
    if has_data(seg) {
        // Bytes to take first. A record left unfinished stays marked in `cur` (even though
        // the lock no longer says OwnerDied): we, or the next writer, close it later.
        return Ok(());
    }
    let w = h.written.bytes.load(SeqCst);
    if h.cur_end.load(SeqCst) > w {
        // The record in progress will never be finished (its writer died): close it, so the
        // next writer starts right behind its bytes.
        h.cur_start.store(w, SeqCst);
        h.cur_end.store(w, SeqCst);
        st.reset();
        return Err(IpcError::Torn);
    }
    if st.in_record() {
        st.reset();
        return Err(IpcError::Torn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_segment_of_a_lanes_size_is_accepted() {
        assert!(check_segment(&new_segment().unwrap()).is_ok());
        assert!(check_segment(&Segment::new(DATA_OFFSET).unwrap()).is_err());
    }
}
