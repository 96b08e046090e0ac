//! RETR STOR APPE STOU REST ABOR ALLO, and the transfer in flight. One file per concern:
//! [`verbs`] (the commands), [`flight`] (the transfer in flight: its channel, what it carries,
//! what each event does to it), [`sink`] (where an upload goes, made only once nothing can
//! refuse it), [`ascii`] (TYPE A both ways), [`events`] (a data channel's events routed: the
//! passive listener's, the transfer's, the channel's failures).
//!
//! Downloads in binary mode are one `channel_send_file` (sendfile under every model); in ASCII
//! mode the file is converted (LF → CRLF) in 64 KiB pieces, the next queued when the channel
//! drains. Uploads go to an unnamed temporary file in the target directory that is renamed
//! over the target only when the client's EOF says the file is complete; an `ABOR`, a broken
//! data or control connection, or a full disk (`452`) drop it, leaving the old file untouched
//! and nothing partial. A resumed upload (`REST n` + `STOR`, or `APPE`) writes in place: what
//! arrived is kept, which is the point of resuming. With `fsync_uploads` the data is synced
//! before the `226` (writeback starts every few MiB as it arrives, so the final sync waits
//! only for the tail); without it the `226` comes as soon as the file is in place.

mod ascii;
mod events;
mod flight;
mod sink;
mod verbs;

pub(crate) use events::on_channel;
pub(crate) use flight::Transfer;
pub(crate) use sink::Mode;
pub(crate) use verbs::{abor, rest, retr, send_listing, stor};
