//! `--model fork`: a child process per connection (fork 多进程并发).
//!
//! The parent is a single-threaded loop: it accepts, forks, and gives the child the connection
//! plus one end of a fresh relay link (so the child's hub reaches every other child through the
//! relay the parent runs, see `relay.rs`). SIGCHLD wakes the parent, which reaps at once with
//! `waitpid(WNOHANG)` and frees the child's connection place: no zombies. On shutdown the parent
//! stops accepting, forwards SIGTERM, keeps relaying while children finish (up to the grace
//! period), then SIGKILLs stragglers and reaps every one before returning.
//!
//! Forking is only safe from a single-threaded process; the CLI is one. A forked child runs only
//! this crate's code and leaves with `_exit`, never returning into the caller.

use super::acceptor::{accept_loop, AcceptHooks};
use super::reactor::Reactor;
use crate::admit::{refuse, Peer, Shared};
use crate::hub::relay::Relay;
use crate::hub::Hub;
use crate::listener::Listener;
use crate::poller::poll::PollPoller;
use crate::session::Protocol;
use crate::shutdown;
use crate::sys::{self, Fork};
use std::collections::HashSet;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The parent's view of its children: relay links, pids, and the SIGCHLD pipe.
pub(crate) struct Family {
    pub relay: Relay,
    pub children: HashSet<libc::pid_t>,
    pub child_r: OwnedFd,
    _child_w: OwnedFd,
}

impl Family {
    pub(crate) fn new() -> io::Result<Self> {
        let (child_r, child_w) = sys::pipe()?;
        shutdown::install_sigchld(child_w.as_raw_fd());
        Ok(Family {
            relay: Relay::default(),
            children: HashSet::new(),
            child_r,
            _child_w: child_w,
        })
    }

    /// Feed the server's injector link (if one was made) into the relay, so publications from
    /// outside any session join the one order; and the backplane's downlink, if there is one.
    pub(crate) fn adopt_injector<P: Protocol>(&mut self, shared: &Shared<P>) -> io::Result<()> {
        let link = shared
            .inject
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(l) = link {
            self.relay.add_source(l)?;
        }
        let uplink = shared
            .uplink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match uplink {
            Some((up, mine)) => self.relay.add_downlink(up, mine),
            None => Ok(()),
        }
    }

    /// Reap every exited child; returns the pids. What each child published before it died is
    /// relayed first, then what the protocol says its sessions would have said
    /// ([`Protocol::on_process_exit`]: a SIGKILLed child's members' farewells).
    pub(crate) fn reap<P: Protocol>(&mut self, protocol: &P) -> Vec<libc::pid_t> {
        sys::drain(self.child_r.as_raw_fd());
        let pids = sys::reap_children();
        for pid in &pids {
            self.children.remove(pid);
            self.relay.remove_pid(*pid);
            for msg in protocol.on_process_exit(*pid as u32) {
                self.relay.publish(&msg);
            }
        }
        pids
    }

    /// (fd, read, write): the relay's links (a link is not read while the relay holds
    /// publishers back, see `relay.rs`) and the SIGCHLD pipe.
    pub(crate) fn extra_fds(&self) -> Vec<(RawFd, bool, bool)> {
        let mut v = self.relay.poll_set();
        v.push((self.child_r.as_raw_fd(), true, false));
        v
    }

    /// The parent's `poll(2)` set for [`Family::extra_fds`].
    pub(crate) fn pollfds(&self) -> Vec<libc::pollfd> {
        self.extra_fds()
            .into_iter()
            .map(|(fd, r, w)| libc::pollfd {
                fd,
                events: if r { libc::POLLIN } else { 0 } | if w { libc::POLLOUT } else { 0 },
                revents: 0,
            })
            .collect()
    }

