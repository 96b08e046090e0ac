//! The cross-process half of the Hub, for `fork` and `prefork`.
//!
//! The parent keeps one Unix stream socket (a `socketpair`) per child: the *link*. A child
//! publishes by writing a frame up its link; the relay (in the parent's single-threaded loop)
//! appends every frame it reads to every link's outbound queue, the sender's included, and writes
//! them without ever blocking. One relay, one order: all processes see the same sequence.
//!
//! Messages travel as frames (`frame.rs`).
//!
//! # Lagging or stuck: backpressure, then a cut
//! A worker busy with a flood reads its link a bounded amount per loop turn, so during a burst
//! its queue here can grow far ahead of it; a worker that stopped (a hang, SIGSTOP) never reads
//! again. The relay bounds its memory by *backpressure* and tells the two apart by *progress*:
//!
//! - Backpressure: while some link's queue is at [`LINK_QUEUE`] or more, the relay reads no
//!   link at all (children, injectors, the uplink's downlink). Publishers' writes then block
//!   once their socket is full, so their loops take no more client input and the flooding
//!   clients' TCP windows close: the room goes at the pace of its slowest worker, and a queue
//!   passes the mark by at most one read round ([`READ_ROUND`], plus the rest of one frame).
//! - A publisher that waits keeps reading its own link meanwhile (into its backlog, see
//!   `link.rs`), so a worker that is behind *and* blocked on a publication still makes
//!   progress and the wait ends. A worker also reads up to 64 KiB more per turn for what it
//!   published since its last read, so its own publications do not put it further behind.
//!   A worker whose backlog is full stops reading while it waits:
//!   if the relay waits on it too, it is found stuck (below), so a worker is cut off once it
//!   is [`LINK_QUEUE`] plus its backlog behind and still falling back.
//! - Stuck: a link that has sat at [`LINK_QUEUE`] or more without taking a single byte for
//!   [`STUCK_AFTER`] belongs to a worker that stopped; it is closed and the others go on. A
//!   stopped worker with less queued holds nobody back and bounded memory, and is left alone.
//!
//! A closed link (stuck, or a failed read or write) ends its child: the child
//! sees its link end and shuts itself down (its connections closed, under `prefork` a fresh
//! worker started in its place): a child cut off from the relay must not go on as a room of its
//! own (see `hub/mod.rs`, "A lost link").
//!
//! With an uplink (a backplane, `uplink.rs`) the relay stops being the ordering point: each
//! frame a child or an injector writes is offered to the uplink instead of fanned out (and
//! fanned out here only when the uplink refuses it), and the stream the uplink hands back
//! comes in on a source link of its own ([`Relay::add_downlink`]), which is fanned out to
//! every child like any frame was before.

use super::frame::{decode, encode, frames};
use super::link::read_some;
use crate::session::Message;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Outbound bytes queued on one link at which the relay stops reading publishers
/// (backpressure), and from which a link that takes nothing is timed as stuck.
pub(crate) const LINK_QUEUE: usize = 16 * 1024 * 1024;
/// How long a link at [`LINK_QUEUE`] or more may go without taking a byte before it is closed.
/// A busy worker reads its link every loop turn (milliseconds apart even on a loaded machine);
/// seconds without a byte is a worker that stopped.
pub(crate) const STUCK_AFTER: Duration = Duration::from_secs(3);
/// What the relay reads from one link per readiness (more waits in the socket).
pub(crate) const READ_ROUND: usize = 256 * 1024;
/// A queue's sent prefix is dropped once it is this big and at least half the buffer.
const COMPACT: usize = 1024 * 1024;

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

struct Link {
    sock: UnixStream,
    inbuf: Vec<u8>,
    /// Frames for the child; `out[sent..]` is still to be written.
    out: Vec<u8>,
    sent: usize,
    /// The last time this link took bytes or was below [`LINK_QUEUE`]: a link at the bound
    /// that has not moved since longer than [`STUCK_AFTER`] is stuck.
    moved: Instant,
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

impl Link {
    fn new(sock: UnixStream, down: bool) -> Self {
        Link {
            sock,
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            moved: Instant::now(),
            pid: None,
            dead: false,
            down,
            from_uplink: false,
        }
    }

