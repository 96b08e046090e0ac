//! The FTP server's security events, one line each with the client's address, in a stable
//! shape that tools (fail2ban, log searches) can match: target `ftp`, a fixed message, then
//! `peer=IP` first among the fields (only the address: no peer-supplied text comes before it),
//! then the rest. In the text format:
//!
//! ```text
//! 2026-12-06T14:00:00.000000Z  INFO ftp: login peer=192.0.2.7 user="alice"
//! 2026-12-06T14:00:00.000000Z  WARN ftp: login failed peer=192.0.2.7 user="mallory"
//! 2026-12-06T14:00:00.000000Z  WARN ftp: refused peer=192.0.2.7 reason="bounce"
//! ```
//!
//! Peer-supplied strings (the user name) go in as `&str` fields, so the text format writes
//! them quoted with Rust's escaping and the JSON format as JSON strings: a name holding a
//! newline or a fake log line stays inside its field.

use std::net::IpAddr;

/// A successful login (`user` is `anonymous` for an anonymous one).
pub(crate) fn login(peer: IpAddr, user: &str) {
    tracing::info!(target: "ftp", peer = %peer, user, "login");
}

/// A failed login: a wrong password or an unknown user (told apart in no log a client could
/// learn from; the user name is as given).
pub(crate) fn login_failed(peer: IpAddr, user: &str) {
    tracing::warn!(target: "ftp", peer = %peer, user, "login failed");
}

/// Why a client was refused something (a command that changed nothing, or its connection).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// PORT/EPRT naming another host or a port below 1024 (the FTP bounce attack).
    Bounce,
    /// A path that resolves outside the user's root.
    JailEscape,
    /// The address is banned after failed logins.
    Banned,
    /// Too many failed logins on this connection: closed.
    TooManyFailures,
    /// Its passive listeners waiting at once are at `--max-passive-per-ip`.
    PassiveLimit,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Bounce => "bounce",
            Refusal::JailEscape => "jail escape",
            Refusal::Banned => "banned",
            Refusal::TooManyFailures => "too many failed logins",
            Refusal::PassiveLimit => "passive limit",
        }
    }
}

/// A refusal, with the client's address.
pub(crate) fn refused(peer: IpAddr, why: Refusal) {
    tracing::warn!(target: "ftp", peer = %peer, reason = why.as_str(), "refused");
}
