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
//! - everything else (listeners, data channels, passive listeners, the shutdown pipe, the relay
//!   link, and a connection's writability while a file range waits for room) has one
//!   `IORING_OP_POLL_ADD` in flight, its completion being the event.
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

mod bufring;
mod stream;

use crate::poller::{Event, Interest, Poller, Received, Sent};
use bufring::BufRing;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;
use stream::{RecvState, Stream};

/// The `user_data` of requests whose completion is not an event (removals, cancellations).
const IGNORED: u64 = u64::MAX;
/// The `user_data` of the cancellation sent on drop.
const CANCEL_ALL: u64 = IGNORED - 1;
/// Set in the `user_data` of a multishot receive (`fd << 32 | RECV | stream id`); polls carry
/// `fd << 32 | sequence` with this bit and [`SEND`] clear.
const RECV: u64 = 1 << 31;
/// Set in the `user_data` of a send (`fd << 32 | SEND | stream id`).
const SEND: u64 = 1 << 30;
/// Sequence numbers and stream ids fit under [`SEND`].
const SEQ_MASK: u32 = (SEND as u32) - 1;
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
    bufs: BufRing,
}

/// Why the ring could not be set up, for the message the server gives at start.
pub(crate) fn setup_error(e: &io::Error) -> String {
    if e.raw_os_error().is_none() {
        return e.to_string(); // our own check of the kernel's features (`UringPoller::new`)
    }
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    explain(e, disabled)
}

/// The reason, from `io_uring_setup`'s error and `kernel.io_uring_disabled` (if readable).
pub(crate) fn explain(e: &io::Error, disabled: Option<u8>) -> String {
    let sysctl = match disabled {
        Some(2) => " (kernel.io_uring_disabled = 2: io_uring is switched off for everyone)",
        Some(1) => {
            " (kernel.io_uring_disabled = 1: only members of kernel.io_uring_group or \
             CAP_SYS_ADMIN may use it)"
        }
        _ => "",
    };
    match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "io_uring_setup is not implemented (ENOSYS): the kernel was built without \
             io_uring, or a sandbox hides the system call"
                .to_string()
        }
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "io_uring_setup was refused ({}){sysctl}; a seccomp profile or container runtime \
             may also forbid it",
            if e.raw_os_error() == Some(libc::EPERM) {
                "EPERM"
            } else {
                "EACCES"
            }
        ),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup failed for lack of locked memory (ENOMEM: {e}); raise \
             RLIMIT_MEMLOCK{sysctl}"
        ),
        _ => format!("io_uring_setup failed: {e}{sysctl}"),
    }
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
            orphans: HashMap::new(),
            counters: Vec::new(),
            reaped: Vec::new(),
            bufs,
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

    /// A poll's completion: the event it reports, if still wanted.
    fn on_poll(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
        let ud = cqe.user_data();
        let fd = (ud >> 32) as u32 as RawFd;
        let Some(w) = self.watches.get_mut(&fd) else {
            return; // removed since
        };
        if w.armed != Some(ud) {
            return; // an older request for this descriptor
        }
        w.armed = None;
        self.rearm.push(fd);
        let res = cqe.result();
        let (readable, writable, hup, rdhup) = if w.counter.is_some() {
            // An eventfd read: done (the wake-up) or failed; either way the loop looks.
            (true, false, false, false)
        } else if res < 0 {
            // The poll itself failed: let the next read or write surface the error.
            (true, true, false, false)
        } else {
            let f = res as u32 as i16;
            let bad = f & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            (
                bad || f & (libc::POLLIN | libc::POLLRDHUP) != 0,
                bad || f & libc::POLLOUT != 0,
                bad,
                f & libc::POLLRDHUP != 0,
            )
        };
        events.push(Event {
            token: w.token,
            readable,
            writable,
            hup,
            rdhup,
        });
    }

    /// A multishot receive's completion: its bytes (or end, or error) go to the stream's
    /// queue, the buffer goes back to the ring at once, and the stream is reported readable
    /// (once per wait).
    fn on_recv(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
        let ud = cqe.user_data();
        let flags = cqe.flags();
        let more = cqueue::more(flags);
        if !more {
            self.receives = self.receives.saturating_sub(1);
        }
        let buf = cqueue::buffer_select(flags);
        let res = cqe.result();
        let fd = (ud >> 32) as u32 as RawFd;
        let id = ud as u32 & SEQ_MASK;
        let watch = self.watches.get_mut(&fd);
        let (token, stream) = match watch {
            Some(w) => (w.token, w.stream.as_mut().filter(|st| st.id == id)),
            None => (0, None),
        };
        if let Some(st) = stream {
            let bytes = match (res, buf) {
                (n, Some(bid)) if n > 0 => self.bufs.bytes(bid, n as usize),
                _ => &[],
            };
            let news = st.on_completion(res, bytes, more);
            if news && st.told != self.turn {
                st.told = self.turn;
                events.push(Event {
                    token,
                    readable: true,
                    writable: false,
                    hup: false,
                    rdhup: false,
                });
            }
            let (full, rearm) = (st.full(), !more && st.wants_recv());
            if rearm {
                self.rearm.push(fd);
            } else if full {
                // Held bytes reached their bound: stop receiving until the connection takes
                // them (a peer must not make us buffer without bound).
                self.cancel_recv(fd);
            }
        }
        if let Some(bid) = buf {
            self.bufs.give_back(bid);
        }
    }

    /// A send's completion: progress (the rest is sent next turn) or the error, and the
    /// stream is reported writable (once per wait) so its connection counts what left.
    fn on_send(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
        self.sends = self.sends.saturating_sub(1);
        let ud = cqe.user_data();
        let fd = (ud >> 32) as u32 as RawFd;
        let id = ud as u32 & SEQ_MASK;
        let Some(w) = self.watches.get_mut(&fd) else {
            self.orphans.remove(&ud); // the kernel is done with them
            return;
        };
        let token = w.token;
        let Some(st) = w.stream.as_mut().filter(|st| st.id == id) else {
            self.orphans.remove(&ud);
            return;
        };
        st.on_sent(cqe.result());
        if st.send_told != self.turn {
            st.send_told = self.turn;
            events.push(Event {
                token,
                readable: false,
                writable: true,
                hup: false,
                rdhup: false,
            });
        }
        // The next send (or, once none is left, the writability poll a file range may need).
        self.rearm.push(fd);
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
            },
        );
        self.rearm.push(fd);
        Ok(())
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
            if w.armed.is_some() || receiving || sending {
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
            if ud == IGNORED || ud == CANCEL_ALL {
                continue;
            }
            if ud & RECV != 0 {
                self.on_recv(cqe, events);
            } else if ud & SEND != 0 {
                self.on_send(cqe, events);
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

impl UringPoller {
    /// Requests the kernel may still be writing or reading through: leak their memory (once,
    /// at the loop's end) rather than free it under the kernel.
    fn leak_if_held(&mut self, cancelled_all: bool) {
        if self.receives > 0 {
            self.bufs.leak = true;
        }
        if self.sends > 0 || !cancelled_all {
            std::mem::forget(std::mem::take(&mut self.orphans));
            std::mem::forget(std::mem::take(&mut self.watches));
            std::mem::forget(std::mem::take(&mut self.counters));
        }
    }
}

impl Drop for UringPoller {
    /// Cancel every request still in flight and wait for the cancellation and for every
    /// receive's last completion, so the files they hold (sockets, listeners) are released
    /// before the loop's owner goes on, and no receive can write into the buffers once they
    /// are freed.
    fn drop(&mut self) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(CANCEL_ALL);
        if self.push(cancel).is_err() {
            self.leak_if_held(false);
            return;
        }
        let mut cancelled = false;
        // Bounded: cancelling polls and receives is immediate; each round waits at most 100 ms.
        for _ in 0..20 {
            let ts = types::Timespec::from(Duration::from_millis(100));
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
                Err(_) => break,
            }
            for cqe in self.ring.completion() {
                if cqe.user_data() == CANCEL_ALL {
                    cancelled = true;
                } else if cqe.user_data() == IGNORED {
                } else if cqe.user_data() & RECV != 0 && !cqueue::more(cqe.flags()) {
                    self.receives = self.receives.saturating_sub(1);
                } else if cqe.user_data() & SEND != 0 {
                    self.sends = self.sends.saturating_sub(1);
                }
            }
            if cancelled && self.receives == 0 && self.sends == 0 {
                return;
            }
        }
        self.leak_if_held(cancelled);
    }
}

