//! [`BotRuntime`]: the shared handle that owns the store and the policies,
//! and sends on the application's behalf.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use wxlink_proto::{ContextToken, TypingTicket, WeixinMessage};

use super::api::{ApiError, RuntimeApi};
use super::budget::{self, BudgetDecision, ReplyWindow, SendBudgetPolicy, WhenExhausted};
use super::config_cache::{ConfigCachePolicy, ConfigCacheState, Lookup};
use super::error::RuntimeError;
use super::store::{ContextRecord, Store, StoreError, TurnRecord};

/// Options of a [`BotRuntime`] that apply to sends and typing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// The per-turn send budget.
    pub budget: SendBudgetPolicy,
    /// The reply window.
    pub reply_window: ReplyWindow,
    /// Send without a context token when none is known or it is too old,
    /// as the official client does since 2.0 (with a warning), instead of
    /// failing with [`RuntimeError::UserMustWriteFirst`]. Off by default:
    /// the server silently drops such messages.
    pub send_without_context: bool,
    /// The typing-ticket cache numbers.
    pub config_cache: ConfigCachePolicy,
    /// How often a [`TypingGuard`](super::TypingGuard) re-sends "typing"
    /// (ILINK.md §8.4: 5 s).
    pub typing_keepalive: Duration,
    /// The limit on each typing call and on `notifystop` at shutdown
    /// (ILINK.md §4.9: 10 s).
    pub call_timeout: Duration,
    /// The most characters per message; longer text is split (ILINK.md
    /// §8.1 recommends at most 2 000, which also keeps every message under
    /// the server's 16 KiB limit).
    pub max_chars: usize,
    /// The bot's own id (`…@im.bot`, the account id of the login);
    /// inbound messages from it are dropped like any `message_type == 2`.
    pub bot_id: Option<String>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            budget: SendBudgetPolicy::default(),
            reply_window: ReplyWindow::default(),
            send_without_context: false,
            config_cache: ConfigCachePolicy::default(),
            typing_keepalive: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
            max_chars: 2_000,
            bot_id: None,
        }
    }
}

impl RuntimeOptions {
    /// Sets the per-turn send budget.
    pub fn budget(mut self, budget: SendBudgetPolicy) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the reply window.
    pub fn reply_window(mut self, window: Duration) -> Self {
        self.reply_window.window = window;
        self
    }

    /// Sends without a context token instead of refusing (see the field).
    pub fn send_without_context(mut self, yes: bool) -> Self {
        self.send_without_context = yes;
        self
    }

    /// Sets the typing keep-alive interval.
    pub fn typing_keepalive(mut self, every: Duration) -> Self {
        self.typing_keepalive = every;
        self
    }

    /// Sets the most characters per message (at least 1).
    pub fn max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = max_chars.max(1);
        self
    }

    /// Sets the bot's own id, whose messages the stream drops.
    pub fn bot_id(mut self, id: impl Into<String>) -> Self {
        self.bot_id = Some(id.into());
        self
    }

    /// Sets the typing-ticket cache numbers.
    pub fn config_cache(mut self, policy: ConfigCachePolicy) -> Self {
        self.config_cache = policy;
        self
    }
}

/// The session state shared by the stream and the senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Session {
    /// Polling and sending are allowed.
    #[default]
    Active,
    /// `-14` was seen and the runtime pauses until the given time.
    PausedUntil(Instant),
    /// `-14` was seen and the runtime stopped.
    Expired,
}

/// State shared by every clone of a [`BotRuntime`].
pub(crate) struct Inner {
    pub(crate) api: Arc<dyn RuntimeApi>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) options: RuntimeOptions,
    config: Mutex<ConfigCacheState>,
    /// Serialises the read-modify-write of send budgets.
    budget_lock: tokio::sync::Mutex<()>,
    /// Bumped whenever a user starts a new turn; queued sends wait on it.
    turns: watch::Sender<u64>,
    session: Mutex<Session>,
}

/// The bot runtime: a store, the policies and a client, shared by the
/// update stream, the senders and the typing guards. Cheap to clone.
///
/// Create one per bot account, take its [`updates`](Self::updates) stream
/// and answer with [`reply`](Self::reply); keep "typing…" alive with
/// [`typing`](Self::typing).
#[derive(Clone)]
pub struct BotRuntime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BotRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotRuntime")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// What a reply answers: an inbound message, as a [`Delivery`] of the
/// update stream or as the [`WeixinMessage`] that
/// [`BotRuntime::run`] hands to its handler (or a reference to either). The
/// reply goes to the message's sender.
///
/// [`Delivery`]: super::Delivery
pub trait ReplyTarget {
    /// The message being answered.
    fn inbound_message(&self) -> &WeixinMessage;
}

