//! The io_uring poller: the `uring` model's loop (one per worker thread, see `model/uring.rs`,
//! under the same reactor as `epoll`) learns what happened from a completion ring, and for a
//! connection's own socket the ring moves the bytes too:
//! - **receives**: a multishot `IORING_OP_RECV` per connection, into the loop's provided-buffer
//!   ring (`bufring.rs`); the bytes are copied into the connection's bounded queue and the
//!   buffer goes back at once (`stream.rs`); `conn/` takes them through `Poller::recv`;
//! - **sends**: the bytes `conn/` hands over (`Poller::send`) go out as `IORING_OP_SEND`, one in
//!   flight per connection, queued small replies merged, a short send continued; file ranges
//!   still go out with `sendfile` once the bytes before them are out (`conn/ring.rs`);
//! - **the loop's wake-up eventfd** is read by an `IORING_OP_READ`, whose completion is the
//!   wake-up, so no read or drain call is left;
//! - **accepts**: a multishot `IORING_OP_ACCEPT` per listener (`accept.rs`); the loop takes
//!   the new descriptors (`Poller::accepted`) and admits them as every model does;
//! - everything else (data channels, passive listeners, the shutdown pipe, the relay
//!   link, and a connection's writability while a file range waits for room) has one
//!   `IORING_OP_POLL_ADD` in flight, its completion being the event.
//!
//! Its files: this one (the poller, arming requests), `reap.rs` (what each completion means),
//! `accept.rs` (the listeners' accepts),
//! `stream.rs` (a connection's receive and send queues), `bufring.rs` (the provided buffers),
//! `setup.rs` (start-up errors, the probe, and the drop that waits for every request).
//!
//! Every request of a turn (receives and sends armed, polls re-armed, interest changes) is
//! queued in the submission ring and handed over by the single `io_uring_enter` that also
//! waits, with the turn's timeout as its `EXT_ARG` timespec: a turn is one system call.
//!
//! Why one-shot polls, re-armed: a one-shot poll that is armed again after its event checks
//! readiness at once when the kernel takes it, which is exactly level-triggered readiness, the
//! discipline `conn/` is written for (it may stop reading at a bound and expect to be told
//! again). A multishot poll only fires on new wake-ups (edge semantics).
//!
//! Why a removal is submitted at once: a request holds a reference to its file, so a closed
//! socket stays open in the kernel until its requests are gone. The removal (or cancellation)
//! is submitted before the caller closes the descriptor; memory a cancelled request may still
//! use (a send's buffer, an eventfd's counter) is kept until its completion. On drop every
//! request left is cancelled and waited for, so no socket (or listening port) outlives the
//! loop and no request writes or reads memory once it is freed (if the wait ran out, that
//! memory is leaked instead).

mod accept;
mod bufring;
mod reap;
mod refuse;
mod setup;
mod stream;

use crate::poller::{Event, Interest, Poller, Received, Refused, Sent};
use accept::{Accept, ACCEPT};
use bufring::BufRing;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
pub(crate) use setup::setup_error;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::time::Duration;
use stream::{RecvState, Stream};

/// The `user_data` of requests whose completion is not an event (removals, cancellations).
const IGNORED: u64 = u64::MAX;
/// The `user_data` of the cancellation sent on drop.
const CANCEL_ALL: u64 = IGNORED - 1;
/// Set in the `user_data` of a multishot receive (`fd << 32 | RECV | stream id`); polls carry
/// `fd << 32 | sequence` with this bit, [`SEND`] and [`ACCEPT`] clear.
const RECV: u64 = 1 << 31;
/// Set in the `user_data` of a send (`fd << 32 | SEND | stream id`).
const SEND: u64 = 1 << 30;
/// Sequence numbers and stream ids fit under [`ACCEPT`].
const SEQ_MASK: u32 = (ACCEPT as u32) - 1;
/// Submission slots: a turn re-arms at most this many polls per `io_uring_enter`; more are
/// handed over in extra submits (only under thousands of events in one turn).
const SQ_ENTRIES: u32 = 1024;
/// Completion slots; past them the kernel keeps completions aside (IORING_FEAT_NODROP) and the
/// crate's submit flushes them, so none is lost.
const CQ_ENTRIES: u32 = 8192;

