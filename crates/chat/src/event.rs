//! What the room publishes on the hub, one event per state change. Every session renders the
//! room only from this stream, so every member sees the same lines in the hub's one order
//! (under fork/prefork the relay's order), whichever process it lives in.
//!
//! Wire form (the hub body): a kind byte, then the exact line members are shown, newline
//! included (`* NAME joined`, `NAME: TEXT`, …). The line is rendered once, by the publisher, so
//! a broadcast to N members costs N copies of a few bytes, not N decodes and N `format!`s (the
//! fan-out's main cost before; BENCHMARKS.md, chat). The fields can still be read back from the
//! line: names hold no whitespace or `:`, texts hold no newline. The publisher's connection id
//! is the hub message's `from`, which is how a member tells its own events from the others'.

/// The hub topic of the one room.
pub const TOPIC: &str = "room";

/// What the room publishes on the hub: each member renders it as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// NAME joined (its claim won in the roster).
    Joined(String),
    /// NAME left (quit, disconnect, eviction, shutdown).
    Left(String),
    /// NAME said TEXT.
    Said(String, String),
    /// An announcement from the console or the admin socket.
    Announce(String),
    /// The server itself speaking to its own members (`* TEXT`): the backplane's link lost
    /// and restored. Never published through the backplane.
    Notice(String),
}

impl Event {
    /// The hub body: the kind byte, then the line every member shows (rendered once, here).
    pub fn encode(&self) -> Vec<u8> {
        let (k, line) = match self {
            Event::Joined(n) => (JOINED, format!("* {n} joined\n")),
            Event::Left(n) => (LEFT, format!("* {n} left\n")),
            Event::Said(n, t) => (SAID, format!("{n}: {t}\n")),
            Event::Announce(t) => (ANNOUNCE, format!("* admin: {t}\n")),
            Event::Notice(t) => (NOTICE, format!("* {t}\n")),
        };
        let mut out = Vec::with_capacity(1 + line.len());
        out.push(k);
        out.extend_from_slice(line.as_bytes());
        out
    }

    /// The event an encoded body holds (`None`: not one of ours).
    pub fn decode(body: &[u8]) -> Option<Event> {
        let (k, line) = split(body)?;
        let line = std::str::from_utf8(line).ok()?.strip_suffix('\n')?;
        let s = |x: &str| x.to_string();
        Some(match k {
            JOINED => Event::Joined(s(line.strip_prefix("* ")?.strip_suffix(" joined")?)),
            LEFT => Event::Left(s(line.strip_prefix("* ")?.strip_suffix(" left")?)),
            SAID => {
                let (n, t) = line.split_once(": ")?;
                Event::Said(s(n), s(t))
            }
            ANNOUNCE => Event::Announce(s(line.strip_prefix("* admin: ")?)),
            NOTICE => Event::Notice(s(line.strip_prefix("* ")?)),
            _ => return None,
        })
    }
}

/// Kind byte of [`Event::Joined`].
pub const JOINED: u8 = b'J';
/// Kind byte of [`Event::Left`].
pub const LEFT: u8 = b'L';
/// Kind byte of [`Event::Said`].
pub const SAID: u8 = b'M';
/// Kind byte of [`Event::Announce`].
pub const ANNOUNCE: u8 = b'A';
/// Kind byte of [`Event::Notice`].
pub const NOTICE: u8 = b'N';

/// An encoded event's kind and the line to show, without decoding (the per-delivery path).
pub fn split(body: &[u8]) -> Option<(u8, &[u8])> {
    let (&k, line) = body.split_first()?;
    (line.last() == Some(&b'\n')).then_some((k, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for e in [
            Event::Joined("zoë".into()),
            Event::Left("bob".into()),
            Event::Said("bob".into(), "hi\tthere: you".into()),
            Event::Announce("maintenance at 5".into()),
            Event::Notice("room link lost, messages stay local".into()),
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(b""), None);
        assert_eq!(Event::decode(b"Mno-colon\n"), None);
        assert_eq!(Event::decode(b"Jno newline"), None);
        assert_eq!(
            split(&Event::Said("bob".into(), "hi".into()).encode()),
            Some((SAID, &b"bob: hi\n"[..]))
        );
    }
}
