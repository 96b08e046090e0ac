//! The room's limits, as `bingfa chat serve` sets them.

use std::time::Duration;

/// Per-room limits (the network limits are `bingfa_net::Limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// Longest line, in bytes, not counting `\r\n`; a longer one is dropped with a `! ` line.
    pub max_line: usize,
    /// Lines per second per member (messages and commands); 0 = unlimited.
    pub rate: u32,
    /// How many lines a member may send at once before the rate applies (default 2 × rate).
    pub burst: u32,
    /// Members at once (named connections, in every process together).
    pub max_members: usize,
    /// How long a connection may take to choose a name before it is closed (a member is never
    /// timed out: the room has no idle timeout, but a nameless connection holds a place).
    pub name_timeout: Duration,
    /// The web face's bound on a TLS handshake plus a request head, and on the wait for the
    /// next request on a kept-alive page connection (before the WebSocket upgrade).
    pub head_timeout: Duration,
    /// Connections from one address that have not chosen a name yet (see `lobby.rs`).
    pub max_per_ip: usize,
    /// Origins (`scheme://host[:port]`) besides the page's own whose pages may open the
    /// WebSocket (see `web/origin.rs`).
    pub allow_origins: std::sync::Arc<[String]>,
    /// The model's own bound on connections, if it has one (`select`: below FD_SETSIZE; set
    /// by `server::fit_to_model`).
    pub connection_cap: Option<usize>,
    /// Log each message's text (`--log-messages`); by default only that members joined,
    /// left, were evicted or refused (see `log.rs`).
    pub log_messages: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_line: 1024,
            rate: 5,
            burst: 10,
            max_members: 1000,
            name_timeout: Duration::from_secs(20),
            head_timeout: Duration::from_secs(10),
            max_per_ip: 16,
            allow_origins: std::sync::Arc::from([]),
            connection_cap: None,
            log_messages: false,
        }
    }
}

impl RoomConfig {
    /// Connections the server admits at once: members, plus room for connections still
    /// choosing a name (the admin socket has a budget of its own). The room itself refuses
    /// the member over `max_members` when it claims a name (in the room's one order).
    pub fn max_connections(&self) -> usize {
        let want = self.max_members.saturating_mul(2).saturating_add(16);
        want.min(self.connection_cap.unwrap_or(usize::MAX))
    }

    /// Connections without a name at once, all addresses together: a quarter of the
    /// connection cap, so the members and the lobby always fit in it (see `lobby.rs`).
    pub fn max_nameless(&self) -> usize {
        (self.max_connections() / 4).max(1)
    }
}
