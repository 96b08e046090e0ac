//! The room as a `bingfa_net::Protocol`: which session each listener gets, and how each
//! listener refuses a connection over the server's limit.
//!
//! Listeners, in the server's announce order: the line port (`chat`), then optionally the web
//! page (`web`), then optionally the admin socket (a Unix-domain listener). The web face wraps
//! a room session: [`web_session`] is the one place that decides how, so plugging in the
//! WebSocket bridge is a change there (and to [`WebFace`]) only. [`RoomSession`] is a
//! `Wrapper` over the face's session: every callback reaches it, whatever the contract adds.

use crate::admin::AdminSession;
use crate::config::RoomConfig;
use crate::event::{Event, TOPIC};
use crate::lobby::Lobby;
use crate::roster::{RemoteNames, Roster};
use crate::session::ChatSession;
use crate::stats::ChatStats;
use crate::web::{WebLimits, WebSession};
use bingfa_net::{ConnInfo, Context, Message, Protocol, Session};
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

/// The room: one per server, shared by every worker; makes each connection's session.
pub struct ChatProtocol {
    cfg: Arc<RoomConfig>,
    roster: Roster,
    lobby: Lobby,
    web: Option<usize>,
    admin: Option<usize>,
    stats: ChatStats,
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
            stats: ChatStats::new()?,
        })
    }

    /// The room's counters (members, messages delivered), shared with every process.
    pub fn stats(&self) -> ChatStats {
        self.stats.clone()
    }

    /// Count in `stats` (made before the server starts) rather than the room's own.
    pub fn set_stats(&mut self, stats: ChatStats) {
        self.stats = stats;
    }

    /// Who is in the room (the backplane keeps this server's members claimed).
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Who is still choosing a name.
    pub fn lobby(&self) -> &Lobby {
        &self.lobby
    }

    /// Claim names room-wide through `remote` too (a backplane; before any session is made).
    pub fn set_remote_names(&mut self, remote: Arc<dyn RemoteNames>) {
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
            .with_stats(self.stats.clone())
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
        self.stats.left(gone.len() as u64);
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
    /// A page connection: the page, then the room over WebSocket.
    Web(WebFace),
    /// A connection to the admin socket.
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

/// Every callback goes to the session of the face the connection came in by; only the
/// opening and closing of a web connection do more (its place in the lobby).
impl bingfa_net::session::Wrapper for RoomSession {
    type Inner = dyn Session;

    fn inner_mut(&mut self) -> Option<&mut dyn Session> {
        Some(match self {
            RoomSession::Line(s) => &mut **s,
            RoomSession::Web(s) => &mut **s,
            RoomSession::Admin(s) => s,
            RoomSession::Refused(s) => s,
        })
    }

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
        self.forward(cx, |s, cx| s.on_open(cx));
    }

    fn on_close(&mut self) {
        if let RoomSession::Web(w) = self {
            w.inner().leave_lobby();
        }
        if let Some(s) = self.inner_mut() {
            s.on_close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ConnInfo {
        ConnInfo {
            id: (std::process::id() as u64) << 32 | 1,
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            cred: None,
        }
    }

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nOrigin: https://x\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// What the web face answers a page from `https://x` that opens the WebSocket, with or
    /// without `on_secure` through the room's session.
    fn answer(secure: bool) -> String {
        let room = ChatProtocol::new(RoomConfig::default(), Some(1), None).unwrap();
        let mut r = bingfa_net::rig::Rig::opened(room.new_session_on(1, &info()), info());
        if secure {
            r.call(|s, cx| s.on_secure(cx));
        }
        r.data(UPGRADE);
        let out = r.take_output().text();
        r.session_mut().on_close();
        out
    }

    /// The room's session is a `Wrapper`: `on_secure` (once dropped by hand-written
    /// forwarding) reaches the web face, whose origin rule then takes the page's origin as
    /// `https://`.
    #[test]
    fn on_secure_reaches_the_web_face() {
        assert!(
            answer(true).starts_with("HTTP/1.1 101 "),
            "{}",
            answer(true)
        );
        assert!(
            answer(false).starts_with("HTTP/1.1 403 "),
            "{}",
            answer(false)
        );
    }
}
