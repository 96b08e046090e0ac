//! The worker side of a [`super::Pool`]: a child process that reads task frames from its own
//! socket, runs them, and writes result frames back.
//!
//! Frames, both directions, are `[u32 length][u64 sequence number][body]` (little-endian,
//! length counts what follows it); the number counts the frames sent to this worker, from 1. A task body is `[u64 entry offset][u64 function offset][postcard Vec<A>]`;
//! a result body is postcard `Vec<Outcome<R>>`, one outcome per argument of the chunk.
//!
//! Small tasks are cheap because nothing here is per task at the system-call level: the worker
//! runs every task already in its read buffer, then writes all their results in one `write`
//! (or sooner, if results have waited a millisecond behind a slow task). Before running a task
//! it stores the task's number in a shared slot, so when the worker dies the pool knows exactly
//! which task killed it and which queued behind it can safely be sent elsewhere.
//!
//! The same slot lets the pool take back tasks queued behind a long one (work stealing): it
//! raises the slot's `fence`, and the worker skips any task numbered at or below the fence,
//! answering it with an empty frame. Announce-then-check on both sides (the worker stores
//! `current` then reads `fence`; the pool stores `fence` then reads `current`) guarantees that
//! every task above the `current` the pool reads will be skipped, so it can run them elsewhere
//! at once, and never twice.

use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize, Serializer};

use crate::handle::{self, Tracked};
use crate::process::{addr_of, panic_message};
use crate::sync::Shm;
use crate::{codec, sys};

/// Task id a worker uses to report that its initializer failed; the body is the message.
pub(crate) const INIT_FAILED: u64 = u64::MAX;
/// Bytes before a frame's body: length and id.
pub(crate) const FRAME_HEAD: usize = 12;
/// Results are flushed at least this often while a batch of tasks runs.
const FLUSH_AFTER: Duration = Duration::from_millis(1);
const BUF: usize = 64 * 1024;

/// Signature of the monomorphised trampoline that runs one chunk of tasks.
pub(crate) type TaskEntry = fn(usize, &[u8], &mut Vec<u8>);
/// Signature of the trampoline that runs the initializer.
pub(crate) type InitEntry = fn(usize, &[u8]) -> Result<(), String>;

/// How one task of a chunk ended.
#[derive(Serialize, Deserialize)]
pub(crate) enum Outcome<R> {
    Ok(R),
    Panic(String),
    Codec(String),
}

/// Decode the chunk's arguments, run `f` on each (catching panics one by one) and append the
/// encoded outcomes to `out`.
pub(crate) fn task_entry<A: DeserializeOwned, R: Serialize>(
    func: usize,
    args: &[u8],
    out: &mut Vec<u8>,
) {
    // SAFETY: `func` is the address of an `fn(A) -> R` of this binary, recorded by the parent
    // together with exactly this instantiation of the trampoline.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let outcomes: Vec<Outcome<R>> = match codec::decode::<Vec<A>>(args) {
        Ok(items) => items
            .into_iter()
            .map(|a| match catch_unwind(AssertUnwindSafe(|| f(a))) {
                Ok(r) => Outcome::Ok(r),
                Err(p) => Outcome::Panic(panic_message(p)),
            })
            .collect(),
        Err(e) => vec![Outcome::Codec(format!("decoding task arguments: {e}"))],
    };
    let start = out.len();
    if let Err(e) = codec::encode_into(&outcomes, out) {
        out.truncate(start);
        let o = vec![Outcome::<R>::Codec(format!(
            "encoding the task result: {e}"
        ))];
        let _ = codec::encode_into(&o, out);
    }
}

pub(crate) fn init_entry<A: DeserializeOwned>(func: usize, args: &[u8]) -> Result<(), String> {
    // SAFETY: as in `task_entry`, for an `fn(A)`.
    let f = unsafe { std::mem::transmute::<usize, fn(A)>(func) };
    let a = codec::decode::<A>(args).map_err(|e| format!("decoding initializer arguments: {e}"))?;
    catch_unwind(AssertUnwindSafe(|| f(a))).map_err(panic_message)
}

/// What the pool can still read of a worker after it died, in shared memory: the id of the
/// task it was running, and the results it had finished but not yet sent (a batch in
/// progress). So a death costs exactly the task that was running, never its finished
/// neighbours.
#[repr(C)]
pub(crate) struct Slot {
    pub current: AtomicU64,
    /// Tasks numbered at or below this were taken back by the pool: skip them.
    pub fence: AtomicU64,
    /// Bytes of complete result frames at [`SLOT_DATA`], not yet known to be sent.
    pub committed: AtomicU64,
}

