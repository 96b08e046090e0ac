//! A lane: a byte ring in shared memory, beside a pipe, that carries the bodies of large
//! messages. The pipe keeps the order (it carries a 4-byte *token*, "the next message is lane
//! record number S"); the lane moves the bytes with plain `memcpy` on both sides, in parallel —
//! a pipe serialises its reader and writer on one kernel mutex and allocates a page per 4 KiB,
//! which held bulk transfers under 1 GB/s.
//!
//! Progress is two monotonically increasing byte counters on separate cache lines. Waits spin
//! briefly, then sleep on a futex in short slices, checking between slices whether the peer's
//! end of the pipe is gone, so a dead peer is an error, never a hang.
//!
//! ## Several writers, and a writer that dies in the middle of a message
//!
//! One sending end can be shared by several processes (a pool initializer hands the same
//! `Sender` to every worker), so writers take a robust mutex for a whole message. A writer can
//! be SIGKILLed half-way through a message; the lane must then neither splice the next writer's
//! bytes onto the torn message nor lose the next message. So:
//!
//! - Each lane message is a *record*, `[u64 seq][u64 len][body]`, and the token in the pipe
//!   names the record's sequence number (31 bits), not its length. A writer sets `cur` (the seq,
//!   start and end of the record it is writing) under the lock *before* it writes the token, and
//!   publishes the 16-byte prefix together with the first piece of the body, never alone.
//! - Whoever takes the writer lock next and finds it `OwnerDied` with `cur` unfinished repairs
//!   it. If part of the record was published, the reader must consume it first and be told it is
//!   torn: the repairer raises `torn` and waits (holding the lock) for the reader's `torn_ack`.
//!   Then the record is closed where it stopped and the next one starts right there.
//! - A reader waiting for bytes that never come (the writer died and nobody else writes) takes
//!   the writer lock itself with `try_lock`: if it gets it while nothing new has arrived, the
//!   record it waits for will never be finished, and it reports [`IpcError::Torn`].
//! - A token whose record never got a byte (the writer died between the token and the first
//!   piece) shows up as the *next* record's prefix carrying a newer sequence number: torn too,
//!   and that next record is left for its own token.
//!
//! The reader keeps its progress in a [`ReadState`], so a timed receive can give up in the
//! middle of a body and a later receive carries on where it stopped.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::error::IpcError;
use crate::robust::{Acquired, RawRobustMutex};
use crate::shm::Segment;
use crate::sys;

/// Bytes of ring per direction (address space; pages become resident as they are used).
pub(super) const LANE_BYTES: usize = 4 << 20;
const DATA_OFFSET: usize = 4096;
/// At most this much is copied before it is published, so the reader starts copying while the
/// writer is still at work on the same message.
const PIECE: usize = 256 << 10;
const SPIN: Duration = Duration::from_micros(50);
const SLICE: Duration = Duration::from_millis(20);
/// Record prefix: sequence number and body length.
const PREFIX: u64 = 16;
/// Sequence numbers travel in 31 bits (the token's top bit says "lane").
pub(super) const SEQ_MASK: u64 = (1 << 31) - 1;

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

/// Is `a` later than `b` in 31-bit wrapping sequence space?
fn seq_after(a: u32, b: u32) -> bool {
    let d = (a as u64).wrapping_sub(b as u64) & SEQ_MASK;
    d != 0 && d < (1 << 30)
}

/// How one wait ended.
enum Woke {
    Ready,
    /// A slice passed without progress: time for the caller's own checks.
    Slice,
}

/// Wait until `ready()` holds, or one sleep slice passes, or `deadline`.
fn wait(
    mine: &Counter,
    ready: &dyn Fn() -> bool,
    deadline: Option<Instant>,
) -> Result<Woke, IpcError> {
    let start = Instant::now();
    while start.elapsed() < SPIN {
        if ready() {
            return Ok(Woke::Ready);
        }
        std::hint::spin_loop();
    }
    let mut slice = SLICE;
    if let Some(left) = sys::remaining(deadline) {
        if left.is_zero() {
            return Err(IpcError::Timeout);
        }
        slice = slice.min(left);
    }
    mine.sleeping.fetch_add(1, SeqCst);
    let seq = mine.seq.load(SeqCst);
    if !ready() {
        sys::futex_wait(&mine.seq, seq, Some(slice));
    }
    mine.sleeping.fetch_sub(1, SeqCst);
    Ok(if ready() { Woke::Ready } else { Woke::Slice })
}

/// Move a counter, waking the other side if it sleeps on it.
fn publish(counter: &Counter, value: u64) {
    counter.bytes.store(value, SeqCst);
    wake(counter);
}