    /// Bytes queued for the child, not yet written.
    fn queued(&self) -> usize {
        self.out.len() - self.sent
    }
}

/// The parent side: one link per child, fan-out in arrival order.
pub(crate) struct Relay {
    links: Vec<Link>,
    uplink: Option<super::uplink::SharedUplink>,
    /// [`LINK_QUEUE`] and [`STUCK_AFTER`] (smaller in unit tests).
    high: usize,
    stuck_after: Duration,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            links: Vec::new(),
            uplink: None,
            high: LINK_QUEUE,
            stuck_after: STUCK_AFTER,
        }
    }
}

impl Relay {
    /// A new link for a child about to be forked: returns the child's end. Name the child with
    /// [`Relay::set_pid_last`] once forked, so [`Relay::remove_pid`] can drop its link.
    pub(crate) fn add_link(&mut self) -> io::Result<UnixStream> {
        let (mine, theirs) = UnixStream::pair()?;
        mine.set_nonblocking(true)?;
        self.links.push(Link::new(mine, true));
        Ok(theirs)
    }

    /// A publish-only link (the relay's end of an [`Injector`](crate::Injector)'s socketpair):
    /// its frames join the one order like a child's, and nothing is sent back down it.
    pub(crate) fn add_source(&mut self, mine: UnixStream) -> io::Result<()> {
        mine.set_nonblocking(true)?;
        self.links.push(Link::new(mine, false));
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
        let at: Vec<usize> = (0..self.links.len())
            .filter(|&i| self.links[i].pid == Some(pid))
            .collect();
        for i in at {
            // Reads to EOF (the child's end is closed) and forwards every whole frame, even
            // under backpressure: a dead child's socket holds at most its buffer.
            self.read_link(i, usize::MAX);
        }
        self.flush_all();
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

    /// Some link is [`LINK_QUEUE`] behind: the others are not read (backpressure).
    fn pressed(&self) -> bool {
        self.links
            .iter()
            .any(|l| !l.dead && l.queued() >= self.high)
    }

    /// (fd, read, write) for the parent's poll set.
    pub(crate) fn poll_set(&self) -> Vec<(RawFd, bool, bool)> {
        let read = !self.pressed();
        self.links
            .iter()
            .map(|l| (l.sock.as_raw_fd(), read, l.queued() > 0))
            .collect()
    }

    /// Handle readiness of link `fd`.
    pub(crate) fn on_ready(&mut self, fd: RawFd, readable: bool) {
        let Some(i) = self.links.iter().position(|l| l.sock.as_raw_fd() == fd) else {
            return;
        };
        if readable && !self.pressed() {
            self.read_link(i, READ_ROUND);
        }
        self.flush_all();
    }

    /// Run the clock without readiness (the parent calls it every loop turn): a link that
    /// stopped taking bytes is found stuck even when nothing else happens.
    pub(crate) fn tick(&mut self) {
        self.flush_all();
    }

    /// Bytes queued for the child `pid` (tests, and the memory bound's witness).
    #[cfg(test)]
    fn queued_for(&self, pid: libc::pid_t) -> Option<usize> {
        self.links
            .iter()
            .find(|l| l.pid == Some(pid))
            .map(Link::queued)
    }

    /// Read up to `max` bytes from link `i` and fan out its whole frames (queued, not yet
    /// written).
    fn read_link(&mut self, i: usize, max: usize) {
        let fd = self.links[i].sock.as_raw_fd();
        let open = read_some(fd, &mut self.links[i].inbuf, max);
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

    /// Write what each link can take; drop links that are stuck or failed.
    /// A link is only dropped after what is still unread in it was relayed: a worker that
    /// exited (so writing to it fails) may have written its last frames (a chat member's
    /// `* NAME left`) just before, and the relay can try to write to it before it sees them
    /// readable.
    pub(crate) fn flush_all(&mut self) {
        loop {
            let failed = self.write_links();
            if failed.is_empty() {
                break;
            }
            for i in failed {
                self.read_link(i, usize::MAX);
            }
            // What those last reads queued for the other links is written by the next pass.
        }
        self.links.retain(|l| !l.dead);
    }

    /// One writing pass over every live link; the indices of links whose write just failed
    /// or that were just cut.
    fn write_links(&mut self) -> Vec<usize> {
        let now = Instant::now();
        let mut failed = Vec::new();
        for (i, l) in self.links.iter_mut().enumerate().filter(|(_, l)| !l.dead) {
            let before = l.sent;
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
                l.out = Vec::new();
                l.sent = 0;
            } else if l.sent >= COMPACT && l.sent * 2 >= l.out.len() {
                // A link that is always a little behind is never empty: drop what was sent, or
                // the buffer would hold the whole flood.
                l.out.drain(..l.sent);
                l.sent = 0;
            }
            if l.dead {
                continue;
            }
            let queued = l.queued();
            if l.sent != before || queued < self.high {
                l.moved = now;
            } else if now.duration_since(l.moved) >= self.stuck_after {
                tracing::error!(
                    "hub relay: worker {:?} took nothing from its link for {:?} with {queued} \
                     bytes queued (it stopped reading); closing the link, and the worker shuts \
                     down when it finds it closed",
                    l.pid,
                    self.stuck_after
                );
                l.dead = true;
                failed.push(i);
                continue;
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::super::link::LinkReader;
    use super::super::uplink::tests::{msg as up_msg, Backwards};
    use super::super::uplink::{Downlink, Uplink};
    use super::*;
    use std::io::{Read, Write};
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
            assert!(reader.read(0, |m| got.push(m)).unwrap());
        }
        assert_eq!(
            got,
            (0..5)
                .map(|i| msg(i, &format!("line {i}\n")))
                .collect::<Vec<_>>()
        );
        drop(a);
        assert!(
            !reader.read(0, |_| {}).unwrap(),
            "EOF once the relay is gone"
        );
    }

    #[test]
    fn relay_fans_out_to_every_link_in_arrival_order() {
        let mut relay = Relay::default();
        let children: Vec<UnixStream> = (0..3).map(|_| relay.add_link().unwrap()).collect();
        (&children[0]).write_all(&encode(&msg(1, "a"))).unwrap();
        (&children[1]).write_all(&encode(&msg(2, "b"))).unwrap();
        for (fd, _, _) in relay.poll_set() {
            relay.on_ready(fd, true);
        }
        for c in &children {
            let mut r = LinkReader::new(c.as_raw_fd());
            let mut got = Vec::new();
            r.read(0, |m| got.push(m)).unwrap();
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
        r.read(0, |m| got.push(m)).unwrap();
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
        r.read(0, |m| got.push(m)).unwrap();
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
            for (fd, _, _) in relay.poll_set() {
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
        r.read(0, |m| got.push(m.body[0])).unwrap();
        assert_eq!(got, vec![2, 1, 3]);
    }

    /// A child end, read by the test as its worker would, at its own pace.
    struct Child {
        sock: UnixStream,
        got: Vec<u8>,
        /// Bytes read per round (`usize::MAX`: all there is).
        pace: usize,
    }

    impl Child {
        fn new(sock: UnixStream, pace: usize) -> Self {
            sock.set_nonblocking(true).unwrap();
            Child {
                sock,
                got: Vec::new(),
                pace,
            }
        }
        fn read(&mut self) {
            read_some(self.sock.as_raw_fd(), &mut self.got, self.pace).unwrap();
        }
    }

    /// The parent loop's turn: read the links its poll set reads, write what each can take.
    /// Returns whether some link was held back (not read) this turn.
    fn turn(relay: &mut Relay) -> bool {
        let set = relay.poll_set();
        for &(fd, read, _) in &set {
            relay.on_ready(fd, read);
        }
        relay.tick();
        set.iter().any(|&(_, read, _)| !read)
    }

    /// `n` frames of about 1 KB, numbered, as one byte stream.
    fn flood(n: usize) -> Vec<u8> {
        let pad = "y".repeat(1000);
        (0..n)
            .flat_map(|i| encode(&msg(1, &format!("{i} {pad}\n"))))
            .collect()
    }

    /// Write what the socket takes of `data[*at..]` without blocking.
    fn publish_some(sock: &UnixStream, data: &[u8], at: &mut usize) {
        match (&*sock).write(&data[*at..]) {
            Ok(n) => *at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("publishing: {e}"),
        }
    }

    const HIGH: usize = 256 * 1024;
    /// A queue passes the backpressure mark by at most one read round (and a frame of it).
    const BOUND: usize = HIGH + READ_ROUND + 2048;

    /// The flood case: 8 MiB published by a worker that reads its own link slowly (4 KiB per
    /// round, and all it can while a publication waits, as `write_up` does), with a second,
    /// slow worker and a fast one. The slow ones
    /// keep taking bytes, so neither is cut off however long they take; the publisher is held
    /// back instead, every worker gets every frame in order, and no queue passes the mark by
    /// more than a read round.
    #[test]
    fn a_lagging_worker_is_held_to_not_cut_and_loses_nothing() {
        let mut relay = Relay {
            high: HIGH,
            // Shorter than this test takes: only progress keeps the slow ones linked.
            stuck_after: Duration::from_millis(100),
            ..Relay::default()
        };
        let mut kids: Vec<Child> = [0, 8192, usize::MAX]
            .into_iter()
            .enumerate()
            .map(|(i, pace)| {
                let c = Child::new(relay.add_link().unwrap(), pace);
                relay.set_pid_last(i as libc::pid_t + 1);
                c
            })
            .collect();
        let publisher = kids[0].sock.try_clone().unwrap();
        let data = flood(8 * 1024);
        let (mut at, mut held, mut most) = (0, false, 0);
        let end = Instant::now() + Duration::from_secs(120);
        while kids.iter().any(|k| k.got.len() < data.len()) {
            assert!(Instant::now() < end, "the flood never got through");
            let share = data.len().min(at + 32 * 1024);
            publish_some(&publisher, &data[..share], &mut at);
            kids[0].pace = if at < share {
                usize::MAX // waiting on the relay: read ahead
            } else {
                4096
            };
            held |= turn(&mut relay);
            for pid in 1..=3 {
                let q = relay
                    .queued_for(pid)
                    .expect("no worker that reads is cut off");
                most = most.max(q);
            }
            for k in &mut kids {
                k.read();
            }
        }
        assert!(
            held,
            "the publisher was held back while the slow ones caught up ({most})"
        );
        assert!(
            most <= BOUND,
            "{most} bytes queued for one link, over {BOUND}"
        );
        for (i, k) in kids.iter().enumerate() {
            assert!(k.got == data, "worker {i} got every frame, in order");
        }
    }

    /// The stuck case: a worker that never reads is cut off once its queue sits at the mark
    /// without moving, its queue never grows past the mark by more than a read round while the
    /// publisher is held back, and the others get everything once it is gone.
    #[test]
    fn a_worker_that_stops_reading_is_cut_and_memory_stays_bounded() {
        let mut relay = Relay {
            high: HIGH,
            stuck_after: Duration::from_millis(100),
            ..Relay::default()
        };
        let mut publisher = Child::new(relay.add_link().unwrap(), usize::MAX);
        relay.set_pid_last(1);
        let stopped = Child::new(relay.add_link().unwrap(), 0);
        relay.set_pid_last(2);
        let mut fast = Child::new(relay.add_link().unwrap(), usize::MAX);
        relay.set_pid_last(3);
        let data = flood(4 * 1024);
        let (mut at, mut most, mut held_at_mark) = (0, 0, false);
        let end = Instant::now() + Duration::from_secs(60);
        while fast.got.len() < data.len() || publisher.got.len() < data.len() {
            assert!(
                Instant::now() < end,
                "the stopped worker held the others forever"
            );
            publish_some(&publisher.sock, &data, &mut at);
            let held = turn(&mut relay);
            if let Some(q) = relay.queued_for(2) {
                most = most.max(q);
                held_at_mark |= held && q >= HIGH;
            }
            publisher.read();
            fast.read();
        }
        assert_eq!(relay.queued_for(2), None, "the stopped worker was cut off");
        assert!(
            held_at_mark,
            "the publisher was held while the stopped one sat at the mark"
        );
        assert!(
            most <= BOUND,
            "{most} bytes queued for the stopped one, over {BOUND}"
        );
        assert!(
            fast.got == data && publisher.got == data,
            "the others lost nothing"
        );
        // Its worker finds the link closed after what was already in its socket.
        stopped.sock.set_nonblocking(false).unwrap();
        let mut rest = Vec::new();
        (&stopped.sock).read_to_end(&mut rest).unwrap();
        assert!(rest.len() < data.len() && data.starts_with(&rest));
    }
}
