//! The set of connection ids a member knows online (its replica, `session.rs`), kept as sorted
//! runs of consecutive ids.
//!
//! Every member holds one, so the room holds N sets of N ids: as `HashSet<u64>`s that was
//! 1.5 GB at 10,000 members (16 bytes an id with the table's slack), most of the server's
//! memory. Ids are a process's pid and a counter (`bingfa-net`), so the members of one process
//! are mostly consecutive: the set is a few runs, a few dozen bytes, whatever the room's size.
//! A fragmented set (members of many processes, under `fork`) costs 16 bytes an id at worst.
//!
//! Members of other servers on a backplane have hashed ids (the top bit set; see
//! `backplane/wire.rs`), scattered over the whole range: as runs, each would be its own and
//! every insert a shift of the vector. They are kept in a hash set instead, as all ids were.

use std::collections::HashSet;

/// Ids with this bit set come from other servers (`backplane::wire::gid`).
const REMOTE: u64 = 1 << 63;

/// Local ids as sorted, disjoint, non-adjacent inclusive runs `(first, last)`; remote ids apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdSet {
    runs: Vec<(u64, u64)>,
    remote: HashSet<u64>,
}

impl IdSet {
    /// The index of the first run that ends at or after `id`.
    fn at(&self, id: u64) -> usize {
        self.runs.partition_point(|r| r.1 < id)
    }

    /// Whether connection `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        if id & REMOTE != 0 {
            return self.remote.contains(&id);
        }
        self.runs.get(self.at(id)).is_some_and(|r| r.0 <= id)
    }

    /// Add `id`; false if it was there already.
    pub fn insert(&mut self, id: u64) -> bool {
        if id & REMOTE != 0 {
            return self.remote.insert(id);
        }
        let i = self.at(id);
        if self.runs.get(i).is_some_and(|r| r.0 <= id) {
            return false;
        }
        // Here runs[i - 1].1 < id < runs[i].0, so neither `+ 1` below overflows.
        let joins_prev = i > 0 && self.runs[i - 1].1 + 1 == id;
        let joins_next = i < self.runs.len() && id + 1 == self.runs[i].0;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.runs[i - 1].1 = self.runs[i].1;
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1].1 = id,
            (false, true) => self.runs[i].0 = id,
            (false, false) => self.runs.insert(i, (id, id)),
        }
        true
    }

    /// Take `id` out; false if it was not there.
    pub fn remove(&mut self, id: u64) -> bool {
        if id & REMOTE != 0 {
            return self.remote.remove(&id);
        }
        let i = self.at(id);
        let Some(&(first, last)) = self.runs.get(i).filter(|r| r.0 <= id) else {
            return false;
        };
        match (id == first, id == last) {
            (true, true) => {
                self.runs.remove(i);
            }
            (true, false) => self.runs[i].0 = id + 1,
            (false, true) => self.runs[i].1 = id - 1,
            (false, false) => {
                self.runs[i].1 = id - 1;
                self.runs.insert(i + 1, (id + 1, last));
            }
        }
        true
    }

    /// How many runs the set is (its size in memory is 16 bytes a run).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

impl FromIterator<u64> for IdSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let (mut ids, mut remote) = (Vec::new(), HashSet::new());
        for id in iter {
            if id & REMOTE == 0 {
                ids.push(id);
            } else {
                remote.insert(id);
            }
        }
        ids.sort_unstable();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some(r) if r.1 == id => {}
                Some(r) if r.1 + 1 == id => r.1 = id,
                _ => runs.push((id, id)),
            }
        }
        runs.shrink_to_fit();
        IdSet { runs, remote }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn behaves_as_a_set() {
        // A fixed pseudo-random walk of inserts and removes over a small range (so runs merge
        // and split), checked step by step against a BTreeSet.
        let mut s = IdSet::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Around the local/remote boundary: both halves, runs at both ends of a range.
            let id = REMOTE - 32 + (x >> 8) % 64;
            if x & 1 == 0 {
                assert_eq!(s.insert(id), model.insert(id), "insert {id}");
            } else {
                assert_eq!(s.remove(id), model.remove(&id), "remove {id}");
            }
            assert_eq!(s.contains(id), model.contains(&id));
        }
        for id in REMOTE - 40..REMOTE + 40 {
            assert_eq!(s.contains(id), model.contains(&id));
        }
        let rebuilt: IdSet = model.iter().copied().rev().collect();
        assert_eq!(rebuilt, s, "collect builds the same runs");
    }

    #[test]
    fn consecutive_ids_are_one_run() {
        let pid = 4242u64 << 32;
        let mut s: IdSet = (1..=10_000).map(|i| pid | i).collect();
        assert_eq!(s.runs(), 1);
        assert!(s.insert(pid | 10_001) && !s.insert(pid | 5));
        assert!(s.remove(pid | 5_000) && !s.contains(pid | 5_000));
        assert_eq!(s.runs(), 2);
        assert!(s.insert(pid | 5_000));
        assert_eq!(s.runs(), 1);
        assert!(!s.contains(0) && !s.contains(u64::MAX));
    }
}
