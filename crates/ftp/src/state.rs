//! What one control connection knows between two commands: who is logged in (or how far the
//! login got), how the connections are protected, the working directory and transfer
//! parameters, the data connection prepared, and the work in flight (a transfer, a listing, a
//! password check). The verbs in [`crate::cmd`] read and change it; [`crate::session`] owns it
//! and drives them.
//!
//! Two state machines are enums whose variants carry what their state has, so that no
//! impossible combination (a password check while logged in, `PROT P` without TLS) can be
//! written:
//!
//! - [`Login`]: `AwaitingUser` →(`USER`)→ `AwaitingPass` →(`PASS`)→ `Checking` (argon2 on the
//!   blocking pool) → `LoggedIn`, or → `Failed` (the `530` waits for the login delay) →
//!   `AwaitingUser`; anonymous goes from `AwaitingPass` straight to `LoggedIn`. A ban found
//!   while checking (or a hang-up) ends in `Closing`.
//! - [`Protection`]: `Plain` →(TLS handshake done)→ `Secure` →(`PBSZ 0`)→ `Clear` ⇄(`PROT P` /
//!   `PROT C`)→ `Private`.

use crate::cmd::list::job::Pending;
use crate::cmd::transfer::Transfer;
use crate::shared::Shared;
use crate::users::Phc;
use bingfa_net::blocking::Task;
use bingfa_net::{ChannelId, ConnInfo, Context};
use bingfa_root::Root;
use std::net::SocketAddr;
use std::sync::Arc;

/// How far the login got.
pub(crate) enum Login {
    /// No user named yet, or the last attempt failed.
    AwaitingUser,
    /// `USER` was given; `PASS` comes next.
    AwaitingPass { user: String },
    /// `PASS` was given: the password is being checked. Input waits.
    Checking(Check),
    /// The password was wrong: its `530` waits for the login delay (the session timer). Input
    /// waits.
    Failed,
    /// Logged in: the verbs beyond [`crate::cmd`]'s open ones may run.
    LoggedIn(Auth),
    /// The connection is closing mid-login (its address was banned while the check waited,
    /// or the client hung up during it): input waits and the timer answers nothing.
    Closing,
}

impl Login {
    /// Whether input must wait for the login to be decided (a check, or a failure's delay).
    pub(crate) fn waits(&self) -> bool {
        matches!(self, Login::Checking(_) | Login::Failed | Login::Closing)
    }

    /// The logged-in user, if any.
    pub(crate) fn auth(&self) -> Option<&Auth> {
        match self {
            Login::LoggedIn(a) => Some(a),
            _ => None,
        }
    }
}

/// Who is logged in, where their files are, and where they are in them.
pub(crate) struct Auth {
    pub(crate) name: String,
    pub(crate) root: Arc<Root>,
    pub(crate) access: Access,
    /// The working directory: virtual and absolute (`/` is `root`).
    pub(crate) cwd: String,
}

impl Auth {
    /// Whether the user may change files (the users file's `write`, or `--anonymous write`).
    pub(crate) fn write(&self) -> bool {
        self.access == Access::Write
    }
}

/// What a logged-in user may do to files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    /// Read only.
    Read,
    /// Upload-only (`--anonymous upload`): may store new names, change nothing (see `perm`).
    Upload,
    /// Anything beneath the root.
    Write,
}

/// A password check: waiting for a place among its address's checks, or running.
pub(crate) struct Check {
    pub(crate) name: String,
    /// Whether `name` is a user at all (an unknown one is checked against a dummy hash, so it
    /// takes as long, and fails).
    pub(crate) known: bool,
    pub(crate) stage: Stage,
}

/// Where a [`Check`] is.
pub(crate) enum Stage {
    Waiting { hash: Arc<Phc>, password: String },
    Running(Task<bool>),
}

/// How the control and data connections are protected (RFC 4217). Each state implies the
/// ones before it: `PROT` needs `PBSZ`, which needs TLS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Protection {
    /// The control connection is in the clear.
    Plain,
    /// The control connection's TLS handshake is done (implicit listener, or `AUTH TLS`);
    /// `PBSZ` not yet.
    Secure,
    /// `PBSZ 0` was accepted; data connections are clear (`PROT C`, the default).
    Clear,
    /// `PROT P`: data connections speak TLS.
    Private,
}