/// Where the unsent results start in a worker's slot segment.
pub(crate) const SLOT_DATA: usize = 64;
/// Size of a worker's slot segment; only the pages a batch touches become resident.
pub(crate) const SLOT_LEN: usize = SLOT_DATA + 256 * 1024;

/// Encodes the initializer's arguments while the spawn's handle outbox is open, so handles in
/// them (a `Value`, a `Queue`) travel to every worker as real descriptors.
pub(crate) type InitArgs = std::sync::Arc<dyn Fn() -> postcard::Result<Vec<u8>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Init {
    pub entry: u64,
    pub func: u64,
    pub args: InitArgs,
}

/// What a worker is started with.
#[derive(Serialize, Deserialize)]
pub(crate) struct Boot {
    #[serde(serialize_with = "ser_fd", deserialize_with = "de_fd")]
    pub sock: Tracked,
    pub slot: Shm<Slot>,
    pub init: InitField,
    pub maxtasks: u64,
}

fn ser_fd<S: Serializer>(fd: &Tracked, s: S) -> Result<S::Ok, S::Error> {
    handle::serialize_fd(fd, s)
}

fn de_fd<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Tracked, D::Error> {
    handle::deserialize_fd(d).map(Tracked::new)
}

/// The initializer: its source in the parent, its encoding once it arrives in the worker.
pub(crate) enum InitField {
    Source(Option<Init>),
    Encoded(Option<(u64, u64, Vec<u8>)>),
}

impl Serialize for InitField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            InitField::Encoded(e) => e.serialize(s),
            InitField::Source(None) => None::<(u64, u64, Vec<u8>)>.serialize(s),
            InitField::Source(Some(i)) => {
                // Runs inside the spawn's serialization, so handles in the arguments are
                // recorded in this worker's outbox.
                let args = (i.args)().map_err(S::Error::custom)?;
                Some((i.entry, i.func, args)).serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for InitField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<(u64, u64, Vec<u8>)>::deserialize(d).map(InitField::Encoded)
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice and the length passed is its own; send only reads it.
        match sys::retry(|| unsafe {
            libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        }) {
            Ok(n) => buf = &buf[n as usize..],
            Err(_) => return false,
        }
    }
    true
}

/// Append a frame header with a placeholder length; `end_frame` patches it.
pub(crate) fn begin_frame(out: &mut Vec<u8>, id: u64) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&id.to_le_bytes());
    at
}

pub(crate) fn end_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// A complete frame at the start of `b`: `(id, body, total length)`.
pub(crate) fn parse_frame(b: &[u8]) -> Option<(u64, &[u8], usize)> {
    if b.len() < FRAME_HEAD {
        return None;
    }
    let len = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
    if b.len() < 4 + len {
        return None;
    }
    let id = u64::from_le_bytes(b[4..12].try_into().unwrap());
    Some((id, &b[FRAME_HEAD..4 + len], 4 + len))
}

/// Length a frame at the start of `b` needs, once its header is there.
pub(crate) fn frame_need(b: &[u8]) -> Option<usize> {
    (b.len() >= 4).then(|| 4 + u32::from_le_bytes(b[..4].try_into().unwrap()) as usize)
}

