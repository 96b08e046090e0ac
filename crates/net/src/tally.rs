//! [`Tally`]: a server's connection counters (open, accepted, refused, bytes in and out) for
//! metrics, counted by the code every model shares and kept in shared memory
//! ([`bingfa_mp::Counters`]) so the `fork` and `prefork` children count into the same totals
//! as the parent.
//!
//! Where the counting happens (so a new model gets it by using the shared pieces):
//! - admitted and released: [`Shared::admit`](crate::admit::Shared) and `Shared::release`,
//!   the one door to the connection limits (`admit/mod.rs`);
//! - refused: `admit::refuse`, through which every refusal goes;
//! - bytes: `conn/` counts what each read and write moved on a connection and its data
//!   channels, and adds it here once per `settle` (one atomic add per turn, not per syscall).

use bingfa_mp::Counters;

const OPEN: usize = 0;
const ACCEPTED: usize = 1;
const REFUSED: usize = 2;
const BYTES_IN: usize = 3;
const BYTES_OUT: usize = 4;
const SLOTS: usize = 5;

/// Connection counters shared by every worker, thread and process of one server. Cloning
/// shares them; make it before the server starts ([`Config::tally`](crate::Config::tally)).
#[derive(Clone, Debug)]
pub struct Tally {
    c: Counters,
}

/// A reading of a [`Tally`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TallySnapshot {
    /// Connections holding a place now (being served, or waiting their turn under `iterative`).
    pub open: u64,
    /// Connections admitted under the limits since the start.
    pub accepted: u64,
    /// Connections turned away (over a limit, out of descriptors, or failing their setup).
    pub refused: u64,
    /// Bytes read from clients (connections and their data channels).
    pub bytes_in: u64,
    /// Bytes written to clients (connections and their data channels, files included).
    pub bytes_out: u64,
}

impl Tally {
    /// Counters at zero, in memory shared with processes forked later.
    pub fn new() -> std::io::Result<Tally> {
        Ok(Tally {
            c: Counters::new(SLOTS)?,
        })
    }

    /// The counters now.
    pub fn snapshot(&self) -> TallySnapshot {
        TallySnapshot {
            open: self.c.get(OPEN),
            accepted: self.c.get(ACCEPTED),
            refused: self.c.get(REFUSED),
            bytes_in: self.c.get(BYTES_IN),
            bytes_out: self.c.get(BYTES_OUT),
        }
    }

    pub(crate) fn admitted(&self) {
        self.c.add(ACCEPTED, 1);
        self.c.add(OPEN, 1);
    }

    pub(crate) fn released(&self, n: u64) {
        self.c.sub(OPEN, n);
    }

    pub(crate) fn refused(&self) {
        self.c.add(REFUSED, 1);
    }

    pub(crate) fn bytes(&self, read: u64, written: u64) {
        if read > 0 {
            self.c.add(BYTES_IN, read);
        }
        if written > 0 {
            self.c.add(BYTES_OUT, written);
        }
    }
}
