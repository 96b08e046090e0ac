//! Which precompressed siblings (`NAME.br`, `NAME.zst`, `NAME.gz`) a file has, remembered for a moment.
//!
//! Every file response says `Vary: Accept-Encoding` when a sibling exists, whatever the client
//! accepts (REDbot rates anything else inconsistent), so every request would look both names up:
//! three failing `openat2` calls out of eight system calls for a small file with none. The answer
//! is kept per thread for [`FRESH`] (nginx's `open_file_cache_valid` is the same idea, at 60 s),
//! so a sibling added or removed shows within a second. Per thread, so no lock is shared by the
//! loops; keyed by the file server too, since one process may serve several roots.

use crate::compress::Coding;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a lookup is trusted.
pub(crate) const FRESH: Duration = Duration::from_secs(1);
/// Files remembered per thread and file server; past it the table starts over.
const MAX_ENTRIES: usize = 4096;

/// The siblings found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Siblings {
    pub br: bool,
    pub zst: bool,
    pub gz: bool,
}

impl Siblings {
    pub(crate) fn any(self) -> bool {
        self.br || self.zst || self.gz
    }

    pub(crate) fn has(self, coding: Coding) -> bool {
        match coding {
            Coding::Br => self.br,
            Coding::Zstd => self.zst,
            Coding::Gzip => self.gz,
        }
    }
}

type Table = HashMap<u64, HashMap<Vec<u8>, (Instant, Siblings)>>;

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(HashMap::new());
}

/// What was found for `rel` of file server `server`, if found less than [`FRESH`] before `now`.
pub(crate) fn cached(server: u64, rel: &[u8], now: Instant) -> Option<Siblings> {
    TABLE.with(|t| {
        let t = t.borrow();
        let (at, s) = t.get(&server)?.get(rel)?;
        (now.saturating_duration_since(*at) < FRESH).then_some(*s)
    })
}

/// Remember what was found for `rel` at `now`.
pub(crate) fn remember(server: u64, rel: &[u8], now: Instant, found: Siblings) {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let files = t.entry(server).or_default();
        if files.len() >= MAX_ENTRIES && !files.contains_key(rel) {
            // Stale and live entries alike: the next requests fill it again.
            files.clear();
        }
        files.insert(rel.to_vec(), (now, found));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_a_moment_per_server() {
        let t0 = Instant::now();
        let both = Siblings {
            br: true,
            zst: false,
            gz: true,
        };
        assert_eq!(cached(1, b"a.html", t0), None);
        remember(1, b"a.html", t0, both);
        assert_eq!(cached(1, b"a.html", t0 + FRESH / 2), Some(both));
        assert_eq!(cached(1, b"a.html", t0 + FRESH), None, "stale");
        assert_eq!(cached(2, b"a.html", t0), None, "another file server");
        assert_eq!(cached(1, b"b.html", t0), None);
        remember(1, b"a.html", t0 + FRESH, Siblings::default());
        assert_eq!(cached(1, b"a.html", t0 + FRESH), Some(Siblings::default()));
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            remember(7, format!("f{i}").as_bytes(), t0, Siblings::default());
        }
        let n = TABLE.with(|t| t.borrow()[&7].len());
        assert!(n <= MAX_ENTRIES, "{n}");
        assert!(cached(7, format!("f{}", MAX_ENTRIES + 9).as_bytes(), t0).is_some());
    }
}
