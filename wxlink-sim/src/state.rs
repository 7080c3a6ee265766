//! The simulator's shared state: bot accounts (each with its own queue,
//! cursor, users, conversations, tickets, throttle and poll counters),
//! records, faults, chaos, CDN and login state, behind one mutex.
//!
//! The mutex is a `std::sync::Mutex` and is never held across an `.await`;
//! waiting (long polls, test helpers) goes through `tokio::sync::Notify`.
//! An idle account costs a few hundred bytes: its collections stay empty
//! (and unallocated) until it is used.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::sync::{Notify, watch};

use crate::chaos::ChaosState;
use crate::config::{Fidelity, SimConfig};
use crate::fault::FaultQueue;
use crate::qr::LoginState;
use crate::records::{
    NotifyCall, PollRecord, RecordCounts, RecordLog, RequestRecord, SentMessage, TypingCall,
    UploadRecord,
};
use crate::storage::CdnState;
use crate::truth::Truth;

/// What the simulator knows about one user's conversation with a bot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversation {
    /// Simulated time (Unix ms) of the user's last message.
    pub(crate) last_inbound_ms: Option<i64>,
    /// Replies accepted since that message.
    pub(crate) replies_since: u32,
}

/// A message waiting in an account's queue: its id (for the ground
/// truth) and its JSON as it will go out.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) message_id: u64,
    pub(crate) json: Arc<str>,
}

/// The all-time record counts of one account.
#[derive(Debug, Default, Clone)]
pub(crate) struct AccountTotals {
    pub(crate) sent: u64,
    pub(crate) typing: u64,
    pub(crate) notify: u64,
    pub(crate) uploads: u64,
    pub(crate) requests: u64,
    pub(crate) by_endpoint: HashMap<&'static str, u64>,
}

/// `getupdates` polls of one account that are in flight.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Polls {
    /// Polls being held or answered right now.
    pub(crate) in_flight: u32,
    /// The most that were in flight at once.
    pub(crate) max_in_flight: u32,
    /// Polls that started while another poll of the account was in flight.
    pub(crate) overlapping: u64,
    /// Bumped by every new poll, so an older poll knows a newer one came.
    pub(crate) newest: u64,
}

/// One bot account: a token bound to a bot id and the user who owns it,
/// with everything the server keeps per bot.
pub(crate) struct Bot {
    pub(crate) id: u32,
    pub(crate) token: String,
    pub(crate) bot_id: String,
    pub(crate) user_id: String,
    pub(crate) valid: bool,
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) next_seq: i64,
    pub(crate) delivered_batches: u64,
    /// Users the bot knows: its owner, everyone who wrote, and those added
    /// by hand.
    pub(crate) users: HashSet<String>,
    pub(crate) conversations: HashMap<String, Conversation>,
    pub(crate) typing_tickets: HashMap<String, String>,
    pub(crate) send_times: VecDeque<Instant>,
    pub(crate) throttled_until: Option<Instant>,
    pub(crate) totals: AccountTotals,
    pub(crate) polls: Polls,
    /// Woken when a message is queued for this bot, when it expires, or
    /// when a newer poll should end an older one.
    pub(crate) inbound: Arc<Notify>,
    pub(crate) truth: Truth,
    /// The newest answered `getupdates` polls, oldest first (at most the
    /// simulator's `record_limit`).
    pub(crate) poll_log: VecDeque<PollRecord>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("id", &self.id)
            .field("token", &wxlink_proto::secret::REDACTED)
            .field("bot_id", &self.bot_id)
            .field("user_id", &self.user_id)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

