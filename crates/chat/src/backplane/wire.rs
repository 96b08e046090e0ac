//! How a hub message travels on the room's Redis channel, and how a member's id from another
//! server becomes an id this server can tell apart from its own.
//!
//! Payload: `SID FROM TOPIC\n` then the body, where SID is the publishing server's id (16 hex
//! digits) and FROM the connection id there (decimal). Text, so the Lua script that reaps a dead
//! server can write the same form (`* NAME left` for each of its members).

use bingfa_net::Message;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// The channel's payload for `msg` published by server `sid`: `SID FROM TOPIC\nBODY`.
pub fn encode(sid: &str, msg: &Message) -> Vec<u8> {
    let mut out = format!("{sid} {} {}\n", msg.from, msg.topic).into_bytes();
    out.extend_from_slice(&msg.body);
    out
}

/// A payload back into a message, its `from` made an id of this server's view ([`gid`]).
pub fn decode(my_sid: &str, payload: &[u8]) -> Option<Message> {
    let nl = payload.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&payload[..nl]).ok()?;
    let mut it = head.split(' ');
    let (sid, from, topic) = (it.next()?, it.next()?.parse().ok()?, it.next()?);
    Some(Message {
        topic: Arc::from(topic),
        from: gid(my_sid, sid, from),
        body: Arc::from(&payload[nl + 1..]),
    })
}

/// Whether a message that came from Redis may be fanned out: anyone who can reach the Redis
/// can publish on the room's channel, so what arrives is held to the room's own rules, as if
/// a member of this server had sent it (`name.rs`, `input.rs`). Server notices never travel
/// through Redis, so one arriving from there is forged.
pub fn admissible(msg: &Message) -> bool {
    use crate::event::Event;
    if &*msg.topic != crate::event::TOPIC {
        return false;
    }
    match Event::decode(&msg.body) {
        Some(Event::Joined(n) | Event::Left(n)) => crate::name::is_valid(&n),
        Some(Event::Said(n, t)) => crate::name::is_valid(&n) && crate::input::check(&t).is_ok(),
        Some(Event::Announce(t)) => crate::input::check_controls(&t).is_ok(),
        Some(Event::Notice(_)) | None => false,
    }
}

/// A member id as this server sees it: its own connections keep their id, so a session still
/// knows its own messages; another server's get a hashed id with the top bit set, which a
/// local id (a pid in the high 32 bits) never has. The same `(sid, id)` always maps to the same
/// value here, so the snapshot at a claim and the stream agree. `0` (an announcement) stays 0.
pub fn gid(my_sid: &str, sid: &str, id: u64) -> u64 {
    if sid == my_sid || id == 0 {
        return id;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (sid, id).hash(&mut h);
    h.finish() | 1 << 63
}

/// A fresh server id: 16 hex digits, unlikely to repeat across restarts and machines.
pub fn new_sid() -> String {
    let h = std::collections::hash_map::RandomState::new()
        .hash_one((std::process::id(), std::time::SystemTime::now()));
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ids() {
        let msg = Message {
            topic: Arc::from("room"),
            from: 42,
            body: Arc::from(&b"Mbob\thi\nthere"[..]),
        };
        let p = encode("00aa", &msg);
        assert_eq!(decode("00aa", &p), Some(msg.clone()), "own ids kept");
        let other = decode("00bb", &p).unwrap();
        assert_eq!(other.body, msg.body);
        assert_ne!(other.from, 42);
        assert_eq!(other.from, gid("00bb", "00aa", 42), "stable");
        assert!(other.from >> 63 == 1);
        assert_eq!(gid("00bb", "00aa", 0), 0);
        assert_eq!(decode("x", b"no header"), None);
    }

    #[test]
    fn what_comes_from_redis_follows_the_rooms_rules() {
        use crate::event::Event;
        let m = |e: Event| Message {
            topic: Arc::from("room"),
            from: 7,
            body: Arc::from(e.encode()),
        };
        let said = |n: &str, t: &str| m(Event::Said(n.into(), t.into()));
        assert!(admissible(&said("bob", "hi there")));
        assert!(admissible(&m(Event::Joined("zoë".into()))));
        assert!(admissible(&m(Event::Announce("back at 5".into()))));
        assert!(!admissible(&said("bob", "\x1b]52;c;cHduZWQ=\x07")));
        assert!(!admissible(&said("bob", "x\r* admin: log in again")));
        assert!(!admissible(&said("bob", "rlo\u{202e}")));
        assert!(!admissible(&said("bo b", "hi")));
        assert!(!admissible(&m(Event::Joined("alice\u{200b}".into()))));
        assert!(!admissible(&m(Event::Announce("\x1b[2J".into()))));
        assert!(!admissible(&m(Event::Notice("room link lost".into()))));
        let mut other = said("bob", "hi");
        other.topic = Arc::from("elsewhere");
        assert!(!admissible(&other));
        other.topic = Arc::from("room");
        other.body = Arc::from(&b"Mno colon at all\n"[..]);
        assert!(!admissible(&other));
    }
}
