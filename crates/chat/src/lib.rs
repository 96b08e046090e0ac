//! bingfa-chat: the group chat room: the line protocol, the room on the Hub, the WebSocket
//! bridge and web page, and the terminal client.
//!
//! Reading order: [`name`] (what a name may be), [`input`] (what a message may hold), [`event`] (what travels on the hub),
//! [`roster`] (who is in the room, shared by every process), [`lobby`] (who is still
//! choosing a name, bounded per address), [`session`] (one member's
//! connection: the line protocol), [`cmd`] (one file per `/command`), [`admin`] (the admin
//! socket's announcements), [`room`] (the `Protocol`: which listener gets which session),
//! [`backplane`] (one room across servers through Redis);
//! then the web face, [`ws`] (RFC 6455, sans-IO) and [`web`] (the page and the wrapper that
//! speaks the room's lines over WebSocket), and [`client`] (the terminal client).

// The room core and the line protocol.
pub mod admin;
pub mod backplane;
pub mod cmd;
pub mod config;
pub mod event;
pub mod idset;
pub mod input;
pub mod lobby;
pub mod log;
pub mod name;
pub mod rate;
pub mod room;
pub mod roster;
pub mod server;
pub mod session;
pub mod stats;

// The web face and the terminal client.
pub mod client;
pub mod web;
pub mod ws;

pub use config::RoomConfig;
pub use room::{ChatProtocol, RoomSession};
pub use stats::{ChatSnapshot, ChatStats};
