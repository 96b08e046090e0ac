//! One control connection: splits command lines, defers commands while a transfer runs,
//! routes data-channel events to the transfer, and says goodbye on idle and shutdown. The verbs
//! themselves live in [`crate::cmd`], one file per family.
//!
//! Lines end with CRLF (a bare LF or CR is accepted). A line over `max_line` gets `500` and is
//! dropped as it arrives (never buffered), and the session goes on. While a transfer runs only
//! `ABOR`, `STAT` and `NOOP` are answered; other commands wait (input paused) until it ends,
//! so replies always come in order.
//!
//! The control connection is Telnet (RFC 959 §4.1.2): Telnet commands (`IAC WILL x`, `IAC DO
//! x`, `IAC IP`, `IAC DM`…) are removed wherever they are in a line and `IAC IAC` is a data
//! 0xFF ([`telnet`]); options are refused by silence, as a server that never negotiates.
//! What remains must be UTF-8 (RFC 2640; paths are UTF-8 here, listings show only UTF-8
//! names): any other line gets `501` and changes nothing, so `STOR new\xff.bin` can never
//! store another name than the one sent.

use crate::cmd::{self, transfer::Transfer};
use crate::reply::reply;
use crate::server::Shared;
use bingfa_net::{ChannelEvent, ChannelId, ConnInfo, Context, Session, TaskId, Timer};
use bingfa_root::Root;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who is logged in, and where their files are.
pub struct Auth {
    pub name: String,
    pub root: Arc<Root>,
    pub write: bool,
    /// Upload-only (`--anonymous upload`): may store new names, change nothing (see `perm`).
    pub upload: bool,
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
    /// A listing being made on the blocking pool; input waits for it.
    pub listing: Option<cmd::list::Pending>,
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
            listing: None,
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

const IAC: u8 = 0xff;
/// Telnet commands: SE (240) to DONT (254); WILL, WONT, DO and DONT (251–254) take an option
/// byte; SB (250) runs to `IAC SE`.
const SE: u8 = 240;
const SB: u8 = 250;
const WILL: u8 = 251;

/// A command line without its Telnet commands: `IAC IAC` is a 0xFF byte; `IAC WILL/WONT/DO/DONT
/// x` (three bytes), `IAC SB … IAC SE`, and the two-byte commands (`IAC IP`, `IAC DM`, `IAC
/// NOP`…) are removed wherever they are. A lone `IAC` before the verb is dropped: when a
/// client sends `IAC IP IAC DM` with the `DM` urgent (the Telnet Synch before `ABOR`), the DM is
/// out of band and the line reads `IAC IP IAC ABOR`. Bytes above 0x7f before the verb (that
/// urgent DM, when delivered in band) are dropped too.
pub fn telnet(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != IAC {
            if !(out.is_empty() && b >= 0x80) {
                out.push(b);
            }
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&c) if c >= WILL => i += 3,
            Some(&SB) => {
                let end = line[i + 2..]
                    .windows(2)
                    .position(|w| w == [IAC, SE])
                    .map_or(line.len(), |p| i + 2 + p + 2);
                i = end;
            }
            Some(&c) if c >= SE => i += 2,
            // A lone IAC: before the verb, the remains of a Synch; elsewhere a raw 0xFF that
            // stays (and fails the UTF-8 check), never a byte silently taken out of a name.
            _ => {
                if !out.is_empty() {
                    out.push(IAC);
                }
                i += 1;
            }
        }
    }
    out
}

impl Session for FtpSession {
    fn on_open(&mut self, cx: &mut Context) {
        if !cmd::auth::admit(self, cx) {
            return;
        }
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
        if self.delaying || self.listing.is_some() {
            return self.defer(cx);
        }
        let Ok(line) = String::from_utf8(telnet(&input[..end])) else {
            reply(cx, 501, "Command line is not UTF-8.");
            return used;
        };
        if line.is_empty() {
            return used;
        }
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

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        if timer == cmd::auth::LOGIN {
            cmd::auth::on_timer(self, cx);
        }
    }

    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        if !cmd::list::on_task_done(self, task, cx) {
            cmd::auth::on_task_done(self, task, cx);
        }
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