impl UringPoller {
    /// Check that this kernel's receives can be multishot (Linux 6.0; provided-buffer rings
    /// alone came in 5.19): one receive on a socket pair, armed before a byte is sent, must
    /// bring the byte back and stay armed (`IORING_CQE_F_MORE`). Run by the model's start-up
    /// check, so an older kernel gets a clear error instead of connections that fail.
    pub(crate) fn probe(&mut self) -> io::Result<()> {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into the array it is given.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        self.add_stream(a.as_raw_fd(), 0, Interest::READ)?;
        self.arm_pending()?;
        self.ring.submit()?;
        // Kept open to the end: its close would end the receive.
        let mut b = std::os::unix::net::UnixStream::from(b);
        b.write_all(b"x")?;
        let mut events = Vec::new();
        let mut got = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(2);
        while got.is_empty() && std::time::Instant::now() < end {
            self.wait(&mut events, Some(Duration::from_millis(100)))?;
            if let Some(Received::Error(e)) = self.recv(a.as_raw_fd(), &mut got, 16) {
                self.delete(a.as_raw_fd());
                return Err(unsupported(&e.to_string()));
            }
        }
        let armed = self
            .watches
            .get(&a.as_raw_fd())
            .and_then(|w| w.stream.as_ref())
            .is_some_and(|st| st.recv == RecvState::Armed);
        self.delete(a.as_raw_fd());
        drop(b);
        if got != b"x" || !armed {
            return Err(unsupported("the receive did not stay armed"));
        }
        Ok(())
    }
}

fn unsupported(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "this kernel's io_uring has no multishot receive ({why}); Linux 6.0 or later is \
             needed"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This kernel (the project's CI and development machines run io_uring) passes the
    /// start-up probe, and the probe leaves no receive behind.
    #[test]
    fn multishot_receive_probe() {
        let mut p = UringPoller::new().expect("io_uring");
        p.probe().expect("multishot receive");
        assert!(p.watches.is_empty());
    }

    #[test]
    fn refusals_are_explained() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let m = explain(&eperm, Some(2));
        assert!(m.contains("refused (EPERM)"), "{m}");
        assert!(m.contains("io_uring_disabled = 2"), "{m}");
        let enosys = io::Error::from_raw_os_error(libc::ENOSYS);
        let m = explain(&enosys, None);
        assert!(m.contains("not implemented (ENOSYS)"), "{m}");
        // ENOSYS is io::ErrorKind::Unsupported too: still explained, not taken for our own.
        assert!(setup_error(&enosys).contains("not implemented (ENOSYS)"));
        let m = explain(&io::Error::from_raw_os_error(libc::ENOMEM), Some(0));
        assert!(m.contains("RLIMIT_MEMLOCK"), "{m}");
        assert!(!m.contains("io_uring_disabled"), "{m}");
    }
}
