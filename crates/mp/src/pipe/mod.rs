//! `Pipe`: Python's `multiprocessing.Pipe`. Messages are length-prefixed frames
//! (`[u32 little-endian length][postcard bytes]`) on a Unix stream socket (duplex) or an OS pipe
//! (simplex). Reads are buffered, so a burst of small messages costs one `read` for many; each
//! `send` is one `writev`, so a message is on its way when `send` returns. A frame that would not
//! fit in one atomic pipe write (`PIPE_BUF`, 4 KiB) travels through a shared-memory
//! [lane](lane) beside the pipe instead; a token in the pipe (top bit set) keeps it in
//! order. So no frame is ever half in the pipe: a sender SIGKILLed in the middle of a message
//! can tear only a lane record, which the lane detects and reports as [`IpcError::Torn`].
//!
//! Ends travel to children as spawn arguments. Moving an end into `spawn` closes the parent's
//! copy, which is what makes EOF work: a reader gets [`IpcError::Eof`] once every writer is gone.

mod lane;

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpcError;
use crate::handle::{self, Tracked};
use crate::shm::Segment;
use crate::{codec, sys};

/// Largest message a pipe carries: 1 GiB. Larger sends fail with `MessageTooLarge` before
/// anything is written; a frame header claiming more is reported as corrupt.
pub const MAX_MESSAGE: usize = 1 << 30;

const READ_BUF: usize = 64 * 1024;
/// How long a reader polls before it sleeps. The peer is usually on the other core and a few
/// microseconds away; sleeping costs a wake-up of tens of microseconds on a VM.
const SPIN: Duration = Duration::from_micros(50);
/// Bodies at least this large go through the lane: a smaller frame (4-byte header included)
/// fits in one `PIPE_BUF` write, which the kernel never splits, so a writer killed in the middle
/// of `send` cannot leave half a frame in the pipe. (A stream socketpair makes no such promise
/// in POSIX; Linux sends a write this small as one unit.)
const LANE_MIN: usize = 4096 - 4;
/// Header bit meaning "the body is in the lane"; the other 31 bits are the lane record's
/// sequence number.
const IN_LANE: u32 = 1 << 31;

/// One end of a pipe: the descriptor plus a read buffer and a reusable encode buffer.
#[derive(Debug)]
struct End {
    fd: Option<Tracked>,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// Lane for bodies this end sends / receives (shared memory, one writer, one reader).
    send_lane: Option<Arc<Segment>>,
    recv_lane: Option<Arc<Segment>>,
    /// A lane record being received, kept when a timed receive gives up half-way.
    pending: Option<lane::ReadState>,
}

/// Where a received body is.
enum Body {
    /// In the read buffer at `(start, len)`.
    Buffered(usize, usize),
    Owned(Vec<u8>),
}

impl End {
    fn new(fd: Tracked, send_lane: Option<Arc<Segment>>, recv_lane: Option<Arc<Segment>>) -> End {
        // Non-blocking, so readers can poll briefly before sleeping; waits go through poll(2).
        let _ = sys::set_nonblocking(fd.as_raw_fd());
        End {
            fd: Some(fd),
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            send_lane,
            recv_lane,
            pending: None,
        }
    }

    fn fd(&self) -> Result<RawFd, IpcError> {
        self.fd
            .as_ref()
            .map(|f| f.as_raw_fd())
            .ok_or(IpcError::Closed)
    }

    fn close(&mut self) {
        self.fd = None;
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.pending = None;
    }

