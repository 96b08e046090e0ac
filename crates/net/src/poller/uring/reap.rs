//! What a completion means: a poll's event, a receive's bytes (copied into the connection's
//! queue, the buffer handed back at once), a send's progress. Each turns into at most one
//! readable and one writable event per connection per wait (see `mod.rs`).

use super::{UringPoller, SEQ_MASK};
use crate::poller::Event;
use io_uring::cqueue;
use std::os::fd::RawFd;

impl UringPoller {
    /// A poll's completion: the event it reports, if still wanted.
    pub(super) fn on_poll(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
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
        if let Some(a) = w.accept.as_mut() {
            // A listener polled while out of descriptors (see `accept.rs`): a client waits.
            a.done.push_back(Err(libc::EMFILE));
        }
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
    pub(super) fn on_recv(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
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
                events.push(Event::readable(token));
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
    pub(super) fn on_send(&mut self, cqe: &cqueue::Entry, events: &mut Vec<Event>) {
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
