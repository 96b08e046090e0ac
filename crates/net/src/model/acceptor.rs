//! The blocking accept loop of the models where one place accepts and hands connections out
//! (`thread`, `threadpool`, `fork`): `poll(2)` over the listeners, the shutdown pipe and any
//! extra descriptors the model needs (the relay links, the SIGCHLD pipe), with the
//! `max_connections` check and the clean refusal done here, once for all of them.

use crate::admit::exhaustion::{Accepted, Reserve, BACKOFF};
use crate::admit::{refuse, Peer, Shared};
use crate::listener::Listener;
use crate::session::Protocol;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// What a model plugs into the loop.
pub(crate) trait AcceptHooks {
    /// A connection that took a place in the shared counter; the model must release it.
    fn on_conn(&mut self, stream: TcpStream, peer: Peer);
    /// Extra descriptors to watch: (fd, for reading, for writing).
    fn extra_fds(&mut self) -> Vec<(RawFd, bool, bool)> {
        Vec::new()
    }
    fn on_extra(&mut self, _fd: RawFd, _readable: bool, _writable: bool) {}
    /// Called every loop turn (at least every 500 ms).
    fn tick(&mut self) {}
}

/// Accept until shutdown is triggered.
pub(crate) fn accept_loop<P: Protocol>(
    shared: &Shared<P>,
    listeners: &[Listener],
    hooks: &mut dyn AcceptHooks,
) -> io::Result<()> {
    let sd = shared.shutdown.fd();
    let mut reserve = Reserve::new();
    // Out of descriptors with no reserve: the listeners are left out of the poll set until then.
    let mut paused_until: Option<Instant> = None;
    loop {
        if paused_until.is_some_and(|t| Instant::now() >= t) {
            paused_until = None;
        }
        let watched = if paused_until.is_some() {
            &listeners[..0]
        } else {
            listeners
        };
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(listeners.len() + 8);
        fds.push(libc::pollfd {
            fd: sd,
            events: libc::POLLIN,
            revents: 0,
        });
        for l in watched {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for (fd, r, w) in hooks.extra_fds() {
            let events = if r { libc::POLLIN } else { 0 } | if w { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
        }
        let timeout = paused_until.map_or(500, |t| {
            t.saturating_duration_since(Instant::now())
                .as_millis()
                .clamp(1, 500) as libc::c_int
        });
        // SAFETY: a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if fds[0].revents != 0 {
            return Ok(());
        }
        for (i, l) in watched.iter().enumerate() {
            if fds[1 + i].revents == 0 {
                continue;
            }
            // A turn's share, so the extra descriptors (relay links, SIGCHLD) are not starved.
            for _ in 0..256 {
                match reserve.accept(l, i, shared) {
                    Accepted::Conn(s, peer) => {
                        if shared.admit(peer.ip()) {
                            hooks.on_conn(s, (peer, i));
                        } else {
                            refuse(shared, s, i);
                        }
                    }
                    Accepted::Refused => {}
                    Accepted::Empty => break,
                    Accepted::BackOff => {
                        paused_until = Some(Instant::now() + BACKOFF);
                        break;
                    }
                }
            }
        }
        for p in &fds[1 + watched.len()..] {
            if p.revents != 0 {
                let bad = p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
                hooks.on_extra(
                    p.fd,
                    bad || p.revents & libc::POLLIN != 0,
                    bad || p.revents & libc::POLLOUT != 0,
                );
            }
        }
        hooks.tick();
    }
}
