//! A connection's socket whose bytes the ring receives (multishot `IORING_OP_RECV` over the
//! loop's provided-buffer ring): the bytes completed so far, held until the connection takes
//! them (`Poller::recv`), then the end or the error that came after them.
//!
//! Why a queue here and not a read into the connection's buffer: the kernel completes a
//! receive whenever bytes arrive, before the connection asks, so they must be held somewhere;
//! copying them out of the provided buffer at once lets the buffer serve the next completion.
//! The queue is bounded ([`HOLD`]): past it the receive is cancelled, and armed again when the
//! connection has taken the bytes, so a peer cannot make us hold more than [`HOLD`] plus one
//! buffer ring per connection, whether the connection reads or is paused (a paused one has no
//! receive armed at all).

use crate::poller::{Received, Sent};
use std::collections::VecDeque;
use std::io;

/// Queued buffers smaller than this are merged into one send (pipelined small replies).
const MERGE: usize = 64 * 1024;

/// Bytes held for one connection before its receive is stopped.
pub(super) const HOLD: usize = 64 * 1024;
/// Capacity an emptied queue may keep (a request's worth).
const IDLE_KEEP: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecvState {
    /// No receive in flight.
    Idle,
    /// A multishot receive is in flight.
    Armed,
    /// Its cancellation was sent; its last completion has not come yet.
    Cancelling,
}

pub(super) struct Stream {
    /// Tells this stream's receive completions from those of an earlier socket with the same
    /// descriptor number.
    pub(super) id: u32,
    /// The connection wants its bytes (its interest includes reading).
    pub(super) want_read: bool,
    pub(super) recv: RecvState,
    /// The wait in which it was last reported readable.
    pub(super) told: u64,
    input: Vec<u8>,
    /// Start of the bytes not taken yet in `input`.
    pos: usize,
    eof: bool,
    error: Option<i32>,
    /// Bytes to send, in order; the front one from `send_pos`. The kernel reads the front one
    /// while `sending`: it is neither moved nor freed until that send's completion (on delete
    /// the queue is kept aside until then, see `UringPoller::delete`).
    pub(super) sends: VecDeque<Vec<u8>>,
    pub(super) send_pos: usize,
    pub(super) sending: bool,
    /// Bytes the kernel took since the connection last asked.
    done: usize,
    send_error: Option<i32>,
    /// The wait in which it was last reported writable.
    pub(super) send_told: u64,
}

impl Stream {
    pub(super) fn new(id: u32, want_read: bool) -> Self {
        Stream {
            id,
            want_read,
            recv: RecvState::Idle,
            told: 0,
            input: Vec::new(),
            pos: 0,
            eof: false,
            error: None,
            sends: VecDeque::new(),
            send_pos: 0,
            sending: false,
            done: 0,
            send_error: None,
            send_told: 0,
        }
    }