/// The worker process. Returns (and the process exits) on EOF from the pool or after
/// `maxtasks` chunks.
pub(crate) fn worker_main(boot: Boot) {
    // The pool kills workers with SIGTERM on terminate(); default action is fine. A task that
    // writes to a closed pipe should get an error, not die.
    // SAFETY: setting a disposition to SIG_IGN installs no handler code; the worker is single-
    // threaded here (just started, before any task).
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let fd = boot.sock.as_raw_fd();
    if let InitField::Encoded(Some((entry, func, args))) = &boot.init {
        // SAFETY: the parent recorded the offset of an `InitEntry` of this binary.
        let init = unsafe { std::mem::transmute::<usize, InitEntry>(addr_of(*entry as usize)) };
        if let Err(msg) = init(addr_of(*func as usize), args) {
            let mut out = Vec::new();
            let at = begin_frame(&mut out, INIT_FAILED);
            out.extend_from_slice(msg.as_bytes());
            end_frame(&mut out, at);
            write_all(fd, &out);
            return;
        }
    }
    let slot = boot.slot.get();
    // The pool makes every slot SLOT_LEN long; a shorter one would put `unsent` outside it.
    let cap = boot
        .slot
        .len()
        .checked_sub(SLOT_DATA)
        .expect("a worker slot is longer than its header");
    // The worker is the only writer of this area; the pool reads it only after we are dead.
    // SAFETY: `cap` was computed from the slot's length, so SLOT_DATA is inside the segment, which
    // `boot` keeps mapped for the whole loop.
    let unsent = unsafe { boot.slot.base().add(SLOT_DATA) };
    let mut used = 0usize;
    let flush = |used: &mut usize| -> bool {
        if *used == 0 {
            return true;
        }
        // SAFETY: `used` bytes of complete frames were copied there.
        let ok = write_all(fd, unsafe { std::slice::from_raw_parts(unsent, *used) });
        slot.committed.store(0, Ordering::Release);
        *used = 0;
        ok
    };
    let mut rbuf: Vec<u8> = Vec::with_capacity(BUF);
    let mut rpos = 0usize;
    let mut frame: Vec<u8> = Vec::with_capacity(BUF);
    let mut oldest: Option<Instant> = None;
    let mut done = 0u64;
    loop {
        while let Some((id, body, total)) = parse_frame(&rbuf[rpos..]) {
            slot.current.store(id, Ordering::SeqCst);
            frame.clear();
            let at = begin_frame(&mut frame, id);
            if id > slot.fence.load(Ordering::SeqCst) {
                let entry = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
                let func = u64::from_le_bytes(body[8..16].try_into().unwrap()) as usize;
                // SAFETY: the parent recorded the offset of a `TaskEntry` of this binary.
                let run = unsafe { std::mem::transmute::<usize, TaskEntry>(addr_of(entry)) };
                run(addr_of(func), &body[16..], &mut frame);
            }
            // else: taken back by the pool; the empty body says "skipped".
            end_frame(&mut frame, at);
            rpos += total;
            done += 1;
            if used + frame.len() > cap && !flush(&mut used) {
                return;
            }
            if frame.len() > cap {
                // Too big to park in the slot: send it now.
                if !write_all(fd, &frame) {
                    return;
                }
            } else {
                // SAFETY: used + frame.len() <= cap, checked above.
                unsafe {
                    std::ptr::copy_nonoverlapping(frame.as_ptr(), unsent.add(used), frame.len())
                };
                used += frame.len();
                slot.committed.store(used as u64, Ordering::Release);
            }
            let now = Instant::now();
            let first = *oldest.get_or_insert(now);
            if now - first >= FLUSH_AFTER {
                if !flush(&mut used) {
                    return;
                }
                oldest = None;
            }
            if boot.maxtasks > 0 && done >= boot.maxtasks {
                flush(&mut used);
                return;
            }
        }
        // Nothing runnable is buffered: hand back what is done before blocking for more.
        if !flush(&mut used) {
            return;
        }
        oldest = None;
        if rpos > 0 {
            rbuf.drain(..rpos);
            rpos = 0;
        }
        let need = frame_need(&rbuf).unwrap_or(BUF).max(rbuf.len() + 1);
        rbuf.reserve(need.saturating_sub(rbuf.len()).max(BUF / 2));
        let len = rbuf.len();
        let spare = rbuf.capacity() - len;
        // SAFETY: writes at most `spare` bytes into the Vec's spare capacity (starts at `len`,
        // `capacity - len` long); `fd` is the socket `boot` owns.
        let n = sys::retry(|| unsafe { libc::read(fd, rbuf.as_mut_ptr().add(len).cast(), spare) });
        match n {
            // SAFETY: read initialised `n <= spare` bytes right after the first `len`.
            Ok(n) if n > 0 => unsafe { rbuf.set_len(len + n as usize) },
            // EOF: the pool closed our socket (close()/join(), or it is gone).
            _ => return,
        }
    }
}

/// The results a dead worker had finished but not sent.
pub(crate) fn unsent_results(slot: &Shm<Slot>) -> &[u8] {
    let n = (slot.get().committed.load(Ordering::Acquire) as usize).min(slot.len() - SLOT_DATA);
    // SAFETY: within the segment; its writer is dead, so nothing changes under us.
    unsafe { std::slice::from_raw_parts(slot.base().add(SLOT_DATA), n) }
}
