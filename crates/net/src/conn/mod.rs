//! One connection as every readiness-based model sees it: the session, its input buffer, its
//! outbound queue of bytes and file ranges, its data channels, its timers, hub inbox and ended
//! blocking-pool tasks, and the
//! code that turns readiness into session callbacks and carries out the session's actions.
//!
//! Drivers only report readiness ([`Conn::on_ready`]), time ([`Conn::on_tick`]) and shutdown,
//! then call [`Conn::settle`]. Settle loops until nothing can progress: it reads until EAGAIN,
//! writes until EAGAIN or empty, and remembers "maybe more to read" across pauses, so the same
//! code is correct under level-triggered `select`/`poll`/epoll and under edge-triggered epoll
//! and tokio (which only report changes).
//!
//! Its parts: this file (the connection and what drivers call), `settle.rs` (making progress:
//! reading, callbacks, writing, the lingering close), `life.rs` (where the connection is in
//! its life: open, evicting, closing, lingering, closed), `actions.rs` (carrying out what the
//! session asked for), `channels.rs`
//! (data channels), `outbound.rs` (the queue of bytes and file ranges), `passive.rs`
//! (passive listeners and their per-address budget), `ring.rs` (input the driver received
//! itself, under `uring`).

mod outbound;
mod passive;

use crate::blocking::Completions;
use crate::config::Limits;
use crate::context::Timers;
use crate::hub::{Hub, Subscriber};
use crate::poller::{Interest, Received, Sent};
use crate::session::{Action, ChannelId, ConnInfo, Context, Message, Session};
use crate::wake::{Route, Waker};
use channels::{Chan, Pending};
use life::Life;
use outbound::Outbound;
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The endpoint code of the control connection; data channels use `slot + 1`.
pub(crate) const CONTROL: u16 = 0;

/// How a connection registers its descriptors with whatever watches them.
pub(crate) trait Registry {
    fn set(&mut self, fd: RawFd, code: u16, interest: Interest, new: bool) -> io::Result<()>;
    fn remove(&mut self, fd: RawFd, code: u16);
    /// Bytes the driver received for the control connection itself (the `uring` model's
    /// multishot receives); `None`: it does not, and the connection reads its socket (see
    /// `ring.rs`).
    fn recv(&mut self, _fd: RawFd, _into: &mut Vec<u8>, _max: usize) -> Option<Received> {
        None
    }
    /// Hand bytes to the driver to send on the control connection (`uring`); `Err(buf)`: it
    /// does not, and the connection writes its socket.
    fn send(&mut self, _fd: RawFd, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        Err(buf)
    }
    /// What became of the bytes handed to `send`; `None` when the driver does not send.
    fn sent(&mut self, _fd: RawFd) -> Option<Sent> {
        None
    }
}

/// What a connection borrows from its driver while handling an event.
pub(crate) struct Env<'a> {
    pub hub: &'a Hub,
    pub limits: &'a Limits,
    /// Passive listeners per client address, server-wide (`Limits::max_passive_per_ip`).
    pub passive: &'a Arc<crate::sys::SharedCounter>,
    /// Readiness is level-triggered (select, poll, epoll without EPOLLET): a socket with
    /// anything left to read (data or EOF) is reported again, so a short read may end reading.
    pub level_triggered: bool,
    /// The server's connection counters for metrics, if kept.
    pub tally: Option<&'a crate::tally::Tally>,
}

/// After the idle goodbye, how long its flush may take before the connection is dropped.
const GOODBYE_GRACE: Duration = Duration::from_secs(2);
/// How long a closing connection waits for the peer's FIN (lingering close).
const LINGER: Duration = Duration::from_secs(2);
/// Output chunks (mostly file ranges) queued before reading pauses.
const MAX_CHUNKS: usize = 64;
const READ_CHUNK: usize = 32 * 1024;
const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// One read buffer per thread: reads land here and only the bytes read are copied into the
    /// connection's input buffer, so an idle connection holds no read buffer at all and no
    /// read pays for zeroing one.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH_SIZE]);
}
/// Per connection per loop turn: bytes read and `on_data` calls (see `settle`).
const READ_BUDGET: usize = 64 * 1024;
const CALL_BUDGET: usize = 256;

mod actions;
mod channels;
mod life;
mod ring;
mod settle;

