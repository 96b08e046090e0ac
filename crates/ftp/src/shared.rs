//! What every control connection shares: the configuration, the anonymous root, each user's
//! own root (opened at startup by [`crate::server::FtpProtocol::new`]), and the login guard.

use crate::config::FtpConfig;
use crate::guard::Guard;
use crate::users;
use bingfa_root::Root;
use std::collections::HashMap;
use std::sync::Arc;

/// A named user, with the home directory already open as a root of its own.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) hash: Arc<users::Phc>,
    pub(crate) root: Arc<Root>,
    pub(crate) write: bool,
}

/// The server's side of every session (one per server, behind an `Arc`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: FtpConfig,
    /// `--root`, what anonymous users see.
    pub(crate) anon_root: Arc<Root>,
    pub(crate) users: HashMap<String, Account>,
    /// Verified against when the user is unknown, so a wrong name takes as long as a wrong
    /// password (no user enumeration by timing either): it has the parameters of the file's
    /// hashes ([`users::dummy_for`]).
    pub(crate) dummy_hash: Arc<users::Phc>,
    /// Per-address bans and password checks in flight, shared by every process.
    pub(crate) guard: Guard,
    /// Logins and transfers, for metrics (shared by every process).
    pub(crate) stats: crate::stats::FtpStats,
    /// `--xferlog`: the transfer log every process appends to.
    pub(crate) xferlog: Option<bingfa_net::linelog::LineLog>,
}
