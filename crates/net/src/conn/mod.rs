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

pub(crate) mod outbound;
pub(crate) mod passive;

use crate::blocking::Completions;
use crate::config::Limits;
use crate::context::Timers;
use crate::hub::{Hub, Subscriber};
use crate::poller::Interest;
use crate::session::{Action, ChannelEvent, ChannelId, ConnInfo, Context, Message, Session};
use crate::sys;
use crate::wake::{Route, Waker};
use channels::{Chan, ChanState, Pending};
use outbound::Outbound;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The endpoint code of the control connection; data channels use `slot + 1`.
pub(crate) const CONTROL: u16 = 0;

/// How a connection registers its descriptors with whatever watches them.
pub(crate) trait Registry {
    fn set(&mut self, fd: RawFd, code: u16, interest: Interest, new: bool) -> io::Result<()>;
    fn remove(&mut self, fd: RawFd, code: u16);
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

mod channels;

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
    closing: bool,
    closed: bool,
    drained_pending: bool,
    /// The session's named timers; the driver waits for the earliest (`deadline`).
    timers: Timers,
    /// Ended blocking-pool tasks the session watches; they wake the connection with `waker`.
    tasks: Completions,
    last_active: Instant,
    idle_fired: bool,
    hard_deadline: Option<Instant>,
    /// Set once the FIN is sent: until then, input is read and dropped (see `flush`).
    linger_until: Option<Instant>,
    channels: Vec<Option<Chan>>,
    events: VecDeque<(ChannelId, Pending)>,
    sub: Option<Arc<Subscriber>>,
    topics: Vec<Arc<str>>,
    waker: Waker,
    /// Where `waker` currently points, for connections that move between loops (threadpool).
    route: Option<Arc<Route>>,
    scratch: Vec<Action>,
    msgs: Vec<Arc<Message>>,
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
            closing: false,
            closed: false,
            drained_pending: false,
            timers: Timers::default(),
            tasks: Completions::new(waker.clone()),
            last_active: now,
            idle_fired: false,
            hard_deadline: None,
            linger_until: None,
            channels: Vec::new(),
            events: VecDeque::new(),
            sub: None,
            topics: Vec::new(),
            waker,
            route: None,
            scratch: Vec::new(),
            msgs: Vec::new(),
        }
    }

    pub(crate) fn peer_ip(&self) -> std::net::IpAddr {
        self.cx.info().peer.ip()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
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
        let quiet = !self.closed
            && !self.hup
            && self.out.is_empty()
            && self.channels.iter().all(Option::is_none)
            && self.events.is_empty();
        if !quiet {
            return false;
        }
        if self.linger_until.is_some() {
            // Only the peer's FIN or the linger deadline can move it (hub mail is not taken
            // and `on_drained` is not called while closing).
            return !self.read_pending;
        }
        let busy = self.closing
            || self.hard_deadline.is_some()
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
            self.closed = true;
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
                self.closed = true;
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
        [
            self.timers.next(),
            idle,
            self.hard_deadline,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fire the session's due timers (earliest first), the idle timeout, or the goodbye
    /// deadline if due.
    pub(crate) fn on_tick(&mut self, now: Instant, reg: &mut dyn Registry, env: &Env) {
        if self.closed {
            return;
        }
        if self.hard_deadline.is_some_and(|t| now >= t)
            || self.linger_until.is_some_and(|t| now >= t)
        {
            self.closed = true;
            return;
        }
        // Only timers armed before this turn: one re-armed at zero waits for the next turn.
        let mark = self.timers.mark();
        while !self.closed {
            let Some(t) = self.timers.take_due(now, mark) else {
                break;
            };
            self.cx.set_now(now);
            self.session.on_timer(t, &mut self.cx);
            self.settle(reg, env);
        }
        if let Some(idle) = env.limits.idle_timeout {
            if !self.idle_fired && !self.closed && now >= self.last_active + idle {
                self.idle_fired = true;
                self.cx.set_now(now);
                self.session.on_idle(&mut self.cx);
                self.cx.close();
                self.hard_deadline = Some(now + GOODBYE_GRACE);
                self.settle(reg, env);
            }
        }
    }

    /// Graceful shutdown: tell the session; the driver enforces its own deadline.
    pub(crate) fn shutdown(&mut self, reg: &mut dyn Registry, env: &Env) {
        if self.closed {
            return;
        }
        self.cx.set_shutting_down();
        self.cx.set_now(Instant::now());
        self.session.on_shutdown(&mut self.cx);
        self.settle(reg, env);
    }

    /// Close now (shutdown deadline passed).
    pub(crate) fn abort(&mut self) {
        self.closed = true;
    }

    /// Tear down: unregister every descriptor, leave the hub, tell the session.
    pub(crate) fn finish(mut self, reg: &mut dyn Registry, env: &Env) {
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

    fn backpressured(&self, limits: &Limits) -> bool {
        self.out.bytes >= limits.high_water || self.out.chunks.len() >= MAX_CHUNKS
    }

    fn can_read(&self, limits: &Limits) -> bool {
        !self.read_eof
            && !self.closing
            && !self.input_paused
            && !self.backpressured(limits)
            && self.inbuf.len() - self.in_pos < limits.max_input
    }

    /// Make every bit of progress possible now, then update what is watched.
    pub(crate) fn settle(&mut self, reg: &mut dyn Registry, env: &Env) {
        let limits = env.limits;
        // Fairness: one connection gets a bounded share of a loop turn, so a client pouring in
        // input (and publishing to the hub) cannot starve the others sharing its thread.
        let (mut calls, mut read_bytes, mut yielded) = (0usize, 0usize, false);
        loop {
            self.apply(reg, env);
            if self.closed {
                return;
            }
            self.flush(reg, env);
            if self.closed {
                return;
            }
            if self.linger_until.is_some() {
                if self.read_pending {
                    self.discard_input();
                }
                if self.closed {
                    return;
                }
                break;
            }
            if let Some((id, ev)) = self.events.pop_front() {
                let ev = match ev {
                    Pending::Listening(a) => ChannelEvent::Listening(a),
                    Pending::Connected(a) => ChannelEvent::Connected(a),
                    Pending::Eof => ChannelEvent::Eof,
                    Pending::Drained => ChannelEvent::Drained,
                    Pending::Closed => ChannelEvent::Closed,
                    Pending::Error(k) => ChannelEvent::Error(k),
                    Pending::TooMany => ChannelEvent::TooMany,
                };
                self.cx.set_now(Instant::now());
                self.session.on_channel(id, ev, &mut self.cx);
                continue;
            }
            if self.peer_fin && self.hangup_watch() {
                // A FIN while the session waits with input paused (FTP behind a transfer):
                // its EOF would come only after it resumes, so say so now.
                self.fin_told = true;
                self.cx.set_now(Instant::now());
                self.session.on_hangup(&mut self.cx);
                continue;
            }
            if self.drained_pending {
                self.drained_pending = false;
                if !self.closing {
                    self.session.on_drained(&mut self.cx);
                    continue;
                }
            }
            if !self.closing {
                // A blocking-pool task ended (its wake-up brought us here, or it ended before
                // the watch was carried out).
                if let Some(id) = self.tasks.next() {
                    self.cx.set_now(Instant::now());
                    self.session.on_task_done(id, &mut self.cx);
                    continue;
                }
            }
            if calls >= CALL_BUDGET || read_bytes >= READ_BUDGET {
                // Input waits for the next turn; output, channels and hub mail still move.
                yielded = true;
            }
            if self.input_dirty
                && !yielded
                && !self.input_paused
                && !self.closing
                && !self.backpressured(limits)
            {
                calls += 1;
                self.cx.set_now(Instant::now());
                let input = &self.inbuf[self.in_pos..];
                let n = self.session.on_data(input, &mut self.cx).min(input.len());
                self.in_pos += n;
                if self.in_pos == self.inbuf.len() {
                    self.inbuf.clear();
                    self.in_pos = 0;
                    if self.inbuf.capacity() > SCRATCH_SIZE {
                        // A burst is over: an idle connection keeps no big buffer.
                        self.inbuf = Vec::new();
                    }
                }
                if n == 0 || self.inbuf.is_empty() {
                    self.input_dirty = false;
                    if n == 0 && self.inbuf.len() - self.in_pos >= limits.max_input {
                        tracing::debug!("input limit reached without progress; closing");
                        self.closed = true;
                        return;
                    }
                }
                continue;
            }
            if self.read_pending && !yielded && self.can_read(limits) {
                let before = self.inbuf.len();
                if self.read_some(env.level_triggered) {
                    read_bytes += self.inbuf.len().saturating_sub(before);
                    continue;
                }
                if self.closed {
                    return;
                }
            }
            if self.eof_pending && !self.input_dirty && !yielded && !self.closing {
                self.eof_pending = false;
                self.session.on_eof(&mut self.cx);
                continue;
            }
            if !yielded && self.read_channels(reg) {
                // Uploads count against the same per-turn share as control input.
                read_bytes += READ_CHUNK;
                continue;
            }
            if self.take_messages(limits) {
                continue;
            }
            break;
        }
        if self.hup && !self.closed {
            // Reset or fully shut: whatever could be read has been; nothing more can be sent.
            self.closed = true;
            return;
        }
        let channel_input = self
            .channels
            .iter()
            .flatten()
            .any(|c| c.ready_r && !c.read_eof && !c.paused);
        if yielded && (self.input_dirty || self.read_pending || channel_input) {
            // Come back next turn, after the others: edge-triggered drivers would not report
            // the input still waiting, so ask to be woken like a hub delivery.
            (self.waker)();
        }
        self.update_interest(reg, limits);
    }

    /// One read into the input buffer; true if something changed.
    fn read_some(&mut self, level_triggered: bool) -> bool {
        if self.in_pos > 0 {
            self.inbuf.drain(..self.in_pos);
            self.in_pos = 0;
        }
        let r = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = (&self.sock).read(&mut scratch[..READ_CHUNK])?;
            self.inbuf.extend_from_slice(&scratch[..n]);
            Ok::<usize, io::Error>(n)
        });
        match r {
            Ok(0) => {
                self.read_eof = true;
                self.read_pending = false;
                self.eof_pending = true;
                true
            }
            Ok(n) => {
                self.input_dirty = true;
                self.last_active = Instant::now();
                if n < READ_CHUNK && level_triggered {
                    // A short read emptied the socket: skip the read that would only say
                    // EAGAIN (one syscall per request). Only when level-triggered: an EOF that
                    // arrived with the data would not be a new edge.
                    self.read_pending = false;
                }
                true
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    false
                }
                io::ErrorKind::Interrupted => true,
                _ => {
                    self.closed = true;
                    false
                }
            },
        }
    }

    fn take_messages(&mut self, limits: &Limits) -> bool {
        let Some(sub) = &self.sub else { return false };
        if self.closing {
            return false;
        }
        // Checked before the high-water test: a receiver that stopped reading sits above
        // high water for good, and must still be found out when its inbox overflows.
        if sub.overflowed() {
            self.evict();
            return true;
        }
        if self.out.bytes >= limits.high_water {
            return false;
        }
        self.msgs.clear();
        if sub.take(64, &mut self.msgs).is_err() {
            self.evict();
            return true;
        }
        if self.msgs.is_empty() {
            return false;
        }
        let mut msgs = std::mem::take(&mut self.msgs);
        self.cx.set_now(Instant::now());
        for m in &msgs {
            self.session.on_message(m, &mut self.cx);
        }
        msgs.clear(); // not held until the next batch
        self.msgs = msgs;
        true
    }

    /// The hub inbox overflowed: the session may queue a last word, then the connection closes
    /// once that is flushed or after the goodbye grace (the peer is not reading, so it may
    /// never be).
    fn evict(&mut self) {
        tracing::debug!("hub subscriber overflowed; disconnecting the slow receiver");
        let now = Instant::now();
        self.cx.set_now(now);
        self.session.on_overflow(&mut self.cx);
        self.cx.close();
        self.hard_deadline = Some(now + GOODBYE_GRACE);
    }

    /// Carry out the actions the last callbacks queued, in order.
    fn apply(&mut self, reg: &mut dyn Registry, env: &Env) {
        if !self.cx.has_actions() {
            return;
        }
        let mut acts = std::mem::take(&mut self.scratch);
        acts.extend(self.cx.take_actions());
        for a in acts.drain(..) {
            if self.closed {
                break;
            }
            match a {
                Action::Write(buf) => {
                    if !self.closing {
                        self.out.push_bytes(buf);
                    }
                }
                Action::SendFile { file, offset, len } => {
                    if !self.closing {
                        self.out.push_file(file, offset, len);
                    }
                }
                Action::Close => self.closing = true,
                Action::Abort => self.closed = true,
                Action::SetTimer(t, at) => self.timers.set(t, at),
                Action::Watch(w) => self.tasks.watch(w),
                Action::Subscribe(topic) => {
                    let sub = self
                        .sub
                        .get_or_insert_with(|| {
                            Subscriber::new(
                                self.cx.info().id,
                                env.limits.hub_queue_bytes,
                                self.waker.clone(),
                            )
                        })
                        .clone();
                    env.hub.subscribe(&topic, &sub);
                    if !self.topics.contains(&topic) {
                        self.topics.push(topic);
                    }
                }
                Action::Unsubscribe(topic) => {
                    if let Some(sub) = &self.sub {
                        env.hub.unsubscribe(&topic, sub);
                    }
                    self.topics.retain(|t| *t != topic);
                }
                Action::Publish { topic, body } => env.hub.publish(Message {
                    topic,
                    from: self.cx.info().id,
                    body,
                }),
                Action::PauseInput(p) => {
                    self.input_paused = p;
                    if !p && self.inbuf.len() > self.in_pos {
                        self.input_dirty = true;
                    }
                }
                Action::Listen(id, opts) => {
                    if !self.channel_room(id, env) {
                        continue;
                    }
                    let place = match env.limits.max_passive_per_ip {
                        None => None,
                        Some(_) => {
                            let peer = self.cx.info().peer.ip().to_canonical();
                            match passive::PassivePlace::take(env.passive, peer) {
                                Some(p) => Some(p),
                                None => {
                                    let e = io::ErrorKind::QuotaExceeded;
                                    self.events.push_back((id, Pending::Error(e)));
                                    continue;
                                }
                            }
                        }
                    };
                    let ip = self.cx.info().local.ip();
                    match passive::bind(ip, opts.ports.as_ref())
                        .and_then(|l| l.local_addr().map(|a| (l, a)))
                    {
                        Ok((l, addr)) => {
                            self.add_channel(id, ChanState::Listening(l, place), reg);
                            if self.chan_index(id).is_some() {
                                let shown =
                                    SocketAddr::new(opts.announce.unwrap_or(ip), addr.port());
                                self.events.push_back((id, Pending::Listening(shown)));
                            }
                        }
                        Err(e) => self.events.push_back((id, Pending::Error(e.kind()))),
                    }
                }
                Action::Connect(id, addr) => {
                    if !self.channel_room(id, env) {
                        continue;
                    }
                    match sys::connect_nonblocking(addr) {
                        Ok(s) => self.add_channel(id, ChanState::Connecting(s), reg),
                        Err(e) => self.events.push_back((id, Pending::Error(e.kind()))),
                    }
                }
                Action::ChannelPause(id, paused) => {
                    if let Some(i) = self.chan_index(id) {
                        self.channels[i].as_mut().expect("indexed").paused = paused;
                    }
                }
                Action::ChannelWrite(id, buf) => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        if !ch.close_after {
                            ch.out.push_bytes(buf);
                        }
                        if ch.out.bytes > env.limits.max_outbound {
                            // The same bound as the control connection: a peer that does not
                            // read its data connection loses it.
                            self.drop_channel(i, reg);
                            self.events
                                .push_back((id, Pending::Error(io::ErrorKind::OutOfMemory)));
                        }
                    }
                }
                Action::ChannelSendFile {
                    id,
                    file,
                    offset,
                    len,
                } => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        if !ch.close_after {
                            ch.out.push_file(file, offset, len);
                        }
                    }
                }
                Action::ChannelAbort(id) => {
                    if let Some(i) = self.chan_index(id) {
                        self.drop_channel(i, reg);
                        self.events.push_back((id, Pending::Closed));
                    }
                }
                Action::ChannelClose(id) => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        ch.close_after = true;
                        // Not connected yet: what was queued (possibly nothing) waits for the
                        // peer, which then gets it and EOF (`flush` closes it after).
                        let flushed = matches!(ch.state, ChanState::Open(_)) && ch.out.is_empty();
                        if flushed {
                            self.drop_channel(i, reg);
                            self.events.push_back((id, Pending::Closed));
                        }
                    }
                }
                // Only the TLS layer carries these out; reaching a driver means the protocol
                // asked for TLS where none is configured. Going on in plaintext would expose
                // what the peer means to encrypt.
                Action::StartTls => {
                    tracing::error!("start_tls without the TLS layer: aborting the connection");
                    self.closed = true;
                }
                Action::ChannelTls(id) => {
                    tracing::error!("channel_tls without the TLS layer: aborting the channel");
                    if let Some(i) = self.chan_index(id) {
                        self.drop_channel(i, reg);
                        self.events.push_back((id, Pending::Closed));
                    }
                }
            }
        }
        self.scratch = acts;
        if self.out.bytes > env.limits.max_outbound {
            tracing::debug!("outbound limit passed; closing a slow consumer");
            self.closed = true;
        }
    }

    /// Write what can be written, finish connects and accepts, and close when due.
    fn flush(&mut self, reg: &mut dyn Registry, env: &Env) {
        if !self.out.is_empty() {
            let mut moved = false;
            match self
                .out
                .write_to(&self.sock, &mut moved, env.level_triggered)
            {
                Ok(done) => {
                    if moved {
                        self.last_active = Instant::now();
                    }
                    if done {
                        self.drained_pending = true;
                    }
                }
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
        self.flush_channels(reg, env.level_triggered);
        if self.closing && self.out.is_empty() && self.events.is_empty() {
            let busy = self
                .channels
                .iter()
                .flatten()
                .any(|c| matches!(c.state, ChanState::Open(_)) && !c.out.is_empty());
            if !busy {
                if self.read_eof || self.hup {
                    self.closed = true;
                } else if self.linger_until.is_none() {
                    // Lingering close: send FIN, then read and discard until the peer closes
                    // (or LINGER passes). Closing with unread input would send a RST, and a
                    // RST can destroy the last response before the client has read it.
                    let _ = self.sock.shutdown(std::net::Shutdown::Write);
                    // Shutting down, the whole server waits for lingerers: keep it short.
                    let linger = if self.cx.shutting_down() {
                        LINGER / 8
                    } else {
                        LINGER
                    };
                    self.linger_until = Some(Instant::now() + linger);
                    self.read_pending = true;
                }
            }
        }
    }

    /// While lingering: discard input until EOF (then closed) or the socket is empty.
    fn discard_input(&mut self) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for _ in 0..16 {
                match (&self.sock).read(&mut scratch[..]) {
                    Ok(0) => {
                        self.closed = true;
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.read_pending = false;
                        return;
                    }
                    Err(_) => {
                        self.closed = true;
                        return;
                    }
                }
            }
            // Still more: come back next turn rather than hog the loop.
            (self.waker)();
        });
    }

    /// What the control connection's state calls for: reading when it can; while the session
    /// paused its input, only the peer's FIN (told once, as `on_hangup`).
    fn want(&self, limits: &Limits) -> Interest {
        let read = self.can_read(limits) || self.linger_until.is_some();
        Interest {
            read,
            write: !self.out.is_empty(),
            hangup: !read && self.hangup_watch(),
        }
    }

    /// The session paused its input and has not been told of a FIN yet.
    fn hangup_watch(&self) -> bool {
        self.input_paused && !self.read_eof && !self.fin_told && !self.closing && !self.closed
    }

    fn update_interest(&mut self, reg: &mut dyn Registry, limits: &Limits) {
        let want = self.want(limits);
        if want != self.interest && reg.set(self.fd, CONTROL, want, false).is_ok() {
            self.interest = want;
        }
        self.update_channel_interest(reg);
    }
}
