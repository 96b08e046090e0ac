//! The worker's end of its relay link (`fork`, `prefork`): reading what the relay sends down,
//! a bounded amount per loop turn ([`LinkReader`]), and writing a publication up without
//! deadlocking against the relay's backpressure ([`write_up`]).
//!
//! The relay stops reading every worker's publications while some worker is far behind (see
//! `relay.rs`). A worker whose publication then waits is blocked inside a session's callback;
//! if it is itself the one behind, nothing it would read could ever make room, and the two
//! would wait on each other. So while a publication waits, the worker keeps reading its link
//! into its backlog (up to [`BACKLOG`] bytes), the same buffer its loop delivers from, in
//! order, a bounded amount per turn once the publication went through.

use super::frame::{decode, frames};
use crate::session::Message;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

/// What a worker delivers from its link per loop turn. The worker's subscribers get to take their messages between two reads, so a burst
/// that waited on the link (bigger than `hub_queue_bytes`) reaches a subscriber that keeps up
/// at most this much at a time, instead of all at once into an inbox it would overflow. The
/// rest waits in the backlog, the socket and, beyond, in the relay's queue for the link.
pub(crate) const LINK_READ_PER_TURN: usize = 64 * 1024;

/// What a worker blocked on a publication reads ahead into its backlog at most. A worker that
/// far behind stops reading while it waits; if it is also the one the relay waits for, it is
/// found stuck and cut off (the bound on a worker's memory: its backlog plus the relay's queue).
pub(crate) const BACKLOG: usize = 16 * 1024 * 1024;

/// Bytes read from the link and not yet delivered, shared by the loop and the publishing path.
pub(crate) type Backlog = Arc<Mutex<Vec<u8>>>;

/// Non-blocking read of what is available on `fd` into `buf`, stopping once `max` bytes were
/// read (more may then be waiting); Ok(false) on EOF.
pub(crate) fn read_some(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let mut got = 0;
    while got < max {
        // SAFETY: reading into a valid local buffer; MSG_DONTWAIT keeps a blocking fd non-blocking here.
        let n = unsafe {
            libc::recv(
                fd,
                chunk.as_mut_ptr() as *mut libc::c_void,
                chunk.len().min(max - got),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            buf.extend_from_slice(&chunk[..n as usize]);
            got += n as usize;
            continue;
        }
        if n == 0 {
            return Ok(false);
        }
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(true),
            io::ErrorKind::Interrupted => continue,
            // The other end closed with frames of ours still unread in it: a worker (or the
            // relay) that exited, which is how every one of them ends. What it sent before
            // was read above; for this link that is EOF, not a failure worth a warning.
            io::ErrorKind::ConnectionReset => Ok(false),
            _ => Err(e),
        };
    }
    Ok(true)
}