    fn write_frame(&self, fd: RawFd, header: &[u8; 4], body: &[u8]) -> Result<(), IpcError> {
        let total = 4 + body.len();
        let mut done = 0usize;
        while done < total {
            let (h, b) = if done < 4 {
                (&header[done..], body)
            } else {
                (&[][..], &body[done - 4..])
            };
            let iov = [
                libc::iovec {
                    iov_base: h.as_ptr() as *mut _,
                    iov_len: h.len(),
                },
                libc::iovec {
                    iov_base: b.as_ptr() as *mut _,
                    iov_len: b.len(),
                },
            ];
            // SAFETY: both iovecs describe live slices (`h`, `b`) that writev only reads, and the
            // count is the array's length.
            let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        sys::wait_writable(fd)?;
                        continue;
                    }
                    Some(libc::EPIPE) | Some(libc::ECONNRESET) => return Err(IpcError::BrokenPipe),
                    _ => return Err(e.into()),
                }
            }
            done += n as usize;
        }
        Ok(())
    }

    fn send_bytes(&self, body: &[u8]) -> Result<(), IpcError> {
        let fd = self.fd()?;
        if body.len() > MAX_MESSAGE {
            return Err(IpcError::MessageTooLarge {
                size: body.len(),
                max: MAX_MESSAGE,
            });
        }
        // One message at a time per sending end, even if several processes share it. Taking
        // the lock also repairs the lane if the last holder died in the middle of a message.
        let reader_alive = || sys::peer_open(fd, libc::POLLOUT);
        let _writer = match self.send_lane.as_deref() {
            Some(lane) => Some(lane::lock_writers(lane, &reader_alive)?),
            None => None,
        };
        match &self.send_lane {
            Some(lane) if body.len() >= LANE_MIN => lane::write(
                lane,
                body,
                |seq| self.write_frame(fd, &(seq | IN_LANE).to_le_bytes(), &[]),
                &reader_alive,
            ),
            _ => self.write_frame(fd, &(body.len() as u32).to_le_bytes(), body),
        }
    }

    fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), IpcError> {
        self.fd()?;
        let mut buf = std::mem::take(&mut self.wbuf);
        buf.clear();
        let r = codec::encode_into(value, &mut buf)
            .map_err(IpcError::from)
            .and_then(|()| {
                if buf.len() > MAX_MESSAGE {
                    return Err(IpcError::MessageTooLarge {
                        size: buf.len(),
                        max: MAX_MESSAGE,
                    });
                }
                self.send_bytes(&buf)
            });
        // Keep a modest buffer for the next message; don't pin a huge one.
        if buf.capacity() <= READ_BUF {
            self.wbuf = buf;
        }
        r
    }

    fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Read what is available into the buffer, waiting until `deadline` if nothing is.
    /// Returns false on EOF.
    fn fill(&mut self, fd: RawFd, deadline: Option<Instant>) -> Result<bool, IpcError> {
        if self.rpos > 0 && self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > READ_BUF / 2 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        let len = self.rbuf.len();
        self.rbuf.reserve(READ_BUF);
        let n = read_some(fd, self.rbuf.spare_capacity_mut(), deadline)?;
        // SAFETY: read_some initialised the first `n` bytes of the spare capacity (n is at most
        // its length).
        unsafe { self.rbuf.set_len(len + n) };
        Ok(n > 0)
    }

    /// Wait until `deadline` for the next frame's 4-byte header word, without consuming it.
    fn peek_word(&mut self, fd: RawFd, deadline: Option<Instant>) -> Result<u32, IpcError> {
        while self.buffered().len() < 4 {
            if !self.fill(fd, deadline)? {
                return Err(if self.buffered().is_empty() {
                    IpcError::Eof
                } else {
                    IpcError::Corrupt("peer closed in the middle of a message header".into())
                });
            }
        }
        Ok(u32::from_le_bytes(self.buffered()[..4].try_into().unwrap()))
    }

    /// Receive the next message's body, waiting until `deadline`. A timeout consumes nothing
    /// (or, in the middle of a lane record, keeps the progress for the next call). `reuse`
    /// lends its allocation to a body that does not fit the read buffer.
    fn next_body(
        &mut self,
        deadline: Option<Instant>,
        reuse: Option<&mut Vec<u8>>,
    ) -> Result<Body, IpcError> {
        let fd = self.fd()?;
        if self.pending.is_none() {
            let word = self.peek_word(fd, deadline)?;
            let len = (word & !IN_LANE) as usize;
            if word & IN_LANE != 0 {
                self.rpos += 4;
                let buf = reuse.map(std::mem::take).unwrap_or_default();
                self.pending = Some(lane::ReadState::new(word & !IN_LANE, buf));
            } else if len > MAX_MESSAGE {
                return Err(IpcError::Corrupt(format!("frame claims {len} bytes")));
            } else if len <= READ_BUF {
                // The whole frame was written at once; wait for all of it before consuming.
                while self.buffered().len() < 4 + len {
                    if !self.fill(fd, deadline)? {
                        return Err(IpcError::Corrupt(
                            "peer closed in the middle of a message".into(),
                        ));
                    }
                }
                let start = self.rpos + 4;
                self.rpos = start + len;
                return Ok(Body::Buffered(start, len));
            } else {
                // A large inline frame (a sender without a lane): it has begun, the rest
                // follows.
                self.rpos += 4;
                let mut body = reuse.map(std::mem::take).unwrap_or_default();
                self.read_large_inline(fd, len, &mut body)?;
                return Ok(Body::Owned(body));
            }
        }
        let lane = self.recv_lane.clone().ok_or_else(|| {
            IpcError::Corrupt("a lane message arrived on a pipe without a lane".into())
        })?;
        let st = self.pending.as_mut().expect("set above");
        match lane::read(&lane, st, deadline, &|| sys::peer_open(fd, libc::POLLIN)) {
            Ok(()) => Ok(Body::Owned(self.pending.take().expect("set above").body)),
            Err(IpcError::Timeout) => Err(IpcError::Timeout),
            Err(e) => {
                self.pending = None;
                Err(e)
            }
        }
    }

    /// Read an inline body too large for the read buffer into `out`.
    fn read_large_inline(
        &mut self,
        fd: RawFd,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), IpcError> {
        out.clear();
        out.reserve(len);
        let have = self.buffered().len().min(len);
        out.extend_from_slice(&self.buffered()[..have]);
        self.rpos += have;
        while out.len() < len {
            let at = out.len();
            let n = read_some(fd, &mut out.spare_capacity_mut()[..len - at], None)?;
            if n == 0 {
                return Err(IpcError::Corrupt(
                    "peer closed in the middle of a message".into(),
                ));
            }
            // SAFETY: read_some initialised `n <= len - at` bytes right after the first `at`.
            unsafe { out.set_len(at + n) };
        }
        Ok(())
    }

    /// Read one frame and hand its body to `f` (zero-copy for frames that fit the buffer).
    fn recv_with<T>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&[u8]) -> Result<T, IpcError>,
    ) -> Result<T, IpcError> {
        match self.next_body(deadline, None)? {
            Body::Buffered(start, len) => f(&self.rbuf[start..start + len]),
            Body::Owned(body) => f(&body),
        }
    }

    /// Read one frame's body into `out`, reusing its allocation. Returns the length.
    fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<usize, IpcError> {
        match self.next_body(None, Some(out))? {
            Body::Buffered(start, len) => {
                out.clear();
                out.extend_from_slice(&self.rbuf[start..start + len]);
            }
            Body::Owned(body) => *out = body,
        }
        Ok(out.len())
    }

    fn poll(&self, timeout: Duration) -> Result<bool, IpcError> {
        let fd = self.fd()?;
        if !self.buffered().is_empty() || self.pending.is_some() {
            return Ok(true);
        }
        Ok(sys::poll_readable(fd, Some(timeout))?)
    }

    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match &self.fd {
            None => Err(S::Error::custom("cannot pass a closed pipe end")),
            Some(_) if !self.buffered().is_empty() || self.pending.is_some() => Err(
                S::Error::custom("cannot pass a pipe end with unread buffered messages"),
            ),
            Some(fd) => (
                FdRef(fd),
                self.send_lane.as_deref(),
                self.recv_lane.as_deref(),
            )
                .serialize(s),
        }
    }

    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<End, D::Error> {
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

/// Read up to `buf.len()` bytes into `buf`, waiting until `deadline` for data. `Ok(0)` is EOF;
/// `Ok(n)` means the first `n` bytes of `buf` are now initialised.
/// Polls for a few microseconds before sleeping (see [`SPIN`]).
fn read_some(
    fd: RawFd,
    buf: &mut [MaybeUninit<u8>],
    deadline: Option<Instant>,
) -> Result<usize, IpcError> {
    let mut spin_start: Option<Instant> = None;
    loop {
        // SAFETY: `buf` is a live, writable slice (uninitialised bytes are fine to write) and
        // read writes at most its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECONNRESET) => return Ok(0),
            Some(libc::EAGAIN) => {}
            _ => return Err(e.into()),
        }
        let start = *spin_start.get_or_insert_with(Instant::now);
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(IpcError::Timeout);
        }
        if now - start < SPIN {
            // Watch with poll(2), which reads the pipe's state without taking the pipe mutex
            // the writer needs; read only once something is there.
            while !sys::peer_ready(fd) && start.elapsed() < SPIN {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
            continue;
        }
        if !sys::poll_readable(fd, sys::remaining(deadline))? {
            return Err(IpcError::Timeout);
        }
    }
}

