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

use crate::config::Limits;
use crate::conn::{Conn, Env, Registry};

mod handoff;
use crate::exhaustion::{Accepted, Episode, Reserve, BACKOFF};
use crate::hub::Hub;
use crate::listener::{self, Listener};
use crate::poller::{Event, Interest, Poller};
use crate::relay::LinkReader;
use crate::session::{ConnId, ConnInfo, Protocol};
use crate::shutdown::ShutdownHandle;
use crate::sys::{self, SharedCounter};
use handoff::INBOX;
pub(crate) use handoff::{Handoff, Inbox, Job, Route};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAKE: usize = usize::MAX;
const SHUTDOWN: usize = usize::MAX - 1;
const LINK: usize = usize::MAX - 2;
const LISTENER0: usize = usize::MAX - 3;

/// What every worker of one server shares (across threads by `Arc`, across processes by fork).
pub(crate) struct Shared<P: Protocol> {
    pub protocol: P,
    pub limits: Limits,
    pub counter: SharedCounter,
    /// Passive listeners per client address (`Limits::max_passive_per_ip`).
    pub passive: Arc<SharedCounter>,
    pub shutdown: ShutdownHandle,
    /// The in-process hub, shared by every loop and thread of the in-process models (and by
    /// [`Injector`](crate::Injector)s); fork/prefork workers build their own linked hub.
    pub hub: Hub,
    /// Fork/prefork: the relay's end of the injector link, added to the relay by the parent.
    pub inject: Mutex<Option<std::os::unix::net::UnixStream>>,
    /// Out-of-descriptor episodes, for logging each once (see `exhaustion.rs`).
    pub episode: Episode,
    /// Fork/prefork with a backplane: the uplink and the relay's end of its downlink.
    pub uplink: Mutex<Option<(crate::uplink::SharedUplink, std::os::unix::net::UnixStream)>>,
}

