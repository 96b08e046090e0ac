//! One control connection: splits command lines, defers commands while a transfer runs,
//! routes data-channel events to the transfer, and says goodbye on idle and shutdown. The verbs
//! themselves live in [`crate::cmd`], one file per family; what the connection knows between
//! commands is its `State` (`crate::state`), which the verbs read and change.
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

use crate::cmd;
use crate::reply::reply;
use crate::shared::Shared;
use crate::state::{Data, Login, Protection, State};
use bingfa_net::{ChannelEvent, ChannelId, ConnInfo, Context, Session, TaskId, Timer};
use std::sync::Arc;

/// One control connection: the line splitter in front of its `State`.
pub struct FtpSession {
    s: State,
    /// Dropping the rest of an over-long line.
    discarding: bool,
}

impl FtpSession {
    pub(crate) fn new(shared: Arc<Shared>, info: &ConnInfo) -> Self {
        FtpSession {
            s: State::new(shared, info),
            discarding: false,
        }
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
        if !cmd::auth::admit(&self.s, cx) {
            return;
        }
        reply(cx, 220, "bingfa FTP server ready.");
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let max = self.s.shared.cfg.max_line;
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
        if self.s.input_waits() {
            return self.s.defer(cx);
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
        if self.s.xfer.is_some() && !matches!(verb.as_str(), "ABOR" | "STAT" | "NOOP") {
            return self.s.defer(cx);
        }
        cmd::dispatch(&mut self.s, &verb, &arg, cx);
        used
    }

    fn on_eof(&mut self, cx: &mut Context) {
        // The client went away: an upload in progress is broken and must leave nothing.
        if let Some(x) = self.s.xfer.take() {
            cx.channel_abort(x.id);
        }
        cx.close();
    }

    /// The client closed while a command waited behind a transfer (or a login's delay): an
    /// abandoned session. Waiting for its idle timeout would hold its slot and its passive
    /// port for minutes (a few such clients a second keep a server full), so the transfer
    /// and the prepared data connection are cancelled and the session ends now.
    fn on_hangup(&mut self, cx: &mut Context) {
        if let Data::Passive { id, .. } = std::mem::replace(&mut self.s.data, Data::None) {
            cx.channel_abort(id);
        }
        if let Some(x) = self.s.xfer.take() {
            cx.channel_abort(x.id);
        }
        // The password check is dropped (cancelled); nothing more is answered.
        if let Login::Checking(_) = self.s.login {
            self.s.login = Login::Closing;
        }
        cx.close();
    }

    fn on_secure(&mut self, _cx: &mut Context) {
        if self.s.protection == Protection::Plain {
            self.s.protection = Protection::Secure;
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        if timer == cmd::auth::LOGIN {
            cmd::auth::on_timer(&mut self.s, cx);
        }
    }

    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        if !cmd::list::on_task_done(&mut self.s, task, cx) {
            cmd::auth::on_task_done(&mut self.s, task, cx);
        }
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        cmd::transfer::on_channel(&mut self.s, id, ev, cx);
    }

    fn on_idle(&mut self, cx: &mut Context) {
        reply(cx, 421, "Timeout: closing control connection.");
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        if self.s.xfer.is_some() {
            // Finish the transfer first; the driver's grace period bounds the wait.
            self.s.shutdown_after = true;
            return;
        }
        reply(cx, 421, "Server shutting down.");
        cx.close();
    }
}
