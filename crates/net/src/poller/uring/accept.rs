//! Accepts through the ring: one multishot `IORING_OP_ACCEPT` per listener, each completion a
//! new descriptor (or an errno). The descriptors wait in the listener's queue until the loop
//! takes them ([`Poller::accepted`](crate::poller::Poller::accepted)) when the listener is
//! reported readable; admission, the peer's address and the out-of-descriptors reserve stay
//! the loop's (`model/reactor/`), so every model admits the same way.
//!
//! Out of descriptors: an EMFILE completion ends the accept, and the listener is then polled
//! instead (an accept armed again would fail at once: the kernel takes a descriptor before it
//! looks at the queue, so the loop would spin); each client that arrives is reported as an
//! EMFILE, which the loop refuses through the ring's file table (`refuse.rs`), until its
//! accept(2) gets a descriptor again and it resumes the multishot accept.
//!
//! Ownership: a descriptor the kernel handed over is ours from its completion on. One that
//! arrives for a listener no longer watched (shutdown began, or the loop backed off) or for an
//! older arming (the number was reused) is closed at once, and so is one still queued when
//! its listener is dropped: none leaks.

use super::{UringPoller, SEQ_MASK};
use crate::poller::{Event, Interest, Poller};
use io_uring::{cqueue, opcode, types};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Set in the `user_data` of a multishot accept (`fd << 32 | ACCEPT | arming id`).
pub(super) const ACCEPT: u64 = 1 << 29;

/// A listener the ring accepts on.
pub(super) struct Accept {
    /// Which arming this is (a completion of an older one is recognised and its descriptor
    /// closed).
    pub(super) id: u32,
    /// A multishot accept is in flight (its last completion, without `F_MORE`, not seen).
    pub(super) armed: bool,
    /// Completions not yet taken by the loop: a new connection, or the accept's errno.
    pub(super) done: VecDeque<Result<OwnedFd, i32>>,
    /// The wait it was last reported in (once per wait however many completions came).
    pub(super) told: u64,
}

/// The `user_data` of arming `id`'s accept on listener `fd`.
pub(super) fn accept_ud(fd: RawFd, id: u32) -> u64 {
    ((fd as u32 as u64) << 32) | ACCEPT | id as u64
}

/// Own a descriptor a completion delivered (`res >= 0`).
fn own(res: i32) -> OwnedFd {
    // SAFETY: a successful accept completion's result is a descriptor the kernel just
    // installed in our table for us; nothing else knows its number.
    unsafe { OwnedFd::from_raw_fd(res) }
}

impl UringPoller {
    /// Queue listener `fd`'s multishot accept (non-blocking, close-on-exec descriptors).
    pub(super) fn arm_accept(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(id) = self
            .watches
            .get(&fd)
            .and_then(|w| w.accept.as_ref())
            .filter(|a| !a.armed)
            .map(|a| a.id)
        else {
            return Ok(());
        };
        let entry = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(accept_ud(fd, id));
        self.push(entry)?;
        self.accepts += 1;
        if let Some(a) = self.watches.get_mut(&fd).and_then(|w| w.accept.as_mut()) {
            a.armed = true;
        }
        Ok(())
    }

    /// An accept's completion: the descriptor (or errno) is queued for the loop, which is told
    /// the listener is readable. A completion without `F_MORE` ended the accept: it is armed
    /// again with the next wait (after the loop has handled an EMFILE with its reserve, in the
    /// same turn) unless the listener is dropped meanwhile.
    pub(super) fn on_accept(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
        let ud = cqe.user_data();
        let more = cqueue::more(cqe.flags());
        if !more {
            self.accepts = self.accepts.saturating_sub(1);
        }
        let res = cqe.result();
        let fd = (ud >> 32) as u32 as RawFd;
        let id = ud as u32 & SEQ_MASK;
        let turn = self.turn;
        let Some(w) = self.watches.get_mut(&fd) else {
            if res >= 0 {
                drop(own(res)); // the listener is gone (shutdown, back-off): close it
            }
            return;
        };
        let token = w.token;
        let Some(a) = w.accept.as_mut().filter(|a| a.id == id) else {
            if res >= 0 {
                drop(own(res));
            }
            return;
        };
        if !more {
            a.armed = false;
            self.rearm.push(fd);
            if matches!(
                -res,
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
            ) {
                // The kernel's accept takes a descriptor before it looks at the queue: armed
                // again now, it would fail at once, again and again. Poll the listener
                // instead (each client then comes as an EMFILE for the loop to refuse) until
                // the loop finds descriptors back (`Poller::resume_accept`).
                w.mask = (libc::POLLIN as u16).into();
            }
        }
        a.done
            .push_back(if res >= 0 { Ok(own(res)) } else { Err(-res) });
        if a.told != turn {
            a.told = turn;
            events.push(Event::readable(token));
        }
    }

    /// Cancel listener `fd`'s accept (the watch is being removed) and wait for its last
    /// completion, so the caller's close really closes the listening socket (a request holds
    /// its file): a client must not be left in a queue nobody accepts from. The completions
    /// reaped meanwhile are kept for the next wait; the accept's own, finding no watch then,
    /// close any descriptor they carry.
    pub(super) fn cancel_accept(&mut self, fd: RawFd, a: &Accept) {
        if !a.armed {
            return;
        }
        let ud = accept_ud(fd, a.id);
        let entry = opcode::AsyncCancel::new(ud)
            .build()
            .user_data(super::IGNORED);
        if let Err(e) = self.push(entry) {
            tracing::warn!("io_uring: cannot queue an accept cancellation: {e}");
            return;
        }
        let end = Instant::now() + Duration::from_secs(1);
        let ended = |c: &cqueue::Entry| c.user_data() == ud && !cqueue::more(c.flags());
        while !self.reaped.iter().any(ended) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("io_uring: a cancelled accept has not ended after 1 s");
                return;
            }
            let ts = types::Timespec::from(left);
            let args = types::SubmitArgs::new().timespec(&ts);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args) {
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) {
                    tracing::warn!("io_uring: cannot wait for a cancelled accept: {e}");
                    return;
                }
            }
            self.reaped.extend(self.ring.completion());
        }
    }

    /// Watch listener `fd` and accept on it through the ring (see [`Poller::add_listener`]).
    pub(super) fn listen(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        self.add(fd, token, Interest::READ)?;
        let id = self.next_seq();
        if let Some(w) = self.watches.get_mut(&fd) {
            w.mask = 0; // no poll: the accept's completions are the news
            w.accept = Some(Accept {
                id,
                armed: false,
                done: VecDeque::new(),
                told: 0,
            });
        }
        Ok(true)
    }

    /// What the ring accepted on listener `fd` (see [`Poller::accepted`]).
    pub(super) fn take_accepted(&mut self, fd: RawFd, into: &mut Vec<io::Result<OwnedFd>>) {
        if let Some(a) = self.watches.get_mut(&fd).and_then(|w| w.accept.as_mut()) {
            into.extend(
                a.done
                    .drain(..)
                    .map(|r| r.map_err(io::Error::from_raw_os_error)),
            );
        }
    }

    /// Back from polling listener `fd` to accepting on it (see [`Poller::resume_accept`]).
    pub(super) fn resume(&mut self, fd: RawFd) {
        let Some(w) = self.watches.get_mut(&fd).filter(|w| w.accept.is_some()) else {
            return;
        };
        if w.mask == 0 {
            return;
        }
        w.mask = 0;
        let old = w.armed.take();
        self.disarm(old);
        self.rearm.push(fd);
    }
}
