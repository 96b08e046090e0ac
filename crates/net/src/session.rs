//! The sans-IO `Session` contract: the one interface between a protocol (HTTP, chat, FTP, the
//! test protocols) and a concurrency model (the ten drivers).
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
//! # Timers and blocking work
//! - A session has as many timers as it has [`Timer`] names. [`Context::set_timer`] arms one
//!   (re-arming an armed one moves it), [`Context::cancel_timer`] disarms one, and neither
//!   touches the others. A timer fires once per arming: [`Session::on_timer`] is called with
//!   its name at or after its deadline (never before), timers due together fire in deadline
//!   order (ties: in the order they were armed), and a cancelled or moved timer never fires at
//!   its old deadline. Timers do not fire once the connection is closed.
//! - [`Context::spawn_blocking`] runs a job on the process's blocking pool
//!   ([`crate::blocking`]); when it ends (returned, or panicked) the driver calls
//!   [`Session::on_task_done`] with its [`TaskId`], exactly once, with no polling and whatever
//!   else the connection is doing (nothing, paused, waiting for a timer), and there
//!   [`Task::try_take`](crate::blocking::Task::try_take) gives the result or `Lost`, never
//!   "not yet". No callback comes for a task the session dropped (that cancels the job), nor
//!   once the connection is closing ([`Context::close`] carried out) or closed: a peer that
//!   hangs up while a job runs costs the job's cancellation, nothing more.
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
//!
//! # TLS
//! TLS is a layer, not a driver feature: `tls::TlsProtocol` wraps a protocol and its sessions,
//! and no driver knows about it. A session under the layer may ask for TLS mid-stream
//! ([`Context::start_tls`], FTP's `AUTH TLS`) and per data channel ([`Context::channel_tls`],
//! FTP's `PROT P`); it is told when the control connection's handshake is done
//! ([`Session::on_secure`]). Without the layer a driver aborts a connection (or channel) that
//! asks: continuing in plaintext would hand a TLS client's secrets to the wire.
//!
//! # Wrappers
//! A session that runs another inside it (TLS, a WebSocket face) implements [`Wrapper`]: every
//! callback it does not override reaches the inner session, so a callback added here is never
//! silently dropped by a wrapper (see `session/wrap.rs` for the rule).

pub use crate::blocking::TaskId;
pub use crate::context::{Action, Context, LayerContext, Timer};
pub use wrap::Wrapper;

pub(crate) mod wrap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// A connection's identity, unique across every process of one server (the pid is in the high
/// bits), so a session can recognise its own messages coming back from the hub.
pub type ConnId = u64;

/// A data channel (extra socket) of one session; ids are never reused within a session.
pub type ChannelId = u32;

/// What a session knows about its connection, fixed for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's id, unique within the server's run (across its processes).
    pub id: ConnId,
    /// The client's address; `0.0.0.0:0` on a Unix-domain listener (see `cred`).
    pub peer: SocketAddr,
    /// The address the connection came in on (the listener's, with its real IP).
    pub local: SocketAddr,
    /// Who is at the other end of a Unix-domain connection (`SO_PEERCRED`); `None` for TCP.
    pub cred: Option<PeerCred>,
}

/// The process at the other end of a Unix-domain connection, as the kernel saw it connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Its process id.
    pub pid: i32,
    /// Its user id.
    pub uid: u32,
    /// Its group id.
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

    /// The peer half-closed (FIN) while this session's input is paused
    /// ([`Context::pause_input`]): `on_eof` would come only after input resumes and what is
    /// unconsumed is consumed. Called at most once per connection, as soon as the driver sees
    /// the FIN (the bytes before it may still be unread). A session that waits for something
    /// only a live peer can finish (FTP's transfer whose data connection was never opened)
    /// ends here; the default does nothing, and `on_eof` still comes in order.
    fn on_hangup(&mut self, _cx: &mut Context) {}

    /// A hub message on a subscribed topic.
    fn on_message(&mut self, _msg: &Message, _cx: &mut Context) {}

    /// The timer named `timer`, armed with [`Context::set_timer`], fired (it is disarmed now).
    fn on_timer(&mut self, _timer: Timer, _cx: &mut Context) {}

    /// The blocking-pool task `task` ([`Context::spawn_blocking`]) ended: its result is ready
    /// ([`Task::try_take`](crate::blocking::Task::try_take)).
    fn on_task_done(&mut self, _task: TaskId, _cx: &mut Context) {}

    /// Everything queued on the control connection has been written (e.g. queue the next chunk
    /// of a generated body, or close after a final reply).
    fn on_drained(&mut self, _cx: &mut Context) {}

    /// The connection's TLS handshake finished: from here on, what arrives and what is written
    /// is encrypted (a TLS listener, or after [`Context::start_tls`]). Only the TLS layer
    /// calls it; a protocol that cares (FTP allows `PBSZ`/`PROT` only on a secure control
    /// connection) records it here.
    fn on_secure(&mut self, _cx: &mut Context) {}

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
    /// The session each connection gets.
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

    /// `fork` and `prefork` only, in the parent: process `pid` (a connection's child or a
    /// worker) has exited and was reaped. If it shut down in order its sessions had their
    /// [`Session::on_farewell`]; if it was killed outright (SIGKILL, a crash) they never did.
    /// Return what they would have published, each with `from` = the dead connection's id:
    /// the relay hands them to every other process in the one order, after everything the
    /// dead process published. A protocol with state shared across processes (chat's roster)
    /// releases the dead process's part of it here. Called from the parent's relay loop, so
    /// keep it short. The default publishes nothing.
    fn on_process_exit(&self, pid: u32) -> Vec<Message> {
        let _ = pid;
        Vec::new()
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
