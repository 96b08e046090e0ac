//! bingfa-ftp: FTP as a sans-IO session (commands, replies, the file-system jail, the data
//! channel) plus a client.
//!
//! What other crates use: [`FtpConfig`] (what a server is started with), [`FtpProtocol`] (the
//! bingfa-net `Protocol` to serve), [`users`] (the users file, argon2 hashes), [`client`];
//! and, for the fuzz targets, the control line's parsers ([`session::telnet`],
//! [`cmd::data::parse_port`], [`cmd::data::parse_eprt`]). Everything else is crate-private.
//!
//! Server reading order: `server` makes one [`FtpSession`] per control connection over what
//! every connection shares (`shared`); the session splits lines and hands each verb to its
//! family in `cmd`, which reads and changes the connection's `state` (the login and the
//! protection are state machines there, as enums); paths go through `vpath` (the client's
//! view) to a `bingfa_root::Root` (the kernel's jail); replies are formatted by `reply`,
//! listings by `listing` (made on the blocking pool, big ones spooled by `spool`). Logins are
//! guarded per source address by [`guard`] (bans, checks in flight) and checked off the loop
//! by `verify`; who may do what beyond the users file's `write` (anonymous uploads, hidden
//! names) is `perm`.

// server
pub mod cmd;
pub mod config;
pub mod guard;
mod listing;
mod log;
mod perm;
mod reply;
mod server;
pub mod session;
mod shared;
mod spool;
mod state;
pub mod stats;
pub mod users;
mod verify;
mod vpath;
mod xferlog;

pub use config::{Anonymous, FtpConfig, TlsPolicy};
pub use server::{FtpProtocol, ServerError};
pub use session::FtpSession;
pub use stats::{FtpSnapshot, FtpStats};

// client
pub mod client;
