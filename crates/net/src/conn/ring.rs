//! Input the driver received itself: under `uring` the ring receives a connection's bytes
//! (multishot receives into provided buffers, see `poller/uring/`) and hands them over through
//! [`Registry::recv`]; the readiness models return `None` there and the connection reads its
//! socket as before (`settle.rs`). The session sees the same bytes in the same order either
//! way: this is the transport seam, and the only place `conn/` knows of it.

use super::life::Life;
use super::outbound::Chunk;
use super::{Conn, Registry, READ_CHUNK};
use crate::poller::Received;
use crate::session::Session;
use std::io;
use std::time::Instant;

/// Most bytes handed to the driver at once per connection; the rest waits in the queue (where
/// a session's later writes still merge) and counts against high water as before.
const RING_OUT: usize = 256 * 1024;

/// Bytes taken per call while lingering (they are thrown away).
const DISCARD_CHUNK: usize = 64 * 1024;

impl<S: Session> Conn<S> {
    /// Take input into `inbuf`: from the driver if it received it, else from the socket.
    /// True if something changed.
    pub(super) fn read_input(&mut self, reg: &mut dyn Registry, level_triggered: bool) -> bool {
        if self.in_pos > 0 {
            self.inbuf.drain(..self.in_pos);
            self.in_pos = 0;
        }
        let Some(r) = reg.recv(self.fd, &mut self.inbuf, READ_CHUNK) else {
            return self.read_some(level_triggered);
        };
        match r {
            Received::Bytes { n, more } => {
                self.moved_in += n as u64;
                self.input_dirty = true;
                self.last_active = Instant::now();
                // Nothing is lost by clearing it: the driver reports the next completion.
                self.read_pending = more;
                true
            }
            Received::Eof => {
                self.read_eof = true;
                self.read_pending = false;
                self.eof_pending = true;
                true
            }
            Received::Error(e) => {
                tracing::debug!("receive failed: {e}");
                self.life = Life::Closed;
                false
            }
            Received::Empty => {
                self.read_pending = false;
                false
            }
        }
    }

    /// While lingering: throw away input until the end (then closed) or none is left.
    pub(super) fn discard(&mut self, reg: &mut dyn Registry) {
        let mut sink = Vec::new();
        for _ in 0..16 {
            sink.clear();
            let Some(r) = reg.recv(self.fd, &mut sink, DISCARD_CHUNK) else {
                return self.discard_input();
            };
            match r {
                Received::Bytes { .. } => continue,
                Received::Eof | Received::Error(_) => {
                    self.life = Life::Closed;
                    return;
                }
                Received::Empty => {
                    self.read_pending = false;
                    return;
                }
            }
        }
        // Still more: come back next turn rather than hog the loop.
        (self.waker)();
    }

    /// Write the queue: bytes through the driver if it sends (each handed over once, kept
    /// counted until the kernel took them), file ranges as before once every byte ahead of
    /// them is out; else the socket as before. Ok(true) when everything is out.
    pub(super) fn write_out(
        &mut self,
        reg: &mut dyn Registry,
        moved: &mut bool,
        level_triggered: bool,
    ) -> io::Result<bool> {
        let Some(p) = reg.sent(self.fd) else {
            return self.out.write_to(&self.sock, moved, level_triggered);
        };
        if let Some(e) = p.error {
            return Err(e);
        }
        if p.done > 0 {
            *moved = true;
            let done = p.done.min(self.out.in_ring);
            self.out.in_ring -= done;
            self.out.bytes -= done;
            self.out.sent += done as u64;
        }
        while self.out.in_ring < RING_OUT {
            let Some(Chunk::Bytes { .. }) = self.out.chunks.front() else {
                break;
            };
            let Some(Chunk::Bytes { mut buf, pos }) = self.out.chunks.pop_front() else {
                break;
            };
            buf.drain(..pos);
            let n = buf.len();
            if let Err(buf) = reg.send(self.fd, buf) {
                self.out.chunks.push_front(Chunk::Bytes { buf, pos: 0 });
                return self.out.write_to(&self.sock, moved, level_triggered);
            }
            self.out.in_ring += n;
        }
        if self.out.in_ring > 0 {
            return Ok(false); // the completion brings us back
        }
        if self.out.chunks.is_empty() {
            return Ok(true);
        }
        // A file range at the front, every byte before it sent.
        self.out.write_to(&self.sock, moved, level_triggered)
    }
}
