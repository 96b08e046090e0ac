//! The blocking accept loop of the models where one place accepts and hands connections out
//! (`thread`, `threadpool`, `fork`): `poll(2)` over the listeners, the shutdown pipe and any
//! extra descriptors the model needs (the relay links, the SIGCHLD pipe), with the
//! `max_connections` check and the clean refusal done here, once for all of them.

use crate::listener::Listener;
use crate::reactor::{refuse, Peer, Shared};
use crate::session::Protocol;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// What a model plugs into the loop.
pub(crate) trait AcceptHooks {
    /// A connection that took a place in the shared counter; the model must release it.
    fn on_conn(&mut self, stream: TcpStream, peer: Peer);
    /// Extra descriptors to watch: (fd, also for writing).
    fn extra_fds(&mut self) -> Vec<(RawFd, bool)> {
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
    loop {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(listeners.len() + 8);
        fds.push(libc::pollfd {
            fd: sd,
            events: libc::POLLIN,
            revents: 0,
        });
        for l in listeners {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for (fd, w) in hooks.extra_fds() {
            let events = libc::POLLIN | if w { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
        }
        // SAFETY: a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 500) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if fds[0].revents != 0 {
            return Ok(());
        }
        for (i, l) in listeners.iter().enumerate() {
            if fds[1 + i].revents == 0 {
                continue;
            }
            loop {
                match l.accept() {
                    Ok((s, peer)) => {
                        if shared.counter.try_acquire(peer.ip()) {
                            hooks.on_conn(s, (peer, i));
                        } else {
                            refuse(&shared.protocol, s, i);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                        ) =>
                    {
                        continue
                    }
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        std::thread::sleep(Duration::from_millis(20));
                        break;
                    }
                }
            }
        }
        for p in &fds[1 + listeners.len()..] {
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