    /// Fork a child that runs `body` with its relay link and then exits.
    /// `close_in_child`: parent-only descriptors the child must not keep (listeners it does
    /// not use, other children's links).
    pub(crate) fn spawn(
        &mut self,
        close_in_child: &[RawFd],
        body: impl FnOnce(UnixStream) -> io::Result<()>,
    ) -> io::Result<libc::pid_t> {
        let link = self.relay.add_link()?;
        let parent_fds = self.relay.fds();
        let parent = std::process::id() as libc::pid_t;
        match sys::fork()? {
            Fork::Child => {
                // If the parent is killed outright (SIGKILL), its children must not live on
                // holding the listening socket: have the kernel send us SIGTERM (a graceful
                // shutdown) when it dies. Checked after, in case it died before the call.
                sys::die_with_parent(parent);
                shutdown::child_reset();
                for fd in parent_fds.iter().chain(close_in_child) {
                    sys::close_fd(*fd);
                }
                sys::close_fd(self.child_r.as_raw_fd());
                sys::close_fd(self._child_w.as_raw_fd());
                let code =
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(link))) {
                        Ok(Ok(())) => 0,
                        Ok(Err(e)) => {
                            tracing::warn!("worker: {e}");
                            1
                        }
                        Err(_) => 101,
                    };
                shutdown::exit_child(code)
            }
            Fork::Parent(pid) => {
                self.relay.set_pid_last(pid);
                self.children.insert(pid);
                Ok(pid)
            }
        }
    }

    /// After shutdown began: SIGTERM the children, keep relaying while they finish, SIGKILL
    /// whoever outlives `grace`, and reap them all.
    pub(crate) fn wind_down<P: Protocol>(&mut self, protocol: &P, grace: Duration) {
        for pid in &self.children {
            sys::kill(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace + Duration::from_millis(500);
        while !self.children.is_empty() && Instant::now() < deadline {
            let mut fds = self.pollfds();
            // SAFETY: a valid array of pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
            for p in &fds {
                if p.revents != 0 && p.fd != self.child_r.as_raw_fd() {
                    self.relay.on_ready(p.fd, true);
                }
            }
            self.relay.tick();
            self.reap(protocol);
        }
        for pid in &self.children {
            sys::kill(*pid, libc::SIGKILL);
        }
        for pid in std::mem::take(&mut self.children) {
            let mut status = 0;
            // SAFETY: waiting for our own child, valid status pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    }
}

struct Hooks<'a, P: Protocol> {
    /// Each child\'s peer address, to give its place back when it is reaped.
    places: std::collections::HashMap<libc::pid_t, std::net::IpAddr>,
    shared: &'a Arc<Shared<P>>,
    listener_fds: Vec<RawFd>,
    family: Family,
}

impl<P: Protocol> AcceptHooks for Hooks<'_, P> {
    fn on_conn(&mut self, stream: TcpStream, peer: Peer) {
        let shared = self.shared;
        let ip = peer.0.ip();
        // Taken by the child; still here if the fork (or its relay link) could not be made.
        let mut stream = Some(stream);
        let r = self.family.spawn(&self.listener_fds, |link| {
            let stream = stream.take().expect("the child takes the stream once");
            let mut r = Reactor::new(
                PollPoller::default(),
                shared.clone(),
                Hub::with_link(link),
                Vec::new(),
            )?;
            // The parent owns this connection's place in the counter and frees it on reaping.
            r.adopt(stream, peer, false);
            r.run(true)
        });
        match r {
            Ok(pid) => {
                self.places.insert(pid, ip);
            }
            Err(e) => {
                self.shared.episode.failed_setup("fork", &e);
                if let Some(s) = stream {
                    refuse(self.shared, s, peer.1);
                }
                self.shared.release(ip);
            }
        }
    }

    fn extra_fds(&mut self) -> Vec<(RawFd, bool, bool)> {
        self.family.extra_fds()
    }

    fn on_extra(&mut self, fd: RawFd, readable: bool, _writable: bool) {
        if fd != self.family.child_r.as_raw_fd() {
            self.family.relay.on_ready(fd, readable);
        }
    }

    fn tick(&mut self) {
        self.family.relay.tick();
        for pid in self.family.reap(&self.shared.protocol) {
            if let Some(ip) = self.places.remove(&pid) {
                self.shared.release(ip);
            }
        }
    }
}

pub(crate) fn run<P: Protocol>(shared: Arc<Shared<P>>, listeners: Vec<Listener>) -> io::Result<()> {
    let listener_fds = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let mut hooks = Hooks {
        places: Default::default(),
        shared: &shared,
        listener_fds,
        family: Family::new()?,
    };
    hooks.family.adopt_injector(&shared)?;
    let r = accept_loop(&shared, &listeners, &mut hooks);
    drop(listeners);
    hooks
        .family
        .wind_down(&shared.protocol, shared.limits.shutdown_grace);
    r
}
