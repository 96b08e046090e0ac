//! `/help`: what a member can do.

/// The answer to `/help`.
pub const REPLY: &str =
    "* commands: /who (who is online), /help (this list), /quit (leave); any other line is said to the room\n";
