//! [`AccountOptions`]: the numbers one account runs with, defaulting to the
//! server's limits as they are observed (docs/architecture.md, "Send limits").

use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::config_cache::ConfigCachePolicy;

/// What a send refused by policy (throttle, budget) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnRefusal {
    /// Fail at once with a typed error ([`Error::is_throttled`],
    /// [`Error::is_budget_exhausted`]); nothing is sent. The default.
    ///
    /// [`Error::is_throttled`]: crate::Error::is_throttled
    /// [`Error::is_budget_exhausted`]: crate::Error::is_budget_exhausted
    #[default]
    Fail,
    /// Wait (in a queue of at most this many sends per account) until the
    /// throttle's probe is due or the push window renews; a full queue
    /// fails with [`Error::is_queue_full`](crate::Error::is_queue_full). A
    /// message's reply budget never renews, so a reply past it still fails
    /// at once.
    Queue(usize),
}

/// The per-account options of the runtime.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AccountOptions {
    /// The least time between two sends of one bot (default 1 s). Sends
    /// of one bot go out one at a time, in the order they were asked for,
    /// so a user's messages also arrive in order.
    pub pace: Duration,
    /// Replies allowed per inbound message (default 10), counted per
    /// message across attempts.
    pub reply_budget: u32,
    /// Proactive pushes (sends that answer no inbound message) allowed per
    /// [`push_window`](Self::push_window); 0 disables pushes (default 5).
    pub push_budget: u32,
    /// The push budget's window (default 24 h).
    pub push_window: Duration,
    /// The first cool-down after a throttle (`-2`), before the one probe
    /// (default 1 h); each failed probe doubles it.
    pub throttle_cooldown: Duration,
    /// The longest cool-down (default 24 h).
    pub max_throttle_cooldown: Duration,
    /// What a refused send does.
    pub on_refusal: OnRefusal,
    /// The most characters per text message (default 2 000: the server
    /// truncates longer text silently).
    pub max_chars: usize,
    /// Failed handler attempts before a message becomes a dead letter
    /// (default 3, counted across restarts).
    pub max_attempts: u32,
    /// The wait before a failed message is tried again (default 1 s).
    pub retry_delay: Duration,
    /// How long a lease lasts unless renewed (default 30 s); it is renewed
    /// every third of that.
    pub lease_ttl: Duration,
    /// When the account is leased by another runner: wait for the lease to
    /// expire and take over (true), or fail `add_account` with
    /// [`Error::is_leased`](crate::Error::is_leased) (false, the default).
    pub wait_for_lease: bool,
    /// How many exact message ids are remembered for de-duplication
    /// (default 10 000).
    pub id_window: usize,
    /// How long after a user's latest message the bot may still write to
    /// them (default 24 h).
    pub reply_window: Duration,
    /// The poll failure backoff.
    pub backoff: BackoffPolicy,
    /// The typing-ticket cache numbers.
    pub config_cache: ConfigCachePolicy,
    /// The typing keep-alive interval (default 5 s).
    pub typing_keepalive: Duration,
    /// Call `notifystart` when the account starts and `notifystop` when it
    /// stops (default true).
    pub notify: bool,
    /// Journal entries read from the store at a time (default 256); also
    /// the most messages of one account held in memory.
    pub backlog_page: usize,
}

impl Default for AccountOptions {
    fn default() -> Self {
        Self {
            pace: Duration::from_secs(1),
            reply_budget: 10,
            push_budget: 5,
            push_window: Duration::from_secs(24 * 3600),
            throttle_cooldown: Duration::from_secs(3600),
            max_throttle_cooldown: Duration::from_secs(24 * 3600),
            on_refusal: OnRefusal::Fail,
            max_chars: 2_000,
            max_attempts: 3,
            retry_delay: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(30),
            wait_for_lease: false,
            id_window: 10_000,
            reply_window: Duration::from_secs(24 * 3600),
            backoff: BackoffPolicy::default(),
            config_cache: ConfigCachePolicy::default(),
            typing_keepalive: Duration::from_secs(5),
            notify: true,
            backlog_page: 256,
        }
    }
}

/// Setters, so that options read as a chain.
impl AccountOptions {
    /// Sets [`pace`](Self::pace).
    pub fn pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }
    /// Sets [`reply_budget`](Self::reply_budget).
    pub fn reply_budget(mut self, n: u32) -> Self {
        self.reply_budget = n;
        self
    }
    /// Sets the push budget: `n` per `window`; `n == 0` disables pushes.
    pub fn push_budget(mut self, n: u32, window: Duration) -> Self {
        self.push_budget = n;
        self.push_window = window;
        self
    }
    /// Sets the first and the longest throttle cool-down.
    pub fn throttle_cooldown(mut self, first: Duration, max: Duration) -> Self {
        self.throttle_cooldown = first;
        self.max_throttle_cooldown = max.max(first);
        self
    }
    /// Sets [`on_refusal`](Self::on_refusal).
    pub fn on_refusal(mut self, on: OnRefusal) -> Self {
        self.on_refusal = on;
        self
    }
    /// Sets [`max_chars`](Self::max_chars) (at least 1).
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = n.max(1);
        self
    }
    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Sets [`retry_delay`](Self::retry_delay).
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }
    /// Sets [`lease_ttl`](Self::lease_ttl) (at least 30 ms).
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d.max(Duration::from_millis(30));
        self
    }
    /// Sets [`wait_for_lease`](Self::wait_for_lease).
    pub fn wait_for_lease(mut self, wait: bool) -> Self {
        self.wait_for_lease = wait;
        self
    }
    /// Sets [`backoff`](Self::backoff).
    pub fn backoff(mut self, backoff: BackoffPolicy) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets [`notify`](Self::notify).
    pub fn notify(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }
    /// Sets [`reply_window`](Self::reply_window).
    pub fn reply_window(mut self, d: Duration) -> Self {
        self.reply_window = d;
        self
    }
    /// Sets [`typing_keepalive`](Self::typing_keepalive).
    pub fn typing_keepalive(mut self, d: Duration) -> Self {
        self.typing_keepalive = d;
        self
    }
    /// Sets [`backlog_page`](Self::backlog_page) (at least 1).
    pub fn backlog_page(mut self, n: usize) -> Self {
        self.backlog_page = n.max(1);
        self
    }
}

/// A duration in whole milliseconds as `i64`, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, by the system clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(ms)
        .unwrap_or(0)
}

/// `ms` since the Unix epoch as a `SystemTime`.
pub(crate) fn system_time(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
}
