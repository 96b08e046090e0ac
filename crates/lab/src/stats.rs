//! Medians and spreads: every lab figure is the median of several runs, shown with its range,
//! because this machine's speed moves from run to run.

use serde::Serialize;

/// A measured quantity over several runs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// The median run.
    pub median: f64,
    /// The lowest run.
    pub min: f64,
    /// The highest run.
    pub max: f64,
    /// How many runs.
    pub runs: usize,
}

impl Spread {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// `median (min–max)` with `fmt` applied to each number.
    pub fn show(&self, fmt: impl Fn(f64) -> String) -> String {
        if self.runs == 1 {
            fmt(self.median)
        } else {
            format!("{} ({}–{})", fmt(self.median), fmt(self.min), fmt(self.max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
        assert_eq!(
            Spread::of(&[1.0, 2.0, 4.0])
                .unwrap()
                .show(|x| format!("{x:.0}")),
            "2 (1–4)"
        );
        assert_eq!(Spread::of(&[1.5]).unwrap().show(|x| format!("{x}")), "1.5");
    }
}