/// One watched descriptor.
struct Watch {
    token: usize,
    /// The poll(2) mask wanted (0: nothing, so no poll is armed). For a stream whose bytes
    /// the ring receives, reading is not in it (the receive tells of bytes, the end and errors).
    mask: u32,
    /// The `user_data` of the poll in flight, if any: `fd << 32 | sequence`, so a completion
    /// of an older request (removed, or for a descriptor number since reused) is recognised.
    armed: Option<u64>,
    /// A connection's socket, received through the ring (see `stream.rs`).
    stream: Option<Box<Stream>>,
    /// An eventfd read through the ring (`IORING_OP_READ` into this counter) instead of
    /// polled: its completion is the wake-up and has consumed it, so the loop makes no read.
    counter: Option<Box<u64>>,
    /// A listener the ring accepts on (see `accept.rs`).
    accept: Option<Accept>,
}

pub(crate) struct UringPoller {
    // Declared before `bufs`: the ring goes first, so the buffers it was given outlive it.
    ring: IoUring,
    watches: HashMap<RawFd, Watch>,
    /// Descriptors whose poll (or receive) must be (re)armed by the next wait.
    rearm: Vec<RawFd>,
    seq: u32,
    /// Which wait this is: a stream is reported readable once per wait however many of its
    /// receives completed.
    turn: u64,
    /// Multishot receives the kernel still holds (their last completion not seen), whoever
    /// owns them: on drop, the buffers are freed only when this is zero.
    receives: usize,
    /// Sends the kernel still holds (their completion not seen), whoever owns them.
    sends: usize,
    /// Multishot accepts the kernel still holds (their last completion not seen).
    accepts: usize,
    /// The send queues of streams deleted while a send was in flight, by that send's
    /// `user_data`: the kernel may still read the front buffer until the completion comes.
    orphans: HashMap<u64, VecDeque<Vec<u8>>>,
    /// Counters of eventfds deleted while their read was in flight (the kernel may still write
    /// them until the completion; a loop has one or two, so they are kept to the end).
    // A Box each: the kernel holds its address, which must not move as the list grows.
    #[allow(clippy::vec_box)]
    counters: Vec<Box<u64>>,
    /// Completions of a turn, copied out of the ring so handling them may queue new requests.
    reaped: Vec<cqueue::Entry>,
    /// The ring has a file-table slot to refuse through (see `refuse.rs`).
    direct: bool,
    bufs: BufRing,
}

