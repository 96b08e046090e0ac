//! The room's events, one line each with the client's address, in the shape of the FTP
//! server's (`bingfa_ftp`'s `log`): target `chat`, a fixed message, `peer=IP` first among the
//! fields, then the rest. In the text format:
//!
//! ```text
//! 2026-12-06T14:00:00.000000Z  INFO chat: joined peer=192.0.2.7 name="alice"
//! 2026-12-06T14:00:00.000000Z  INFO chat: left peer=192.0.2.7 name="alice"
//! 2026-12-06T14:00:00.000000Z  WARN chat: evicted peer=192.0.2.7 reason="too slow" name="alice"
//! 2026-12-06T14:00:00.000000Z  INFO chat: refused peer=192.0.2.7 reason="name taken"
//! 2026-12-06T14:00:00.000000Z  INFO chat: announcement text="maintenance at 5"
//! 2026-12-06T14:00:00.000000Z  INFO chat: message peer=192.0.2.7 name="alice" text="hi"
//! ```
//!
//! A message's text is logged only with `--log-messages` ([`crate::RoomConfig::log_messages`]).
//! Names and text go in as `&str` fields: quoted and escaped in the text format, JSON strings
//! in the JSON format, so nothing a member types can end a log line or fake one.

use std::net::IpAddr;

/// A connection chose `name` and is a member.
pub(crate) fn joined(peer: Option<IpAddr>, name: &str) {
    tracing::info!(target: "chat", peer = addr(peer), name, "joined");
}

/// A member left (however: `/quit`, its connection closed, evicted).
pub(crate) fn left(peer: Option<IpAddr>, name: &str) {
    tracing::info!(target: "chat", peer = addr(peer), name, "left");
}

/// A connection was closed by the room; `name` is empty for one that had none.
pub(crate) fn evicted(peer: Option<IpAddr>, reason: &str, name: &str) {
    tracing::warn!(target: "chat", peer = addr(peer), reason, name, "evicted");
}

/// A line was refused (the connection stays, up to `MAX_REFUSALS` in a row), or a connection
/// was turned away before it could choose a name.
pub(crate) fn refused(peer: Option<IpAddr>, reason: &str) {
    tracing::info!(target: "chat", peer = addr(peer), reason, "refused");
}

/// A member's message (only with `--log-messages`).
pub(crate) fn message(peer: Option<IpAddr>, name: &str, text: &str) {
    tracing::info!(target: "chat", peer = addr(peer), name, text, "message");
}

/// An announcement from the admin socket or the console (the operator's, not a peer's).
pub fn announcement(text: &str) {
    tracing::info!(target: "chat", text, "announcement");
}

fn addr(peer: Option<IpAddr>) -> tracing::field::DisplayValue<String> {
    tracing::field::display(peer.map_or_else(|| "-".to_string(), |p| p.to_canonical().to_string()))
}
