//! One member's connection: the room's line protocol as a sans-IO session.
//!
//! A connection first chooses a name (claimed in the shared [`Roster`]), then is a member:
//! lines are messages or `/commands`. Everything other members should see is published on the
//! hub as an [`Event`] and rendered by each session from the hub stream, so all members see the
//! room in the hub's one order and the sender gets no echo (it skips its own events).
//!
//! Every line a connection sends counts against its rate bucket, named or not, and every
//! refusal is one `! ` line; [`MAX_REFUSALS`] of them in a row close the connection, so no
//! client can make the server write more than it is sent. Messages follow the room's input
//! rule (`input.rs`). A first line that is an HTTP request line closes the connection (a
//! browser sent here by another page must not post its headers or its form as a name).
//!
//! The replica: at its claim a member gets the roster's snapshot (who is online); events
//! published before the claim may still arrive after it, so a `joined` for someone already in
//! the snapshot and a `left` for someone not in it are dropped (they happened before).

use crate::cmd::{self, Command};
use crate::config::RoomConfig;
use crate::event::{self, Event, TOPIC};
use crate::idset::IdSet;
use crate::input;
use crate::lobby::Lobby;
use crate::name;
use crate::rate::Bucket;
use crate::roster::{ClaimError, Roster};
use crate::stats::ChatStats;
use bingfa_net::{ConnId, Context, Message, Session, Timer};
use std::sync::Arc;

/// The first line a connection gets.
pub const GREETING: &str = "* welcome to the bingfa chat room; what is your name?\n";
/// What members get when the server shuts down.
pub const SHUTDOWN: &str = "* server shutting down\n";
/// The last line of a member evicted for not reading.
pub const TOO_SLOW: &str = "! too slow, disconnected\n";
/// The answer to an HTTP request line sent as the first line.
pub const NOT_HTTP: &str = "! this is a chat room, not an HTTP server; closing\n";
/// Refusals in a row after which the connection is closed (a line accepted starts again).
pub const MAX_REFUSALS: u32 = 5;
/// The line before the connection closes after [`MAX_REFUSALS`].
pub const TOO_MANY_REFUSALS: &str = "! too many refused lines in a row, closing\n";
/// The name deadline: a connection that has not chosen a name by then is closed.
const NAME: Timer = Timer("chat.name");

enum Phase {
    Naming,
    Member(String),
    /// Quit, refused or shutting down: input is dropped, nothing more is rendered.
    Leaving,
}

/// One connection on the line protocol: naming, then membership (see the module docs).
pub struct ChatSession {
    cfg: Arc<RoomConfig>,
    roster: Roster,
    /// Where this connection waits until it has a name (bounded per address; `lobby.rs`).
    lobby: Lobby,
    me: ConnId,
    phase: Phase,
    /// The members this session knows are online (connection ids).
    online: IdSet,
    /// Dropping the rest of an over-long line, up to its newline.
    skipping: bool,
    bucket: Bucket,
    /// The name to say `left` for, once this member stopped being one.
    left_as: Option<String>,
    /// The byte that ends a line: `\n`, or for the web face 0xFF (which UTF-8 text never
    /// holds), so that a WebSocket message is one line whatever it contains.
    eol: u8,
    /// Refusals since the last accepted line.
    refusals: u32,
    /// `! too fast` was said and no line was accepted since: the next drops are silent.
    throttled: bool,
    /// No line has been read yet (an HTTP request line there closes the connection).
    first: bool,
    /// Members and deliveries, for metrics.
    stats: Option<ChatStats>,
    /// The client's address, for the log (known from `on_open`).
    peer: Option<std::net::IpAddr>,
}

impl ChatSession {
    /// The session of connection `me` (its `ConnInfo::id`).
    pub fn new(cfg: Arc<RoomConfig>, roster: Roster, lobby: Lobby, me: ConnId) -> Self {
        let bucket = Bucket::new(cfg.rate, cfg.burst);
        ChatSession {
            cfg,
            roster,
            lobby,
            me,
            phase: Phase::Naming,
            online: IdSet::default(),
            skipping: false,
            bucket,
            left_as: None,
            eol: b'\n',
            refusals: 0,
            throttled: false,
            first: true,
            stats: None,
            peer: None,
        }
    }

    /// Count this session's membership and deliveries in `stats`.
    pub fn with_stats(mut self, stats: ChatStats) -> Self {
        self.stats = Some(stats);
        self
    }