/// Write `frame` up the link `fd` (a blocking socket). While the relay does not take it (its
/// backpressure), read what the relay sends down into `backlog`, up to [`BACKLOG`] bytes, so a
/// worker that is behind keeps taking bytes and the relay can let the publication through.
pub(crate) fn write_up(fd: RawFd, frame: &[u8], backlog: &Mutex<Vec<u8>>) -> io::Result<()> {
    let mut at = 0;
    while at < frame.len() {
        let rest = &frame[at..];
        // SAFETY: writing from a valid slice; MSG_DONTWAIT keeps a blocking fd non-blocking
        // here, MSG_NOSIGNAL turns a closed link into EPIPE instead of a signal.
        let n = unsafe {
            libc::send(
                fd,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            at += n as usize;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {}
            _ => return Err(e),
        }
        let mut buf = backlog.lock().unwrap_or_else(|e| e.into_inner());
        let room = buf.len() < BACKLOG;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT | if room { libc::POLLIN } else { 0 },
            revents: 0,
        };
        // SAFETY: one valid pollfd. A timeout, so a wait never outlives a vanished relay.
        let r = unsafe { libc::poll(&mut p, 1, 1000) };
        if r > 0 && room && p.revents & libc::POLLIN != 0 {
            let want = BACKLOG - buf.len();
            if !read_some(fd, &mut buf, want)? {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
    }
    Ok(())
}

/// The worker side: reads frames the relay sends down and yields messages.
pub(crate) struct LinkReader {
    pub fd: RawFd,
    buf: Backlog,
    /// The last read stopped at its bound: more may be waiting (the loop must come back even
    /// if the poller does not report the link again, as an edge-triggered one would not).
    pub more: bool,
}

impl LinkReader {
    /// A reader with a backlog of its own (tests).
    #[cfg(test)]
    pub(crate) fn new(fd: RawFd) -> Self {
        Self::with_backlog(fd, Backlog::default())
    }

    /// A reader delivering from `buf`, which a blocked publication fills too (the hub's).
    pub(crate) fn with_backlog(fd: RawFd, buf: Backlog) -> Self {
        LinkReader {
            fd,
            buf,
            more: false,
        }
    }

    /// A whole message waits in the backlog (a publication that waited read it ahead): the
    /// loop must come back for it even if the socket is not reported readable again.
    pub(crate) fn pending(&self) -> bool {
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.len() >= 4
            && buf.len() - 4 >= u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
    }

    /// Deliver about [`LINK_READ_PER_TURN`] bytes of messages (the frames that start within
    /// it) plus up to as much again for `published`, what this process wrote up its link since
    /// the last read: every publication comes back down, and a worker taking less than it
    /// publishes would fall further behind with each turn until it is cut off. The backlog
    /// first, then what the socket has; `Ok(false)` when the relay is gone.
    pub(crate) fn read(
        &mut self,
        published: usize,
        mut deliver: impl FnMut(Message),
    ) -> io::Result<bool> {
        let budget = LINK_READ_PER_TURN + published.min(LINK_READ_PER_TURN);
        let (open, msgs) = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            let before = buf.len();
            let open = if before < budget {
                read_some(self.fd, &mut buf, budget - before)?
            } else {
                true
            };
            let filled = buf.len() >= budget;
            let (_, fs) = frames(&buf)?;
            let mut msgs = Vec::new();
            let mut used = 0;
            for (a, b) in fs {
                if a >= budget {
                    break;
                }
                msgs.push(decode(&buf[a..b])?);
                used = b;
            }
            buf.drain(..used);
            self.more = open && filled;
            (open, msgs)
        };
        for m in msgs {
            deliver(m);
        }
        Ok(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    /// Write what `sock` takes without blocking; the bytes written.
    fn fill(sock: &UnixStream, byte: u8) -> usize {
        sock.set_nonblocking(true).unwrap();
        let chunk = [byte; 4096];
        let mut n = 0;
        while let Ok(k) = (&*sock).write(&chunk) {
            n += k;
        }
        n
    }

    /// A publication that waits on the relay (its socket full, the relay not reading it) keeps
    /// reading what the relay sends down into the backlog, so the relay sees the worker make
    /// progress; once the relay reads again, the publication goes through whole.
    #[test]
    fn a_waiting_publication_keeps_reading_its_link() {
        let (relay, worker) = UnixStream::pair().unwrap();
        let up_before = fill(&worker, b'u'); // earlier publications the relay has not read
        worker.set_nonblocking(false).unwrap();
        let down_before = fill(&relay, b'd'); // what the relay queued for the worker
        let backlog = Backlog::default();
        let (b2, fd) = (backlog.clone(), worker.as_raw_fd());
        let frame = vec![b'f'; 10_000];
        let f2 = frame.clone();
        let publishing = std::thread::spawn(move || write_up(fd, &f2, &b2));
        // The worker drains its link while it waits: the relay can write down it again.
        let end = Instant::now() + Duration::from_secs(10);
        let mut down = down_before;
        while down < 2 * down_before {
            assert!(Instant::now() < end, "the waiting worker read nothing");
            down += fill(&relay, b'd');
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!publishing.is_finished(), "the publication still waits");
        // The relay reads again: everything it was sent arrives, the waiting frame last.
        relay.set_nonblocking(false).unwrap();
        relay
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut up = vec![0; up_before + frame.len()];
        (&relay).read_exact(&mut up).unwrap();
        publishing.join().unwrap().unwrap();
        assert!(up[..up_before].iter().all(|&b| b == b'u'));
        assert_eq!(&up[up_before..], &frame[..]);
        let got = backlog.lock().unwrap().len();
        assert!(got > down_before && got <= down, "{got} bytes read ahead");
    }
}
