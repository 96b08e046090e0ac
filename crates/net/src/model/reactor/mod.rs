//! The event loop the readiness-based models share: it accepts on its listeners (if any),
//! watches every connection and data channel through a [`Poller`], wakes for hub messages and
//! for the relay link, runs timers, and performs graceful shutdown.
//!
//! `select`, `poll` and `epoll` run it over their poller with many connections; `prefork`
//! workers run it in each process; `iterative` runs it with `max_active = 1`; `thread` and
//! `fork` run it for exactly one connection (a blocking `poll(2)` over that connection, its data
//! channels, its timer and the shutdown pipe). `threadpool` runs it in two modes: *worker*
//! (serve a connection until it is idle, then release it) and *poller* (hold idle
//! connections, dispatch one that has work); connections move between them by value.

mod accept;
mod handoff;

use crate::admit::exhaustion::{Reserve, BACKOFF};
use crate::admit::{make_conn, refuse, Peer, Shared};
use crate::conn::{Conn, Env, Registry};
use crate::hub::link::LinkReader;
use crate::hub::Hub;
use crate::listener::Listener;
use crate::poller::{Event, Interest, Poller, Received, Sent};
use crate::session::Protocol;
use crate::wake::{Route, Wake, Waker};
use handoff::INBOX;
pub(crate) use handoff::{Handoff, Inbox, Job};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAKE: usize = usize::MAX;
const SHUTDOWN: usize = usize::MAX - 1;
const LINK: usize = usize::MAX - 2;
const LISTENER0: usize = usize::MAX - 3;

struct Reg<'a, Pl: Poller> {
    poller: &'a mut Pl,
    slot: usize,
}

impl<Pl: Poller> Registry for Reg<'_, Pl> {
    fn set(&mut self, fd: RawFd, code: u16, interest: Interest, new: bool) -> io::Result<()> {
        let token = (self.slot << 16) | code as usize;
        if new && code == crate::conn::CONTROL {
            self.poller.add_stream(fd, token, interest)
        } else if new {
            self.poller.add(fd, token, interest)
        } else {
            self.poller.modify(fd, token, interest)
        }
    }
    fn remove(&mut self, fd: RawFd, _code: u16) {
        self.poller.delete(fd);
    }
    fn recv(&mut self, fd: RawFd, into: &mut Vec<u8>, max: usize) -> Option<Received> {
        self.poller.recv(fd, into, max)
    }
    fn send(&mut self, fd: RawFd, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        self.poller.send(fd, buf)
    }
    fn sent(&mut self, fd: RawFd) -> Option<Sent> {
        self.poller.sent(fd)
    }
}

/// Connection slots; a slot's index is part of its poll tokens.
type Slots<S> = Vec<Option<Conn<S>>>;

pub(crate) struct Reactor<Pl: Poller, P: Protocol> {
    poller: Pl,
    shared: Arc<Shared<P>>,
    hub: Hub,
    listeners: Vec<Listener>,
    conns: Slots<P::Session>,
    /// Whether each slot's connection took a place in the shared counter (and must give it back).
    counted: Vec<bool>,
    free: Vec<usize>,
    live: usize,
    max_active: usize,
    waiting: VecDeque<(TcpStream, Peer)>,
    wake: Arc<Wake>,
    link: Option<LinkReader>,
    deadline: Option<Instant>,
    /// Connection deadlines by time: (when, slot, generation). An entry is live only while it
    /// matches `scheduled[slot]`; others are skipped when popped (lazy deletion), so moving a
    /// deadline later (every bit of activity moves the idle deadline) costs nothing.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Per slot: the time of its live timer entry, and a generation bumped per new connection.
    scheduled: Vec<(Option<Instant>, u64)>,
    /// When to watch the listeners again after backing off (out of descriptors, no reserve).
    retry_at: Option<Instant>,
    /// The spare descriptor that lets an exhausted loop refuse instead of spin (only when
    /// this loop accepts).
    reserve: Option<Reserve>,
    /// Connections carry a `Route` (they may move to another loop).
    mobile: bool,
    /// Poller mode (threadpool): a connection with anything to do is given away here instead
    /// of being handled on this thread.
    dispatch: Option<Handoff<P::Session>>,
    /// Worker mode (threadpool): a connection that has gone idle is given away here.
    release: Option<Handoff<P::Session>>,
    inbox: Arc<Inbox<P::Session>>,
    started: bool,
    /// The poller reads the wake eventfd itself (`uring`): take the slots without a read.
    wake_read: bool,
    /// The poller accepts on the listeners itself (`uring`): take what it accepted.
    ring_accept: bool,
    /// What the poller accepted on a listener (kept for its capacity).
    accepted: Vec<io::Result<OwnedFd>>,
}

