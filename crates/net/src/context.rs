//! [`Context`], a session's window on its connection, and the [`Action`]s it queues there for
//! the driver to carry out (split from `session`, which holds the contract itself).

use crate::blocking::{self, Cancel, Task, TaskWatch};
use crate::session::{ChannelId, ConnInfo, Passive};
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One thing a session asks the driver to do. Drivers carry them out in order.
/// Protocols push them through [`Context`]'s methods rather than building them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Send these bytes, after everything queued before.
    Write(Vec<u8>),
    /// Send `len` bytes of `file` from `offset` (`sendfile` where the driver can).
    SendFile {
        /// The open file (shared, so a cache can hand out one descriptor).
        file: Arc<File>,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Close once everything queued is sent (a lingering close).
    Close,
    /// Close now, dropping what is queued (a reset).
    Abort,
    /// Arm (`Some`: the absolute deadline) or cancel (`None`) one named timer; the session's
    /// other timers are untouched.
    SetTimer(Timer, Option<Instant>),
    /// Call [`Session::on_task_done`](crate::Session::on_task_done) when this blocking-pool
    /// task ends (see [`Context::spawn_blocking`]).
    Watch(TaskWatch),
    /// Receive the hub's messages on this topic ([`Session::on_message`](crate::Session::on_message)).
    Subscribe(Arc<str>),
    /// Stop receiving this topic.
    Unsubscribe(Arc<str>),
    /// Send `body` to every subscriber of `topic`, in every process of the server.
    Publish {
        /// The topic.
        topic: Arc<str>,
        /// The message.
        body: Arc<[u8]>,
    },
    /// Open a passive data channel: listen for the peer's connection.
    Listen(ChannelId, Passive),
    /// Open an active data channel: connect to this address.
    Connect(ChannelId, SocketAddr),
    /// Send these bytes on a data channel.
    ChannelWrite(ChannelId, Vec<u8>),
    /// Send a file range on a data channel.
    ChannelSendFile {
        /// The channel.
        id: ChannelId,
        /// The open file.
        file: Arc<File>,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Close a data channel once what is queued on it is sent.
    ChannelClose(ChannelId),
    /// Close a data channel now.
    ChannelAbort(ChannelId),
    /// Stop (`true`) or resume (`false`) reading a data channel.
    ChannelPause(ChannelId, bool),
    /// Pause or resume calling [`Session::on_data`] (e.g. FTP waits for a transfer).
    PauseInput(bool),
    /// Everything queued before this goes out as it is; every byte after it, both ways, is
    /// TLS (FTP's `AUTH TLS`). Carried out by the TLS layer; without one the connection is
    /// aborted.
    StartTls,
    /// This data channel speaks TLS, the server side of the handshake (FTP's `PROT P`).
    /// Carried out by the TLS layer; without one the channel is aborted.
    ChannelTls(ChannelId),
}

/// A session timer's name: a session has as many timers as it has names, each armed,
/// re-armed and cancelled on its own ([`Context::set_timer`]), and
/// [`Session::on_timer`](crate::Session::on_timer) says which one fired. Names are compared by
/// their text; a protocol declares its own as constants (`const HEAD: Timer =
/// Timer("http.head")`), and a layer that wraps a session picks names the inner one does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timer(pub &'static str);

/// A connection's armed timers, kept by the driver from the session's
/// [`Action::SetTimer`]s; the driver waits for the earliest only ([`Timers::next`]), so the
/// models never see more than one deadline per connection.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// (name, deadline, when it was armed): few per session, so a vector.
    armed: Vec<(Timer, Instant, u64)>,
    seq: u64,
}

impl Timers {
    /// Carry out [`Action::SetTimer`].
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.armed.retain(|(t, ..)| *t != timer);
        if let Some(at) = at {
            self.seq += 1;
            self.armed.push((timer, at, self.seq));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.armed.iter().map(|(_, at, _)| *at).min()
    }

    /// A mark to pass to [`Timers::take_due`]: timers armed after it wait for the next turn.
    pub(crate) fn mark(&self) -> u64 {
        self.seq
    }