pub(crate) struct Conn<S: Session> {
    session: S,
    cx: Context,
    sock: TcpStream,
    fd: RawFd,
    inbuf: Vec<u8>,
    /// Start of the unconsumed input in `inbuf` (compacted before the next read, not per call).
    in_pos: usize,
    out: Outbound,
    interest: Interest,
    registered: bool,
    read_pending: bool,
    hup: bool,
    read_eof: bool,
    eof_pending: bool,
    input_dirty: bool,
    input_paused: bool,
    /// The peer's FIN was reported (it may still have bytes queued before it).
    peer_fin: bool,
    /// `on_hangup` was called (once per connection).
    fin_told: bool,
    life: Life,
    drained_pending: bool,
    /// The session's named timers; the driver waits for the earliest (`deadline`).
    timers: Timers,
    /// Ended blocking-pool tasks the session watches; they wake the connection with `waker`.
    tasks: Completions,
    last_active: Instant,
    idle_fired: bool,
    channels: Vec<Option<Chan>>,
    events: VecDeque<(ChannelId, Pending)>,
    sub: Option<Arc<Subscriber>>,
    topics: Vec<Arc<str>>,
    waker: Waker,
    /// Where `waker` currently points, for connections that move between loops (threadpool).
    route: Option<Arc<Route>>,
    scratch: Vec<Action>,
    msgs: Vec<Arc<Message>>,
    /// Bytes read and written since the last report to the tally (see `settle`).
    moved_in: u64,
    moved_out: u64,
}

impl<S: Session> Conn<S> {
    /// `sock` must already be non-blocking. `waker` is how the hub wakes whoever drives this
    /// connection when a message arrives for it.
    pub(crate) fn new(session: S, sock: TcpStream, info: ConnInfo, waker: Waker) -> Self {
        let now = Instant::now();
        let fd = sock.as_raw_fd();
        Conn {
            session,
            cx: Context::new(info),
            sock,
            fd,
            inbuf: Vec::new(),
            in_pos: 0,
            out: Outbound::default(),
            interest: Interest::default(),
            registered: false,
            read_pending: true,
            hup: false,
            read_eof: false,
            eof_pending: false,
            input_dirty: false,
            input_paused: false,
            peer_fin: false,
            fin_told: false,
            life: Life::Open,
            drained_pending: false,
            timers: Timers::default(),
            tasks: Completions::new(waker.clone()),
            last_active: now,
            idle_fired: false,
            channels: Vec::new(),
            events: VecDeque::new(),
            sub: None,
            topics: Vec::new(),
            waker,
            route: None,
            scratch: Vec::new(),
            msgs: Vec::new(),
            moved_in: 0,
            moved_out: 0,
        }
    }

    pub(crate) fn peer_ip(&self) -> std::net::IpAddr {
        self.cx.info().peer.ip()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.life == Life::Closed
    }

    pub(crate) fn set_route(&mut self, route: Arc<Route>) {
        self.route = Some(route);
    }

    pub(crate) fn route(&self) -> Option<&Arc<Route>> {
        self.route.as_ref()
    }

    /// Nothing to do until the peer sends, a timer fires or hub mail comes: no output queued,
    /// no input to parse or read, no channel. A lingering close (waiting for the peer's FIN)
    /// is idle too. A threadpool worker hands such a connection back to the shared poller (see
    /// `model/threadpool.rs`); the poller sends back any that is not (mail came meanwhile).
    pub(crate) fn is_idle(&self, limits: &Limits) -> bool {
        let quiet = !self.is_closed()
            && !self.hup
            && self.out.is_empty()
            && self.channels.iter().all(Option::is_none)
            && self.events.is_empty();
        if !quiet {
            return false;
        }
        if let Life::Lingering { .. } = self.life {
            // Only the peer's FIN or the linger deadline can move it (hub mail is not taken
            // and `on_drained` is not called while closing).
            return !self.read_pending;
        }
        let busy = matches!(self.life, Life::Evicting { .. } | Life::Closing { .. })
            || self.drained_pending
            || self.input_dirty
            || self.eof_pending
            || (self.peer_fin && self.hangup_watch())
            || (self.read_pending && self.can_read(limits))
            || self.has_mail()
            || self.tasks.pending();
        !busy
    }

    /// After moving to a new loop: let the next hub message wake it. A wake-up can race
    /// with the move and reach the old owner, which no longer holds the connection; the inbox
    /// would then stay marked as notified and never wake anyone again.
    pub(crate) fn rearm_mail(&self) {
        if let Some(s) = &self.sub {
            s.rearm();
        }
    }

    /// Hub messages wait in this connection's inbox.
    pub(crate) fn has_mail(&self) -> bool {
        self.sub.as_ref().is_some_and(|s| s.pending())
    }

    /// Stop being watched by the current loop (the connection moves to another).
    pub(crate) fn detach(&mut self, reg: &mut dyn Registry) {
        for i in 0..self.channels.len() {
            if let Some(ch) = self.channels[i].as_mut() {
                reg.remove(ch.state.fd(), i as u16 + 1);
                ch.interest = Interest::default();
            }
        }
        if self.registered {
            reg.remove(self.fd, CONTROL);
            self.registered = false;
        }
        self.interest = Interest::default();
    }

