//! `FtpProtocol`: the bingfa-net `Protocol` that makes one [`FtpSession`] per connection under
//! any model, and its setup: what every control connection shares ([`Shared`]) is opened and
//! loaded here, once, before the server forks.

use crate::config::{Anonymous, FtpConfig};
use crate::guard::Guard;
use crate::session::FtpSession;
use crate::shared::{Account, Shared};
use crate::users;
use bingfa_net::{ConnInfo, Protocol};
use bingfa_root::Root;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a server could not be set up ([`FtpProtocol::new`]).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The anonymous root (`--root`) cannot be opened.
    #[error("cannot open the root {0}: {1}")]
    Root(std::path::PathBuf, std::io::Error),
    /// The transfer log (`--xferlog`) cannot be opened for appending.
    #[error("cannot open the transfer log {0}: {1}")]
    Xferlog(std::path::PathBuf, std::io::Error),
    /// The users file is unreadable or invalid.
    #[error(transparent)]
    Users(#[from] users::UsersError),
    /// A user's home cannot be opened.
    #[error("user {0:?}: cannot open home {1}: {2}")]
    Home(String, std::path::PathBuf, std::io::Error),
    /// A named user would never be reached.
    #[error(
        "user {0:?} is shadowed by anonymous access (anonymous and ftp log in with any \
         password): rename the user or run with --anonymous off"
    )]
    Shadowed(String),
    /// The guard's table (shared memory) cannot be made.
    #[error("cannot make the login guard's shared table: {0}")]
    Guard(std::io::Error),
    /// The metrics counters (shared memory) cannot be made.
    #[error("cannot make the FTP counters' shared memory: {0}")]
    Stats(std::io::Error),
}

/// The FTP server as a bingfa-net [`Protocol`]: serve it under any model.
#[derive(Debug, Clone)]
pub struct FtpProtocol {
    shared: Arc<Shared>,
}

impl FtpProtocol {
    /// Opens the roots (the anonymous one and every user's home), loads the users file and
    /// makes the login guard's table; call it before the server forks.
    pub fn new(cfg: FtpConfig) -> Result<Self, ServerError> {
        // Before any fork: every worker must recognise the upload names the others make.
        bingfa_root::prepare_temp_names();
        let anon_root =
            Root::open(&cfg.root).map_err(|e| ServerError::Root(cfg.root.clone(), e))?;
        let mut accounts = HashMap::new();
        let list = match &cfg.users {
            Some(path) => users::load(path)?,
            None => Vec::new(),
        };
        let dummy_hash = Arc::new(users::dummy_for(&list));
        {
            for u in list {
                if cfg.anonymous != Anonymous::Off && crate::cmd::auth::is_anonymous(&u.name) {
                    return Err(ServerError::Shadowed(u.name));
                }
                let root = Root::open(&u.home)
                    .map_err(|e| ServerError::Home(u.name.clone(), u.home.clone(), e))?;
                accounts.insert(
                    u.name,
                    Account {
                        hash: Arc::new(u.password),
                        root: Arc::new(root),
                        write: u.write,
                    },
                );
            }
        }
        let guard = Guard::new(cfg.guard).map_err(ServerError::Guard)?;
        let xferlog = match &cfg.xferlog {
            Some(p) => Some(
                bingfa_net::linelog::LineLog::open(p)
                    .map_err(|e| ServerError::Xferlog(p.clone(), e))?,
            ),
            None => None,
        };
        Ok(FtpProtocol {
            shared: Arc::new(Shared {
                cfg,
                anon_root: Arc::new(anon_root),
                users: accounts,
                dummy_hash,
                guard,
                stats: crate::stats::FtpStats::new().map_err(ServerError::Stats)?,
                xferlog,
            }),
        })
    }

    /// The server's login and transfer counters (shared with every process), for metrics.
    pub fn stats(&self) -> crate::stats::FtpStats {
        self.shared.stats.clone()
    }
}

impl Protocol for FtpProtocol {
    type Session = FtpSession;

    fn new_session(&self, info: &ConnInfo) -> FtpSession {
        FtpSession::new(self.shared.clone(), info)
    }

    fn refusal(&self) -> Option<Vec<u8>> {
        Some(b"421 Too many connections, try again later.\r\n".to_vec())
    }
}
