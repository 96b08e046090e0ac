//! The room's counters for metrics: members online (a gauge) and messages delivered to
//! members. They live in shared memory ([`bingfa_net::Counters`]) made with the protocol, before
//! any fork, so every `fork` child and `prefork` worker counts into the same totals.

use bingfa_net::Counters;

const MEMBERS: usize = 0;
const DELIVERED: usize = 1;
const SAID: usize = 2;
const SLOTS: usize = 3;

/// The room's counters, shared by every session, thread and process of one server.
#[derive(Clone, Debug)]
pub struct ChatStats {
    c: Counters,
}

/// A reading of [`ChatStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatSnapshot {
    /// Members (connections with a name) on this server now.
    pub members: u64,
    /// Messages sent by members and accepted into the room.
    pub messages: u64,
    /// Member messages written to a member's connection (one message to five others counts
    /// five); `joined`/`left` notices and announcements are not messages.
    pub delivered: u64,
}

impl ChatStats {
    /// Counters at zero, in memory shared with processes forked later.
    pub fn new() -> std::io::Result<ChatStats> {
        Ok(ChatStats {
            c: Counters::new(SLOTS)?,
        })
    }

    pub(crate) fn joined(&self) {
        self.c.add(MEMBERS, 1);
    }

    pub(crate) fn left(&self, n: u64) {
        self.c.sub(MEMBERS, n);
    }

    pub(crate) fn said(&self) {
        self.c.add(SAID, 1);
    }

    pub(crate) fn delivered(&self) {
        self.c.add(DELIVERED, 1);
    }

    /// The counters now.
    pub fn snapshot(&self) -> ChatSnapshot {
        ChatSnapshot {
            members: self.c.get(MEMBERS),
            messages: self.c.get(SAID),
            delivered: self.c.get(DELIVERED),
        }
    }
}
