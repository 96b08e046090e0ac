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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A name with every kind of character a client could use to end or fake a line.
    const NAME: &str = "a\nb\rc\u{1b}[2Kd\"e\\f\u{85}g\u{202e}h\n2026-01-01T00:00:00Z  WARN ftp: login failed peer=6.6.6.6 user=\"x\"";

    fn written(json: bool) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let b = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false);
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        if json {
            let sub = b.json().flatten_event(true).finish();
            tracing::subscriber::with_default(sub, || login_failed(peer, NAME));
        } else {
            let sub = b.finish();
            tracing::subscriber::with_default(sub, || login_failed(peer, NAME));
        }
        let v = buf.0.lock().unwrap().clone();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn text_keeps_a_hostile_name_in_its_field() {
        let text = written(false);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end().bytes().any(|b| b < 0x20), "{text:?}");
        assert!(
            text.trim_end().ends_with(
                r#"WARN ftp: login failed peer=192.0.2.7 user="a\nb\rc\u{1b}[2Kd\"e\\f\u{85}g\u{202e}h\n2026-01-01T00:00:00Z  WARN ftp: login failed peer=6.6.6.6 user=\"x\"""#
            ),
            "{text}"
        );
    }

    #[test]
    fn json_gives_the_name_back_exactly() {
        let text = written(true);
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["message"], "login failed");
        assert_eq!(v["peer"], "192.0.2.7");
        assert_eq!(v["user"], NAME);
    }
}