impl ReplyTarget for WeixinMessage {
    fn inbound_message(&self) -> &WeixinMessage {
        self
    }
}

impl ReplyTarget for super::Delivery {
    fn inbound_message(&self) -> &WeixinMessage {
        self.message()
    }
}

impl<T: ReplyTarget + ?Sized> ReplyTarget for &T {
    fn inbound_message(&self) -> &WeixinMessage {
        (**self).inbound_message()
    }
}

/// Milliseconds since the Unix epoch, by the system clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs a store call on the blocking pool.
pub(crate) async fn blocking<T, F>(store: &Arc<dyn Store>, call: F) -> Result<T, RuntimeError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .map_err(RuntimeError::TaskFailed)?
        .map_err(RuntimeError::from)
}

impl BotRuntime {
    /// A runtime over `api` and `store`.
    pub(crate) fn from_api(
        api: Arc<dyn RuntimeApi>,
        store: Arc<dyn Store>,
        options: RuntimeOptions,
    ) -> Self {
        let (turns, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                api,
                store,
                config: Mutex::new(ConfigCacheState::new(options.config_cache)),
                options,
                budget_lock: tokio::sync::Mutex::new(()),
                turns,
                session: Mutex::new(Session::Active),
            }),
        }
    }

    /// The store this runtime keeps its state in.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.inner.store)
    }

    /// The options this runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.inner.options
    }

    /// Tells queued senders that new turns have started.
    pub(crate) fn turns_started(&self) {
        self.inner.turns.send_modify(|generation| *generation += 1);
    }

    /// Records that the session expired: sends are refused from now on.
    pub(crate) fn mark_expired(&self) {
        if let Ok(mut session) = self.inner.session.lock() {
            *session = Session::Expired;
        }
    }

    /// Records a pause until `until`.
    pub(crate) fn mark_paused(&self, until: Instant) {
        if let Ok(mut session) = self.inner.session.lock() {
            *session = Session::PausedUntil(until);
        }
    }

    /// Records that polling works again.
    pub(crate) fn mark_active(&self) {
        if let Ok(mut session) = self.inner.session.lock() {
            *session = Session::Active;
        }
    }

    /// Fails when the session is known to be expired or paused.
    pub(crate) fn check_session(&self) -> Result<(), RuntimeError> {
        let session = self
            .inner
            .session
            .lock()
            .map(|s| *s)
            .unwrap_or(Session::Active);
        match session {
            Session::Active => Ok(()),
            Session::Expired => Err(RuntimeError::SessionExpired),
            Session::PausedUntil(until) => {
                let now = Instant::now();
                if now >= until {
                    Ok(())
                } else {
                    Err(RuntimeError::SessionPaused {
                        remaining: until - now,
                    })
                }
            }
        }
    }

    /// Replies to `message` with `text`, using the sender's latest context
    /// token and the send budget. Text longer than
    /// [`RuntimeOptions::max_chars`] (2 000 by default) is split into
    /// several messages (see [`chunk_text`](crate::chunk_text)); each counts
    /// against the budget, and the budget for all of them is reserved up
    /// front.
    pub async fn reply(&self, message: impl ReplyTarget, text: &str) -> Result<(), RuntimeError> {
        let message = message.inbound_message();
        let user = message
            .from_user_id
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(RuntimeError::NoSender)?;
        self.send_to(user, text).await
    }

    /// Sends `text` to `user`, who must have written to the bot within the
    /// reply window; the context token remembered from their latest message
    /// goes with it.
    pub async fn send_to(&self, user: &str, text: &str) -> Result<(), RuntimeError> {
        self.check_session()?;
        if text.is_empty() {
            return Err(RuntimeError::Api(crate::Error::EmptyText));
        }
        let chunks = crate::chunk_text(text, self.inner.options.max_chars.max(1));
        let count = u32::try_from(chunks.len().max(1)).unwrap_or(u32::MAX);
        let context = self.prepare_send(user, count).await?;
        let api = &self.inner.api;
        for chunk in chunks {
            api.send_text(user.to_owned(), chunk.to_owned(), context.clone())
                .await
                .map_err(|err| self.api_failed(err))?;
        }
        Ok(())
    }

    /// Checks the reply window and takes `count` sends from `user`'s
    /// budget (waiting for a new turn when the policy says to queue).
    /// Returns the context token to send with.
    pub(crate) async fn prepare_send(
        &self,
        user: &str,
        count: u32,
    ) -> Result<Option<ContextToken>, RuntimeError> {
        let context = self.context_for(user).await?;
        if self.reserve(user, count).await? {
            // The send waited for the user's next message, which brought a
            // fresher context token.
            return self.context_for(user).await;
        }
        Ok(context)
    }

    /// The runtime error for a failed call, remembering a `-14`.
    pub(crate) fn api_failed(&self, err: ApiError) -> RuntimeError {
        if err.session_expired {
            self.mark_expired();
        }
        RuntimeError::from(err)
    }

    /// The context token to send to `user` with, or why not to send.
    async fn context_for(&self, user: &str) -> Result<Option<ContextToken>, RuntimeError> {
        let key = user.to_owned();
        let record = blocking(&self.inner.store, move |s| s.context(&key)).await?;
        match self
            .inner
            .options
            .reply_window
            .check(record.as_ref(), now_ms())
        {
            Ok(record) => Ok(Some(record.token.clone())),
            Err(problem) if self.inner.options.send_without_context => {
                tracing::warn!(user, ?problem, "sending without a current context token");
                Ok(record.map(|r| r.token))
            }
            Err(problem) => Err(RuntimeError::UserMustWriteFirst {
                user: user.to_owned(),
                problem,
            }),
        }
    }

    /// Takes `count` sends from `user`'s budget, waiting for the next turn
    /// when the policy says to queue. Returns whether it waited.
    async fn reserve(&self, user: &str, count: u32) -> Result<bool, RuntimeError> {
        let policy = self.inner.options.budget;
        let mut turns = self.inner.turns.subscribe();
        let mut waited = false;
        loop {
            let outcome = {
                let _guard = self.inner.budget_lock.lock().await;
                let key = user.to_owned();
                let current = blocking(&self.inner.store, move |s| s.turn(&key)).await?;
                let mut next = current;
                let mut refused = None;
                let mut warn = false;
                for _ in 0..count {
                    match budget::spend(&policy, next) {
                        BudgetDecision::Allow { next: n, warn: w } => {
                            next = Some(n);
                            warn |= w;
                        }
                        BudgetDecision::Exhausted { sent } => {
                            refused = Some(sent);
                            break;
                        }
                    }
                }
                match (refused, next) {
                    (None, Some(next)) => {
                        let key = user.to_owned();
                        blocking(&self.inner.store, move |s| s.set_turn(&key, &next)).await?;
                        if warn {
                            tracing::warn!(
                                user,
                                sent = next.sent,
                                limit = policy.limit,
                                "send budget for this turn is nearly used up"
                            );
                        }
                        Ok(())
                    }
                    _ => Err(current.unwrap_or_default()),
                }
            };
            let current: TurnRecord = match outcome {
                Ok(()) => return Ok(waited),
                Err(current) => current,
            };
            match policy.when_exhausted {
                WhenExhausted::Queue if count <= policy.limit => {
                    tracing::debug!(
                        user,
                        "send budget used up; waiting for the user's next message"
                    );
                    // Wait for any new turn, then check this user's again.
                    waited = true;
                    if turns.changed().await.is_err() {
                        return Err(RuntimeError::RateLimited {
                            user: user.to_owned(),
                            sent: current.sent,
                            limit: policy.limit,
                        });
                    }
                }
                _ => {
                    return Err(RuntimeError::RateLimited {
                        user: user.to_owned(),
                        sent: current.sent,
                        limit: policy.limit,
                    });
                }
            }
        }
    }

    /// The typing ticket of `user`, through the per-user config cache.
    pub(crate) async fn typing_ticket(&self, user: &str) -> TypingTicket {
        let lookup = match self.inner.config.lock() {
            Ok(cache) => cache.lookup(user, Instant::now()),
            Err(_) => return TypingTicket::default(),
        };
        if let Lookup::Cached(ticket) = lookup {
            return ticket;
        }
        let key = user.to_owned();
        let context = blocking(&self.inner.store, move |s| s.context(&key))
            .await
            .ok()
            .flatten()
            .map(|r: ContextRecord| r.token);
        let result = self.inner.api.get_config(user.to_owned(), context).await;
        let Ok(mut cache) = self.inner.config.lock() else {
            return TypingTicket::default();
        };
        match result {
            Ok(ticket) => cache.record_success(user, ticket, Instant::now(), &mut rand::rng()),
            Err(err) => {
                tracing::debug!(user, error = %err, "getconfig failed; typing ticket from cache");
                cache.record_failure(user, Instant::now())
            }
        }
    }

    /// Starts "typing…" for `user` and keeps it alive until the guard
    /// replies ([`TypingGuard::reply`](super::TypingGuard::reply),
    /// [`TypingGuard::finish_after`](super::TypingGuard::finish_after)), is
    /// finished or is dropped. Typing is best effort: failures are logged
    /// and never fail anything else.
    pub fn typing(&self, user: &str) -> super::TypingGuard {
        super::TypingGuard::start(self.clone(), user)
    }
}
