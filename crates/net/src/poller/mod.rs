//! The readiness interface shared by the event-loop models: register a file descriptor under a
//! token with an [`Interest`], wait for [`Event`]s. `select.rs`, `poll.rs`, `epoll.rs` and
//! `uring/` (polls and multishot receives completed through an io_uring) each implement it with their system call; `model/reactor/` runs the same loop over any of them.

pub(crate) mod epoll;
pub(crate) mod poll;
pub(crate) mod select;
pub(crate) mod uring;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
    /// Without `read`: only the peer's FIN (input is paused, so its bytes are not wanted, but
    /// a half-close must still be seen: an abandoned session must not wait for its timeout).
    /// Reported as [`Event::rdhup`]; `EPOLLRDHUP`/`POLLRDHUP`, and under select(2) the TCP
    /// state (see `select.rs`).
    pub hangup: bool,
}

impl Interest {
    pub(crate) const READ: Interest = Interest {
        read: true,
        write: false,
        hangup: false,
    };
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub token: usize,
    pub readable: bool,
    pub writable: bool,
    /// Hang-up or error: the connection is dead (level-triggered pollers report it whatever
    /// the interest, so it must end the connection rather than be waited out).
    pub hup: bool,
    /// The peer shut down its sending side (FIN): `EPOLLRDHUP`/`POLLRDHUP`.
    pub rdhup: bool,
}

impl Event {
    /// "Something to take" for `token`, nothing else: what a completion-based poller reports
    /// when a receive or an accept completed (the bytes or descriptors wait in the poller).
    pub(crate) fn readable(token: usize) -> Event {
        Event {
            token,
            readable: true,
            writable: false,
            hup: false,
            rdhup: false,
        }
    }
}

pub(crate) trait Poller {
    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()>;
    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()>;
    fn delete(&mut self, fd: RawFd);
    /// Wait for readiness; `events` is cleared and filled. Errors and hang-ups are reported as
    /// both readable and writable so the next read or write surfaces them.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
    /// Whether this poller can watch `fd` at all (select(2) cannot above FD_SETSIZE).
    fn can_watch(&self, _fd: RawFd) -> bool {
        true
    }
    /// Whether readiness is reported only on change (EPOLLET).
    fn edge_triggered(&self) -> bool {
        false
    }
    /// Watch a listener; true if the poller accepts on it itself (`uring/`: a multishot
    /// accept), so the caller takes the new connections with [`Poller::accepted`] when the
    /// listener is reported readable instead of calling accept(2).
    fn add_listener(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        self.add(fd, token, Interest::READ).map(|()| false)
    }
    /// What this poller accepted on listener `fd` since the last call, appended to `into`: a
    /// new connection's descriptor (the caller's from now on) or the accept's error.
    fn accepted(&mut self, _fd: RawFd, _into: &mut Vec<io::Result<std::os::fd::OwnedFd>>) {}
    /// The process has descriptors again: a listener this poller polled after its accept ran
    /// out of them goes back to accepting (`uring/accept.rs`).
    fn resume_accept(&mut self, _fd: RawFd) {}
    /// Out of descriptors: accept one client of listener `fd` without a descriptor of the
    /// process, send it `msg` and close it (`uring/refuse.rs`); `None` when this poller cannot
    /// (the caller spends its reserve descriptor).
    fn refuse_direct(&mut self, _fd: RawFd, _msg: Option<&[u8]>) -> Option<io::Result<Refused>> {
        None
    }
    /// Watch an eventfd for wake-ups; true if the poller reads it itself (through the ring),
    /// so the caller must not read or drain it.
    fn add_eventfd(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        self.add(fd, token, Interest::READ).map(|()| false)
    }
    /// Watch a connection's own socket (not a listener or a data channel). A completion
    /// poller may receive its bytes itself (`uring/`: multishot receives); the others watch
    /// it like any descriptor.
    fn add_stream(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        self.add(fd, token, interest)
    }
    /// The bytes this poller received for a stream, at most `max` appended to `into`; `None`
    /// when it does not receive for its streams (the caller reads the socket).
    fn recv(&mut self, _fd: RawFd, _into: &mut Vec<u8>, _max: usize) -> Option<Received> {
        None
    }
    /// Hand `buf` to the poller to send on a stream, after the bytes handed before (`uring/`:
    /// `IORING_OP_SEND`); `Err(buf)` when it does not send (the caller writes the socket).
    fn send(&mut self, _fd: RawFd, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        Err(buf)
    }
    /// What became of the bytes handed to [`Poller::send`] since the last call; `None` when
    /// this poller does not send.
    fn sent(&mut self, _fd: RawFd) -> Option<Sent> {
        None
    }
}

/// Progress of the bytes a completion poller sends for a stream ([`Poller::sent`]).
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Bytes the kernel took since the last call.
    pub done: usize,
    /// A send failed (the rest was dropped): the connection is dead.
    pub error: Option<io::Error>,
}

/// What [`Poller::refuse_direct`] did.
pub(crate) enum Refused {
    /// One client was accepted, sent the refusal, and closed; its address, if it has one.
    One(Option<std::net::IpAddr>),
    /// Nobody waiting.
    Empty,
}

/// What [`Poller::recv`] found for a stream.
#[derive(Debug)]
pub(crate) enum Received {
    /// `n` bytes appended; `more`: something is still waiting (bytes, the end or an error).
    Bytes { n: usize, more: bool },
    /// The peer's FIN, after every byte before it.
    Eof,
    /// The receive failed (a reset, for instance), after every byte before it.
    Error(io::Error),
    /// Nothing yet: a completion will be reported as readable.
    Empty,
}

/// The error of a failed wait (`n < 0`): a signal interrupting it is an empty turn, not an
/// error, so the loop comes round and sees the shutdown flag.
pub(crate) fn wait_error() -> io::Result<()> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        // Round up so a timer never fires early and spins.
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    }
}
