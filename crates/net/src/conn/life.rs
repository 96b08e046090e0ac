//! Where a connection is in its life, as one value: each state carries the deadlines that
//! belong to it, so a deadline cannot outlive its state and no pair of flags can say two
//! things at once (closed yet lingering, a linger deadline on a connection still open).
//!
//! ```text
//! Open ──idle timeout / hub overflow──▶ Evicting ──the session's close──▶ Closing
//! Open ─────────────────────the session's close──────────────────────────▶ Closing
//! Closing ──output flushed, FIN sent──▶ Lingering ──the peer's FIN──▶ Closed
//! any state ──abort, an I/O error, a reset, a deadline passed──▶ Closed
//! ```
//!
//! The idle timeout in `Closing` or `Lingering` only sets (or moves) their goodbye deadline.
//!
//! `Evicting` lasts from the moment the driver tells the session to go (`on_idle`,
//! `on_overflow`, which queue its last words and a close) until those actions are carried out,
//! within the same `settle`: the last words are still written, the deadline already runs.

use std::time::Instant;

/// A connection's lifecycle state (see the module comment for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    /// Serving: reading, calling the session, writing.
    Open,
    /// Told to go (the idle timeout, or its hub inbox overflowed): the session's last words
    /// and its close are queued and are still carried out; closed at `goodbye` regardless.
    Evicting { goodbye: Instant },
    /// The session closed: no more input is read or handed to it, queued output is flushed.
    /// `goodbye` bounds that flush when the connection was idle or evicted.
    Closing { goodbye: Option<Instant> },
    /// Output flushed and the FIN sent: input is read and dropped until the peer's FIN (a
    /// close with unread input would send a RST, which can destroy the last response), or
    /// until `until` or `goodbye` passes.
    Lingering {
        until: Instant,
        goodbye: Option<Instant>,
    },
    /// Done: the driver tears it down.
    Closed,
}

impl Life {
    /// The session has closed: output only drains, input is no longer read or handed on.
    pub(super) fn closing(self) -> bool {
        matches!(self, Life::Closing { .. } | Life::Lingering { .. })
    }

    /// When the connection is closed whatever happens (the goodbye grace, the linger).
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Life::Open | Life::Closed => None,
            Life::Evicting { goodbye } => Some(goodbye),
            Life::Closing { goodbye } => goodbye,
            Life::Lingering { until, goodbye } => Some(goodbye.map_or(until, |g| g.min(until))),
        }
    }

    /// The driver told the session to go (idle timeout, hub overflow): it is closed by `at`.
    /// A later goodbye replaces an earlier one.
    pub(super) fn goodbye(self, at: Instant) -> Life {
        match self {
            Life::Open | Life::Evicting { .. } => Life::Evicting { goodbye: at },
            Life::Closing { .. } => Life::Closing { goodbye: Some(at) },
            Life::Lingering { until, .. } => Life::Lingering {
                until,
                goodbye: Some(at),
            },
            Life::Closed => Life::Closed,
        }
    }

    /// The session's close was carried out.
    pub(super) fn close(self) -> Life {
        match self {
            Life::Open => Life::Closing { goodbye: None },
            Life::Evicting { goodbye } => Life::Closing {
                goodbye: Some(goodbye),
            },
            later => later,
        }
    }

    /// Output flushed, FIN sent: linger until `until` (only from `Closing`).
    pub(super) fn linger(self, until: Instant) -> Life {
        match self {
            Life::Closing { goodbye } => Life::Lingering { until, goodbye },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_evicted_connection_keeps_its_goodbye_through_closing_and_lingering() {
        let t0 = Instant::now();
        let goodbye = t0 + Duration::from_secs(2);
        let life = Life::Open.goodbye(goodbye);
        assert!(!life.closing(), "its last words are still taken");
        assert_eq!(life.deadline(), Some(goodbye));
        let life = life.close();
        assert!(life.closing());
        assert_eq!(life.deadline(), Some(goodbye));
        let life = life.linger(t0 + Duration::from_secs(5));
        assert_eq!(life.deadline(), Some(goodbye), "the earlier of the two");
        let life = life.goodbye(t0 + Duration::from_secs(9));
        assert_eq!(
            life.deadline(),
            Some(t0 + Duration::from_secs(5)),
            "a later goodbye replaces the earlier one; the linger still bounds it"
        );
    }

    #[test]
    fn a_plain_close_has_no_deadline_until_it_lingers() {
        let t0 = Instant::now();
        let life = Life::Open.close();
        assert_eq!(life, Life::Closing { goodbye: None });
        assert_eq!(life.deadline(), None);
        assert_eq!(
            Life::Open.linger(t0),
            Life::Open,
            "only a closing one lingers"
        );
        let until = t0 + Duration::from_secs(2);
        assert_eq!(life.linger(until).deadline(), Some(until));
        assert_eq!(life.linger(until).close(), life.linger(until));
    }

    #[test]
    fn closed_is_final() {
        let t0 = Instant::now();
        for life in [
            Life::Closed.close(),
            Life::Closed.goodbye(t0),
            Life::Closed.linger(t0),
        ] {
            assert_eq!(life, Life::Closed);
            assert!(!life.closing());
            assert_eq!(life.deadline(), None);
        }
    }
}