impl Protection {
    /// The control connection speaks TLS.
    pub(crate) fn secure(self) -> bool {
        self != Protection::Plain
    }

    /// `PBSZ` was accepted, so `PROT` may be set.
    pub(crate) fn sized(self) -> bool {
        matches!(self, Protection::Clear | Protection::Private)
    }

    /// Data connections speak TLS.
    pub(crate) fn private(self) -> bool {
        self == Protection::Private
    }
}

/// Which reply a passive listener's address goes into.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PasvKind {
    Pasv,
    Epsv,
}

/// The data connection prepared for the next transfer.
pub(crate) enum Data {
    None,
    /// A passive listener (`PASV`/`EPSV`), whether or not the client connected yet.
    Passive {
        id: ChannelId,
        kind: PasvKind,
        /// TLS from its first byte (`PROT P` when it was opened): the handshake runs as soon
        /// as the client connects, before the transfer command. curl starts it right after
        /// connecting and waits for it (about 200 ms per transfer against a server that
        /// answers only after the command, as vsftpd does).
        tls: bool,
    },
    /// `PORT`/`EPRT`: where to connect when a transfer starts.
    Active(SocketAddr),
    /// The passive connection's TLS handshake did not resume the control connection's
    /// session (someone else's, or a client that cannot): the next transfer gets `522`.
    Refused,
}

/// One control connection's state.
pub(crate) struct State {
    pub(crate) shared: Arc<Shared>,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) login: Login,
    /// Failed logins on this connection: it is closed at `max_failures`.
    pub(crate) failures: u32,
    pub(crate) protection: Protection,
    /// `TYPE A`.
    pub(crate) ascii: bool,
    /// `REST n`: where the next transfer starts.
    pub(crate) rest: u64,
    /// `RNFR`'s path, for the `RNTO` right after it.
    pub(crate) rnfr: Option<String>,
    pub(crate) data: Data,
    /// `EPSV ALL` was sent: other data-connection setups are refused (RFC 2428 §4).
    pub(crate) epsv_all: bool,
    pub(crate) xfer: Option<Transfer>,
    /// Shutdown began during a transfer: say goodbye when it ends.
    pub(crate) shutdown_after: bool,
    /// A listing being made on the blocking pool; input waits for it.
    pub(crate) listing: Option<Pending>,
    /// Input was paused because a command must wait (for the transfer, a listing, a login).
    deferred: bool,
}

impl State {
    pub(crate) fn new(shared: Arc<Shared>, info: &ConnInfo) -> Self {
        State {
            shared,
            peer: info.peer,
            local: info.local,
            login: Login::AwaitingUser,
            failures: 0,
            protection: Protection::Plain,
            ascii: false,
            rest: 0,
            rnfr: None,
            data: Data::None,
            epsv_all: false,
            xfer: None,
            shutdown_after: false,
            listing: None,
            deferred: false,
        }
    }

    /// The logged-in user (dispatch only lets logged-in verbs through).
    pub(crate) fn auth(&self) -> &Auth {
        self.login.auth().expect("logged in")
    }

    /// The logged-in user, to change the working directory.
    pub(crate) fn auth_mut(&mut self) -> &mut Auth {
        match &mut self.login {
            Login::LoggedIn(a) => a,
            _ => panic!("logged in"),
        }
    }

    /// Whether a command line must wait before it is even read: a login being decided, or a
    /// listing being made (replies stay in order).
    pub(crate) fn input_waits(&self) -> bool {
        self.login.waits() || self.listing.is_some()
    }

    /// The transfer ended (either way): commands that waited may run now.
    pub(crate) fn transfer_ended(&mut self, cx: &mut Context) {
        self.xfer = None;
        self.rest = 0;
        if self.shutdown_after {
            crate::reply::reply(cx, 421, "Server shutting down.");
            cx.close();
            return;
        }
        if self.deferred {
            self.deferred = false;
            cx.pause_input(false);
        }
    }

    /// Resume input after a login's or a listing's wait.
    pub(crate) fn undefer(&mut self, cx: &mut Context) {
        self.deferred = false;
        cx.pause_input(false);
    }

    /// Pause input until the work in flight ends; no byte of the line is consumed.
    pub(crate) fn defer(&mut self, cx: &mut Context) -> usize {
        self.deferred = true;
        cx.pause_input(true);
        0
    }
}
