//! `/quit`: say goodbye and close; the others get `* NAME left` from the session's farewell
//! (the same path as a disconnect, so it is said exactly once).

/// The answer to `/quit`, before the connection closes.
pub const REPLY: &str = "* bye\n";
