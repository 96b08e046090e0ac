//! The FTP server's counters for metrics: logins by outcome, file transfers by direction and
//! outcome, and the bytes of completed transfers. They live in shared memory
//! ([`bingfa_net::Counters`]) made with the protocol, before any fork, so every `fork` child and
//! `prefork` worker counts into the same totals.

use bingfa_net::Counters;

const LOGIN_OK: usize = 0;
const LOGIN_FAILED: usize = 1;
const LOGIN_REFUSED: usize = 2;
/// Transfers: `XFER + 2 * dir + outcome` (dir: 0 up, 1 down; outcome: 0 complete, 1 aborted).
const XFER: usize = 3;
/// Bytes of completed transfers: `BYTES + dir`.
const BYTES: usize = 7;
const SLOTS: usize = 9;

/// Which way a file went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// STOR, APPE, STOU: from the client.
    Up = 0,
    /// RETR: to the client.
    Down = 1,
}

/// The FTP counters, shared by every session, thread and process of one server.
#[derive(Clone, Debug)]
pub struct FtpStats {
    c: Counters,
}

/// A reading of [`FtpStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FtpSnapshot {
    /// Logins that succeeded (named users and anonymous).
    pub logins_ok: u64,
    /// Logins refused for a wrong name or password.
    pub logins_failed: u64,
    /// Logins refused before any check: a banned address, TLS required but not started.
    pub logins_refused: u64,
    /// File transfers `[up, down]` that completed (`226`).
    pub complete: [u64; 2],
    /// File transfers `[up, down]` that ended any other way (ABOR, a broken data connection,
    /// an I/O error, the session ending).
    pub aborted: [u64; 2],
    /// Bytes of completed transfers `[up, down]` (as carried on the data connection).
    pub bytes: [u64; 2],
}

impl FtpStats {
    /// Counters at zero, in memory shared with processes forked later.
    pub fn new() -> std::io::Result<FtpStats> {
        Ok(FtpStats {
            c: Counters::new(SLOTS)?,
        })
    }

    pub(crate) fn login_ok(&self) {
        self.c.add(LOGIN_OK, 1);
    }

    pub(crate) fn login_failed(&self) {
        self.c.add(LOGIN_FAILED, 1);
    }

    pub(crate) fn login_refused(&self) {
        self.c.add(LOGIN_REFUSED, 1);
    }

    pub(crate) fn transfer(&self, dir: Direction, complete: bool, bytes: u64) {
        self.c
            .add(XFER + 2 * dir as usize + usize::from(!complete), 1);
        if complete {
            self.c.add(BYTES + dir as usize, bytes);
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> FtpSnapshot {
        let g = |i| self.c.get(i);
        FtpSnapshot {
            logins_ok: g(LOGIN_OK),
            logins_failed: g(LOGIN_FAILED),
            logins_refused: g(LOGIN_REFUSED),
            complete: [g(XFER), g(XFER + 2)],
            aborted: [g(XFER + 1), g(XFER + 3)],
            bytes: [g(BYTES), g(BYTES + 1)],
        }
    }
}