fn wake(counter: &Counter) {
    if counter.sleeping.load(SeqCst) > 0 {
        counter.seq.fetch_add(1, SeqCst);
        sys::futex_wake(&counter.seq, i32::MAX);
    }
}

/// The lane's writer lock, held for one whole message (inline ones included, so that frames of
/// different writers never interleave in the pipe either).
pub(super) struct WriterGuard<'a>(&'a RawRobustMutex);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Take the lane's writer lock. If its last holder died in the middle of a record, repair the
/// lane first (see the module docs): the torn record is reported to the reader, never spliced.
/// `reader_alive` says whether the receiving end is still open.
pub(super) fn lock_writers<'a>(
    seg: &'a Segment,
    reader_alive: &dyn Fn() -> bool,
) -> Result<WriterGuard<'a>, IpcError> {
    let h = header(seg);
    let acquired = h.writers.lock()?;
    let guard = WriterGuard(&h.writers);
    if acquired == Acquired::OwnerDied {
        repair(h, reader_alive)?;
    }
    Ok(guard)
}

/// Close the record a dead writer left unfinished. Called with the writer lock held.
fn repair(h: &Header, reader_alive: &dyn Fn() -> bool) -> Result<(), IpcError> {
    let w = h.written.bytes.load(SeqCst);
    if h.cur_end.load(SeqCst) <= w {
        return Ok(()); // it died between messages
    }
    if w > h.cur_start.load(SeqCst) {
        // Part of it is out: the reader must take those bytes and learn the record is torn
        // before anyone writes behind them.
        let tag = (h.cur_seq.load(SeqCst) & SEQ_MASK) + 1;
        h.torn.store(tag, SeqCst);
        h.written.seq.fetch_add(1, SeqCst);
        sys::futex_wake(&h.written.seq, i32::MAX);
        while h.torn_ack.load(SeqCst) != tag {
            let acked = || h.torn_ack.load(SeqCst) == tag;
            if let Woke::Slice = wait(&h.read, &acked, None)? {
                if !reader_alive() && !acked() {
                    return Err(IpcError::BrokenPipe);
                }
            }
        }
        h.torn.store(0, SeqCst);
    }
    h.cur_start.store(w, SeqCst);
    h.cur_end.store(w, SeqCst);
    Ok(())
}

/// Write one message as a lane record. Call with the writer lock held. `send_token` writes the
/// record's token into the pipe; it runs after the record is registered and before any byte of
/// it is published, so the pipe's order is the lane's order.
pub(super) fn write(
    seg: &Segment,
    body: &[u8],
    send_token: impl FnOnce(u32) -> Result<(), IpcError>,
    reader_alive: &dyn Fn() -> bool,
) -> Result<(), IpcError> {
    let h = header(seg);
    let cap = LANE_BYTES as u64;
    let seq = h.next_seq.load(SeqCst);
    h.next_seq.store(seq.wrapping_add(1), SeqCst);
    let seq31 = (seq & SEQ_MASK) as u32;
    let start = h.written.bytes.load(SeqCst);
    h.cur_seq.store(seq31 as u64, SeqCst);
    h.cur_start.store(start, SeqCst);
    h.cur_end.store(start + PREFIX + body.len() as u64, SeqCst);
    if let Err(e) = send_token(seq31) {
        h.cur_end.store(start, SeqCst);
        return Err(e);
    }
    let free = |w: u64| cap - (w - h.read.bytes.load(SeqCst));
    let room_for = |w: u64, n: u64| -> Result<(), IpcError> {
        while free(w) < n {
            if let Woke::Slice = wait(&h.read, &|| free(w) >= n, None)? {
                if !reader_alive() && free(w) < n {
                    return Err(IpcError::BrokenPipe);
                }
            }
        }
        Ok(())
    };
    let mut prefix = [0u8; PREFIX as usize];
    prefix[..8].copy_from_slice(&(seq31 as u64).to_le_bytes());
    prefix[8..].copy_from_slice(&(body.len() as u64).to_le_bytes());
    // The prefix is published with the first piece of the body, never on its own: a reader
    // that sees any byte of a record sees its whole prefix.
    room_for(start, PREFIX)?;
    copy_in(seg, start, &prefix);
    let mut w = start + PREFIX;
    let mut src = body;
    loop {
        let n = (free(w) as usize).min(src.len()).min(PIECE);
        copy_in(seg, w, &src[..n]);
        w += n as u64;
        src = &src[n..];
        publish(&h.written, w);
        if src.is_empty() {
            return Ok(());
        }
        room_for(w, 1)?;
    }
}