    /// Be watched by a new loop, with the interest the connection's state calls for.
    pub(crate) fn attach(&mut self, reg: &mut dyn Registry, env: &Env) {
        let want = self.want(env.limits);
        if let Err(e) = reg.set(self.fd, CONTROL, want, true) {
            tracing::warn!("cannot watch connection: {e}");
            self.life = Life::Closed;
            return;
        }
        self.registered = true;
        self.interest = want;
        for i in 0..self.channels.len() {
            let Some(ch) = self.channels[i].as_mut() else {
                continue;
            };
            // Registered with no interest; `update_interest` (in settle) sets the real one.
            let _ = reg.set(ch.state.fd(), i as u16 + 1, Interest::default(), true);
        }
    }

    /// Register and call `on_open`.
    pub(crate) fn open(&mut self, reg: &mut dyn Registry, env: &Env) {
        let want = Interest::READ;
        match reg.set(self.fd, CONTROL, want, true) {
            Ok(()) => {
                self.registered = true;
                self.interest = want;
            }
            Err(e) => {
                tracing::warn!("cannot watch connection: {e}");
                self.life = Life::Closed;
                return;
            }
        }
        self.cx.set_now(Instant::now());
        self.session.on_open(&mut self.cx);
        self.settle(reg, env);
    }

    /// Readiness reported by the driver for endpoint `code` (`rdhup`: the peer's FIN); call
    /// [`Conn::settle`] after.
    pub(crate) fn on_ready(
        &mut self,
        code: u16,
        readable: bool,
        writable: bool,
        hup: bool,
        rdhup: bool,
    ) {
        if code == CONTROL {
            if readable {
                self.read_pending = true;
            }
            self.hup |= hup;
            self.peer_fin |= rdhup;
            return;
        }
        if let Some(Some(ch)) = self.channels.get_mut(code as usize - 1) {
            ch.ready_r |= readable;
            ch.ready_w |= writable;
            ch.hup |= hup;
        }
    }

    /// The earliest instant [`Conn::on_tick`] has something to do.
    pub(crate) fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let idle = if self.idle_fired {
            None
        } else {
            limits.idle_timeout.map(|t| self.last_active + t)
        };
        [self.timers.next(), idle, self.life.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fire the session's due timers (earliest first), the idle timeout, or the goodbye
    /// deadline if due.
    pub(crate) fn on_tick(&mut self, now: Instant, reg: &mut dyn Registry, env: &Env) {
        if self.is_closed() {
            return;
        }
        if self.life.deadline().is_some_and(|t| now >= t) {
            self.life = Life::Closed;
            return;
        }
        // Only timers armed before this turn: one re-armed at zero waits for the next turn.
        let mark = self.timers.mark();
        while !self.is_closed() {
            let Some(t) = self.timers.take_due(now, mark) else {
                break;
            };
            self.cx.set_now(now);
            self.session.on_timer(t, &mut self.cx);
            self.settle(reg, env);
        }
        if let Some(idle) = env.limits.idle_timeout {
            if !self.idle_fired && !self.is_closed() && now >= self.last_active + idle {
                self.idle_fired = true;
                self.cx.set_now(now);
                self.session.on_idle(&mut self.cx);
                self.cx.close();
                self.life = self.life.goodbye(now + GOODBYE_GRACE);
                self.settle(reg, env);
            }
        }
    }

    /// Graceful shutdown: tell the session; the driver enforces its own deadline.
    pub(crate) fn shutdown(&mut self, reg: &mut dyn Registry, env: &Env) {
        if self.is_closed() {
            return;
        }
        self.cx.set_shutting_down();
        self.cx.set_now(Instant::now());
        self.session.on_shutdown(&mut self.cx);
        self.settle(reg, env);
    }

    /// Close now (shutdown deadline passed).
    pub(crate) fn abort(&mut self) {
        self.life = Life::Closed;
    }

    /// Tear down: unregister every descriptor, leave the hub, tell the session.
    pub(crate) fn finish(mut self, reg: &mut dyn Registry, env: &Env) {
        self.report_bytes(env);
        for i in 0..self.channels.len() {
            if let Some(ch) = self.channels[i].take() {
                reg.remove(ch.state.fd(), i as u16 + 1);
            }
        }
        if self.registered {
            reg.remove(self.fd, CONTROL);
        }
        if let Some(sub) = self.sub.take() {
            for t in &self.topics {
                env.hub.unsubscribe(t, &sub);
            }
        }
        // Last words on the hub (a chat member's `left`), however the connection ended.
        self.cx.set_now(Instant::now());
        self.session.on_farewell(&mut self.cx);
        let id = self.cx.info().id;
        for a in self.cx.take_actions() {
            if let Action::Publish { topic, body } = a {
                env.hub.publish(Message {
                    topic,
                    from: id,
                    body,
                });
            }
        }
        self.session.on_close();
    }
}