impl UringPoller {
    pub(crate) fn new() -> io::Result<Self> {
        let ring = IoUring::builder()
            // The kernel runs completion work when we enter, not by interrupting the thread.
            .setup_coop_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        if !ring.params().is_feature_ext_arg() {
            // The wait's timeout rides on io_uring_enter's EXT_ARG (Linux 5.11).
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel's io_uring has no IORING_FEAT_EXT_ARG (Linux 5.11 or later is \
                 needed for a wait with a timeout)",
            ));
        }
        let bufs = BufRing::new(&ring.submitter())?;
        Ok(UringPoller {
            ring,
            watches: HashMap::new(),
            rearm: Vec::new(),
            seq: 0,
            turn: 0,
            receives: 0,
            sends: 0,
            accepts: 0,
            orphans: HashMap::new(),
            counters: Vec::new(),
            reaped: Vec::new(),
            direct: false,
            bufs,
        })
        .map(|mut p: UringPoller| {
            p.direct = p.register_slot();
            p
        })
    }

    /// Queue a request, handing the queue to the kernel first if it is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entries queued here (poll add and remove, cancel, multishot receive)
            // point at no memory of ours; a receive writes only into the registered buffer
            // ring, which lives until every receive has completed (see `Drop`).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1) & SEQ_MASK;
        self.seq
    }

    /// Withdraw the poll in flight for `w`, if any (its completion, -ECANCELED or a last
    /// event, is then ignored: it no longer matches `armed`).
    fn disarm(&mut self, armed: Option<u64>) {
        if let Some(ud) = armed {
            let entry = opcode::PollRemove::new(ud).build().user_data(IGNORED);
            if let Err(e) = self.push(entry) {
                tracing::warn!("io_uring: cannot queue a poll removal: {e}");
            }
        }
    }

    /// Cancel a stream's multishot receive; its last completion (-ECANCELED, or bytes that
    /// were already on their way) still comes, and is still delivered.
    fn cancel_recv(&mut self, fd: RawFd) {
        let Some(st) = self.watches.get_mut(&fd).and_then(|w| w.stream.as_mut()) else {
            return;
        };
        if st.recv != RecvState::Armed {
            return;
        }
        st.recv = RecvState::Cancelling;
        let ud = recv_ud(fd, st.id);
        let entry = opcode::AsyncCancel::new(ud).build().user_data(IGNORED);
        if let Err(e) = self.push(entry) {
            tracing::warn!("io_uring: cannot queue a receive cancellation: {e}");
        }
    }

    fn arm_pending(&mut self) -> io::Result<()> {
        let rearm = std::mem::take(&mut self.rearm);
        for (i, fd) in rearm.iter().enumerate() {
            if let Err(e) = self.arm(*fd) {
                // Not queued: kept in the list, so the next wait tries again rather than the
                // descriptor going unwatched for good.
                self.rearm.extend_from_slice(&rearm[i..]);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Queue what `fd` needs and has not in flight: its poll, its receive.
    fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(w) = self.watches.get(&fd) else {
            return Ok(());
        };
        if w.accept.is_some() && w.mask == 0 {
            // Accepting (with a mask, the listener is polled: see `accept.rs`).
            return self.arm_accept(fd);
        }
        if w.stream.as_ref().is_some_and(|st| st.wants_recv()) {
            let id = w.stream.as_ref().map_or(0, |st| st.id);
            let entry = opcode::RecvMulti::new(types::Fd(fd), bufring::GROUP)
                .build()
                .user_data(recv_ud(fd, id));
            self.push(entry)?;
            self.receives += 1;
            if let Some(st) = self.watches.get_mut(&fd).and_then(|w| w.stream.as_mut()) {
                st.recv = RecvState::Armed;
            }
        }
        let next = self
            .watches
            .get_mut(&fd)
            .and_then(|w| w.stream.as_mut())
            .and_then(|st| st.next_send().map(|b| (b, st.id)));
        if let Some(((ptr, len), id)) = next {
            let entry = opcode::Send::new(types::Fd(fd), ptr, len.min(u32::MAX as usize) as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(send_ud(fd, id));
            self.push(entry)?;
            self.sends += 1;
            if let Some(st) = self.watches.get_mut(&fd).and_then(|w| w.stream.as_mut()) {
                st.sending = true;
            }
        }
        let Some(w) = self.watches.get(&fd) else {
            return Ok(());
        };
        let mut m = w.mask;
        if w.stream.as_ref().is_some_and(|st| st.has_sends()) {
            // Bytes are on their way through the ring: its completion is the news, not
            // writability (which would be reported at once, every turn).
            m &= !(libc::POLLOUT as u16 as u32);
        }
        if w.armed.is_some() || m == 0 {
            return Ok(());
        }
        if let Some(counter) = w.counter.as_ref() {
            let ptr = &**counter as *const u64 as *mut u8;
            let ud = ((fd as u32 as u64) << 32) | self.next_seq() as u64;
            self.push(
                opcode::Read::new(types::Fd(fd), ptr, 8)
                    .build()
                    .user_data(ud),
            )?;
            if let Some(w) = self.watches.get_mut(&fd) {
                w.armed = Some(ud);
            }
            return Ok(());
        }
        let ud = ((fd as u32 as u64) << 32) | self.next_seq() as u64;
        self.push(opcode::PollAdd::new(types::Fd(fd), m).build().user_data(ud))?;
        if let Some(w) = self.watches.get_mut(&fd) {
            w.armed = Some(ud);
        }
        Ok(())
    }
}

/// The `user_data` of stream `id`'s receive on `fd`.
fn recv_ud(fd: RawFd, id: u32) -> u64 {
    ((fd as u32 as u64) << 32) | RECV | id as u64
}

/// The `user_data` of stream `id`'s send on `fd`.
fn send_ud(fd: RawFd, id: u32) -> u64 {
    ((fd as u32 as u64) << 32) | SEND | id as u64
}

fn mask(interest: Interest) -> u32 {
    let mut m = 0;
    if interest.read {
        m |= libc::POLLIN | libc::POLLRDHUP;
    } else if interest.hangup {
        m |= libc::POLLRDHUP;
    }
    if interest.write {
        m |= libc::POLLOUT;
    }
    m as u16 as u32
}

/// The poll a stream needs beside its receive: writing, and the FIN while reading is paused.
fn stream_mask(interest: Interest) -> u32 {
    mask(Interest {
        read: false,
        hangup: interest.hangup && !interest.read,
        write: interest.write,
    })
}

impl Poller for UringPoller {
    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.watches.contains_key(&fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.watches.insert(
            fd,
            Watch {
                token,
                mask: mask(interest),
                armed: None,
                stream: None,
                counter: None,
                accept: None,
            },
        );
        self.rearm.push(fd);
        Ok(())
    }

    fn add_listener(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        self.listen(fd, token)
    }

    fn accepted(&mut self, fd: RawFd, into: &mut Vec<io::Result<OwnedFd>>) {
        self.take_accepted(fd, into);
    }

    fn refuse_direct(&mut self, fd: RawFd, msg: Option<&[u8]>) -> Option<io::Result<Refused>> {
        UringPoller::refuse_direct(self, fd, msg)
    }

    fn resume_accept(&mut self, fd: RawFd) {
        self.resume(fd);
    }

    fn add_eventfd(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        self.add(fd, token, Interest::READ)?;
        if let Some(w) = self.watches.get_mut(&fd) {
            w.counter = Some(Box::new(0));
        }
        Ok(true)
    }

    fn add_stream(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.watches.contains_key(&fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let id = self.next_seq();
        self.watches.insert(
            fd,
            Watch {
                token,
                mask: stream_mask(interest),
                armed: None,
                stream: Some(Box::new(Stream::new(id, interest.read))),
                counter: None,
                accept: None,
            },
        );
        self.rearm.push(fd);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let Some(w) = self.watches.get_mut(&fd) else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        w.token = token;
        let m = match w.stream.as_mut() {
            Some(st) => {
                st.want_read = interest.read;
                stream_mask(interest)
            }
            None => mask(interest),
        };
        let stream = w.stream.as_ref().map(|st| st.wants_recv());
        match stream {
            // Paused (backpressure, a session's pause): stop taking its bytes in.
            Some(_) if !interest.read => self.cancel_recv(fd),
            Some(true) => self.rearm.push(fd),
            _ => {}
        }
        let Some(w) = self.watches.get_mut(&fd) else {
            return Ok(());
        };
        if w.mask == m {
            return Ok(()); // the poll in flight (or the pending re-arm) already asks for it
        }
        w.mask = m;
        let old = w.armed.take();
        self.disarm(old);
        self.rearm.push(fd);
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) {
        self.cancel_recv(fd);
        if let Some(mut w) = self.watches.remove(&fd) {
            let receiving = w
                .stream
                .as_ref()
                .is_some_and(|st| st.recv != RecvState::Idle);
            let mut sending = false;
            if let Some(st) = w.stream.as_mut().filter(|st| st.sending) {
                // The kernel may be reading the front buffer: keep the queue until the
                // completion, and cancel the send (it may wait on a peer that never reads).
                sending = true;
                let ud = send_ud(fd, st.id);
                self.orphans.insert(ud, std::mem::take(&mut st.sends));
                let entry = opcode::AsyncCancel::new(ud).build().user_data(IGNORED);
                if let Err(e) = self.push(entry) {
                    tracing::warn!("io_uring: cannot queue a send cancellation: {e}");
                }
            }
            if let Some(c) = w.counter.take().filter(|_| w.armed.is_some()) {
                self.counters.push(c);
                if let Some(ud) = w.armed.take() {
                    let entry = opcode::AsyncCancel::new(ud).build().user_data(IGNORED);
                    if let Err(e) = self.push(entry) {
                        tracing::warn!("io_uring: cannot queue a read cancellation: {e}");
                    }
                    if let Err(e) = self.ring.submit() {
                        tracing::warn!("io_uring: cannot submit a read cancellation: {e}");
                    }
                }
            }
            let accepting = w.accept.as_ref().is_some_and(|a| a.armed);
            if let Some(a) = w.accept.take() {
                // Descriptors still queued in `a` close as it drops, after the cancellation.
                self.cancel_accept(fd, &a);
            }
            if w.armed.is_some() || receiving || sending || accepting {
                self.disarm(w.armed);
                // Handed over now, not with the next wait: the caller closes the descriptor
                // next, and the socket must really close then (a peer told "aborted" must find
                // the port shut, a client must see its FIN), which it cannot while a request
                // still holds it. One system call, as epoll's EPOLL_CTL_DEL is. The receive's
                // last completion comes later and finds no stream: its buffer goes back then.
                if let Err(e) = self.ring.submit() {
                    tracing::warn!("io_uring: cannot submit a poll removal: {e}");
                }
            }
        }
    }

    fn recv(&mut self, fd: RawFd, into: &mut Vec<u8>, max: usize) -> Option<Received> {
        let st = self.watches.get_mut(&fd)?.stream.as_mut()?;
        let r = st.take(into, max);
        if st.wants_recv() {
            // It had stopped at its bound (or the ring ran dry): receive again.
            self.rearm.push(fd);
        }
        Some(r)
    }

    fn send(&mut self, fd: RawFd, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        let Some(st) = self.watches.get_mut(&fd).and_then(|w| w.stream.as_mut()) else {
            return Err(buf);
        };
        st.queue(buf);
        // Submitted with the turn's wait, beside every other connection's: one system call.
        self.rearm.push(fd);
        Ok(())
    }

    fn sent(&mut self, fd: RawFd) -> Option<Sent> {
        let st = self.watches.get_mut(&fd)?.stream.as_mut()?;
        Some(st.progress())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.turn += 1;
        self.arm_pending()?;
        // Completions reaped early (while a refusal or a cancelled accept was waited for) are
        // this turn's news: do not block for more.
        let timeout = if self.reaped.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let r = match timeout {
            None => self.ring.submit_and_wait(1),
            // A turn that must not block still hands over its queue (and reaps what is there).
            Some(d) if d.is_zero() => self.ring.submit(),
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        if let Err(e) = r {
            match e.raw_os_error() {
                // The timeout passed, a signal came (the loop comes round and sees the
                // shutdown flag), or completions wait to be reaped first.
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => return Err(e),
            }
        }
        let mut reaped = std::mem::take(&mut self.reaped);
        reaped.extend(self.ring.completion());
        for cqe in &reaped {
            let ud = cqe.user_data();
            if ud >= refuse::REFUSAL_LAST {
                continue; // IGNORED, CANCEL_ALL, a refusal's (see `refuse.rs`)
            }
            if ud & RECV != 0 {
                self.on_recv(cqe, events);
            } else if ud & SEND != 0 {
                self.on_send(cqe, events);
            } else if ud & ACCEPT != 0 {
                self.on_accept(cqe, events);
            } else {
                self.on_poll(cqe, events);
            }
        }
        reaped.clear();
        self.reaped = reaped;
        // The kernel sees the buffers handed back this turn (one store for them all).
        self.bufs.publish();
        Ok(())
    }
}
