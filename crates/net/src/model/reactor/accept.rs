//! Accepting on the loop's listeners: accept(2) until the queue is empty (a turn's share at
//! most), or, when the poller's ring accepts (`uring`), taking the descriptors it delivered;
//! then the same admission for every model (per-address limits, refusals, waiting their
//! turn), and the out-of-descriptors paths (`admit/exhaustion.rs`, `poller/uring/refuse.rs`).

use super::{Reactor, BACKOFF};
use crate::admit::exhaustion::{fd_guard, is_exhaustion, Accepted};
use crate::admit::refuse;
use crate::listener::Listener;
use crate::poller::{Poller, Refused};
use crate::session::Protocol;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

impl<Pl: Poller, P: Protocol> Reactor<Pl, P> {
    pub(super) fn accept(&mut self, i: usize) {
        if self.ring_accept {
            // The ring accepted; on an EMFILE completion, the queue is drained here (through
            // the ring's file table, or else the reserve below) before it is armed again.
            let exhausted = self.take_ring_accepts(i);
            if !exhausted || self.ring_exhausted(i) {
                return;
            }
        }
        // A turn's share: a flood of connections must not starve the ones already open.
        for _ in 0..256 {
            let Some(reserve) = self.reserve.as_mut() else {
                return;
            };
            match reserve.accept(&self.listeners[i], i, &self.shared) {
                Accepted::Conn(s, peer) => {
                    // Descriptors are back: a ring that polled the listener accepts again.
                    self.poller.resume_accept(self.listeners[i].as_raw_fd());
                    self.admit_conn(s, peer, i);
                }
                Accepted::Refused => {}
                Accepted::Empty => return,
                Accepted::BackOff => {
                    // Not even a reserve to refuse with.
                    self.back_off();
                    return;
                }
            }
        }
        if self.poller.edge_triggered() {
            // Edge-triggered: the rest of the queue would not be reported again.
            self.retry_at.get_or_insert_with(Instant::now);
        }
    }

    /// A new connection on listener `i`: admitted (started, or waiting its turn) or refused.
    fn admit_conn(&mut self, s: TcpStream, peer: SocketAddr, i: usize) {
        if !self.shared.admit(peer.ip()) {
            refuse(&self.shared, s, i);
        } else if self.live >= self.max_active {
            self.waiting.push_back((s, (peer, i)));
        } else {
            self.start_conn(s, (peer, i), true);
        }
    }

    /// Stop watching the listeners (a level-triggered poller would report them ready every
    /// turn; a ring's accept would fail again at once) and look again in a moment.
    fn back_off(&mut self) {
        for l in &self.listeners {
            self.poller.delete(l.as_raw_fd());
        }
        self.retry_at = Some(Instant::now() + BACKOFF);
    }

    /// Admit what the poller's ring accepted on listener `i` (`uring`). The kernel's accept
    /// returns no address, so a TCP peer's comes from getpeername(2) (per-address limits need
    /// it). True if the process ran out of descriptors (an EMFILE completion): the caller
    /// then drains the queue with accept(2) and the reserve, as every model does, before the
    /// ring's accept is armed again with the next wait.
    fn take_ring_accepts(&mut self, i: usize) -> bool {
        let mut got = std::mem::take(&mut self.accepted);
        self.poller
            .accepted(self.listeners[i].as_raw_fd(), &mut got);
        let mut exhausted = false;
        let mut failed = false;
        for r in got.drain(..) {
            match r {
                Ok(fd) => {
                    let s = TcpStream::from(fd);
                    let peer = match &self.listeners[i] {
                        Listener::Unix(_) => Ok(crate::listener::UNIX_ADDR),
                        Listener::Tcp(_) => s.peer_addr(),
                    };
                    if let Some(reserve) = self.reserve.as_mut() {
                        reserve.took(&self.shared);
                    }
                    match peer {
                        Ok(peer) => self.admit_conn(s, peer, i),
                        // Reset before we asked (ENOTCONN): nothing to serve, nobody to tell.
                        Err(e) => tracing::debug!("dropping an accepted connection: {e}"),
                    }
                }
                Err(e) if is_exhaustion(&e) => exhausted = true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    failed = true;
                }
            }
        }
        self.accepted = got;
        if failed && !exhausted {
            // As accept(2)'s other errors: look again in a moment rather than at once.
            self.back_off();
        }
        exhausted
    }

    /// Out of descriptors under a ring that accepts (an EMFILE completion): drain listener
    /// `i`'s queue as [`Reserve::accept`](crate::admit::exhaustion::Reserve::accept) would,
    /// accept(2) first (descriptors may be back), but refuse through the ring's own file
    /// table (`poller/uring/refuse.rs`) instead of spending the reserve descriptor, which
    /// another loop's in-kernel accept could take. False if the poller cannot (the caller
    /// spends the reserve).
    fn ring_exhausted(&mut self, i: usize) -> bool {
        let msg = self.shared.protocol.refusal_on(i);
        let fd = self.listeners[i].as_raw_fd();
        for _ in 0..256 {
            let r = {
                let _g = fd_guard();
                self.listeners[i].accept()
            };
            if r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock)
            {
                // accept(2) got a descriptor (or would have): the ring may accept again.
                self.poller.resume_accept(fd);
            }
            let e = match r {
                Ok((s, peer)) => {
                    if let Some(reserve) = self.reserve.as_mut() {
                        reserve.took(&self.shared);
                    }
                    self.admit_conn(s, peer, i);
                    continue;
                }
                Err(e) => e,
            };
            match e.kind() {
                io::ErrorKind::WouldBlock => return true,
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ if is_exhaustion(&e) => {}
                _ => {
                    tracing::warn!("accept: {e}");
                    self.back_off();
                    return true;
                }
            }
            self.shared.episode.exhausted(&e);
            match self.poller.refuse_direct(fd, msg.as_deref()) {
                None => return false,
                Some(Ok(Refused::One(ip))) => {
                    // What `admit::refuse` counts and logs for every other refusal.
                    if let Some(t) = &self.shared.tally {
                        t.refused();
                    }
                    if let Some(ip) = ip {
                        tracing::warn!(peer = %ip, reason = "over a limit", "refused");
                    }
                    self.shared.episode.refused();
                }
                Some(Ok(Refused::Empty)) => return true,
                Some(Err(e)) => {
                    tracing::warn!("io_uring refusal: {e}");
                    self.back_off();
                    return true;
                }
            }
        }
        true
    }
}
