//! One end of a pipe: its descriptor (the doorbell and hang-up detector), the lanes it sends
//! and receives through, and the waiting: an adaptive spin on the lane's counter, then a sleep
//! in `poll(2)` on the descriptor, woken by the writer's one-byte doorbell or by a hang-up.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lane::{self, Progress};
use super::MAX_MESSAGE;
use crate::error::IpcError;
use crate::handle::{self, Tracked};
use crate::shm::Segment;
use crate::spin::{Spin, Spun};
use crate::{codec, sys};

/// The one byte a writer puts in the pipe to wake a sleeping reader. Anything else there is
/// not ours: the pipe is reported corrupt.
const DOORBELL: u8 = 0xDB;
/// How long a reader sleeps between its checks for a writer that died in the middle of a
/// record. Short while a body is half read, longer while idle (an idle wake-up costs a few
/// microseconds of CPU).
const SLICE_BUSY: Duration = Duration::from_millis(20);
const SLICE_IDLE: Duration = Duration::from_millis(100);
/// How long a sender trusts its last look at the reader's end (a `poll(2)` system call) before
/// looking again: a send this soon after finding the reader alive is like a write into a
/// socket just before its peer closes it.
const ALIVE_FOR: Duration = Duration::from_micros(100);
/// Encode buffers up to this size are kept for the next message.
const KEEP_BUF: usize = 64 * 1024;

/// One end of a pipe.
#[derive(Debug)]
pub(super) struct End {
    pub(super) fd: Option<Tracked>,
    wbuf: Vec<u8>,
    /// Lane for messages this end sends / receives (shared memory).
    send_lane: Option<Arc<Segment>>,
    recv_lane: Option<Arc<Segment>>,
    /// A record being received, kept when a timed receive gives up half-way.
    st: lane::ReadState,
    spin: Spin,
    /// When the reading end was last seen open.
    reader_seen: Option<Instant>,
}

/// Where a received body is.
enum Found {
    /// In the lane, in one piece.
    Inline(usize, usize),
    /// In `st.body`.
    Whole,
}

/// How a reader's sleep ended.
enum Slept {
    Rung,
    HungUp,
}

/// Wake a sleeping reader. Errors are ignored: a full pipe already holds a doorbell, and a
/// reader that is gone is found by the sender's own checks.
fn ring(fd: RawFd) {
    // SAFETY: writes one byte from a live local; `fd` is owned by the End calling us (a stale
    // descriptor is EBADF, never memory).
    unsafe { libc::write(fd, (&DOORBELL as *const u8).cast(), 1) };
}

/// Take the doorbells out of the pipe. True if the other end hung up.
fn drain(fd: RawFd) -> Result<bool, IpcError> {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads at most `buf.len()` bytes into a live local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return Ok(true);
        }
        if n > 0 {
            if buf[..n as usize].iter().any(|&b| b != DOORBELL) {
                return Err(IpcError::Corrupt(
                    "bytes that are not bingfa-mp's arrived in a pipe".into(),
                ));
            }
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(false),
            Some(libc::ECONNRESET) => return Ok(true),
            _ => return Err(e.into()),
        }
    }
}

impl End {
    pub(super) fn new(
        fd: Tracked,
        send_lane: Option<Arc<Segment>>,
        recv_lane: Option<Arc<Segment>>,
    ) -> End {
        // Non-blocking: doorbells are drained until EAGAIN, and sleeps go through poll(2).
        let _ = sys::set_nonblocking(fd.as_raw_fd());
        End {
            fd: Some(fd),
            wbuf: Vec::new(),
            send_lane,
            recv_lane,
            st: lane::ReadState::default(),
            spin: Spin::default(),
            reader_seen: None,
        }
    }

    fn fd(&self) -> Result<RawFd, IpcError> {
        self.fd
            .as_ref()
            .map(|f| f.as_raw_fd())
            .ok_or(IpcError::Closed)
    }

    pub(super) fn close(&mut self) {
        self.fd = None;
        self.st = lane::ReadState::default();
    }

    pub(super) fn send_bytes(&mut self, body: &[u8]) -> Result<(), IpcError> {
        let fd = self.fd()?;
        if body.len() > MAX_MESSAGE {
            return Err(IpcError::MessageTooLarge {
                size: body.len(),
                max: MAX_MESSAGE,
            });
        }
        let lane = self
            .send_lane
            .as_deref()
            .ok_or_else(|| IpcError::Corrupt("a sending pipe end without a lane".into()))?;
        let reader_alive = || sys::peer_open(fd, libc::POLLOUT);
        let now = Instant::now();
        if self
            .reader_seen
            .is_none_or(|t| now.duration_since(t) >= ALIVE_FOR)
        {
            if !reader_alive() {
                return Err(IpcError::BrokenPipe);
            }
            self.reader_seen = Some(now);
        }
        // One message at a time per sending end, even if several processes share it. Taking
        // the lock also repairs the lane if the last holder died in the middle of a message.
        let ring = || ring(fd);
        let _writer = lane::lock_writers(lane, &reader_alive, &ring)?;
        lane::write(lane, body, &reader_alive, &ring)
    }

