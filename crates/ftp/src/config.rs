//! What an FTP server is started with: the anonymous root, the users, the data-connection
//! policy and the protocol's own limits (the connection limits are bingfa-net's `Limits`).

pub use crate::guard::GuardConfig;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Who may log in as `anonymous`/`ftp`, and what they may do (they see `root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anonymous {
    /// No anonymous logins.
    #[default]
    Off,
    /// Read only: list and download.
    Read,
    /// Read, and store new files (`STOR`, `STOU`) without replacing, appending to, deleting or
    /// renaming anything, nor making directories: vsftpd's `anon_upload_enable` with its other
    /// defaults. (What was uploaded can be read back, as anything beneath the root.)
    Upload,
    /// Anything a named user with `write` may do.
    Write,
}

impl std::str::FromStr for Anonymous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Anonymous::Off),
            "read" => Ok(Anonymous::Read),
            "upload" => Ok(Anonymous::Upload),
            "write" => Ok(Anonymous::Write),
            _ => Err(format!("expected off, read, upload or write, not {s:?}")),
        }
    }
}

/// The server's configuration: [`FtpConfig::new`] gives the defaults for a root.
#[derive(Debug, Clone)]
pub struct FtpConfig {
    /// What anonymous users see.
    pub root: PathBuf,
    /// The users file (TOML); `None` = no named users.
    pub users: Option<PathBuf>,
    /// Whether `anonymous`/`ftp` may log in, and to do what.
    pub anonymous: Anonymous,
    /// Passive data ports (a random free one per `PASV`); `None` = any.
    pub passive_ports: Option<RangeInclusive<u16>>,
    /// The address `PASV` announces (behind NAT); default: the control connection's.
    pub passive_address: Option<IpAddr>,
    /// How long a failed login waits before its `530` (slows password guessing).
    pub login_delay: Duration,
    /// Failed logins before the connection is closed.
    pub max_failures: u32,
    /// Longest command line accepted (longer ones get `500` and are dropped).
    pub max_line: usize,
    /// `fdatasync` an upload before its `226` (and start its writeback while it arrives), so a
    /// `226` means the file survives a crash. Off by default, as in vsftpd, ProFTPD and
    /// pyftpdlib: the `226` then means the file is complete and in place, and the disk gets it
    /// with the file system's writeback. All-or-nothing holds either way.
    pub fsync_uploads: bool,
    /// FTP over TLS (RFC 4217): whether `AUTH TLS` is offered, and whether it is required.
    pub tls: TlsPolicy,
    /// Per-address bans after failed logins, and password checks in flight per address.
    pub guard: GuardConfig,
    /// Serve hidden names (starting with `.`, e.g. `.git`, `.env`); without it they are left
    /// out of listings and answered as missing, as `bingfa http serve` does without `--hidden`.
    pub hidden: bool,
    /// The transfer log (vsftpd's xferlog format), opened at start; `None` = none.
    pub xferlog: Option<PathBuf>,
}

/// What the server says to `AUTH TLS`, and what it requires. The TLS itself is bingfa-net's
/// layer (`TlsProtocol::upgradable`), which the server must be started under when `offered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// `AUTH` gets `502`: the server has no certificate.
    #[default]
    Off,
    /// `AUTH TLS`, `PBSZ` and `PROT` are offered; plaintext logins and data still work.
    Offered,
    /// As `Offered`, and a login needs a secure control connection (`530` before it), a
    /// transfer or listing a protected data connection (`PROT P`, else `521`).
    Required,
}

impl FtpConfig {
    /// Serving `root` to no one yet: no users file, anonymous off, no TLS, a one-second login
    /// delay and three failures per connection.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FtpConfig {
            root: root.into(),
            users: None,
            anonymous: Anonymous::Off,
            passive_ports: None,
            passive_address: None,
            login_delay: Duration::from_millis(1000),
            max_failures: 3,
            max_line: 4096,
            fsync_uploads: false,
            tls: TlsPolicy::Off,
            guard: GuardConfig::default(),
            hidden: false,
            xferlog: None,
        }
    }
}
