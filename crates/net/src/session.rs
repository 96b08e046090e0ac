//! The sans-IO `Session` contract: the one interface between a protocol (HTTP, chat, FTP, the
//! test protocols) and a concurrency model (the nine drivers).
//!
//! A protocol is written once, as a [`Session`]: a state machine that is *told* what happened
//! (bytes arrived, the peer half-closed, a hub message came, its timer fired, a data channel
//! connected…) and answers by pushing [`Action`]s into a [`Context`] (write these bytes, send this
//! file range, open a passive data listener, publish on the hub, close after flushing…).
//! A session never blocks on the network and never owns a socket, so every model can drive it:
//! a blocking thread, a `poll(2)` loop, an edge-triggered epoll loop, a tokio task, a forked
//! child. A [`Protocol`] makes one fresh session per accepted connection.
//!
//! # Rules every driver guarantees
//! - Callbacks for one session are never concurrent and always come in the order the events
//!   happened. [`Session::on_open`] is first; nothing comes after the connection is closed.
//! - Actions are carried out in the order they were pushed. Bytes written with
//!   [`Context::write`] and file ranges queued with [`Context::send_file`] reach the peer in that
//!   order, whether the driver uses `sendfile(2)` or a read/write copy.
//! - Unconsumed input is kept: [`Session::on_data`] sees everything received and not yet
//!   consumed, and returns how much it consumed. A session that consumes nothing while the
//!   buffer has reached [`Limits::max_input`](crate::Limits::max_input) is closed by the driver
//!   (a protocol that wants to answer first, e.g. HTTP 431, checks the length itself).
//! - Backpressure: while more than [`Limits::high_water`](crate::Limits::high_water) bytes are
//!   waiting to go out, the driver stops calling `on_data` (it stops reading), so a client that
//!   pipelines requests but never reads cannot grow the server's memory. Hub messages are held
//!   in the subscriber's bounded queue meanwhile; see [`crate::hub`] for the overflow policy.
//! - Idle timeout: when nothing was read or written for
//!   [`Limits::idle_timeout`](crate::Limits::idle_timeout), the driver calls
//!   [`Session::on_idle`] (say goodbye: HTTP 408, FTP 421) and then closes after flushing.
//! - Graceful shutdown: [`Session::on_shutdown`] is called once; the session finishes what it
//!   is doing and closes. Sessions still open at the deadline are closed by the driver.
//! - [`Context::close`] closes after everything queued was flushed (including data channels'
//!   pending output), then lingers (FIN, input dropped) until the peer closes;
//!   [`Context::abort`] closes at once, dropping what is queued.
//! - Outbound bytes a session queues beyond [`Limits::max_outbound`](crate::Limits::max_outbound)
//!   close the connection (send big bodies as file ranges, which are not counted).
//! - A session that panics loses its own connection, nothing else.
//!
//! # Extra sockets (FTP data connections)
//! [`Context::listen`] asks the driver for a passive listener on the control connection's
//! local IP, port 0 ([`Context::listen_with`]: a random free port within a range, and another
//! address to announce); the session learns the address from [`ChannelEvent::Listening`]. The
//! first peer *from the control connection's IP* to connect gets the channel
//! ([`ChannelEvent::Connected`]) and the listener is closed (one connection per `PASV`);
//! connections from other addresses are closed at once and the listener keeps waiting, so a
//! third party cannot steal a transfer. [`Context::connect`] opens an active connection instead
//! (`PORT`). Then [`Context::channel_write`], [`Context::channel_send_file`] and
//! [`Context::channel_close`] work as their control-connection twins
//! ([`Context::channel_abort`] drops a channel at once, FTP `ABOR`; it also cancels a listener),
//! and input arrives as [`ChannelEvent::Data`] / [`ChannelEvent::Eof`], which
//! [`Context::channel_pause`] stops and resumes (backpressure while an upload is written).
//! Output queued before the peer connects — including a `channel_close` — waits for it: `PASV`
//! then `RETR` before the client connects loses nothing. A session already holding
//! [`Limits::max_channels`](crate::Limits::max_channels) channels gets
//! [`ChannelEvent::TooMany`] for a new one, before anything is bound or connected. A channel
//! ends with exactly one [`ChannelEvent::Closed`] (or [`ChannelEvent::Error`] /
//! [`ChannelEvent::TooMany`]), after which its id is dead.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection's identity, unique across every process of one server (the pid is in the high
/// bits), so a session can recognise its own messages coming back from the hub.
pub type ConnId = u64;

/// A data channel (extra socket) of one session; ids are never reused within a session.
pub type ChannelId = u32;

