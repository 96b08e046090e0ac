//! One control connection: splits command lines, defers commands while a transfer runs,
//! routes data-channel events to the transfer, and says goodbye on idle and shutdown. The verbs
//! themselves live in [`crate::cmd`], one file per family.
//!
//! Lines end with CRLF (a bare LF or CR is accepted). A line over `max_line` gets `500` and is
//! dropped as it arrives (never buffered), and the session goes on. While a transfer runs only
//! `ABOR`, `STAT` and `NOOP` are answered; other commands wait (input paused) until it ends,
//! so replies always come in order.

use crate::cmd::{self, transfer::Transfer};
use crate::reply::reply;
use crate::server::Shared;
use bingfa_net::{ChannelEvent, ChannelId, ConnInfo, Context, Session};
use bingfa_root::Root;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is logged in, and where their files are.
pub struct Auth {
    pub name: String,
    pub root: Arc<Root>,
    pub write: bool,
}

/// Which reply a passive listener's address goes into.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PasvKind {
    Pasv,
    Epsv,
}

/// The data connection prepared for the next transfer.
pub enum Data {
    None,
    /// A passive listener (`PASV`/`EPSV`), whether or not the client connected yet.
    Passive {
        id: ChannelId,
        kind: PasvKind,
        /// TLS from its first byte (`PROT P` when it was opened): the handshake runs as soon
        /// as the client connects, before the transfer command. curl starts it right after
        /// connecting and waits for it (about 200 ms per transfer against a server that
        /// answers only after the command, as vsftpd does).
        tls: bool,
    },
    /// `PORT`/`EPRT`: where to connect when a transfer starts.
    Active(SocketAddr),
    /// The passive connection's TLS handshake did not resume the control connection's
    /// session (someone else's, or a client that cannot): the next transfer gets `522`.
    Refused,
}

pub struct FtpSession {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The name given by `USER`, waiting for `PASS`.
    pub user: Option<String>,
    pub auth: Option<Auth>,
    pub failures: u32,
    /// A password check or a failed login's `530` is waiting for the timer; input waits too.
    pub delaying: bool,
    /// The password check in progress.
    pub checking: Option<cmd::auth::Check>,
    pub cwd: String,
    pub ascii: bool,
    pub rest: u64,
    pub rnfr: Option<String>,
    pub data: Data,
    pub xfer: Option<Transfer>,
    /// Dropping the rest of an over-long line.
    discarding: bool,
    /// Input was paused because a command must wait for the transfer.
    deferred: bool,
    /// Shutdown began during a transfer: say goodbye when it ends.
    pub shutdown_after: bool,
    /// `EPSV ALL` was sent: other data-connection setups are refused (RFC 2428 §4).
    pub epsv_all: bool,
    /// The control connection's TLS handshake is done (implicit listener, or `AUTH TLS`).
    pub secure: bool,
    /// `PBSZ 0` was accepted (RFC 4217 makes it precede `PROT`).
    pub pbsz: bool,
    /// `PROT P`: data connections speak TLS.
    pub prot_private: bool,
}

impl FtpSession {
    pub fn new(shared: Arc<Shared>, info: &ConnInfo) -> Self {
        FtpSession {
            shared,
            peer: info.peer,
            local: info.local,
            user: None,
            auth: None,
            failures: 0,
            delaying: false,
            checking: None,
            cwd: "/".into(),
            ascii: false,
            rest: 0,
            rnfr: None,
            data: Data::None,
            xfer: None,
            discarding: false,
            deferred: false,
            shutdown_after: false,
            epsv_all: false,
            secure: false,
            pbsz: false,
            prot_private: false,
        }
    }

    /// The transfer ended (either way): commands that waited may run now.
    pub fn transfer_ended(&mut self, cx: &mut Context) {
        self.xfer = None;
        self.rest = 0;
        if self.shutdown_after {
            reply(cx, 421, "Server shutting down.");
            cx.close();
            return;
        }
        if self.deferred {
            self.deferred = false;
            cx.pause_input(false);
        }
    }

    /// Resume input after a failed login's delay (see `cmd::auth`).
    pub fn undefer(&mut self, cx: &mut Context) {
        self.deferred = false;
        cx.pause_input(false);
    }

    fn defer(&mut self, cx: &mut Context) -> usize {
        self.deferred = true;
        cx.pause_input(true);
        0
    }
}

/// Telnet IAC sequences (ftplib's `abort` sends `IAC IP IAC DM` before `ABOR`) and other
/// bytes above 0x7f before the verb are not part of the command.
fn strip_telnet(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let Some(&b) = l.first() {
        if b == 0xff && l.len() >= 2 {
            l = &l[2..];
        } else if b >= 0x80 {
            l = &l[1..];
        } else {
            break;
        }
    }
    l
}

impl Session for FtpSession {
    fn on_open(&mut self, cx: &mut Context) {
        reply(cx, 220, "bingfa FTP server ready.");
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let max = self.shared.cfg.max_line;
        // A line ends at CR or LF (CRLF counts once). A bare CR ends it too: ftplib sends
        // `ABOR\r\n` with MSG_OOB, which takes the LF out of the stream as urgent data.
        let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') else {
            if input.len() > max {
                // Consumed as it comes: a flood without newlines costs no memory.
                self.discarding = true;
                return input.len();
            }
            return 0;
        };
        let used = if input[end] == b'\r' && input.get(end + 1) == Some(&b'\n') {
            end + 2
        } else {
            end + 1
        };
        if self.discarding || end > max {
            self.discarding = false;
            reply(cx, 500, "Command line too long.");
            return used;
        }
        if end == 0 {
            // The LF of a CRLF split across reads, or an empty line: nothing to answer.
            return used;
        }
        if self.delaying {
            return self.defer(cx);
        }
        let line = &input[..end];
        let line = String::from_utf8_lossy(strip_telnet(line)).into_owned();
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        if self.xfer.is_some() && !matches!(verb.as_str(), "ABOR" | "STAT" | "NOOP") {
            return self.defer(cx);
        }
        cmd::dispatch(self, &verb, &arg, cx);
        used
    }

    fn on_eof(&mut self, cx: &mut Context) {
        // The client went away: an upload in progress is broken and must leave nothing.
        if let Some(x) = self.xfer.take() {
            cx.channel_abort(x.id);
        }
        cx.close();
    }

    /// The client closed while a command waited behind a transfer (or a login's delay): an
    /// abandoned session. Waiting for its idle timeout would hold its slot and its passive
    /// port for minutes (a few such clients a second keep a server full), so the transfer
    /// and the prepared data connection are cancelled and the session ends now.
    fn on_hangup(&mut self, cx: &mut Context) {
        if let Data::Passive { id, .. } = std::mem::replace(&mut self.data, Data::None) {
            cx.channel_abort(id);
        }
        if let Some(x) = self.xfer.take() {
            cx.channel_abort(x.id);
        }
        self.checking = None;
        cx.close();
    }

    fn on_secure(&mut self, _cx: &mut Context) {
        self.secure = true;
    }

    fn on_timer(&mut self, cx: &mut Context) {
        cmd::auth::on_timer(self, cx);
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        cmd::transfer::on_channel(self, id, ev, cx);
    }

    fn on_idle(&mut self, cx: &mut Context) {
        reply(cx, 421, "Timeout: closing control connection.");
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        if self.xfer.is_some() {
            // Finish the transfer first; the driver's grace period bounds the wait.
            self.shutdown_after = true;
            return;
        }
        reply(cx, 421, "Server shutting down.");
        cx.close();
    }
}
