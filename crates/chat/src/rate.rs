//! The per-member token bucket: `rate` lines per second, `burst` at once.

use std::time::Instant;

/// A token bucket (see the module docs).
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// `rate` 0 = unlimited.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = burst.max(1) as f64;
        Bucket {
            rate: rate as f64,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// Take one token at `now`; false = over the rate (the line is dropped).
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t = Instant::now();
        let mut b = Bucket::new(5, 10);
        assert!((0..10).all(|_| b.take(t)));
        assert!(!b.take(t));
        assert!(
            b.take(t + Duration::from_millis(200)),
            "one token per 1/rate s"
        );
        assert!(!b.take(t + Duration::from_millis(200)));
        let mut free = Bucket::new(0, 0);
        assert!((0..10_000).all(|_| free.take(t)));
    }
}