/// What a session knows about its connection, fixed for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: ConnId,
    /// The client's address; `0.0.0.0:0` on a Unix-domain listener (see `cred`).
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Who is at the other end of a Unix-domain connection (`SO_PEERCRED`); `None` for TCP.
    pub cred: Option<PeerCred>,
}

/// The process at the other end of a Unix-domain connection, as the kernel saw it connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A message carried by the [`Hub`](crate::Hub) between sessions, possibly across processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on (e.g. a chat room's name).
    pub topic: Arc<str>,
    /// The connection that published it; a session skips its own messages by comparing with
    /// `cx.info().id`.
    pub from: ConnId,
    /// The payload; shared, so a broadcast to a thousand subscribers copies nothing.
    pub body: Arc<[u8]>,
}

/// Something that happened on a data channel opened with [`Context::listen`] or
/// [`Context::connect`].
#[derive(Debug)]
pub enum ChannelEvent<'a> {
    /// The passive listener is bound; tell the client where (FTP `227`/`229`).
    Listening(SocketAddr),
    /// A peer connected to the passive listener, or the active connect succeeded.
    Connected(SocketAddr),
    /// Bytes received on the channel (an upload). Not buffered by the driver: copy what you keep.
    Data(&'a [u8]),
    /// The peer finished sending (end of an upload).
    Eof,
    /// Everything queued on the channel has been written.
    Drained,
    /// The channel is closed (after [`Context::channel_close`] flushed, or the peer went away).
    Closed,
    /// Bind, connect or transfer failed; the channel is closed.
    Error(std::io::ErrorKind),
    /// Refused before binding or connecting: the session already has
    /// [`Limits::max_channels`](crate::Limits::max_channels) channels. The id is dead.
    TooMany,
}

/// How a passive listener is opened ([`Context::listen_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passive {
    /// Bind a random free port within this range (FTP servers behind a firewall open one);
    /// `None` = any port the kernel picks. All taken = [`ChannelEvent::Error`] `AddrInUse`.
    pub ports: Option<RangeInclusive<u16>>,
    /// The address [`ChannelEvent::Listening`] reports instead of the bound one (a server behind
    /// NAT announces its public address); the port is always the bound port.
    pub announce: Option<IpAddr>,
}

/// One thing a session asks the driver to do. Drivers carry them out in order.
/// Protocols push them through [`Context`]'s methods rather than building them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    Write(Vec<u8>),
    SendFile {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
    Close,
    Abort,
    SetTimer(Option<Instant>),
    Subscribe(Arc<str>),
    Unsubscribe(Arc<str>),
    Publish {
        topic: Arc<str>,
        body: Arc<[u8]>,
    },
    Listen(ChannelId, Passive),
    Connect(ChannelId, SocketAddr),
    ChannelWrite(ChannelId, Vec<u8>),
    ChannelSendFile {
        id: ChannelId,
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
    ChannelClose(ChannelId),
    ChannelAbort(ChannelId),
    /// Stop (`true`) or resume (`false`) reading a data channel.
    ChannelPause(ChannelId, bool),
    /// Pause or resume calling [`Session::on_data`] (e.g. FTP waits for a transfer).
    PauseInput(bool),
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
    pub fn new(info: ConnInfo) -> Self {
        Context {
            info,
            actions: Vec::new(),
            next_channel: 1,
            now: Instant::now(),
            shutting_down: false,
        }
    }

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

    /// Call [`Session::on_timer`] after `after` (replaces any earlier timer; one per session).
    pub fn set_timer(&mut self, after: Duration) {
        let at = self.now + after;
        self.actions.push(Action::SetTimer(Some(at)));
    }

    pub fn cancel_timer(&mut self) {
        self.actions.push(Action::SetTimer(None));
    }

    /// Receive every message published on `topic` (by any session, in any process of this
    /// server), via [`Session::on_message`], in the order the hub saw them published.
    pub fn subscribe(&mut self, topic: &str) {
        self.actions.push(Action::Subscribe(topic.into()));
    }

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

    // ---- for drivers ----

    /// Take the queued actions (drivers call this after every callback).
    pub fn take_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Set the dispatch time before a callback.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn set_shutting_down(&mut self) {
        self.shutting_down = true;
    }
}

/// A protocol's per-connection state machine. See the module docs for what drivers guarantee.
///
/// `Send` because thread-based models move a session to the thread that serves it.
pub trait Session: Send + 'static {
    /// The connection is accepted (greet here: FTP `220`, a chat banner).
    fn on_open(&mut self, _cx: &mut Context) {}

    /// `input` is everything received and not yet consumed; return how many leading bytes were
    /// consumed (0 = need more). Called again while it consumes something and input remains.
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize;

    /// The peer will send nothing more (half-close). The default closes after flushing.
    fn on_eof(&mut self, cx: &mut Context) {
        cx.close();
    }

    /// A hub message on a subscribed topic.
    fn on_message(&mut self, _msg: &Message, _cx: &mut Context) {}

    /// The timer set with [`Context::set_timer`] fired.
    fn on_timer(&mut self, _cx: &mut Context) {}

    /// Everything queued on the control connection has been written (e.g. queue the next chunk
    /// of a generated body, or close after a final reply).
    fn on_drained(&mut self, _cx: &mut Context) {}

    /// Something happened on a data channel.
    fn on_channel(&mut self, _id: ChannelId, _ev: ChannelEvent<'_>, _cx: &mut Context) {}

    /// Nothing was read or written for the idle timeout. Say goodbye if the protocol has a way
    /// to (HTTP 408, FTP 421); the driver closes after flushing whatever the session queues.
    fn on_idle(&mut self, _cx: &mut Context) {}

    /// This connection's hub inbox overflowed: it stopped reading while more than
    /// [`Limits::hub_queue_bytes`](crate::Limits::hub_queue_bytes) was published to it. It is
    /// being evicted: whatever is written here (a last line, e.g. chat's `! too slow,
    /// disconnected`) is queued after what it already has, and the connection is closed once
    /// that is flushed or after a short grace, whichever comes first.
    fn on_overflow(&mut self, _cx: &mut Context) {}

    /// Graceful shutdown began. The default closes after flushing; a session in the middle of
    /// an exchange may finish it first (the driver's deadline still applies).
    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.close();
    }

    /// The connection is gone, for whatever reason (quit, EOF, reset, eviction, shutdown, a
    /// panic elsewhere in the session): the last chance to tell the others through the hub.
    /// Only [`Context::publish`] is carried out here (the socket is gone); called once, right
    /// before [`Session::on_close`].
    fn on_farewell(&mut self, _cx: &mut Context) {}

    /// The connection is gone (closed by either side or by the driver). Release resources.
    fn on_close(&mut self) {}
}