    /// The earliest timer due at `now` (ties: the first armed) that was armed before `mark`,
    /// disarmed: it fires now. A timer re-armed by a callback in the same turn is not taken
    /// again in that turn, so a zero-delay timer cannot spin the loop.
    pub(crate) fn take_due(&mut self, now: Instant, mark: u64) -> Option<Timer> {
        let i = self
            .armed
            .iter()
            .enumerate()
            .filter(|(_, (_, at, seq))| *at <= now && *seq <= mark)
            .min_by_key(|(_, (_, at, seq))| (*at, *seq))
            .map(|(i, _)| i)?;
        Some(self.armed.remove(i).0)
    }
}

/// The session's window on its connection: facts (who, when, are we shutting down) and the
/// outbox of [`Action`]s. Drivers own one per connection and drain it after every callback.
/// Protocol crates can build one with [`Context::new`] to unit-test a session without sockets.
#[derive(Debug)]
pub struct Context {
    info: ConnInfo,
    actions: Vec<Action>,
    next_channel: ChannelId,
    now: Instant,
    shutting_down: bool,
}

impl Context {
    /// A context for a connection with these facts (drivers, the rig, and layers that run an
    /// inner session on a private context make one).
    pub fn new(info: ConnInfo) -> Self {
        Context {
            info,
            actions: Vec::new(),
            next_channel: 1,
            now: Instant::now(),
            shutting_down: false,
        }
    }

