//! The cross-process half of the Hub, for `fork` and `prefork`.
//!
//! The parent keeps one Unix stream socket (a `socketpair`) per child: the *link*. A child
//! publishes by writing a frame up its link; the relay (in the parent's single-threaded loop)
//! appends every frame it reads to every link's outbound queue, the sender's included, and writes
//! them without ever blocking. One relay, one order: all processes see the same sequence.
//!
//! Messages travel as frames (`frame.rs`).
//!
//! Overflow policy: a link whose outbound queue passes `LINK_QUEUE` bytes belongs to a child
//! that stopped reading; the relay closes that link rather than letting one child stall
//! everyone. A link is also closed when reading or writing it fails. Either way the child sees
//! its link end and shuts itself down (its connections closed, under `prefork` a fresh worker
//! started in its place): a child cut off from the relay must not go on as a room of its own
//! (see `hub/mod.rs`, "A lost link").
//!
//! With an uplink (a backplane, `uplink.rs`) the relay stops being the ordering point: each
//! frame a child or an injector writes is offered to the uplink instead of fanned out (and
//! fanned out here only when the uplink refuses it), and the stream the uplink hands back
//! comes in on a source link of its own ([`Relay::add_downlink`]), which is fanned out to
//! every child like any frame was before.

use super::frame::{decode, encode, frames};
use crate::session::Message;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// Outbound bytes queued per link before the link is considered dead weight and closed.
pub(crate) const LINK_QUEUE: usize = 16 * 1024 * 1024;
/// The frames of `data` (at `fs`) that `up` would not take, still framed.
fn refused(up: &dyn super::uplink::Uplink, data: &[u8], fs: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(a, b) in fs {
        match decode(&data[a..b]) {
            Ok(msg) if up.send(&msg) => {}
            _ => out.extend_from_slice(&data[a..b]),
        }
    }
    out
}