    pub(super) fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), IpcError> {
        self.fd()?;
        let mut buf = std::mem::take(&mut self.wbuf);
        buf.clear();
        let r = codec::encode_into(value, &mut buf)
            .map_err(IpcError::from)
            .and_then(|()| self.send_bytes(&buf));
        // Keep a modest buffer for the next message; don't pin a huge one.
        if buf.capacity() <= KEEP_BUF {
            self.wbuf = buf;
        }
        r
    }

    fn recv_lane(&self) -> Result<&Segment, IpcError> {
        self.recv_lane
            .as_deref()
            .ok_or_else(|| IpcError::Corrupt("a receiving pipe end without a lane".into()))
    }

    /// Sleep in poll(2) until a doorbell, a hang-up or `timeout`, having said so in the lane.
    fn sleep(fd: RawFd, lane: &Segment, timeout: Duration) -> Result<Slept, IpcError> {
        let word = lane::sleeping(lane);
        word.fetch_add(1, SeqCst);
        let polled = if lane::has_data(lane) {
            Ok(true)
        } else {
            sys::poll_readable(fd, Some(timeout))
        };
        word.fetch_sub(1, SeqCst);
        polled?;
        Ok(if drain(fd)? {
            Slept::HungUp
        } else {
            Slept::Rung
        })
    }

    /// Wait until `deadline` for the next whole message.
    fn next(&mut self, deadline: Option<Instant>) -> Result<Found, IpcError> {
        let fd = self.fd()?;
        let lane = self
            .recv_lane
            .clone()
            .ok_or_else(|| IpcError::Corrupt("a receiving pipe end without a lane".into()))?;
        loop {
            match lane::advance(&lane, &mut self.st)? {
                Progress::Inline { at, len } => return Ok(Found::Inline(at, len)),
                Progress::Whole => return Ok(Found::Whole),
                Progress::Empty => {}
            }
            let Spun::Sleep(start) = self.spin.spin(|| lane::has_data(&lane)) else {
                continue;
            };
            let r = self.sleep_until_data(fd, &lane, deadline);
            self.spin.slept(start);
            r?;
        }
    }

    /// The sleeping half of [`End::next`]: returns once there are bytes to take.
    fn sleep_until_data(
        &mut self,
        fd: RawFd,
        lane: &Segment,
        deadline: Option<Instant>,
    ) -> Result<(), IpcError> {
        loop {
            let slice = if self.st.in_record() {
                SLICE_BUSY
            } else {
                SLICE_IDLE
            };
            let slice = match sys::remaining(deadline) {
                Some(left) if left.is_zero() => return Err(IpcError::Timeout),
                Some(left) => slice.min(left),
                None => slice,
            };
            let slept = Self::sleep(fd, lane, slice)?;
            if lane::has_data(lane) {
                return Ok(());
            }
            lane::check_stalled(lane, &mut self.st)?;
            if let Slept::HungUp = slept {
                if lane::has_data(lane) {
                    return Ok(());
                }
                return Err(if self.st.in_record() {
                    IpcError::Corrupt("peer went away in the middle of a large message".into())
                } else {
                    IpcError::Eof
                });
            }
        }
    }

    /// Read one message and hand its body to `f` (straight from the lane when it lies there
    /// in one piece).
    pub(super) fn recv_with<T>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&[u8]) -> Result<T, IpcError>,
    ) -> Result<T, IpcError> {
        match self.next(deadline)? {
            Found::Inline(at, len) => {
                let lane = self.recv_lane()?;
                // The message is consumed even if `f` panics, so one bad message can't wedge
                // the pipe.
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    f(lane::inline(lane, at, len))
                }));
                lane::finish_inline(lane, len);
                out.unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
            Found::Whole => {
                let body = std::mem::take(&mut self.st.body);
                let out = f(&body);
                if body.capacity() <= KEEP_BUF {
                    self.st.body = body;
                }
                out
            }
        }
    }

    /// Read one message's body into `out`, reusing its allocation. Returns the length.
    pub(super) fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<usize, IpcError> {
        match self.next(None)? {
            Found::Inline(at, len) => {
                let lane = self.recv_lane()?;
                out.clear();
                out.extend_from_slice(lane::inline(lane, at, len));
                lane::finish_inline(lane, len);
            }
            Found::Whole => {
                std::mem::swap(out, &mut self.st.body);
                self.st.body.clear();
            }
        }
        Ok(out.len())
    }

    /// Is there a message (or EOF) within `timeout`?
    pub(super) fn poll(&self, timeout: Duration) -> Result<bool, IpcError> {
        let fd = self.fd()?;
        let lane = self.recv_lane()?;
        let deadline = Instant::now() + timeout;
        loop {
            if self.st.in_record() || lane::has_data(lane) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            if let Slept::HungUp = Self::sleep(fd, lane, left.min(SLICE_IDLE))? {
                return Ok(true);
            }
        }
    }

    pub(super) fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match &self.fd {
            None => Err(S::Error::custom("cannot pass a closed pipe end")),
            Some(_) if self.st.in_record() => Err(S::Error::custom(
                "cannot pass a pipe end in the middle of a message",
            )),
            Some(fd) => (
                FdRef(fd),
                self.send_lane.as_deref(),
                self.recv_lane.as_deref(),
            )
                .serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<End, D::Error> {
        let (OwnedFdDe(fd), send, recv): (OwnedFdDe, Option<Segment>, Option<Segment>) =
            Deserialize::deserialize(d)?;
        for seg in send.iter().chain(&recv) {
            lane::check_segment(seg).map_err(serde::de::Error::custom)?;
        }
        Ok(End::new(
            Tracked::new(fd),
            send.map(Arc::new),
            recv.map(Arc::new),
        ))
    }
}

/// A descriptor serialized through the spawn outbox.
struct FdRef<'a>(&'a Tracked);

impl Serialize for FdRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        handle::serialize_fd(self.0, s)
    }
}

struct OwnedFdDe(OwnedFd);

impl<'de> Deserialize<'de> for OwnedFdDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        handle::deserialize_fd(d).map(OwnedFdDe)
    }
}
