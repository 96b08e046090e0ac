//! The room as a `bingfa_net::Protocol`: which session each listener gets, and how each
//! listener refuses a connection over the server's limit.
//!
//! Listeners, in the server's announce order: the line port (`chat`), then optionally the web
//! page (`web`), then optionally the admin socket (a Unix-domain listener). The web face wraps
//! a room session: [`web_session`] is the one place that decides how, so plugging in the
//! WebSocket bridge is a change there (and to [`WebFace`]) only.

use crate::admin::AdminSession;
use crate::config::RoomConfig;
use crate::event::{Event, TOPIC};
use crate::lobby::Lobby;
use crate::roster::Roster;
use crate::session::ChatSession;
use crate::web::{WebLimits, WebSession};
use bingfa_net::{
    ChannelEvent, ChannelId, ConnInfo, Context, Message, Protocol, Session, TaskId, Timer,
};
use std::sync::Arc;

/// What a web-page connection runs: the page, and the room's line protocol over WebSocket.
pub type WebFace = Box<WebSession<ChatSession>>;

/// Wrap a room session for the web listener.
/// A message over `--max-line` reaches the room, which answers `! ` as on the line port; only
/// one over the web face's own bound (64 KiB, or the line limit if larger) is closed with 1009.
/// That bound is also the longest line the room can write as one frame (`/who` of a big room).
/// A message is one line of input to the room, whatever it contains ([`WEB_EOL`]).
pub fn web_session(inner: ChatSession, info: &ConnInfo, cfg: &RoomConfig) -> WebFace {
    let limits = WebLimits {
        max_message: cfg.max_line.max(WebLimits::default().max_message),
        head_timeout: cfg.head_timeout,
        message_end: WEB_EOL,
        ..WebLimits::default()
    };
    Box::new(
        WebSession::with_limits(inner.with_eol(WEB_EOL), *info, limits)
            .allow_origins(cfg.allow_origins.clone()),
    )
}

/// How the web face ends each message for the room: a byte no UTF-8 text holds, so a line
/// break inside a message is part of that one line (and refused by the input rule).
pub const WEB_EOL: u8 = 0xFF;

/// The refusal on the line port.
pub const FULL: &[u8] = b"! room is full\n";
/// The refusal on the admin socket, over its own budget of connections at once.
pub const ADMIN_BUSY: &[u8] = b"! too many admin connections at once; try again\n";
/// The refusal on the web page.
pub const FULL_HTTP: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nroom is full\n";

pub struct ChatProtocol {
    cfg: Arc<RoomConfig>,
    roster: Roster,
    lobby: Lobby,
    web: Option<usize>,
    admin: Option<usize>,
}

impl ChatProtocol {
    /// The room on listener 0; `web` and `admin` are the listener numbers of the other faces.
    pub fn new(cfg: RoomConfig, web: Option<usize>, admin: Option<usize>) -> std::io::Result<Self> {
        Ok(ChatProtocol {
            roster: Roster::new(cfg.max_members)?,
            lobby: Lobby::new(cfg.max_nameless(), cfg.max_per_ip)?,
            cfg: Arc::new(cfg),
            web,
            admin,
        })
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    pub fn lobby(&self) -> &Lobby {
        &self.lobby
    }

    /// Claim names room-wide through a backplane (before any session is made).
    pub fn set_remote_names(&mut self, remote: crate::backplane::names::Client) {
        self.roster.set_remote(remote);
    }
}

impl Protocol for ChatProtocol {
    type Session = RoomSession;

    fn new_session(&self, info: &ConnInfo) -> RoomSession {
        self.new_session_on(0, info)
    }

    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> RoomSession {
        let member = || {
            ChatSession::new(
                self.cfg.clone(),
                self.roster.clone(),
                self.lobby.clone(),
                info.id,
            )
        };
        if Some(listener) == self.admin {
            RoomSession::Admin(AdminSession::new(self.cfg.max_line))
        } else if Some(listener) == self.web {
            RoomSession::Web(web_session(member(), info, &self.cfg))
        } else {
            RoomSession::Line(Box::new(member()))
        }
    }

