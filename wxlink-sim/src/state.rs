//! The simulator's shared state: sessions, queued messages, conversations,
//! records, faults, CDN and login state, behind one mutex.
//!
//! The mutex is a `std::sync::Mutex` and is never held across an `.await`;
//! waiting (long polls, test helpers) goes through `tokio::sync::Notify`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::{Notify, watch};
use wxlink_proto::WeixinMessage;

use crate::cdn::CdnState;
use crate::config::{Fidelity, SimConfig};
use crate::fault::FaultQueue;
use crate::login::LoginState;
use crate::records::{
    NotifyCall, RecordCounts, RecordLog, RequestRecord, SentMessage, TypingCall, UploadRecord,
};

/// One bot session: a token bound to a bot id and the user who scanned.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) token: String,
    pub(crate) bot_id: String,
    pub(crate) user_id: String,
    pub(crate) valid: bool,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("token", &wxlink_proto::secret::REDACTED)
            .field("bot_id", &self.bot_id)
            .field("user_id", &self.user_id)
            .field("valid", &self.valid)
            .finish()
    }
}

/// What the simulator knows about one user's conversation with the bot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversation {
    /// Simulated time (Unix ms) of the user's last message.
    pub(crate) last_inbound_ms: Option<i64>,
    /// Replies accepted since that message.
    pub(crate) replies_since: u32,
}

/// Everything mutable, behind [`Shared::state`].
pub(crate) struct State {
    pub(crate) rng: StdRng,
    pub(crate) fidelity: Fidelity,
    pub(crate) bindings: Vec<Binding>,
    /// Index of the binding `Simulator::token` returns and inbound messages
    /// are addressed to.
    pub(crate) current: usize,
    pub(crate) users: BTreeSet<String>,
    pub(crate) queue: VecDeque<WeixinMessage>,
    pub(crate) next_seq: i64,
    pub(crate) injected: u64,
    pub(crate) delivered_batches: u64,
    pub(crate) conversations: HashMap<String, Conversation>,
    pub(crate) typing_tickets: HashMap<String, String>,
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
    pub(crate) send_times: VecDeque<Instant>,
    pub(crate) throttled_until: Option<Instant>,
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
        let bot_id = random_bot_id(&mut rng);
        let token = random_token(&mut rng, &bot_id);
        let user_id = format!("o9cq80sim{}@im.wechat", random_hex(&mut rng, 8));
        let mut users = BTreeSet::new();
        users.insert(user_id.clone());
        Self {
            rng,
            fidelity: config.fidelity.clone(),
            bindings: vec![Binding {
                token,
                bot_id,
                user_id,
                valid: true,
            }],
            current: 0,
            users,
            queue: VecDeque::new(),
            next_seq: 1,
            injected: 0,
            delivered_batches: 0,
            conversations: HashMap::new(),
            typing_tickets: HashMap::new(),
            sent: RecordLog::new(config.record_limit),
            typing: RecordLog::new(config.record_limit),
            notify_calls: RecordLog::new(config.record_limit),
            uploads: RecordLog::new(config.record_limit),
            requests: RecordLog::new(config.request_log_limit),
            endpoint_totals: HashMap::new(),
            faults: FaultQueue::default(),
            send_times: VecDeque::new(),
            throttled_until: None,
            clock_offset: Duration::ZERO,
            cdn: CdnState::new(config.cdn_storage, config.cdn_object_limit),
            login: LoginState::default(),
            generation: 0,
        }
    }

    /// Puts everything back as it was at start, keeping the first binding
    /// (and so the token tests already hold) and the temp directory.
    pub(crate) fn reset(&mut self, config: &SimConfig) {
        self.bindings.truncate(1);
        if let Some(first) = self.bindings.first_mut() {
            first.valid = true;
            self.users.clear();
            self.users.insert(first.user_id.clone());
        }
        self.current = 0;
        self.fidelity = config.fidelity.clone();
        self.queue.clear();
        self.conversations.clear();
        self.typing_tickets.clear();
        self.sent.clear();
        self.typing.clear();
        self.notify_calls.clear();
        self.uploads.clear();
        self.requests.clear();
        self.endpoint_totals.clear();
        self.faults.clear();
        self.send_times.clear();
        self.throttled_until = None;
        self.clock_offset = Duration::ZERO;
        self.cdn.clear();
        self.login = LoginState::default();
        self.generation = self.generation.wrapping_add(1);
    }

    /// The binding inbound messages go to.
    pub(crate) fn current(&self) -> &Binding {
        // `bindings` is never empty: it starts with one entry and `reset`
        // keeps the first.
        &self.bindings[self.current.min(self.bindings.len() - 1)]
    }

    /// The live binding whose token is `token`, if any.
    pub(crate) fn binding_for(&self, token: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.valid && b.token == token)
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
    /// and counts the call for its endpoint.
    pub(crate) fn log_request(&mut self, record: RequestRecord) {
        if let Some(endpoint) = record.endpoint {
            *self.endpoint_totals.entry(endpoint).or_default() += 1;
        }
        self.requests.push(record);
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
    /// Woken when a message is queued (long polls wait on it).
    pub(crate) inbound: Notify,
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
    fn debug_output_of_a_binding_hides_the_token() {
        let state = State::new(&SimConfig::default());
        let binding = state.current().clone();
        let shown = format!("{binding:?}");
        assert!(!shown.contains(&binding.token), "{shown}");
        assert!(shown.contains("** redacted **"));
        assert!(shown.contains(&binding.bot_id));
    }

    #[test]
    fn the_same_seed_gives_the_same_identities() {
        let a = State::new(&SimConfig::default());
        let b = State::new(&SimConfig::default());
        assert_eq!(a.current().token, b.current().token);
        let other = SimConfig {
            seed: 1,
            ..SimConfig::default()
        };
        assert_ne!(State::new(&other).current().token, a.current().token);
    }
}