    /// A session whose lines end at `eol` instead of `\n` (the web face: one per message).
    pub fn with_eol(mut self, eol: u8) -> Self {
        self.eol = eol;
        self
    }

    /// Say `! TEXT`; after [`MAX_REFUSALS`] in a row, close.
    fn refuse(&mut self, text: &str, cx: &mut Context) {
        cx.write(format!("! {text}\n").as_bytes());
        crate::log::refused(self.peer, text);
        self.refusals += 1;
        if self.refusals >= MAX_REFUSALS {
            crate::log::evicted(self.peer, "too many refusals", self.name());
            cx.write(TOO_MANY_REFUSALS.as_bytes());
            self.leave();
            self.phase = Phase::Leaving;
            cx.close();
        }
    }

    fn accepted(&mut self) {
        self.refusals = 0;
        self.throttled = false;
    }

    fn line(&mut self, raw: &[u8], cx: &mut Context) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let first = std::mem::take(&mut self.first);
        if first && is_http_request_line(raw) {
            crate::log::evicted(self.peer, "http request", "");
            cx.write(NOT_HTTP.as_bytes());
            self.phase = Phase::Leaving;
            cx.close();
            return;
        }
        if raw.is_empty() && matches!(self.phase, Phase::Member(_)) {
            return;
        }
        // Every line counts, named or not: a nameless connection is limited like a member.
        if !self.bucket.take(cx.now()) {
            if !std::mem::replace(&mut self.throttled, true) {
                let msg = format!(
                    "too fast (at most {} lines a second), line dropped",
                    self.cfg.rate
                );
                self.refuse(&msg, cx);
            }
            return;
        }
        if raw.len() > self.cfg.max_line {
            self.too_long(cx);
            return;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            self.refuse("invalid UTF-8, line dropped", cx);
            return;
        };
        match &self.phase {
            Phase::Naming => self.choose_name(line, cx),
            Phase::Member(me) => {
                let me = me.clone();
                if let Err(e) = input::check(line) {
                    self.refuse(&format!("message refused: {e}"), cx);
                    return;
                }
                match Command::parse(line) {
                    None => {
                        self.accepted();
                        if let Some(s) = &self.stats {
                            s.said();
                        }
                        if self.cfg.log_messages {
                            crate::log::message(self.peer, &me, line);
                        }
                        cx.publish(TOPIC, &Event::Said(me, line.to_string()).encode())
                    }
                    Some(Command::Who) => {
                        self.accepted();
                        cx.write(cmd::who::reply(&self.roster.members()).as_bytes())
                    }
                    Some(Command::Help) => {
                        self.accepted();
                        cx.write(cmd::help::REPLY.as_bytes())
                    }
                    Some(Command::Quit) => {
                        cx.write(cmd::quit::REPLY.as_bytes());
                        self.leave();
                        cx.close();
                    }
                    Some(Command::Unknown(w)) => {
                        let reply = cmd::unknown(&w);
                        self.refuse(reply.trim_start_matches("! ").trim_end(), cx)
                    }
                }
            }
            Phase::Leaving => {}
        }
    }

    fn choose_name(&mut self, line: &str, cx: &mut Context) {
        let name = match name::normalize(line) {
            Ok(n) => n,
            Err(e) => return self.refuse(&format!("{e}; try another name"), cx),
        };
        let line = name.as_str();
        match self.roster.claim(self.me, line) {
            Ok(online) => {
                self.accepted();
                let names: Vec<&str> = online.iter().map(|(_, n)| n.as_str()).collect();
                cx.write(format!("* you are {line}; online: {}\n", names.join(", ")).as_bytes());
                self.online = online.into_iter().map(|(id, _)| id).collect();
                self.phase = Phase::Member(line.to_string());
                if let Some(s) = &self.stats {
                    s.joined();
                }
                self.lobby.leave(self.me);
                cx.cancel_timer(NAME);
                crate::log::joined(self.peer, line);
                cx.publish(TOPIC, &Event::Joined(line.to_string()).encode());
            }
            Err(ClaimError::Taken) => self.refuse("name taken; try another name", cx),
            Err(ClaimError::Full) => {
                crate::log::refused(self.peer, "room is full");
                cx.write(b"! room is full\n");
                self.phase = Phase::Leaving;
                cx.close();
            }
        }
    }

    fn too_long(&mut self, cx: &mut Context) {
        let msg = format!(
            "line too long (at most {} bytes), dropped",
            self.cfg.max_line
        );
        self.refuse(&msg, cx);
    }

    /// Take a place in the lobby until a name is chosen (the web face calls it when the
    /// connection opens, before the upgrade opens this session; again here is a no-op).
    pub fn admit(&self, ip: std::net::IpAddr) -> Result<(), crate::lobby::Refused> {
        self.lobby.enter(self.me, ip)
    }

    /// Leave the lobby (a web connection that closes before its upgrade).
    pub fn leave_lobby(&self) {
        self.lobby.leave(self.me);
    }

    /// The member's name, empty before one is chosen (for the log).
    fn name(&self) -> &str {
        match &self.phase {
            Phase::Member(n) => n,
            _ => "",
        }
    }

    /// Stop being a member now: the roster place is free at once, and the others are told in
    /// `on_farewell` (however the connection ends, so exactly once).
    fn leave(&mut self) {
        if let Phase::Member(n) = std::mem::replace(&mut self.phase, Phase::Leaving) {
            self.roster.release(self.me);
            self.left_as = Some(n);
            if let Some(s) = &self.stats {
                s.left(1);
            }
        }
    }
}