/// A reader's progress through one record, kept across timed-out receives.
#[derive(Debug)]
pub(super) struct ReadState {
    token: u32,
    /// The body length, once the prefix has been read.
    len: Option<usize>,
    /// The body so far.
    pub(super) body: Vec<u8>,
}

impl ReadState {
    /// Start reading the record named by `token`, filling `body` (its capacity is reused).
    pub(super) fn new(token: u32, mut body: Vec<u8>) -> ReadState {
        body.clear();
        ReadState {
            token,
            len: None,
            body,
        }
    }
}

/// Read the record `st` names into `st.body`, waiting until `deadline`. `Err(Timeout)` keeps
/// the progress in `st`; `Err(Torn)` means its writer died in the middle (or before the first
/// byte) and the record is gone. `writers_alive` says whether any sending end is still open.
pub(super) fn read(
    seg: &Segment,
    st: &mut ReadState,
    deadline: Option<Instant>,
    writers_alive: &dyn Fn() -> bool,
) -> Result<(), IpcError> {
    let h = header(seg);
    let mut r = h.read.bytes.load(SeqCst);
    loop {
        let avail = h.written.bytes.load(SeqCst) - r;
        match st.len {
            Some(len) if st.body.len() == len => return Ok(()),
            None if avail >= PREFIX => {
                let mut prefix = [MaybeUninit::<u8>::uninit(); PREFIX as usize];
                copy_out(seg, r, &mut prefix);
                // SAFETY: copy_out filled every byte.
                let prefix: [u8; PREFIX as usize] = unsafe { std::mem::transmute(prefix) };
                let seq = u64::from_le_bytes(prefix[..8].try_into().unwrap()) as u32;
                let len = u64::from_le_bytes(prefix[8..].try_into().unwrap());
                if seq == st.token {
                    if len > super::MAX_MESSAGE as u64 {
                        return Err(IpcError::Corrupt(format!("lane record claims {len} bytes")));
                    }
                    r += PREFIX;
                    publish(&h.read, r);
                    st.len = Some(len as usize);
                    st.body.reserve(len as usize);
                } else if seq_after(seq, st.token) {
                    // Our record never got a byte; this one belongs to a later token.
                    return Err(IpcError::Torn);
                } else {
                    return Err(IpcError::Corrupt(format!(
                        "lane record {seq} where {} was expected",
                        st.token
                    )));
                }
                continue;
            }
            Some(len) if avail > 0 => {
                let n = (avail as usize).min(len - st.body.len()).min(PIECE);
                let at = st.body.len();
                copy_out(seg, r, &mut st.body.spare_capacity_mut()[..n]);
                // SAFETY: copy_out initialised those n bytes.
                unsafe { st.body.set_len(at + n) };
                r += n as u64;
                publish(&h.read, r);
                continue;
            }
            _ => {}
        }
        // Nothing to take: wait, and between slices find out whether anything will come.
        let arrived = || h.written.bytes.load(SeqCst) > r;
        if let Woke::Ready = wait(&h.written, &arrived, deadline)? {
            continue;
        }
        if st.len.is_some() && h.torn.load(SeqCst) == st.token as u64 + 1 {
            // A repairer holds the writer lock and waits for us to let go of this record.
            h.torn_ack.store(st.token as u64 + 1, SeqCst);
            wake(&h.read);
            return Err(IpcError::Torn);
        }
        if let Some(acquired) = h.writers.try_lock()? {
            // Nobody is writing. Anything written before the lock was let go is visible now.
            let _guard = WriterGuard(&h.writers);
            if arrived() {
                continue;
            }
            let _ = acquired;
            let issued = h.next_seq.load(SeqCst);
            let was_issued = if issued <= SEQ_MASK {
                (st.token as u64) < issued
            } else {
                seq_after((issued & SEQ_MASK) as u32, st.token)
            };
            if !was_issued {
                // No writer ever took this number: the token is garbage, not a torn record.
                return Err(IpcError::Corrupt(format!(
                    "lane token {} names no record",
                    st.token
                )));
            }
            // The record we wait for will never be finished: close it if it is the one in
            // progress (its writer died), so the next writer starts right behind its bytes.
            let w = h.written.bytes.load(SeqCst);
            if h.cur_end.load(SeqCst) > w {
                h.cur_start.store(w, SeqCst);
                h.cur_end.store(w, SeqCst);
            }
            return Err(IpcError::Torn);
        }
        if !writers_alive() && !arrived() {
            return Err(IpcError::Corrupt(
                "peer went away in the middle of a large message".into(),
            ));
        }
    }
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