/// Non-blocking read of everything available on `fd` into `buf`; Ok(false) on EOF.
fn read_available(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<bool> {
    read_some(fd, buf, usize::MAX)
}

/// Non-blocking read of what is available on `fd` into `buf`, stopping once `max` bytes were
/// read (more may then be waiting); Ok(false) on EOF.
fn read_some(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let mut got = 0;
    while got < max {
        // SAFETY: reading into a valid local buffer; MSG_DONTWAIT keeps a blocking fd non-blocking here.
        let n = unsafe {
            libc::recv(
                fd,
                chunk.as_mut_ptr() as *mut libc::c_void,
                chunk.len(),
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

/// What a worker reads from its link per loop turn. The worker's subscribers get to take
/// their messages between two reads, so a burst that waited on the link (bigger than
/// `hub_queue_bytes`) reaches a subscriber that keeps up at most this much at a time, instead
/// of all at once into an inbox it would overflow. The rest waits in the socket and, beyond,
/// in the relay's queue for the link.
pub(crate) const LINK_READ_PER_TURN: usize = 64 * 1024;

/// The worker side: reads frames the relay sends down and yields messages.
pub(crate) struct LinkReader {
    pub fd: RawFd,
    buf: Vec<u8>,
    /// The last read stopped at its bound: more may be waiting (the loop must come back even
    /// if the poller does not report the link again, as an edge-triggered one would not).
    pub more: bool,
}

impl LinkReader {
    pub(crate) fn new(fd: RawFd) -> Self {
        LinkReader {
            fd,
            buf: Vec::new(),
            more: false,
        }
    }

    /// Read what is there, at most [`LINK_READ_PER_TURN`] bytes; `Ok(false)` when the relay
    /// is gone.
    pub(crate) fn read(&mut self, mut deliver: impl FnMut(Message)) -> io::Result<bool> {
        let before = self.buf.len();
        let open = read_some(self.fd, &mut self.buf, LINK_READ_PER_TURN)?;
        self.more = open && self.buf.len() - before >= LINK_READ_PER_TURN;
        let (used, fs) = frames(&self.buf)?;
        for (a, b) in fs {
            deliver(decode(&self.buf[a..b])?);
        }
        self.buf.drain(..used);
        Ok(open)
    }
}

struct Link {
    sock: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    /// The child's pid, once forked: reaping the child drops its link.
    pid: Option<libc::pid_t>,
    /// Failed, overflowed or at EOF: removed at the end of the next flush.
    dead: bool,
    /// Whether the relay sends the stream down this link. An injector's link (publishing from
    /// outside any session) only sends up: nobody reads its down side.
    down: bool,
    /// The uplink's stream coming back: always fanned out, never offered up again.
    from_uplink: bool,
}

/// The parent side: one link per child, fan-out in arrival order.
#[derive(Default)]
pub(crate) struct Relay {
    links: Vec<Link>,
    uplink: Option<super::uplink::SharedUplink>,
}

impl Relay {
    /// A new link for a child about to be forked: returns the child's end. Name the child with
    /// [`Relay::set_pid_last`] once forked, so [`Relay::remove_pid`] can drop its link.
    pub(crate) fn add_link(&mut self) -> io::Result<UnixStream> {
        let (mine, theirs) = UnixStream::pair()?;
        mine.set_nonblocking(true)?;
        self.links.push(Link {
            sock: mine,
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            pid: None,
            dead: false,
            down: true,
            from_uplink: false,
        });
        Ok(theirs)
    }

    /// A publish-only link (the relay's end of an [`Injector`](crate::Injector)'s socketpair):
    /// its frames join the one order like a child's, and nothing is sent back down it.
    pub(crate) fn add_source(&mut self, mine: UnixStream) -> io::Result<()> {
        mine.set_nonblocking(true)?;
        self.links.push(Link {
            sock: mine,
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            pid: None,
            dead: false,
            down: false,
            from_uplink: false,
        });
        Ok(())
    }

    /// Offer every frame to `up` from now on, and fan out what it sends down `mine` (the
    /// relay's end of the socketpair behind the uplink's [`Downlink`](crate::Downlink)).
    pub(crate) fn add_downlink(
        &mut self,
        up: super::uplink::SharedUplink,
        mine: UnixStream,
    ) -> io::Result<()> {
        self.add_source(mine)?;
        if let Some(l) = self.links.last_mut() {
            l.from_uplink = true;
        }
        self.uplink = Some(up);
        Ok(())
    }

    pub(crate) fn set_pid_last(&mut self, pid: libc::pid_t) {
        if let Some(l) = self.links.last_mut() {
            l.pid = Some(pid);
        }
    }

    /// The child `pid` was reaped: relay what it wrote before it exited, then drop its link.
    /// Its last frames (a chat member's `* NAME left`, published as its connection ended) may
    /// still be in the socket: the parent can see SIGCHLD before the link's last readiness.
    pub(crate) fn remove_pid(&mut self, pid: libc::pid_t) {
        let fds: Vec<RawFd> = self
            .links
            .iter()
            .filter(|l| l.pid == Some(pid))
            .map(|l| l.sock.as_raw_fd())
            .collect();
        for fd in fds {
            // Reads to EOF (the child's end is closed) and forwards every whole frame.
            self.on_ready(fd, true);
        }
        self.links.retain(|l| l.pid != Some(pid));
    }

    /// Publish a message from the parent itself (a dead child's farewells, see
    /// [`Protocol::on_process_exit`](crate::Protocol::on_process_exit)): offered to the uplink
    /// if there is one, otherwise queued on every link after what is already there.
    pub(crate) fn publish(&mut self, msg: &Message) {
        if let Some(up) = &self.uplink {
            if up.send(msg) {
                return;
            }
        }
        let frame = encode(msg);
        for l in self.links.iter_mut().filter(|l| l.down) {
            l.out.extend_from_slice(&frame);
        }
        self.flush_all();
    }

    /// Every fd the parent holds for links (a freshly forked child closes them all).
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        self.links.iter().map(|l| l.sock.as_raw_fd()).collect()
    }

    /// (fd, wants write) for the parent's poll set.
    pub(crate) fn poll_set(&self) -> Vec<(RawFd, bool)> {
        self.links
            .iter()
            .map(|l| (l.sock.as_raw_fd(), l.sent < l.out.len()))
            .collect()
    }

    /// Handle readiness of link `fd`.
    pub(crate) fn on_ready(&mut self, fd: RawFd, readable: bool) {
        let Some(i) = self.links.iter().position(|l| l.sock.as_raw_fd() == fd) else {
            return;
        };
        if readable {
            self.read_link(i);
        }
        self.flush_all();
    }

    /// Read what link `i` has and fan out its whole frames (queued, not yet written).
    fn read_link(&mut self, i: usize) {
        let fd = self.links[i].sock.as_raw_fd();
        let open = read_available(fd, &mut self.links[i].inbuf);
        match (open, frames(&self.links[i].inbuf)) {
            (Ok(open), Ok((used, fs))) => {
                let mut data: Vec<u8> = self.links[i].inbuf[..used].to_vec();
                self.links[i].inbuf.drain(..used);
                if let (Some(up), false) = (&self.uplink, self.links[i].from_uplink) {
                    // Offered up; only what the uplink refuses is fanned out here.
                    data = refused(up.as_ref(), &data, &fs);
                }
                if !data.is_empty() {
                    for l in self.links.iter_mut().filter(|l| l.down) {
                        l.out.extend_from_slice(&data);
                    }
                }
                if !open {
                    self.links[i].dead = true;
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(
                    "hub relay: reading the link of worker {:?} failed ({e}); closing it",
                    self.links[i].pid
                );
                self.links[i].dead = true;
            }
        }
    }

    /// Write what each link can take; drop links that overflowed or failed. A link is only
    /// dropped after what is still unread in it was relayed: a worker that exited (so writing
    /// to it fails) may have written its last frames (a chat member's `* NAME left`) just
    /// before, and the relay can try to write to it before it sees them readable.
    pub(crate) fn flush_all(&mut self) {
        loop {
            let failed = self.write_links();
            if failed.is_empty() {
                break;
            }
            for i in failed {
                self.read_link(i);
            }
            // What those last reads queued for the other links is written by the next pass.
        }
        self.links.retain(|l| !l.dead);
    }

    /// One writing pass over every live link; the indices of links whose write just failed.
    fn write_links(&mut self) -> Vec<usize> {
        let mut failed = Vec::new();
        for (i, l) in self.links.iter_mut().enumerate().filter(|(_, l)| !l.dead) {
            while l.sent < l.out.len() {
                use std::io::Write;
                match (&l.sock).write(&l.out[l.sent..]) {
                    Ok(0) => break,
                    Ok(n) => l.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // Usually the worker just exited; if it lives, it logs the loss.
                        tracing::debug!(
                            "hub relay: writing to the link of worker {:?} failed ({e}); closing it",
                            l.pid
                        );
                        l.dead = true;
                        failed.push(i);
                        break;
                    }
                }
            }
            // A dead link's queue is dropped with it.
            if l.dead || l.sent == l.out.len() {
                l.out.clear();
                l.sent = 0;
            } else if l.out.len() - l.sent > LINK_QUEUE {
                tracing::error!(
                    "hub relay: worker {:?} stopped reading its link ({} bytes queued); closing \
                     the link, and the worker shuts down when it finds it closed",
                    l.pid,
                    l.out.len() - l.sent
                );
                l.dead = true;
                failed.push(i);
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::super::uplink::tests::{msg as up_msg, Backwards};
    use super::super::uplink::{Downlink, Uplink};
    use super::*;
    use std::io::Write;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn msg(from: u64, body: &str) -> Message {
        Message {
            topic: Arc::from("room"),
            from,
            body: Arc::from(body.as_bytes()),
        }
    }

    #[test]
    fn frames_round_trip_even_when_split() {
        let mut wire = Vec::new();
        for i in 0..5 {
            wire.extend(encode(&msg(i, &format!("line {i}\n"))));
        }
        // Fed in awkward pieces, the reader yields every message once, in order.
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut reader = LinkReader::new(b.as_raw_fd());
        let mut got = Vec::new();
        for chunk in wire.chunks(7) {
            a.write_all(chunk).unwrap();
            assert!(reader.read(|m| got.push(m)).unwrap());
        }
        assert_eq!(
            got,
            (0..5)
                .map(|i| msg(i, &format!("line {i}\n")))
                .collect::<Vec<_>>()
        );
        drop(a);
        assert!(!reader.read(|_| {}).unwrap(), "EOF once the relay is gone");
    }

    #[test]
    fn relay_fans_out_to_every_link_in_arrival_order() {
        let mut relay = Relay::default();
        let children: Vec<UnixStream> = (0..3).map(|_| relay.add_link().unwrap()).collect();
        (&children[0]).write_all(&encode(&msg(1, "a"))).unwrap();
        (&children[1]).write_all(&encode(&msg(2, "b"))).unwrap();
        for (fd, _) in relay.poll_set() {
            relay.on_ready(fd, true);
        }
        for c in &children {
            let mut r = LinkReader::new(c.as_raw_fd());
            let mut got = Vec::new();
            r.read(|m| got.push(m)).unwrap();
            assert_eq!(got, vec![msg(1, "a"), msg(2, "b")]);
        }
    }

    #[test]
    fn a_reaped_childs_last_frames_are_still_relayed() {
        let mut relay = Relay::default();
        let a = relay.add_link().unwrap();
        relay.set_pid_last(100);
        let b = relay.add_link().unwrap();
        relay.set_pid_last(200);
        // The child wrote its farewell and exited before the relay read its link.
        (&a).write_all(&encode(&msg(1, "a left"))).unwrap();
        drop(a);
        relay.remove_pid(100);
        assert_eq!(relay.fds().len(), 1, "the reaped child's link is gone");
        let mut r = LinkReader::new(b.as_raw_fd());
        let mut got = Vec::new();
        r.read(|m| got.push(m)).unwrap();
        assert_eq!(got, vec![msg(1, "a left")]);
    }

    #[test]
    fn an_exited_childs_last_frames_survive_a_failed_write_to_it() {
        let mut relay = Relay::default();
        let a = relay.add_link().unwrap();
        relay.set_pid_last(100);
        let b = relay.add_link().unwrap();
        relay.set_pid_last(200);
        // Child a writes its farewell and exits; before the relay reads a's link, b publishes,
        // so the relay writes to a's closed link first (EPIPE).
        (&a).write_all(&encode(&msg(1, "a left"))).unwrap();
        drop(a);
        (&b).write_all(&encode(&msg(2, "b says"))).unwrap();
        let b_fd = relay.links[1].sock.as_raw_fd();
        relay.on_ready(b_fd, true);
        assert_eq!(relay.fds().len(), 1, "a's link is gone");
        let mut r = LinkReader::new(b.as_raw_fd());
        let mut got = Vec::new();
        r.read(|m| got.push(m)).unwrap();
        assert_eq!(got, vec![msg(2, "b says"), msg(1, "a left")]);
    }

    #[test]
    fn the_relay_offers_frames_up_and_fans_out_what_comes_down() {
        let mut relay = Relay::default();
        let child = relay.add_link().unwrap();
        let up = Arc::new(Backwards::default());
        up.up.store(true, Ordering::SeqCst);
        let (mine, theirs) = UnixStream::pair().unwrap();
        relay.add_downlink(up.clone(), mine).unwrap();
        up.start(Downlink::relay(theirs)).unwrap();
        let ready = |relay: &mut Relay| {
            for (fd, _) in relay.poll_set() {
                relay.on_ready(fd, true);
            }
        };
        (&child).write_all(&encode(&up_msg(&[1]))).unwrap();
        (&child).write_all(&encode(&up_msg(&[2]))).unwrap();
        ready(&mut relay);
        assert_eq!(
            up.held.lock().unwrap().len(),
            2,
            "offered up, not fanned out"
        );
        up.flush();
        up.up.store(false, Ordering::SeqCst);
        ready(&mut relay);
        (&child).write_all(&encode(&up_msg(&[3]))).unwrap();
        ready(&mut relay);
        let mut r = LinkReader::new(child.as_raw_fd());
        let mut got = Vec::new();
        r.read(|m| got.push(m.body[0])).unwrap();
        assert_eq!(got, vec![2, 1, 3]);
    }
}