/// A connection id unique across the server's processes: pid in the high 32 bits.
pub(crate) fn next_conn_id() -> ConnId {
    static N: AtomicU64 = AtomicU64::new(1);
    let pid = std::process::id() as u64;
    (pid << 32) | (N.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// Refuse a connection over the limit: the protocol's refusal, then close. Never a hang.
pub(crate) fn refuse<P: Protocol>(protocol: &P, stream: TcpStream, listener: usize) {
    if let Some(msg) = protocol.refusal_on(listener) {
        let _ = stream.set_nonblocking(true);
        let _ = (&stream).write(&msg);
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Who connected, and on which of the server's listeners (its index in announce order).
pub(crate) type Peer = (SocketAddr, usize);

/// Prepare an accepted stream and build its connection.
pub(crate) fn make_conn<P: Protocol>(
    shared: &Shared<P>,
    stream: TcpStream,
    (peer, listener): Peer,
    waker: crate::hub::Waker,
) -> io::Result<Conn<P::Session>> {
    stream.set_nonblocking(true)?;
    let cred = listener::peer_cred(stream.as_raw_fd());
    if cred.is_none() {
        tune_tcp(&shared.limits, &stream);
    }
    let info = ConnInfo {
        id: next_conn_id(),
        peer,
        local: match cred {
            Some(_) => listener::UNIX_ADDR,
            None => stream.local_addr()?,
        },
        cred,
    };
    let session = shared.protocol.new_session_on(listener, &info);
    Ok(Conn::new(session, stream, info, waker))
}

/// The socket options every accepted TCP connection gets under every model: no Nagle, and
/// [`Limits::tcp_keepalive`] and [`Limits::notsent_lowat`] when set.
pub(crate) fn tune_tcp(limits: &crate::Limits, stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = limits.tcp_keepalive {
        // Finds peers that vanished without a FIN (a cable pulled, a laptop closed) on
        // connections that are quiet on purpose and so have no idle timeout (chat members).
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval((idle / 3).max(Duration::from_secs(1)))
            .with_retries(3);
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
            tracing::debug!("TCP keepalive: {e}");
        }
    }
    if let Some(bytes) = limits.notsent_lowat {
        crate::sys::set_notsent_lowat(stream.as_raw_fd(), bytes);
    }
}

/// Hub wake-ups from any thread: which connection slots have mail, and a pipe to interrupt wait.
pub(crate) struct Wake {
    /// An eventfd: one descriptor, not a pipe's two, which matters when every connection of
    /// the thread model has its own loop.
    fd: OwnedFd,
    armed: AtomicBool,
    ready: Mutex<Vec<usize>>,
}

impl Wake {
    fn new() -> io::Result<Arc<Self>> {
        Ok(Arc::new(Wake {
            fd: sys::eventfd()?,
            armed: AtomicBool::new(false),
            ready: Mutex::new(Vec::new()),
        }))
    }

    fn wake(&self, slot: usize) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
        if !self.armed.swap(true, Ordering::AcqRel) {
            sys::eventfd_poke(self.fd.as_raw_fd());
        }
    }

    fn take(&self) -> Vec<usize> {
        sys::drain(self.fd.as_raw_fd());
        self.armed.store(false, Ordering::Release);
        std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Reg<'a, Pl: Poller> {
    poller: &'a mut Pl,
    slot: usize,
}

impl<Pl: Poller> Registry for Reg<'_, Pl> {
    fn set(&mut self, fd: RawFd, code: u16, interest: Interest, new: bool) -> io::Result<()> {
        let token = (self.slot << 16) | code as usize;
        if new {
            self.poller.add(fd, token, interest)
        } else {
            self.poller.modify(fd, token, interest)
        }
    }
    fn remove(&mut self, fd: RawFd, _code: u16) {
        self.poller.delete(fd);
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
}

impl<Pl: Poller, P: Protocol> Reactor<Pl, P> {
    pub(crate) fn new(
        poller: Pl,
        shared: Arc<Shared<P>>,
        hub: Hub,
        listeners: Vec<Listener>,
    ) -> io::Result<Self> {
        let link = hub.link_fd().map(LinkReader::new);
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
            },
        )
    }

    fn start_conn(&mut self, stream: TcpStream, peer: Peer, counted: bool) {
        if !self.poller.can_watch(stream.as_raw_fd()) {
            // select(2) cannot watch this descriptor: a clean refusal, like any full server.
            refuse(&self.shared.protocol, stream, peer.1);
            if counted {
                self.shared.counter.release(peer.0.ip());
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
            let route = Arc::new(Route(Mutex::new((self.wake.clone(), slot))));
            (Route::waker(&route), Some(route))
        } else {
            let wake = self.wake.clone();
            let waker: crate::hub::Waker = Arc::new(move || wake.wake(slot));
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
                    self.shared.counter.release(peer.0.ip());
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
            self.shared.counter.release(ip);
        }
        // Iterative: the next waiting connection gets its turn.
        while self.live < self.max_active {
            let Some((s, peer)) = self.waiting.pop_front() else {
                break;
            };
            self.start_conn(s, peer, true);
        }
    }

    fn accept(&mut self, i: usize) {
        // A turn's share: a flood of connections must not starve the ones already open.
        for _ in 0..256 {
            let Some(reserve) = self.reserve.as_mut() else {
                return;
            };
            match reserve.accept(&self.listeners[i], i, &self.shared) {
                Accepted::Conn(s, peer) => {
                    if !self.shared.counter.try_acquire(peer.ip()) {
                        refuse(&self.shared.protocol, s, i);
                    } else if self.live >= self.max_active {
                        self.waiting.push_back((s, (peer, i)));
                    } else {
                        self.start_conn(s, (peer, i), true);
                    }
                }
                Accepted::Refused => {}
                Accepted::Empty => return,
                Accepted::BackOff => {
                    // Not even a reserve to refuse with: stop watching the listeners (a
                    // level-triggered poller would report them ready every turn) and look
                    // again in a moment.
                    for l in &self.listeners {
                        self.poller.delete(l.as_raw_fd());
                    }
                    self.retry_at = Some(Instant::now() + BACKOFF);
                    return;
                }
            }
        }
        if self.poller.edge_triggered() {
            // Edge-triggered: the rest of the queue would not be reported again.
            self.retry_at.get_or_insert_with(Instant::now);
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
            self.shared.counter.release(peer.ip());
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
        self.poller
            .add(self.wake.fd.as_raw_fd(), WAKE, Interest::READ)?;
        self.poller
            .add(self.shared.shutdown.fd(), SHUTDOWN, Interest::READ)?;
        if let Some(l) = &self.link {
            self.poller.add(l.fd, LINK, Interest::READ)?;
        }
        for (i, l) in self.listeners.iter().enumerate() {
            self.poller
                .add(l.as_raw_fd(), LISTENER0 - i, Interest::READ)?;
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
            // The link's last read stopped at its bound: look around, then read on.
            let link_more = self.link.as_ref().is_some_and(|l| l.more);
            if link_more {
                timeout = Some(Duration::ZERO);
            }
            self.poller.wait(&mut events, timeout)?;
            let mut link_read = false;
            for ev in events.drain(..) {
                match ev.token {
                    WAKE => {
                        for slot in self.wake.take() {
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
                    let _ = self
                        .poller
                        .add(l.as_raw_fd(), LISTENER0 - i, Interest::READ);
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
        let why = match link.read(|m| hub.deliver_local(&m)) {
            Ok(true) => return,
            Ok(false) => "closed by the relay".to_string(),
            Err(e) => e.to_string(),
        };
        self.poller.delete(link.fd);
        self.link = None;
        self.link_lost(&why);
    }

    /// This worker can no longer reach the other processes (see `hub.rs`, "A lost link"): say
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn notsent_lowat(s: &TcpStream) -> u32 {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int out-parameter of the right size for this option.
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v as u32
    }

    #[test]
    fn accepted_connections_get_the_limits_socket_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let default = notsent_lowat(&s);
        let limits = crate::Limits {
            notsent_lowat: Some(16 * 1024),
            tcp_keepalive: Some(Duration::from_secs(30)),
            ..crate::Limits::default()
        };
        tune_tcp(&limits, &s);
        assert_eq!(notsent_lowat(&s), 16 * 1024);
        assert_ne!(default, 16 * 1024, "the kernel's default is no mark");
        assert!(s.nodelay().unwrap());
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
    }
}