impl Bot {
    fn new(id: u32, rng: &mut StdRng, user_id: Option<String>) -> Self {
        let bot_id = random_bot_id(rng);
        let token = random_token(rng, &bot_id);
        let user_id =
            user_id.unwrap_or_else(|| format!("o9cq80sim{}@im.wechat", random_hex(rng, 8)));
        let mut users = HashSet::new();
        users.insert(user_id.clone());
        Self {
            id,
            token,
            bot_id,
            user_id,
            valid: true,
            queue: VecDeque::new(),
            next_seq: 1,
            delivered_batches: 0,
            users,
            conversations: HashMap::new(),
            typing_tickets: HashMap::new(),
            send_times: VecDeque::new(),
            throttled_until: None,
            totals: AccountTotals::default(),
            polls: Polls::default(),
            inbound: Arc::new(Notify::new()),
            truth: Truth::default(),
            poll_log: VecDeque::new(),
        }
    }

    /// Forgets everything but the identity, and makes the token live again.
    fn reset(&mut self) {
        self.valid = true;
        self.queue.clear();
        self.next_seq = 1;
        self.delivered_batches = 0;
        self.users.clear();
        self.users.insert(self.user_id.clone());
        self.conversations.clear();
        self.typing_tickets.clear();
        self.send_times.clear();
        self.throttled_until = None;
        self.totals = AccountTotals::default();
        self.polls.overlapping = 0;
        self.polls.max_in_flight = self.polls.in_flight;
        self.truth = Truth::default();
        self.poll_log.clear();
    }
}

/// Everything mutable, behind [`Shared::state`].
pub(crate) struct State {
    pub(crate) rng: StdRng,
    pub(crate) fidelity: Fidelity,
    /// Every account, by internal id (ascending = creation order).
    pub(crate) bots: BTreeMap<u32, Bot>,
    by_token: HashMap<String, u32>,
    by_bot_id: HashMap<String, u32>,
    next_bot: u32,
    /// How many accounts the simulator started with; a reset keeps them.
    start_accounts: u32,
    /// The account the one-account API means: the first one, or the one
    /// the latest confirmed QR login created.
    pub(crate) current: u32,
    pub(crate) injected: u64,
    pub(crate) sent: RecordLog<SentMessage>,
    pub(crate) typing: RecordLog<TypingCall>,
    pub(crate) notify_calls: RecordLog<NotifyCall>,
    pub(crate) uploads: RecordLog<UploadRecord>,
    pub(crate) requests: RecordLog<RequestRecord>,
    /// All-time request counts per endpoint name, so waiting for the n-th
    /// call of one endpoint works after the request log dropped older ones.
    /// The names are a fixed set, so this stays small.
    pub(crate) endpoint_totals: HashMap<&'static str, u64>,
    pub(crate) faults: FaultQueue,
    pub(crate) chaos: ChaosState,
    pub(crate) clock_offset: Duration,
    pub(crate) cdn: CdnState,
    pub(crate) login: LoginState,
    /// Bumped by every reset, so timers started before it (re-deliveries)
    /// know to do nothing.
    pub(crate) generation: u64,
}

