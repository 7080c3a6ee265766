//! The per-user config cache (typing tickets), with the official refresh and
//! failure numbers (docs/protocol.md, "Typing tickets").
//!
//! - A success stores the ticket and schedules the next refresh at a random
//!   time within 24 h, so that tickets do not all refresh at once.
//! - A failure schedules a retry after 2 s, doubling on each further failure
//!   up to 1 h. The first failure for a user stores an empty ticket (no
//!   typing calls are made with it); later failures keep the ticket the
//!   cache already had.
//! - Until the scheduled time has passed, the cached ticket is used without
//!   calling `getconfig`.
//!
//! [`ConfigCacheState`] is the pure bookkeeping, driven with explicit times
//! so it can be tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};
use wxlink_proto::TypingTicket;

/// The numbers of the config cache. The defaults are the official ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigCachePolicy {
    /// A fetched ticket is refreshed at a random time within this span
    /// (official: 24 h).
    pub refresh_within: Duration,
    /// The first retry delay after a failure (official: 2 s).
    pub first_retry: Duration,
    /// The cap of the doubling retry delay (official: 1 h).
    pub max_retry: Duration,
}

impl Default for ConfigCachePolicy {
    fn default() -> Self {
        Self {
            refresh_within: Duration::from_secs(24 * 60 * 60),
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(60 * 60),
        }
    }
}

/// One user's cached config.
#[derive(Clone, Debug)]
struct Entry {
    ticket: TypingTicket,
    next_fetch_at: Instant,
    retry_delay: Duration,
}

/// What the cache says about a user's ticket at a given time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The cached ticket is current; use it without calling `getconfig`.
    Cached(TypingTicket),
    /// Call `getconfig` now, then report the result with
    /// [`ConfigCacheState::record_success`] or
    /// [`ConfigCacheState::record_failure`].
    Fetch,
}

/// The per-user cache bookkeeping, without I/O.
#[derive(Clone, Debug, Default)]
pub struct ConfigCacheState {
    policy: ConfigCachePolicy,
    entries: HashMap<String, Entry>,
}

impl ConfigCacheState {
    /// An empty cache with `policy`.
    pub fn new(policy: ConfigCachePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
        }
    }

    /// Whether `user`'s ticket may be used as cached at `now`.
    pub fn lookup(&self, user: &str, now: Instant) -> Lookup {
        match self.entries.get(user) {
            Some(entry) if now < entry.next_fetch_at => Lookup::Cached(entry.ticket.clone()),
            _ => Lookup::Fetch,
        }
    }

    /// The ticket currently cached for `user` (possibly empty), regardless
    /// of its age.
    pub fn current(&self, user: &str) -> Option<TypingTicket> {
        self.entries.get(user).map(|entry| entry.ticket.clone())
    }

    /// Records a successful `getconfig` and returns the ticket to use.
    pub fn record_success(
        &mut self,
        user: &str,
        ticket: TypingTicket,
        now: Instant,
        rng: &mut impl Rng,
    ) -> TypingTicket {
        let span = self.policy.refresh_within.as_millis();
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        let refresh_in = Duration::from_millis(if span == 0 {
            0
        } else {
            rng.random_range(0..span)
        });
        self.entries.insert(
            user.to_owned(),
            Entry {
                ticket: ticket.clone(),
                next_fetch_at: now + refresh_in,
                retry_delay: self.policy.first_retry,
            },
        );
        ticket
    }

    /// Records a failed `getconfig` and returns the ticket to use: the old
    /// one when there was one, else an empty ticket.
    pub fn record_failure(&mut self, user: &str, now: Instant) -> TypingTicket {
        let policy = self.policy;
        let entry = self
            .entries
            .entry(user.to_owned())
            .or_insert_with(|| Entry {
                ticket: TypingTicket::default(),
                next_fetch_at: now,
                retry_delay: policy.first_retry,
            });
        entry.next_fetch_at = now + entry.retry_delay;
        entry.retry_delay = (entry.retry_delay * 2).min(policy.max_retry);
        entry.ticket.clone()
    }

    /// When `user`'s next `getconfig` is due, if the user is cached.
    pub fn next_fetch_at(&self, user: &str) -> Option<Instant> {
        self.entries.get(user).map(|entry| entry.next_fetch_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const USER: &str = "u@im.wechat";

    #[test]
    fn a_success_is_used_until_a_random_time_within_a_day() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut refresh_times = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut cache = ConfigCacheState::default();
            let t0 = Instant::now();
            assert_eq!(cache.lookup(USER, t0), Lookup::Fetch);
            cache.record_success(USER, TypingTicket::new("t1"), t0, &mut rng);
            let due = cache.next_fetch_at(USER).unwrap();
            assert!(due >= t0 && due < t0 + Duration::from_secs(86_400));
            refresh_times.insert(due - t0);
            if due > t0 {
                assert_eq!(
                    cache.lookup(USER, due - Duration::from_nanos(1)),
                    Lookup::Cached(TypingTicket::new("t1"))
                );
            }
            assert_eq!(cache.lookup(USER, due), Lookup::Fetch);
        }
        assert!(refresh_times.len() > 10, "refresh times should be spread");
    }

    #[test]
    fn failures_retry_after_two_seconds_doubling_to_an_hour() {
        let mut cache = ConfigCacheState::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..14 {
            assert_eq!(cache.lookup(USER, now), Lookup::Fetch);
            cache.record_failure(USER, now);
            let due = cache.next_fetch_at(USER).unwrap();
            waits.push((due - now).as_secs());
            now = due;
        }
        assert_eq!(
            waits,
            [
                2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600, 3600
            ]
        );
    }

    #[test]
    fn first_failure_stores_an_empty_ticket_later_failures_keep_the_old_one() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut cache = ConfigCacheState::default();
        let t0 = Instant::now();
        assert!(cache.record_failure(USER, t0).is_empty());
        assert_eq!(cache.current(USER), Some(TypingTicket::default()));

        let t1 = t0 + Duration::from_secs(3);
        cache.record_success(USER, TypingTicket::new("good"), t1, &mut rng);
        let t2 = t1 + Duration::from_secs(90_000);
        assert_eq!(
            cache.record_failure(USER, t2),
            TypingTicket::new("good"),
            "a failure after a success keeps the old ticket"
        );
        // The failure after a success starts again at the first retry delay.
        assert_eq!(
            cache.next_fetch_at(USER).unwrap() - t2,
            Duration::from_secs(2)
        );
    }
}