    /// The connection's facts: its id, both addresses, the peer's credentials (Unix).
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// The time the current event was dispatched (cheaper and more consistent than calling
    /// `Instant::now()` in every callback).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// True once graceful shutdown has begun: finish the current exchange and close.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Queue bytes for the peer. Consecutive writes are coalesced into one buffer.
    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(Action::Write(buf)) = self.actions.last_mut() {
            buf.extend_from_slice(bytes);
        } else {
            self.actions.push(Action::Write(bytes.to_vec()));
        }
    }

    /// Queue an owned buffer for the peer, without copying it.
    pub fn write_vec(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Action::Write(buf)) = self.actions.last_mut() {
            if buf.len() < 4096 {
                buf.extend_from_slice(&bytes);
                return;
            }
        }
        self.actions.push(Action::Write(bytes));
    }

    /// Queue `len` bytes of `file` starting at `offset`, after everything queued before.
    /// The driver uses `sendfile(2)` where its model allows (it never moves the file's cursor,
    /// so one `Arc<File>` can serve many connections) and a read/write copy elsewhere.
    /// If the file turns out shorter than `offset + len`, the connection is aborted, because
    /// the peer was promised `len` bytes (e.g. by a Content-Length).
    pub fn send_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len > 0 {
            self.actions.push(Action::SendFile { file, offset, len });
        }
    }

    /// Close the connection once everything queued (here and on data channels) is written.
    /// The driver then sends FIN and drops further input until the peer closes (a lingering
    /// close, so unread input cannot turn into a RST that destroys the last reply).
    pub fn close(&mut self) {
        self.actions.push(Action::Close);
    }

    /// Close the connection now, dropping anything still queued.
    pub fn abort(&mut self) {
        self.actions.push(Action::Abort);
    }

    /// Call [`Session::on_timer`](crate::Session::on_timer) with `timer` after `after` (from
    /// [`Context::now`]). Arming a timer that is already armed moves it; the session's other
    /// timers are untouched.
    pub fn set_timer(&mut self, timer: Timer, after: Duration) {
        let at = self.now + after;
        self.actions.push(Action::SetTimer(timer, Some(at)));
    }

    /// Disarm `timer` (nothing if it is not armed): it will not fire.
    pub fn cancel_timer(&mut self, timer: Timer) {
        self.actions.push(Action::SetTimer(timer, None));
    }

    /// Run `job` on the process's blocking pool (see [`crate::blocking`]) and call
    /// [`Session::on_task_done`](crate::Session::on_task_done) with the task's id once it has
    /// ended, under every model and with nothing else happening on the connection. Keep the
    /// [`Task`]: dropping it cancels the job, and then no callback comes.
    pub fn spawn_blocking<T, F>(&mut self, job: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let task = blocking::run(job);
        self.watch(&task);
        task
    }

    /// Be told ([`Session::on_task_done`](crate::Session::on_task_done)) when `task`, started
    /// with [`blocking::run`] elsewhere, ends.
    pub fn watch<T>(&mut self, task: &Task<T>) {
        self.actions.push(Action::Watch(task.watch()));
    }

    /// Receive every message published on `topic` (by any session, in any process of this
    /// server), via [`Session::on_message`], in the order the hub saw them published.
    pub fn subscribe(&mut self, topic: &str) {
        self.actions.push(Action::Subscribe(topic.into()));
    }

    /// Stop receiving messages published on `topic`.
    pub fn unsubscribe(&mut self, topic: &str) {
        self.actions.push(Action::Unsubscribe(topic.into()));
    }

    /// Publish `body` on `topic`. Every subscriber gets it, including this session if it is
    /// subscribed (check [`Message::from`] to skip your own).
    pub fn publish(&mut self, topic: &str, body: &[u8]) {
        self.actions.push(Action::Publish {
            topic: topic.into(),
            body: body.into(),
        });
    }

    /// Stop (`true`) or resume (`false`) delivering input to [`Session::on_data`]. Input stays
    /// in the kernel meanwhile, which is the backpressure a protocol wants while a transfer runs.
    pub fn pause_input(&mut self, paused: bool) {
        self.actions.push(Action::PauseInput(paused));
    }

    /// Open a passive data listener on the control connection's local IP, port 0 (FTP `PASV`).
    /// Expect [`ChannelEvent::Listening`] with the bound address, then `Connected` when the
    /// first peer connects (later ones are not accepted).
    pub fn listen(&mut self) -> ChannelId {
        self.listen_with(Passive::default())
    }

    /// A passive listener as [`Context::listen`], within a port range and/or announcing another
    /// address (see [`Passive`]).
    pub fn listen_with(&mut self, opts: Passive) -> ChannelId {
        let id = self.alloc_channel();
        self.actions.push(Action::Listen(id, opts));
        id
    }

    /// Open an active data connection to `addr` (FTP `PORT`); expect `Connected` or `Error`.
    pub fn connect(&mut self, addr: SocketAddr) -> ChannelId {
        let id = self.alloc_channel();
        self.actions.push(Action::Connect(id, addr));
        id
    }

    /// Queue bytes on a data channel. Before the channel is connected they wait for the peer.
    pub fn channel_write(&mut self, id: ChannelId, bytes: &[u8]) {
        if let Some(Action::ChannelWrite(last, buf)) = self.actions.last_mut() {
            if *last == id {
                buf.extend_from_slice(bytes);
                return;
            }
        }
        self.actions.push(Action::ChannelWrite(id, bytes.to_vec()));
    }

    /// Queue a file range on a data channel (`RETR`); see [`Context::send_file`].
    pub fn channel_send_file(&mut self, id: ChannelId, file: Arc<File>, offset: u64, len: u64) {
        if len > 0 {
            self.actions.push(Action::ChannelSendFile {
                id,
                file,
                offset,
                len,
            });
        }
    }

    /// Close a data channel after its queued output is written. On a channel not connected
    /// yet the output (possibly none) waits for the peer, then the channel closes: the peer
    /// always gets what was queued, then EOF. To cancel a listener, use
    /// [`Context::channel_abort`].
    pub fn channel_close(&mut self, id: ChannelId) {
        self.actions.push(Action::ChannelClose(id));
    }

    /// Stop (`true`) or resume (`false`) reading a data channel: while paused no
    /// [`ChannelEvent::Data`] or `Eof` comes, and the bytes wait in the kernel, which slows the
    /// sender (backpressure while an upload is written to disk).
    pub fn channel_pause(&mut self, id: ChannelId, paused: bool) {
        self.actions.push(Action::ChannelPause(id, paused));
    }

    /// Close a data channel now, dropping whatever is still queued on it (FTP `ABOR`).
    /// [`ChannelEvent::Closed`] follows.
    pub fn channel_abort(&mut self, id: ChannelId) {
        self.actions.push(Action::ChannelAbort(id));
    }

    /// Switch this connection to TLS after what is queued so far (FTP's `234` to `AUTH TLS`
    /// goes out in the clear, then the handshake). Input after the line that asked for it is
    /// the handshake, never a command: bytes a client pipelined in plaintext behind it cannot
    /// be injected into the secure session. [`Session::on_secure`](crate::Session::on_secure)
    /// follows once the handshake is done. Needs the TLS layer (`TlsProtocol::upgradable`);
    /// without it the connection is aborted.
    pub fn start_tls(&mut self) {
        self.actions.push(Action::StartTls);
    }

    /// Make data channel `id` speak TLS (server side) from its first byte, with the same
    /// certificate as the control connection. Push it before the channel's transfer starts
    /// (e.g. right after [`Context::connect`], or before resuming a passive channel the peer
    /// connected to): the channel's events and actions then carry plaintext, the TLS layer
    /// encrypting file ranges in user space (no `sendfile`). Needs the TLS layer, as
    /// [`Context::start_tls`].
    pub fn channel_tls(&mut self, id: ChannelId) {
        self.actions.push(Action::ChannelTls(id));
    }

    fn alloc_channel(&mut self) -> ChannelId {
        let id = self.next_channel;
        self.next_channel = self.next_channel.wrapping_add(1).max(1);
        id
    }

    /// Queue an action as it is. For layers that wrap a session (WebSocket framing, TLS): the
    /// layer runs the inner session against a private `Context`, drains it with
    /// [`Context::take_actions`], transforms the actions it owns (writes, close) and replays
    /// the rest here unchanged, keeping their order, absolute timer deadlines and channel ids.
    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    // ---- for drivers (crate-private: a session cannot play driver; layers use
    // `LayerContext`, tests the rig) ----

    /// Take the queued actions (drivers call this after every callback).
    pub(crate) fn take_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    pub(crate) fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Set the dispatch time before a callback.
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Graceful shutdown has begun (what `shutting_down` says from then on).
    pub(crate) fn set_shutting_down(&mut self) {
        self.shutting_down = true;
    }
}