/// Makes a fresh [`Session`] per connection: the "protocol" a server is started with.
///
/// It is shared by every worker: across threads (`Sync`) and across processes (`fork`/`prefork`
/// workers inherit a copy of it, so it must not rely on threads or on locks held while forking;
/// put cross-connection state in the [`Hub`](crate::Hub), not in the protocol value).
pub trait Protocol: Send + Sync + 'static {
    type Session: Session;

    /// A new session for an accepted connection.
    fn new_session(&self, info: &ConnInfo) -> Self::Session;

    /// A new session for a connection accepted on listener number `listener` (the server's
    /// listeners in announce order: [`Config::bind`](crate::Config::bind), then
    /// [`Config::also`](crate::Config::also)). A server with two faces sharing one hub (chat's
    /// line protocol and its WebSocket page) picks the session kind here; the default ignores it.
    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> Self::Session {
        let _ = listener;
        self.new_session(info)
    }

    /// Bytes written to a connection refused because the server is at
    /// [`Limits::max_connections`](crate::Limits::max_connections), right before closing it
    /// (e.g. `HTTP/1.1 503 …`, FTP `421 Too many users`). `None` = just close.
    fn refusal(&self) -> Option<Vec<u8>> {
        None
    }

    /// The refusal for a connection accepted on listener number `listener` (chat: `! room is
    /// full` on its line port, `HTTP/1.1 503` on its web port). Defaults to [`Protocol::refusal`].
    fn refusal_on(&self, listener: usize) -> Option<Vec<u8>> {
        let _ = listener;
        self.refusal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_testable_without_sockets() {
        let info = ConnInfo {
            id: 1,
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            cred: None,
        };
        let mut cx = Context::new(info);
        cx.write(b"a");
        cx.write(b"b");
        let ch = cx.listen();
        cx.channel_write(ch, b"x");
        cx.channel_write(ch, b"y");
        cx.close();
        let acts: Vec<Action> = cx.take_actions().collect();
        assert!(
            matches!(&acts[0], Action::Write(b) if b == b"ab"),
            "writes coalesce"
        );
        assert!(matches!(acts[1], Action::Listen(id, _) if id == ch));
        assert!(matches!(&acts[2], Action::ChannelWrite(id, b) if *id == ch && b == b"xy"));
        assert!(matches!(acts[3], Action::Close));
        assert!(!cx.has_actions());
        assert_ne!(cx.listen(), ch, "channel ids are not reused");
    }
}
