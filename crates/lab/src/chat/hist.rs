//! Counting and percentiles for `lab chat`: a small log-linear histogram of delivery latencies.
//!
//! Every member keeps its own histogram (no sharing on the hot path) and they are merged at the
//! end. Values below 64 µs are exact; above, each power of two is split into 64 buckets, so a
//! percentile is reported within 1/64 (1.6 %) of the true value with a fixed 4 KiB per member,
//! which matters at 10,000 members.

/// Sub-buckets per power of two (and the exact range below it).
const SUB: u64 = 64;
const SUB_BITS: u32 = 6;
/// Enough powers of two for any u64 microsecond value.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// Latencies in microseconds, and how many were recorded.
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u32>,
    total: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    // v has `bits` significant bits; keep the top SUB_BITS+1 (the leading one and 6 more).
    let bits = 64 - v.leading_zeros();
    let shift = bits - SUB_BITS - 1;
    let group = (shift + 1) as usize;
    group * SUB as usize + ((v >> shift) - SUB) as usize
}

/// The smallest value that falls in bucket `b` (what a percentile reports).
fn low(b: usize) -> u64 {
    let (group, sub) = (b / SUB as usize, (b % SUB as usize) as u64);
    if group == 0 {
        return sub;
    }
    (SUB + sub) << (group - 1)
}

impl Hist {
    /// Count one latency of `us` microseconds.
    pub fn record(&mut self, us: u64) {
        self.counts[bucket(us)] += 1;
        self.total += 1;
    }

    /// Add `other`'s counts to these.
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0.0–1.0) in microseconds, rounded down to its bucket;
    /// None when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        // The rank of the sample we want, 1-based (nearest-rank method).
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(low(b));
            }
        }
        None
    }
}

/// What the members of one run counted, summed.
#[derive(Default, Clone)]
pub struct Tally {
    /// Messages from others delivered (the sender's own copy, which Redis also sends, is not
    /// counted; the room sends none).
    pub delivered: u64,
    /// `* NAME joined` lines seen.
    pub joined: u64,
    /// `! ` lines (too slow, room full, …) and protocol surprises.
    pub errors: u64,
    /// Members whose connection ended before the run did (evicted, refused).
    pub dropped: u64,
    /// Latest delivery, microseconds after the first send.
    pub last_us: u64,
    /// Delivery latencies, microseconds.
    pub latency: Hist,
}

impl Tally {
    /// Add another member's (or task's) tally to this one.
    pub fn merge(&mut self, o: &Tally) {
        self.delivered += o.delivered;
        self.joined += o.joined;
        self.errors += o.errors;
        self.dropped += o.dropped;
        self.last_us = self.last_us.max(o.last_us);
        self.latency.merge(&o.latency);
    }
}

/// Deliveries a run should produce: every message reaches every member but its sender.
pub fn expected_deliveries(members: usize, senders: usize, messages: usize) -> u64 {
    (senders * messages) as u64 * (members as u64 - 1)
}

/// `* NAME joined` lines a room of `members` produces when they join one after another: the
/// k-th member to join sees the joins of everyone after it.
pub fn expected_joins(members: usize) -> u64 {
    let n = members as u64;
    n * n.saturating_sub(1) / 2
}

/// Median of a list (the upper one for an even count); None when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_64_and_within_2_percent_above() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            20_000,
            1 << 40,
            u64::MAX / 2,
        ] {
            let lo = low(bucket(v));
            assert!(lo <= v, "{v}: {lo}");
            if v < 64 {
                assert_eq!(lo, v);
            } else {
                assert!((v - lo) as f64 / v as f64 <= 1.0 / 64.0, "{v}: {lo}");
            }
        }
        // Buckets are in order, so a cumulative walk yields sorted values.
        let mut prev = 0;
        for v in (0..100_000u64).step_by(7) {
            let b = bucket(v);
            assert!(b >= prev);
            prev = b;
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Hist::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((492..=500).contains(&p50), "{p50}");
        assert!((975..=990).contains(&p99), "{p99}");
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.len(), 1000);
    }

    #[test]
    fn merging_tallies_adds_counts_and_keeps_the_latest() {
        let mut a = Tally {
            delivered: 3,
            last_us: 10,
            ..Tally::default()
        };
        a.latency.record(5);
        let mut b = Tally {
            delivered: 4,
            errors: 1,
            last_us: 7,
            ..Tally::default()
        };
        b.latency.record(50);
        a.merge(&b);
        assert_eq!(
            (a.delivered, a.errors, a.last_us, a.latency.len()),
            (7, 1, 10, 2)
        );
        assert_eq!(a.latency.quantile(1.0), Some(50));
    }

    #[test]
    fn expected_counts() {
        assert_eq!(expected_deliveries(100, 4, 2000), 8000 * 99);
        assert_eq!(expected_joins(4), 6);
        assert_eq!(expected_joins(1), 0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    }
}
