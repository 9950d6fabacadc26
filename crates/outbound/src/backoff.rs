//! When to try a deferred recipient again. Pure.
//!
//! Exponential: first, 2×first, 4×first ... capped at `max`, each delay
//! spread by ±`jitter` (a fraction) so that recipients deferred together
//! (one remote outage) do not all come back in the same second and hit the
//! remote as one burst again.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// 0.0 ..= 1.0
    pub jitter: f64,
}

impl Backoff {
    /// The delay after the `attempts`-th failed attempt (1 = first failure);
    /// `random` is uniform in [0, 1).
    pub fn delay(&self, attempts: u32, random: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self.first.saturating_mul(1u32 << exp.min(20)).min(self.max);
        let spread = (random.clamp(0.0, 1.0) * 2.0 - 1.0) * self.jitter.clamp(0.0, 1.0);
        base.mul_f64(1.0 + spread).max(Duration::from_millis(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff { first: Duration::from_secs(300), max: Duration::from_secs(4000), jitter: 0.0 };
        let d: Vec<u64> = (1..=6).map(|a| b.delay(a, 0.5).as_secs()).collect();
        assert_eq!(d, vec![300, 600, 1200, 2400, 4000, 4000]);
        let j = Backoff { jitter: 0.2, ..b };
        assert_eq!(j.delay(1, 0.0).as_secs(), 240);
        assert_eq!(j.delay(1, 0.999_999).as_secs(), 359);
        assert_eq!(j.delay(u32::MAX, 0.5).as_secs(), 4000);
    }
}