    fn refusal(&self) -> Option<Vec<u8>> {
        Some(FULL.to_vec())
    }

    fn refusal_on(&self, listener: usize) -> Option<Vec<u8>> {
        if Some(listener) == self.web {
            Some(FULL_HTTP.to_vec())
        } else if Some(listener) == self.admin {
            // The admin socket's own budget (bingfa-net's `max_local`) is full, not the room.
            Some(ADMIN_BUSY.to_vec())
        } else {
            self.refusal()
        }
    }

    /// A `fork` child or `prefork` worker died without its members' farewells (SIGKILL):
    /// release them and say `left` for each, as its sessions would have (`from` = each
    /// member's own id, so every replica drops it from its view), within the relay's one
    /// order, right after whatever the process published before it died.
    fn on_process_exit(&self, pid: u32) -> Vec<Message> {
        self.lobby.release_pid(pid);
        let gone = self.roster.release_pid(pid);
        if !gone.is_empty() {
            tracing::warn!(
                pid,
                members = gone.len(),
                "a room process died without saying goodbye; its members left"
            );
        }
        gone.into_iter()
            .map(|(id, name)| Message {
                topic: TOPIC.into(),
                from: id,
                body: Event::Left(name).encode().into(),
            })
            .collect()
    }
}

/// One connection of the room, whichever face it came in by.
pub enum RoomSession {
    /// Boxed: a member (its replica, rate bucket, …) is much bigger than the other faces.
    Line(Box<ChatSession>),
    Web(WebFace),
    Admin(AdminSession),
    /// Refused at its open (the lobby is full for its address): its answer is on the way out.
    Refused(Closing),
}

/// A connection refused at its open: input is dropped while the answer is flushed.
pub struct Closing;

impl Session for Closing {
    fn on_data(&mut self, input: &[u8], _cx: &mut Context) -> usize {
        input.len()
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            RoomSession::Line($s) => $e,
            RoomSession::Web($s) => $e,
            RoomSession::Admin($s) => $e,
            RoomSession::Refused($s) => $e,
        }
    };
}

impl Session for RoomSession {
    fn on_open(&mut self, cx: &mut Context) {
        if let RoomSession::Web(w) = self {
            // A page connection waits in the lobby from its first byte (before its upgrade
            // opens the room session), so page connections cannot crowd the room out either.
            if let Err(e) = w.inner().admit(cx.info().peer.ip()) {
                cx.write_vec(crate::web::http::error(
                    503,
                    "Retry-After: 5\r\n",
                    &e.to_string(),
                ));
                cx.close();
                *self = RoomSession::Refused(Closing);
                return;
            }
        }
        each!(self, s => s.on_open(cx))
    }
    fn on_secure(&mut self, cx: &mut Context) {
        each!(self, s => s.on_secure(cx))
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        each!(self, s => s.on_data(input, cx))
    }
    fn on_eof(&mut self, cx: &mut Context) {
        each!(self, s => s.on_eof(cx))
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        each!(self, s => s.on_message(msg, cx))
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        each!(self, s => s.on_timer(timer, cx))
    }
    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        each!(self, s => s.on_task_done(task, cx))
    }
    fn on_drained(&mut self, cx: &mut Context) {
        each!(self, s => s.on_drained(cx))
    }
    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        each!(self, s => s.on_channel(id, ev, cx))
    }
    fn on_idle(&mut self, cx: &mut Context) {
        each!(self, s => s.on_idle(cx))
    }
    fn on_overflow(&mut self, cx: &mut Context) {
        each!(self, s => s.on_overflow(cx))
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        each!(self, s => s.on_shutdown(cx))
    }
    fn on_farewell(&mut self, cx: &mut Context) {
        each!(self, s => s.on_farewell(cx))
    }
    fn on_close(&mut self) {
        if let RoomSession::Web(w) = self {
            w.inner().leave_lobby();
        }
        each!(self, s => s.on_close())
    }
}