impl State {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut state = Self {
            fidelity: config.fidelity.clone(),
            bots: BTreeMap::new(),
            by_token: HashMap::new(),
            by_bot_id: HashMap::new(),
            next_bot: 0,
            start_accounts: 0,
            current: 0,
            injected: 0,
            sent: RecordLog::new(config.record_limit),
            typing: RecordLog::new(config.record_limit),
            notify_calls: RecordLog::new(config.record_limit),
            uploads: RecordLog::new(config.record_limit),
            requests: RecordLog::new(config.request_log_limit),
            endpoint_totals: HashMap::new(),
            faults: FaultQueue::default(),
            chaos: ChaosState::new(config.chaos.clone()),
            clock_offset: Duration::ZERO,
            cdn: CdnState::new(config.cdn_storage, config.cdn_object_limit),
            login: LoginState::default(),
            generation: 0,
            rng: StdRng::seed_from_u64(0),
        };
        // The first account is drawn first, so its identity depends on the
        // seed alone, whatever the number of accounts.
        for _ in 0..config.accounts.max(1) {
            state.create_bot_with(&mut rng, None);
        }
        state.rng = rng;
        state.start_accounts = state.next_bot;
        state
    }

    fn create_bot_with(&mut self, rng: &mut StdRng, user_id: Option<String>) -> u32 {
        let id = self.next_bot;
        self.next_bot = self.next_bot.saturating_add(1);
        let bot = Bot::new(id, rng, user_id);
        self.by_token.insert(bot.token.clone(), id);
        self.by_bot_id.insert(bot.bot_id.clone(), id);
        self.bots.insert(id, bot);
        id
    }

    /// Creates an account (owned by `user_id`, or by a fresh user) and
    /// returns its id.
    pub(crate) fn create_bot(&mut self, user_id: Option<String>) -> u32 {
        let mut rng = std::mem::replace(&mut self.rng, StdRng::seed_from_u64(0));
        let id = self.create_bot_with(&mut rng, user_id);
        self.rng = rng;
        id
    }

    /// Removes an account: its token stops working and its queue is gone.
    /// Returns the removed account.
    pub(crate) fn delete_bot(&mut self, id: u32) -> Option<Bot> {
        let bot = self.bots.remove(&id)?;
        self.by_token.remove(&bot.token);
        self.by_bot_id.remove(&bot.bot_id);
        if self.current == id {
            self.current = self.bots.keys().next().copied().unwrap_or(id);
        }
        Some(bot)
    }

    /// Puts everything back as it was at start, keeping the accounts the
    /// simulator started with (and so the tokens tests already hold) and
    /// the temp directory.
    pub(crate) fn reset(&mut self, config: &SimConfig) {
        let extra: Vec<u32> = self
            .bots
            .keys()
            .copied()
            .filter(|id| *id >= self.start_accounts)
            .collect();
        for id in extra {
            if let Some(bot) = self.delete_bot(id) {
                bot.inbound.notify_waiters();
            }
        }
        for bot in self.bots.values_mut() {
            bot.reset();
            bot.inbound.notify_waiters();
        }
        self.current = self.bots.keys().next().copied().unwrap_or(0);
        self.fidelity = config.fidelity.clone();
        self.sent.clear();
        self.typing.clear();
        self.notify_calls.clear();
        self.uploads.clear();
        self.requests.clear();
        self.endpoint_totals.clear();
        self.faults.clear();
        self.chaos = ChaosState::new(config.chaos.clone());
        self.clock_offset = Duration::ZERO;
        self.cdn.clear();
        self.login = LoginState::default();
        self.generation = self.generation.wrapping_add(1);
    }

    /// The account the one-account API means.
    pub(crate) fn current(&self) -> Option<&Bot> {
        self.bots
            .get(&self.current)
            .or_else(|| self.bots.values().next())
    }

    /// The first account (the one the simulator started with).
    pub(crate) fn first(&self) -> Option<&Bot> {
        self.bots.values().next()
    }

    /// The id of the account the one-account API means.
    pub(crate) fn current_id(&self) -> u32 {
        self.current().map_or(self.current, |b| b.id)
    }

    /// The live account whose token is `token`, if any.
    pub(crate) fn bot_for(&self, token: &str) -> Option<&Bot> {
        let id = self.by_token.get(token)?;
        self.bots.get(id).filter(|b| b.valid)
    }

    /// The account with this id, live or not.
    pub(crate) fn bot(&self, id: u32) -> Option<&Bot> {
        self.bots.get(&id)
    }

    /// The account with this id, live or not, to change.
    pub(crate) fn bot_mut(&mut self, id: u32) -> Option<&mut Bot> {
        self.bots.get_mut(&id)
    }

    /// The id of the account whose bot id is `bot_id`.
    pub(crate) fn id_of_bot(&self, bot_id: &str) -> Option<u32> {
        self.by_bot_id.get(bot_id).copied()
    }

    /// Simulated wall-clock time in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        // A clock advanced beyond what `SystemTime` can hold reads as the
        // latest time there is, rather than overflowing.
        let Some(now) = SystemTime::now().checked_add(self.clock_offset) else {
            return i64::MAX;
        };
        now.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Appends to the request log (which drops its oldest entry when full)
    /// and counts the call for its endpoint and account.
    pub(crate) fn log_request(&mut self, account: Option<u32>, record: RequestRecord) {
        if let Some(endpoint) = record.endpoint {
            *self.endpoint_totals.entry(endpoint).or_default() += 1;
        }
        let mut ordinal = 0;
        if let Some(bot) = account.and_then(|id| self.bots.get_mut(&id)) {
            bot.totals.requests += 1;
            ordinal = bot.totals.requests;
            if let Some(endpoint) = record.endpoint {
                *bot.totals.by_endpoint.entry(endpoint).or_default() += 1;
            }
        }
        self.requests.push(account, ordinal, record);
    }

    /// Records a sent message of `account`.
    pub(crate) fn log_sent(&mut self, account: u32, record: SentMessage) {
        let ordinal = self.bots.get_mut(&account).map_or(0, |b| {
            b.totals.sent += 1;
            b.totals.sent
        });
        self.sent.push(Some(account), ordinal, record);
    }

    /// Records a typing call of `account`.
    pub(crate) fn log_typing(&mut self, account: u32, record: TypingCall) {
        let ordinal = self.bots.get_mut(&account).map_or(0, |b| {
            b.totals.typing += 1;
            b.totals.typing
        });
        self.typing.push(Some(account), ordinal, record);
    }

    /// Records a notify call of `account`.
    pub(crate) fn log_notify(&mut self, account: u32, record: NotifyCall) {
        let ordinal = self.bots.get_mut(&account).map_or(0, |b| {
            b.totals.notify += 1;
            b.totals.notify
        });
        self.notify_calls.push(Some(account), ordinal, record);
    }

    /// Records an upload attempt of `account` (the one whose slot it used).
    pub(crate) fn log_upload(&mut self, account: Option<u32>, record: UploadRecord) {
        let ordinal = account
            .and_then(|id| self.bots.get_mut(&id))
            .map_or(0, |b| {
                b.totals.uploads += 1;
                b.totals.uploads
            });
        self.uploads.push(account, ordinal, record);
    }

    /// All-time requests answered for `endpoint`.
    pub(crate) fn endpoint_total(&self, endpoint: &str) -> u64 {
        self.endpoint_totals.get(endpoint).copied().unwrap_or(0)
    }

    /// The sizes of every record log.
    pub(crate) fn record_counts(&self) -> RecordCounts {
        RecordCounts {
            sent: self.sent.count(),
            typing: self.typing.count(),
            notify: self.notify_calls.count(),
            uploads: self.uploads.count(),
            requests: self.requests.count(),
            requests_by_endpoint: self
                .endpoint_totals
                .iter()
                .map(|(name, n)| ((*name).to_owned(), *n))
                .collect(),
        }
    }

    /// The sizes of one account's records.
    pub(crate) fn record_counts_of(&self, id: u32) -> RecordCounts {
        let Some(bot) = self.bots.get(&id) else {
            return RecordCounts::default();
        };
        let t = &bot.totals;
        RecordCounts {
            sent: self.sent.count_of(id, t.sent),
            typing: self.typing.count_of(id, t.typing),
            notify: self.notify_calls.count_of(id, t.notify),
            uploads: self.uploads.count_of(id, t.uploads),
            requests: self.requests.count_of(id, t.requests),
            requests_by_endpoint: t
                .by_endpoint
                .iter()
                .map(|(name, n)| ((*name).to_owned(), *n))
                .collect(),
        }
    }

    /// A fresh opaque token-like string of `bytes` random bytes, base64.
    pub(crate) fn random_b64(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.rng.fill(&mut buf[..]);
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    /// Like [`random_b64`](Self::random_b64) but URL-safe without padding,
    /// for values that travel in query strings.
    pub(crate) fn random_param(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.rng.fill(&mut buf[..]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    }
}

/// `<12 hex>@im.bot`.
pub(crate) fn random_bot_id(rng: &mut StdRng) -> String {
    format!("{}@im.bot", random_hex(rng, 6))
}

/// An opaque bot token, `<bot hex>:<40 hex>`.
pub(crate) fn random_token(rng: &mut StdRng, bot_id: &str) -> String {
    let prefix = bot_id.split('@').next().unwrap_or_default();
    format!("{prefix}:{}", random_hex(rng, 20))
}

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(rng: &mut StdRng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf[..]);
    hex::encode(buf)
}