/// `METHOD TARGET HTTP/x.y`: what a browser (or any HTTP client) sends first.
fn is_http_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-')
        && !target.is_empty()
        && version.starts_with(b"HTTP/")
}

impl Session for ChatSession {
    fn on_open(&mut self, cx: &mut Context) {
        self.me = cx.info().id;
        self.peer = Some(cx.info().peer.ip());
        if let Err(e) = self.admit(cx.info().peer.ip()) {
            crate::log::refused(self.peer, &e.to_string());
            cx.write(format!("! {e}\n").as_bytes());
            self.phase = Phase::Leaving;
            cx.close();
            return;
        }
        // Subscribed before the name is claimed: nothing published after the claim is missed.
        cx.subscribe(TOPIC);
        cx.write(GREETING.as_bytes());
        cx.set_timer(NAME, self.cfg.name_timeout);
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        // The only timer is the name deadline, cancelled when a name is claimed.
        if timer == NAME && matches!(self.phase, Phase::Naming) {
            crate::log::evicted(self.peer, "no name", "");
            let secs = self.cfg.name_timeout.as_secs_f64();
            cx.write(format!("! no name chosen within {secs} s, closing\n").as_bytes());
            self.phase = Phase::Leaving;
            cx.close();
        }
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if matches!(self.phase, Phase::Leaving) {
            return input.len();
        }
        let Some(i) = input.iter().position(|&b| b == self.eol) else {
            // No newline yet: keep waiting unless it is already too long (`+ 1` for a `\r`).
            if input.len() > self.cfg.max_line + 1 {
                if !self.skipping {
                    self.too_long(cx);
                    self.skipping = true;
                }
                return input.len();
            }
            return 0;
        };
        if std::mem::take(&mut self.skipping) {
            return i + 1; // the tail of a line already refused
        }
        self.line(&input[..i], cx);
        i + 1
    }

    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        if !matches!(self.phase, Phase::Member(_)) || cx.shutting_down() {
            return;
        }
        // The line was rendered once, by the publisher (`event.rs`): a delivery is a check and
        // a copy into the output, no decoding and no formatting per member.
        let Some((kind, line)) = event::split(&msg.body) else {
            return;
        };
        let mine = msg.from == self.me;
        let show = match kind {
            // Not in the replica's view: it happened before this member came.
            event::JOINED => self.online.insert(msg.from) && !mine,
            event::LEFT => self.online.remove(msg.from) && !mine,
            event::SAID => !mine,
            event::ANNOUNCE | event::NOTICE => true,
            _ => false,
        };
        if show {
            cx.write(line);
            if kind == event::SAID {
                if let Some(s) = &self.stats {
                    s.delivered();
                }
            }
        }
    }

    fn on_overflow(&mut self, cx: &mut Context) {
        crate::log::evicted(self.peer, "too slow", self.name());
        cx.write(TOO_SLOW.as_bytes());
        self.leave();
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.write(SHUTDOWN.as_bytes());
        self.leave();
        cx.close();
    }

    fn on_farewell(&mut self, cx: &mut Context) {
        self.leave();
        if let Some(n) = self.left_as.take() {
            crate::log::left(self.peer, &n);
            cx.publish(TOPIC, &Event::Left(n).encode());
        }
    }

    fn on_close(&mut self) {
        // Whatever happened (a panic mid-callback included), the name is free again.
        self.roster.release(self.me);
        self.lobby.leave(self.me);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
