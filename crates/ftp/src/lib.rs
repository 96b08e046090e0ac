//! bingfa-ftp: FTP as a sans-IO session (commands, replies, the file-system jail, the data
//! channel) plus a client.
//!
//! Server reading order: [`config`] (what a server is started with) and [`users`] (the users
//! file, argon2 hashes); [`server::FtpProtocol`] makes one [`session::FtpSession`] per control
//! connection; the session splits lines and hands each verb to its family in [`cmd`]; paths go
//! through [`vpath`] (the client's view) to a `bingfa_root::Root` (the kernel's jail); replies
//! are formatted by [`reply`], listings by [`listing`] (made on the blocking pool, big ones
//! spooled by [`spool`]). Logins are guarded per source address by [`guard`] (bans, checks in
//! flight) and checked off the loop by [`verify`]; who may do what beyond the users file's
//! `write` (anonymous uploads, hidden names) is [`perm`].

// server
pub mod cmd;
pub mod config;
pub mod guard;
mod listing;
mod perm;
mod reply;
mod server;
pub mod session;
mod shared;
mod spool;
mod state;
pub mod users;
mod verify;
mod vpath;

pub use config::{Anonymous, FtpConfig, TlsPolicy};
pub use server::{FtpProtocol, ServerError};
pub use session::FtpSession;

// client
pub mod client;