/// State shared by the listeners, the connection tasks and every
/// [`Simulator`](crate::Simulator) handle.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<State>,
    /// Woken whenever a record is added (test helpers wait on it).
    pub(crate) activity: Notify,
    /// Woken when a QR login may have changed from outside a status poll
    /// (a released step, a reset), so held status polls look again.
    pub(crate) login_changed: Notify,
    /// Becomes `true` (or closes) when the simulator shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) base_url: String,
    pub(crate) cdn_base_url: String,
    /// `127.0.0.1:PORT2`, the second listener `scaned_but_redirect` points at.
    pub(crate) redirect_host: String,
    /// `https://127.0.0.1:PORT2`, or `http://` when the second listener
    /// speaks plain HTTP.
    pub(crate) redirect_base_url: String,
    /// The DER certificate of the CA behind the second listener's TLS
    /// certificate.
    pub(crate) tls_root_der: Vec<u8>,
}

impl Shared {
    /// Locks the state. A poisoned lock (a panic while it was held) is
    /// recovered, since every update leaves the state consistent.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes every test helper waiting for a new record.
    pub(crate) fn touch(&self) {
        self.activity.notify_waiters();
    }

    /// Waits until `check` returns `Some` or `timeout` passes.
    pub(crate) async fn wait_until<T>(
        self: &Arc<Self>,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(out) = check(&self.state()) {
                return Some(out);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.state());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_an_account_hides_the_token() {
        let state = State::new(&SimConfig::default());
        let bot = state.current().unwrap();
        let shown = format!("{bot:?}");
        assert!(!shown.contains(&bot.token), "{shown}");
        assert!(shown.contains("** redacted **"));
        assert!(shown.contains(&bot.bot_id));
    }

    #[test]
    fn the_same_seed_gives_the_same_identities() {
        let a = State::new(&SimConfig::default());
        let b = State::new(&SimConfig::default());
        assert_eq!(a.current().unwrap().token, b.current().unwrap().token);
        let other = SimConfig {
            seed: 1,
            ..SimConfig::default()
        };
        assert_ne!(
            State::new(&other).current().unwrap().token,
            a.current().unwrap().token
        );
        // More accounts leave the first one as it was.
        let many = SimConfig {
            accounts: 5,
            ..SimConfig::default()
        };
        let many = State::new(&many);
        assert_eq!(many.bots.len(), 5);
        assert_eq!(many.first().unwrap().token, a.first().unwrap().token);
        let tokens: HashSet<_> = many.bots.values().map(|b| b.token.clone()).collect();
        assert_eq!(tokens.len(), 5);
    }

    #[test]
    fn a_reset_keeps_the_start_accounts_and_drops_the_others() {
        let config = SimConfig {
            accounts: 2,
            ..SimConfig::default()
        };
        let mut state = State::new(&config);
        let extra = state.create_bot(None);
        let token = state.bot(extra).unwrap().token.clone();
        assert!(state.bot_for(&token).is_some());
        state.reset(&config);
        assert_eq!(state.bots.len(), 2);
        assert!(state.bot_for(&token).is_none());
    }
}