    fn held(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Holds as much as it may.
    pub(super) fn full(&self) -> bool {
        self.held() >= HOLD
    }

    /// A receive should be armed: wanted, none in flight, room to hold, nothing ended it.
    pub(super) fn wants_recv(&self) -> bool {
        self.want_read
            && self.recv == RecvState::Idle
            && !self.full()
            && !self.eof
            && self.error.is_none()
    }

    /// A completion of its receive: `res` and the bytes it carried. True if the connection
    /// has something new to take.
    pub(super) fn on_completion(&mut self, res: i32, bytes: &[u8], more: bool) -> bool {
        if !more {
            self.recv = RecvState::Idle;
        }
        match res {
            n if n > 0 => {
                if self.pos > 0 && self.pos == self.input.len() {
                    self.input.clear();
                    self.pos = 0;
                }
                self.input.extend_from_slice(bytes);
                true
            }
            0 => {
                self.eof = true;
                true
            }
            // The ring ran dry (re-armed after the buffers are back) or we cancelled it.
            e if e == -libc::ENOBUFS || e == -libc::ECANCELED => false,
            e => {
                self.error = Some(-e);
                true
            }
        }
    }

    /// Hand at most `max` held bytes to the connection, or the end, or the error.
    pub(super) fn take(&mut self, into: &mut Vec<u8>, max: usize) -> Received {
        let held = self.held();
        if held > 0 {
            let n = held.min(max);
            into.extend_from_slice(&self.input[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.input.len() {
                self.input.clear();
                self.pos = 0;
                if self.input.capacity() > IDLE_KEEP {
                    // A burst is over: an idle connection keeps no big buffer.
                    self.input = Vec::new();
                }
            } else if self.pos >= HOLD / 2 {
                self.input.drain(..self.pos);
                self.pos = 0;
            }
            let more = self.held() > 0 || self.eof || self.error.is_some();
            return Received::Bytes { n, more };
        }
        if let Some(e) = self.error {
            return Received::Error(io::Error::from_raw_os_error(e));
        }
        if self.eof {
            return Received::Eof;
        }
        Received::Empty
    }

    /// Queue bytes to send (dropped if a send already failed: the connection is told).
    pub(super) fn queue(&mut self, buf: Vec<u8>) {
        if self.send_error.is_none() && !buf.is_empty() {
            self.sends.push_back(buf);
        }
    }

    /// The bytes the next send should carry, if one should be submitted now; small queued
    /// buffers are merged first, so pipelined replies leave in one send.
    pub(super) fn next_send(&mut self) -> Option<(*const u8, usize)> {
        if self.sending || self.send_error.is_some() || self.sends.is_empty() {
            return None;
        }
        while self.sends.len() > 1 && self.sends[0].len() - self.send_pos < MERGE {
            let next = self.sends.remove(1).unwrap_or_default();
            if self.sends[0].len() - self.send_pos + next.len() > MERGE {
                self.sends.insert(1, next);
                break;
            }
            self.sends[0].extend_from_slice(&next);
        }
        let front = &self.sends[0][self.send_pos..];
        Some((front.as_ptr(), front.len()))
    }

    /// A send's completion: `res` bytes taken (the rest goes next), or the error that ends
    /// sending.
    pub(super) fn on_sent(&mut self, res: i32) {
        self.sending = false;
        if res > 0 {
            let mut n = res as usize;
            self.done += n;
            while n > 0 {
                let Some(front) = self.sends.front() else {
                    break;
                };
                let left = front.len() - self.send_pos;
                if n < left {
                    self.send_pos += n;
                    break;
                }
                n -= left;
                self.sends.pop_front();
                self.send_pos = 0;
            }
        } else {
            // 0 for a non-empty send: the socket takes nothing more (treated as a broken pipe).
            self.send_error = Some(if res == 0 { libc::EPIPE } else { -res });
            self.sends.clear();
            self.send_pos = 0;
        }
    }

    /// Sends queued or in flight.
    pub(super) fn has_sends(&self) -> bool {
        self.sending || !self.sends.is_empty()
    }

    /// Progress since the last call, for the connection.
    pub(super) fn progress(&mut self) -> Sent {
        Sent {
            done: std::mem::take(&mut self.done),
            error: self.send_error.map(io::Error::from_raw_os_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(st: &mut Stream, max: usize) -> (Vec<u8>, String) {
        let mut into = Vec::new();
        let r = st.take(&mut into, max);
        (into, format!("{r:?}"))
    }

    /// Bytes come out in order, at most `max` at a time; the end and an error come only after
    /// every byte before them, and `more` says so while anything is left.
    #[test]
    fn bytes_then_end_in_order() {
        let mut st = Stream::new(1, true);
        assert!(st.on_completion(3, b"abc", true));
        assert!(st.on_completion(2, b"de", true));
        assert!(st.on_completion(0, b"", false));
        assert_eq!(st.recv, RecvState::Idle);
        assert!(!st.wants_recv(), "nothing to receive after the end");
        assert_eq!(take(&mut st, 4).0, b"abcd");
        let (b, r) = take(&mut st, 4);
        assert_eq!(b, b"e");
        assert!(r.contains("more: true"), "{r}");
        assert_eq!(take(&mut st, 4).1, "Eof");
        let mut st = Stream::new(2, true);
        st.on_completion(1, b"z", true);
        st.on_completion(-libc::ECONNRESET, b"", false);
        assert_eq!(take(&mut st, 8).0, b"z");
        assert!(take(&mut st, 8).1.starts_with("Error"));
    }

    /// A dry buffer ring or our own cancellation is no news; the queue's bound stops receiving
    /// until the connection takes the bytes.
    #[test]
    fn dry_ring_and_bound() {
        let mut st = Stream::new(3, true);
        st.recv = RecvState::Armed;
        assert!(!st.on_completion(-libc::ENOBUFS, b"", false));
        assert!(st.wants_recv(), "armed again after a dry ring");
        let big = vec![7u8; HOLD];
        st.recv = RecvState::Armed;
        st.on_completion(HOLD as i32, &big, true);
        assert!(st.full());
        st.recv = RecvState::Idle;
        assert!(!st.wants_recv(), "full: not armed again");
        assert_eq!(take(&mut st, HOLD / 2).0.len(), HOLD / 2);
        assert!(st.wants_recv(), "room again");
        st.want_read = false;
        assert!(!st.wants_recv(), "paused: not armed");
    }

    /// A short send continues where it stopped; small queued buffers leave in one send; an
    /// error drops the rest and is reported.
    #[test]
    fn sends_continue_merge_and_fail() {
        let mut st = Stream::new(4, true);
        st.queue(b"hello ".to_vec());
        st.queue(b"world".to_vec());
        let (ptr, len) = st.next_send().unwrap();
        assert_eq!(len, 11, "merged");
        // SAFETY: ptr/len come from the front buffer, alive and unchanged here.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        assert_eq!(bytes, b"hello world");
        st.sending = true;
        assert!(st.next_send().is_none(), "one send in flight");
        st.on_sent(4);
        let (ptr, len) = st.next_send().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { std::slice::from_raw_parts(ptr, len) }, b"o world");
        st.sending = true;
        st.on_sent(7);
        assert!(!st.has_sends());
        assert_eq!(st.progress().done, 11);
        st.queue(b"lost".to_vec());
        st.sending = true;
        st.on_sent(-libc::EPIPE);
        assert!(!st.has_sends());
        assert!(st.progress().error.is_some());
        st.queue(b"after".to_vec());
        assert!(st.next_send().is_none(), "nothing is sent after an error");
    }
}
