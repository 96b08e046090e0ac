//! What the room publishes on the hub, one event per state change. Every session renders the
//! room only from this stream, so every member sees the same lines in the hub's one order
//! (under fork/prefork the relay's order), whichever process it lives in.
//!
//! Wire form (the hub body): a kind byte, then UTF-8 fields separated by `\t` (names hold no
//! whitespace, texts hold no newline). The publisher's connection id is the hub message's
//! `from`, which is how a member tells its own events from the others'.

/// The hub topic of the one room.
pub const TOPIC: &str = "room";

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
    pub fn encode(&self) -> Vec<u8> {
        let (k, a, b) = match self {
            Event::Joined(n) => (b'J', n.as_str(), None),
            Event::Left(n) => (b'L', n.as_str(), None),
            Event::Said(n, t) => (b'M', n.as_str(), Some(t.as_str())),
            Event::Announce(t) => (b'A', t.as_str(), None),
            Event::Notice(t) => (b'N', t.as_str(), None),
        };
        let mut out = Vec::with_capacity(2 + a.len() + b.map_or(0, str::len));
        out.push(k);
        out.extend_from_slice(a.as_bytes());
        if let Some(b) = b {
            out.push(b'\t');
            out.extend_from_slice(b.as_bytes());
        }
        out
    }

    pub fn decode(body: &[u8]) -> Option<Event> {
        let (&k, rest) = body.split_first()?;
        let rest = std::str::from_utf8(rest).ok()?;
        Some(match k {
            b'J' => Event::Joined(rest.to_string()),
            b'L' => Event::Left(rest.to_string()),
            b'M' => {
                let (n, t) = rest.split_once('\t')?;
                Event::Said(n.to_string(), t.to_string())
            }
            b'A' => Event::Announce(rest.to_string()),
            b'N' => Event::Notice(rest.to_string()),
            _ => return None,
        })
    }
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
        assert_eq!(Event::decode(b"Mno-tab"), None);
    }
}
