//! Exponential backoff with jitter, for everything that retries a remote
//! (the Redis revocation sync, JWKS fetches). A leaf.

use std::time::Duration;

/// Delays that double from `base` to `cap`, each a random point in its
/// upper half, so sidecars restarted together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Doubling from `base`, never beyond `cap` (at least `base`).
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        let cap = if cap.as_nanos() < base.as_nanos() { base } else { cap };
        Backoff { base, cap }
    }

    /// The delay before retry number `attempt` (1 for the first):
    /// `base * 2^(attempt-1)`, capped, then jittered into its upper half.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let mut r = [0u8; 2];
        // Without randomness the delay is the ceiling: still bounded.
        let jitter = match getrandom::fill(&mut r) {
            Ok(()) => f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX),
            Err(_) => 1.0,
        };
        ceiling.mul_f64(0.5 + 0.5 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_within_the_upper_half() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for (attempt, ceiling) in [(1, 100), (2, 200), (4, 800), (7, 5_000), (40, 5_000)] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_millis();
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d} ms");
            }
        }
        assert_eq!(
            Backoff::new(Duration::from_secs(2), Duration::from_secs(1)),
            Backoff::new(Duration::from_secs(2), Duration::from_secs(2))
        );
    }
}