/// A layer's private context for the session it wraps (chat's WebSocket face over the room's
/// line session; bingfa-net's TLS layer): the layer runs the inner session's callbacks on it,
/// then relays, transforms or drops what they queued. The driver's side of a [`Context`] (its
/// clock, its shutdown flag, taking its actions) is closed to sessions; this is the one way a
/// layer plays driver for its inner session, always at the outer connection's time.
pub struct LayerContext(Context);

impl LayerContext {
    /// A private context for an inner session on the connection `info`.
    pub fn new(info: ConnInfo) -> Self {
        LayerContext(Context::new(info))
    }

    /// Runs one of the inner session's callbacks at `outer`'s time and shutdown state; returns
    /// its result and the actions it queued, in order (whatever is not taken is dropped).
    pub fn run<R>(
        &mut self,
        outer: &Context,
        f: impl FnOnce(&mut Context) -> R,
    ) -> (R, std::vec::Drain<'_, Action>) {
        self.0.set_now(outer.now());
        if outer.shutting_down() {
            self.0.set_shutting_down();
        }
        let r = f(&mut self.0);
        (r, self.0.take_actions())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_earliest_first_and_once_per_arming() {
        const A: Timer = Timer("a");
        const B: Timer = Timer("b");
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::default();
        t.set(A, Some(t0 + ms(30)));
        t.set(B, Some(t0 + ms(10)));
        assert_eq!(t.next(), Some(t0 + ms(10)));
        // Re-arming moves a timer; cancelling removes it; the other is untouched.
        t.set(B, Some(t0 + ms(50)));
        assert_eq!(t.next(), Some(t0 + ms(30)));
        t.set(A, None);
        assert_eq!(t.next(), Some(t0 + ms(50)));
        t.set(A, Some(t0 + ms(50)));
        // Due together: deadline order, ties in arming order; each once.
        let mark = t.mark();
        assert_eq!(t.take_due(t0 + ms(60), mark), Some(B));
        // Armed during this turn (even at zero delay): waits for the next turn.
        t.set(B, Some(t0));
        assert_eq!(t.take_due(t0 + ms(60), mark), Some(A));
        assert_eq!(t.take_due(t0 + ms(60), mark), None);
        assert_eq!(t.take_due(t0 + ms(60), t.mark()), Some(B));
        assert_eq!(t.next(), None);
    }
}
