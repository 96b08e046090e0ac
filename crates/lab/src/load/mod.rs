//! Load generators written in bingfa-lab, so `bingfa lab models` needs no external tool (wrk
//! stays the reference in BENCHMARKS.md). Each is a closed loop: a fixed number of connections,
//! each sending its next request as soon as the previous answer is complete.

pub mod http;

use serde::Serialize;

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Complete, successful exchanges inside the measured window.
    pub requests: u64,
    /// Failed exchanges: connect errors, resets, bad status, malformed answers.
    pub errors: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Latency percentiles in microseconds (p50, p90, p99, max).
    pub p50_us: f64,
    /// 90th percentile latency, microseconds.
    pub p90_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Highest latency, microseconds.
    pub max_us: f64,
}

impl LoadResult {
    /// Complete exchanges per second of the window.
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Build from raw counts and every latency sample (µs); sorts `lat`.
    pub fn from_samples(
        requests: u64,
        errors: u64,
        bytes: u64,
        seconds: f64,
        lat: &mut [u32],
    ) -> LoadResult {
        lat.sort_unstable();
        LoadResult {
            requests,
            errors,
            bytes,
            seconds,
            p50_us: percentile(lat, 0.50),
            p90_us: percentile(lat, 0.90),
            p99_us: percentile(lat, 0.99),
            max_us: lat.last().copied().unwrap_or(0) as f64,
        }
    }
}

/// The `q` quantile of sorted samples (nearest rank); 0 for none.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Format microseconds for a table.
pub fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let r = LoadResult::from_samples(100, 0, 0, 2.0, &mut v);
        assert_eq!(
            (r.p50_us, r.p90_us, r.p99_us, r.max_us),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(r.per_second(), 50.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
        assert_eq!(micros(1500.0), "1.50 ms");
        assert_eq!(micros(42.0), "42 µs");
    }
}