/// Creates pipes.
pub struct Pipe;

impl Pipe {
    /// Two connected ends; each can send and receive (Python's `Pipe()`).
    pub fn duplex<T>() -> Result<(Connection<T>, Connection<T>), IpcError> {
        let (a, b) = Tracked::create_pair(sys::socketpair)?;
        let (ab, ba) = (
            Arc::new(lane::new_segment()?),
            Arc::new(lane::new_segment()?),
        );
        Ok((
            Connection::from_end(End::new(a, Some(ab.clone()), Some(ba.clone()))),
            Connection::from_end(End::new(b, Some(ba), Some(ab))),
        ))
    }

    /// A one-way pipe `(receiver, sender)` (Python's `Pipe(duplex=False)`).
    pub fn simplex<T>() -> Result<(Receiver<T>, Sender<T>), IpcError> {
        let (r, w) = Tracked::create_pair(sys::pipe)?;
        let lane = Arc::new(lane::new_segment()?);
        Ok((
            Receiver {
                end: End::new(r, None, Some(lane.clone())),
                _t: PhantomData,
            },
            Sender {
                end: End::new(w, Some(lane), None),
                _t: PhantomData,
            },
        ))
    }
}

macro_rules! sending {
    () => {
        /// Send one message; returns once it is handed to the kernel.
        pub fn send(&mut self, value: &T) -> Result<(), IpcError>
        where
            T: Serialize,
        {
            self.end.send(value)
        }

        /// Send raw bytes as one message (pair with `recv_bytes`).
        pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), IpcError> {
            self.end.send_bytes(bytes)
        }
    };
}