impl<Pl: Poller, P: Protocol> Reactor<Pl, P> {
    pub(crate) fn new(
        poller: Pl,
        shared: Arc<Shared<P>>,
        hub: Hub,
        listeners: Vec<Listener>,
    ) -> io::Result<Self> {
        let link = hub
            .link_fd()
            .map(|fd| LinkReader::with_backlog(fd, hub.backlog()));
        let reserve = (!listeners.is_empty()).then(Reserve::new);
        let wake = Wake::new()?;
        Ok(Reactor {
            poller,
            shared,
            hub,
            listeners,
            conns: Vec::new(),
            counted: Vec::new(),
            free: Vec::new(),
            live: 0,
            max_active: usize::MAX,
            waiting: VecDeque::new(),
            inbox: Arc::new(Inbox {
                conns: Mutex::new(Vec::new()),
                wake: wake.clone(),
            }),
            wake,
            link,
            deadline: None,
            timers: BinaryHeap::new(),
            scheduled: Vec::new(),
            retry_at: None,
            reserve,
            mobile: false,
            dispatch: None,
            release: None,
            started: false,
            wake_read: false,
            ring_accept: false,
            accepted: Vec::new(),
        })
    }

    /// Serve one connection at a time; the rest wait their turn (the iterative model).
    pub(crate) fn one_at_a_time(mut self) -> Self {
        self.max_active = 1;
        self
    }

    /// Add a connection accepted elsewhere (thread, threadpool, fork). `counted`: release a
    /// place in the shared counter when it ends.
    pub(crate) fn adopt(&mut self, stream: TcpStream, peer: Peer, counted: bool) {
        if self.release.is_some()
            && self.deadline.is_none()
            && self.shared.shutdown.is_shutting_down()
        {
            self.begin_shutdown();
        }
        self.start_conn(stream, peer, counted);
    }

    fn env_parts(&mut self) -> (&mut Pl, &mut Slots<P::Session>, Env<'_>) {
        let level_triggered = !self.poller.edge_triggered();
        (
            &mut self.poller,
            &mut self.conns,
            Env {
                hub: &self.hub,
                limits: &self.shared.limits,
                passive: &self.shared.passive,
                level_triggered,
                tally: self.shared.tally.as_ref(),
            },
        )
    }

