//! The long-poll failure backoff of the official client (docs/protocol.md,
//! "Long polling").
//!
//! After a failed poll the loop waits 2 s; the third failure in a row waits
//! 30 s instead and starts the count again. A success resets the count. The
//! runtime adds jitter so that many bots restarted together do not retry in
//! lockstep.

use std::time::Duration;

use rand::{Rng, RngExt};

/// The numbers of the poll backoff. The defaults are the official ones.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// The wait after a failure (official: 2 s).
    pub retry_delay: Duration,
    /// The wait after `long_after` failures in a row (official: 30 s).
    pub long_delay: Duration,
    /// How many failures in a row earn the long wait (official: 3).
    pub long_after: u32,
    /// The jitter, as a fraction of the delay: the wait is drawn from
    /// `delay × [1 − jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            retry_delay: Duration::from_secs(2),
            long_delay: Duration::from_secs(30),
            long_after: 3,
            jitter: 0.2,
        }
    }
}

impl BackoffPolicy {
    /// The official numbers scaled down for tests: `retry_delay` and
    /// `long_delay` as given, the same count and jitter.
    pub fn with_delays(retry_delay: Duration, long_delay: Duration) -> Self {
        Self {
            retry_delay,
            long_delay,
            ..Self::default()
        }
    }
}

/// The failure counter of one poll loop.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    /// A counter with no failures.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Failures in a row so far (reset by the long wait and by success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a success.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Records a failure and returns how long to wait, jitter included.
    pub fn failed(&mut self, rng: &mut impl Rng) -> Duration {
        self.failures += 1;
        let base = if self.failures >= self.policy.long_after.max(1) {
            self.failures = 0;
            self.policy.long_delay
        } else {
            self.policy.retry_delay
        };
        jittered(base, self.policy.jitter, rng)
    }
}

/// `base` scaled by a random factor in `[1 − jitter, 1 + jitter]`.
pub(crate) fn jittered(base: Duration, jitter: f64, rng: &mut impl Rng) -> Duration {
    let jitter = jitter.clamp(0.0, 1.0);
    if jitter == 0.0 {
        return base;
    }
    let factor = rng.random_range((1.0 - jitter)..=(1.0 + jitter));
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn waits_two_seconds_then_thirty_after_the_third_failure() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(BackoffPolicy {
            jitter: 0.0,
            ..BackoffPolicy::default()
        });
        let waits: Vec<_> = (0..7).map(|_| backoff.failed(&mut rng)).collect();
        let s = Duration::from_secs;
        assert_eq!(waits, [s(2), s(2), s(30), s(2), s(2), s(30), s(2)]);
    }

    #[test]
    fn success_resets_the_count() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(BackoffPolicy {
            jitter: 0.0,
            ..BackoffPolicy::default()
        });
        backoff.failed(&mut rng);
        backoff.failed(&mut rng);
        backoff.succeeded();
        assert_eq!(backoff.failed(&mut rng), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            backoff.succeeded();
            let wait = backoff.failed(&mut rng);
            assert!(wait >= Duration::from_millis(1600) && wait <= Duration::from_millis(2400));
            seen.insert(wait);
        }
        assert!(seen.len() > 10, "jitter should spread the waits");
    }
}