macro_rules! receiving {
    () => {
        /// Receive one message, blocking. `Err(Eof)` once the other end is closed and drained.
        pub fn recv(&mut self) -> Result<T, IpcError>
        where
            T: DeserializeOwned,
        {
            self.end.recv_with(None, |b| Ok(codec::decode(b)?))
        }

        /// Receive one message, waiting at most `timeout` (`Err(Timeout)`).
        pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, IpcError>
        where
            T: DeserializeOwned,
        {
            self.end
                .recv_with(Some(Instant::now() + timeout), |b| Ok(codec::decode(b)?))
        }

        /// Receive one message as raw bytes.
        pub fn recv_bytes(&mut self) -> Result<Vec<u8>, IpcError> {
            self.end.recv_with(None, |b| Ok(b.to_vec()))
        }

        /// Receive one message as raw bytes, waiting at most `timeout` (`Err(Timeout)`; a
        /// message whose body was still arriving is kept for the next receive).
        pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, IpcError> {
            self.end
                .recv_with(Some(Instant::now() + timeout), |b| Ok(b.to_vec()))
        }

        /// Receive one message's raw bytes into `buf`, replacing its contents and reusing its
        /// allocation (Python's `recv_bytes_into`). Returns the message length.
        pub fn recv_bytes_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, IpcError> {
            self.end.recv_into(buf)
        }

        /// Is there something to read (a message, or EOF) within `timeout`?
        pub fn poll(&self, timeout: Duration) -> Result<bool, IpcError> {
            self.end.poll(timeout)
        }
    };
}

macro_rules! handle_impls {
    ($ty:ident) => {
        impl<T> $ty<T> {
            /// Close this end now; later calls on it return `Err(Closed)`.
            pub fn close(&mut self) {
                self.end.close();
            }

            /// True once `close()` was called on this end.
            pub fn is_closed(&self) -> bool {
                self.end.fd.is_none()
            }
        }

        impl<T> AsRawFd for $ty<T> {
            fn as_raw_fd(&self) -> RawFd {
                self.end.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
            }
        }

        impl<T> Serialize for $ty<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.end.serialize(s)
            }
        }

        impl<'de, T> Deserialize<'de> for $ty<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($ty {
                    end: End::deserialize(d)?,
                    _t: PhantomData,
                })
            }
        }
    };
}

/// A duplex end.
#[derive(Debug)]
pub struct Connection<T> {
    end: End,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    fn from_end(end: End) -> Self {
        Connection {
            end,
            _t: PhantomData,
        }
    }
    sending!();
    receiving!();
}
handle_impls!(Connection);

/// The sending end of a simplex pipe.
#[derive(Debug)]
pub struct Sender<T> {
    end: End,
    _t: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    sending!();
}
handle_impls!(Sender);

/// The receiving end of a simplex pipe.
#[derive(Debug)]
pub struct Receiver<T> {
    end: End,
    _t: PhantomData<fn() -> T>,
}

impl<T> Receiver<T> {
    receiving!();
}
handle_impls!(Receiver);