    fn start_conn(&mut self, stream: TcpStream, peer: Peer, counted: bool) {
        if !self.poller.can_watch(stream.as_raw_fd()) {
            // select(2) cannot watch this descriptor: a clean refusal, like any full server.
            refuse(&self.shared, stream, peer.1);
            if counted {
                self.shared.release(peer.0.ip());
            }
            return;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.counted.push(false);
                self.scheduled.push((None, 0));
                self.conns.len() - 1
            }
        };
        let gen = self.scheduled[slot].1.wrapping_add(1);
        self.scheduled[slot] = (None, gen);
        let (waker, route) = if self.mobile {
            let route = Route::new(&self.wake, slot);
            (Route::waker(&route), Some(route))
        } else {
            let wake = self.wake.clone();
            let waker: Waker = Arc::new(move || wake.wake(slot));
            (waker, None)
        };
        let conn = match make_conn(&self.shared, stream, peer, waker) {
            Ok(mut c) => {
                if let Some(r) = route {
                    c.set_route(r);
                }
                c
            }
            Err(e) => {
                tracing::debug!("dropping a connection that failed setup: {e}");
                self.free.push(slot);
                if counted {
                    self.shared.release(peer.0.ip());
                }
                return;
            }
        };
        self.conns[slot] = Some(conn);
        self.counted[slot] = counted;
        self.live += 1;
        let shutting = self.deadline.is_some();
        self.with_conn(slot, |conn, reg, env| {
            conn.open(reg, env);
            if shutting {
                conn.shutdown(reg, env);
            }
        });
    }

    /// Run `f` on the connection in `slot`, then tear it down if it closed. A session that
    /// panics loses its connection, not the loop and not the other connections.
    fn with_conn(
        &mut self,
        slot: usize,
        f: impl FnOnce(&mut Conn<P::Session>, &mut dyn Registry, &Env),
    ) {
        let (poller, conns, env) = self.env_parts();
        let Some(Some(conn)) = conns.get_mut(slot) else {
            return;
        };
        let mut reg = Reg { poller, slot };
        if catch_unwind(AssertUnwindSafe(|| f(conn, &mut reg, &env))).is_err() {
            tracing::error!("a session panicked; closing its connection");
            conn.abort();
        }
        self.after(slot);
    }

    /// After handling a connection: tear it down if it closed, else note its next deadline.
    fn after(&mut self, slot: usize) {
        let limits = &self.shared.limits;
        let Some(conn) = self.conns[slot].as_ref() else {
            return;
        };
        if !conn.is_closed() {
            if self.release.is_some() && self.deadline.is_none() && conn.is_idle(limits) {
                self.hand_off(slot);
                return;
            }
            if let Some(d) = conn.deadline(limits) {
                let (at, gen) = self.scheduled[slot];
                let earlier = match at {
                    None => true,
                    Some(at) => d < at,
                };
                if earlier {
                    self.timers.push(Reverse((d, slot, gen)));
                    self.scheduled[slot].0 = Some(d);
                }
            }
            return;
        }
        self.scheduled[slot].0 = None;
        let conn = self.conns[slot].take().expect("checked");
        let ip = conn.peer_ip();
        let (poller, _, env) = self.env_parts();
        let mut reg = Reg { poller, slot };
        if catch_unwind(AssertUnwindSafe(|| conn.finish(&mut reg, &env))).is_err() {
            tracing::error!("a session panicked while closing");
        }
        self.free.push(slot);
        self.live -= 1;
        if std::mem::take(&mut self.counted[slot]) {
            self.shared.release(ip);
        }
        // Iterative: the next waiting connection gets its turn.
        while self.live < self.max_active {
            let Some((s, peer)) = self.waiting.pop_front() else {
                break;
            };
            self.start_conn(s, peer, true);
        }
    }

    fn begin_shutdown(&mut self) {
        if self.deadline.is_some() {
            return;
        }
        let now = Instant::now();
        self.deadline = Some(now + self.shared.limits.shutdown_grace);
        let fd = self.shared.shutdown.fd();
        self.poller.delete(fd);
        for l in self.listeners.drain(..) {
            self.poller.delete(l.as_raw_fd());
        }
        for (_, (peer, _)) in self.waiting.drain(..) {
            self.shared.release(peer.ip());
        }
        for slot in 0..self.conns.len() {
            if self.dispatch.is_some() {
                // The workers tell them (they see the shutdown when they adopt them).
                self.hand_off(slot);
            } else {
                self.with_conn(slot, |conn, reg, env| conn.shutdown(reg, env));
            }
        }
    }

    /// Run every connection deadline that has come.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot, gen))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.scheduled.get(slot) != Some(&(Some(at), gen)) {
                continue; // stale: the connection is gone or was rescheduled earlier
            }
            self.scheduled[slot].0 = None;
            if self.dispatch.is_some() {
                self.hand_off(slot);
                continue;
            }
            // `with_conn` ends in `after`, which schedules the connection's next deadline.
            self.with_conn(slot, |conn, reg, env| {
                if conn.deadline(env.limits).is_some_and(|d| d <= now) {
                    conn.on_tick(now, reg, env);
                }
            });
        }
    }

    fn on_conn_event(&mut self, ev: Event) {
        let slot = ev.token >> 16;
        let code = (ev.token & 0xffff) as u16;
        if self.dispatch.is_some() {
            if let Some(Some(conn)) = self.conns.get_mut(slot) {
                conn.on_ready(code, ev.readable, ev.writable, ev.hup, ev.rdhup);
                self.hand_off(slot);
            }
            return;
        }
        self.with_conn(slot, |conn, reg, env| {
            conn.on_ready(code, ev.readable, ev.writable, ev.hup, ev.rdhup);
            conn.settle(reg, env);
        });
    }

    fn settle_slot(&mut self, slot: usize) {
        if slot == INBOX {
            self.take_inbox();
        } else if self.dispatch.is_some() {
            self.hand_off(slot);
        } else {
            self.with_conn(slot, |conn, reg, env| conn.settle(reg, env));
        }
    }

    /// Run until shutdown completes, or (with `until_idle`) until no connection is left.
    pub(crate) fn run(mut self, until_idle: bool) -> io::Result<()> {
        self.start()?;
        let r = self.run_loop(until_idle);
        for slot in 0..self.conns.len() {
            if let Some(c) = self.conns[slot].as_mut() {
                c.abort();
            }
            self.after(slot);
        }
        r
    }

    /// Watch the loop's own descriptors (once).
    pub(crate) fn start(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        self.wake_read = self.poller.add_eventfd(self.wake.fd(), WAKE)?;
        self.poller
            .add(self.shared.shutdown.fd(), SHUTDOWN, Interest::READ)?;
        if let Some(l) = &self.link {
            self.poller.add(l.fd, LINK, Interest::READ)?;
        }
        for (i, l) in self.listeners.iter().enumerate() {
            self.ring_accept = self.poller.add_listener(l.as_raw_fd(), LISTENER0 - i)?;
        }
        if self.shared.shutdown.is_shutting_down() {
            self.begin_shutdown();
        }
        Ok(())
    }

    /// The loop proper (after `start`).
    pub(crate) fn run_loop(&mut self, until_idle: bool) -> io::Result<()> {
        let mut events = Vec::with_capacity(256);
        loop {
            let now = Instant::now();
            if let Some(d) = self.deadline {
                if self.live == 0 {
                    break;
                }
                if now >= d {
                    for c in self.conns.iter_mut().flatten() {
                        c.abort();
                    }
                    for slot in 0..self.conns.len() {
                        self.after(slot);
                    }
                    break;
                }
            } else if until_idle && self.live == 0 {
                break;
            }
            let wait_until = [
                self.timers.peek().map(|t| t.0 .0),
                self.deadline,
                self.retry_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let mut timeout = wait_until.map(|t| t.saturating_duration_since(now));
            // The link's last read stopped at its bound, or a publication that waited read
            // ahead into the backlog: look around, then read on.
            let link_more = self.link.as_ref().is_some_and(|l| l.more || l.pending());
            if link_more {
                timeout = Some(Duration::ZERO);
            }
            self.poller.wait(&mut events, timeout)?;
            let mut link_read = false;
            for ev in events.drain(..) {
                match ev.token {
                    WAKE => {
                        let slots = if self.wake_read {
                            self.wake.take_read()
                        } else {
                            self.wake.take()
                        };
                        for slot in slots {
                            self.settle_slot(slot);
                        }
                    }
                    SHUTDOWN => self.begin_shutdown(),
                    LINK => {
                        link_read = true;
                        self.read_link();
                    }
                    t if t > LISTENER0 - self.listeners.len() && t <= LISTENER0 => {
                        self.accept(LISTENER0 - t)
                    }
                    _ => self.on_conn_event(ev),
                }
            }
            if link_more && !link_read {
                self.read_link();
            }
            let now = Instant::now();
            self.fire_timers(now);
            if self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
                for (i, l) in self.listeners.iter().enumerate() {
                    // Watched again after a back-off (for a still-watched one this fails
                    // harmlessly or re-arms it).
                    let _ = self.poller.add_listener(l.as_raw_fd(), LISTENER0 - i);
                }
                for i in 0..self.listeners.len() {
                    self.accept(i);
                }
            }
        }
        Ok(())
    }

    fn read_link(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let hub = &self.hub;
        let why = match link.read(hub.take_published(), |m| hub.deliver_local(&m)) {
            Ok(true) => return,
            Ok(false) => "closed by the relay".to_string(),
            Err(e) => e.to_string(),
        };
        self.poller.delete(link.fd);
        self.link = None;
        self.link_lost(&why);
    }

    /// This worker can no longer reach the other processes (see `hub/mod.rs`, "A lost link"): say
    /// so, and stop the worker rather than let its members form a room of their own.
    fn link_lost(&mut self, why: &str) {
        let cut = self.hub.link_lost();
        if self.deadline.is_some() || self.shared.shutdown.is_shutting_down() {
            // Already stopping (the parent went first, or the stop signal reached this worker
            // too and is next in line): nothing is split, and a clean stop is no error.
            self.begin_shutdown();
            return;
        }
        tracing::error!(
            "hub: this worker's link to the relay is lost ({why}); shutting the worker down so \
             its {cut} subscribed connection(s) are closed, not split from the room"
        );
        self.begin_shutdown();
    }
}
