//! The state one account shares between its runner, its handlers and its
//! handle: [`Shared`], the [`TakeRequest`] through which a handler asks the
//! runner for its user's waiting messages, and [`message_text`].
//!
//! It sits below everything that acts on an account (the paced sends in
//! `send`, the typing guard, [`Incoming`](crate::Incoming), the supervise
//! loop in `account`, the host), so that each of them can hold the state
//! without importing the others; it names only the bottom modules (error,
//! events, options, store, config cache) and the send gate in `limits`
//! (docs/architecture.md, "`wxlink-bot`").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use wxlink_client::{ClientBuilder, WxLinkClient};
use wxlink_proto::WeixinMessage;

use crate::config_cache::ConfigCacheState;
use crate::error::{Error, Kind};
use crate::events::{Event, EventKind};
use crate::limits::Limiter;
use crate::options::{AccountOptions, ms, now_ms};
use crate::store::{AccountId, ContextRecord, JournalEntry, JournalKey, Lease, Store};

/// State shared by an account's runner, its handlers and its handle.
pub(crate) struct Shared {
    pub(crate) id: AccountId,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) options: AccountOptions,
    pub(crate) owner: String,
    builder: ClientBuilder,
    client: RwLock<WxLinkClient>,
    lease: RwLock<Option<Lease>>,
    /// Set by a `-14`, cleared by a new token.
    pub(crate) session_expired: AtomicBool,
    pub(crate) limiter: Limiter,
    events: broadcast::Sender<Event>,
    pub(crate) config: Mutex<ConfigCacheState>,
    /// Turns true when the account is to stop.
    pub(crate) stop: watch::Receiver<bool>,
    /// Bumped by a new token.
    pub(crate) token_changed: watch::Sender<u64>,
    /// Dead letters re-queued while the account runs, to load at once.
    pub(crate) requeued: Mutex<Vec<JournalKey>>,
    /// Where a handler asks the runner for its user's waiting messages.
    pub(crate) takes: Mutex<Option<mpsc::UnboundedSender<Box<TakeRequest>>>>,
    /// Wakes the runner when `requeued` has keys.
    pub(crate) requeue_signal: tokio::sync::Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The account's state, not yet running.
    // One call site, in the host; a parameter struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: AccountId,
        store: Arc<dyn Store>,
        options: AccountOptions,
        owner: String,
        builder: ClientBuilder,
        client: WxLinkClient,
        events: broadcast::Sender<Event>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (token_changed, _) = watch::channel(0);
        Self {
            config: Mutex::new(ConfigCacheState::new(options.config_cache)),
            id,
            store,
            options,
            owner,
            builder,
            client: RwLock::new(client),
            lease: RwLock::new(None),
            session_expired: AtomicBool::new(false),
            limiter: Limiter::new(None),
            events,
            stop,
            token_changed,
            requeued: Mutex::new(Vec::new()),
            takes: Mutex::new(None),
            requeue_signal: tokio::sync::Notify::new(),
        }
    }

    /// The messages of `user` the runner has read from the journal and not
    /// handed out yet, taken out of its queue (empty when the account is
    /// not running).
    pub(crate) async fn take_waiting(&self, user: &str) -> Vec<JournalEntry> {
        let Some(tx) = self.takes.lock().ok().and_then(|t| t.clone()) else {
            return Vec::new();
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if tx
            .send(Box::new(TakeRequest {
                user: user.to_owned(),
                reply,
            }))
            .is_err()
        {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Tells the runner that `key` is back in the journal.
    pub(crate) fn requeued(&self, key: JournalKey) {
        if let Ok(mut keys) = self.requeued.lock() {
            keys.push(key);
        }
        self.requeue_signal.notify_one();
    }

    /// The current client (cheap clone).
    pub(crate) fn client(&self) -> WxLinkClient {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current lease, or the error a write without one gets.
    pub(crate) fn lease(&self) -> Result<Lease, Error> {
        self.lease
            .read()
            .ok()
            .and_then(|l| l.clone())
            .ok_or_else(|| Error::fenced("write without a lease"))
    }

    /// Records the lease the runner holds now (`None`: none).
    pub(crate) fn set_lease(&self, lease: Option<Lease>) {
        if let Ok(mut l) = self.lease.write() {
            *l = lease;
        }
    }

    /// Sends an event; nobody listening is fine.
    pub(crate) fn emit(&self, kind: EventKind) {
        let _ = self.events.send(Event {
            account: self.id.clone(),
            kind,
        });
    }

    /// Fails when the session is known to be expired.
    pub(crate) fn check_session(&self) -> Result<(), Error> {
        if self.session_expired.load(Ordering::SeqCst) {
            return Err(Error::new(Kind::SessionExpired));
        }
        Ok(())
    }

    /// Records a `-14`.
    pub(crate) fn mark_session_expired(&self) {
        if !self.session_expired.swap(true, Ordering::SeqCst) {
            self.emit(EventKind::SessionExpired);
        }
    }

    /// Replaces the token: a new client on the same transport, and polling
    /// resumes if it had stopped on `-14`.
    pub(crate) fn update_token(&self, token: wxlink_proto::BotToken) -> Result<(), Error> {
        let client = self.builder.clone().token(token).build()?;
        if let Ok(mut c) = self.client.write() {
            *c = client;
        }
        self.token_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Sleeps unless the account is stopped first.
    pub(crate) async fn sleep_or_stop(&self, d: Duration) -> Result<(), Error> {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return Err(Error::new(Kind::Stopped));
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = stop.changed() => Err(Error::new(Kind::Stopped)),
        }
    }

    /// The context token to send to `user` with, or why not to send.
    pub(crate) async fn context_for(
        &self,
        user: &str,
    ) -> Result<wxlink_proto::ContextToken, Error> {
        let record: Option<ContextRecord> = self.store.context(&self.id, user).await?;
        let Some(record) = record.filter(|r| !r.token.is_empty()) else {
            return Err(Error::new(Kind::UserMustWriteFirst));
        };
        if now_ms().saturating_sub(record.seen_at_ms) >= ms(self.options.reply_window) {
            return Err(Error::new(Kind::UserMustWriteFirst));
        }
        Ok(record.token)
    }
}

/// The text a message carries: the first text item, else a voice
/// transcript.
pub(crate) fn message_text(message: &WeixinMessage) -> Option<&str> {
    use wxlink_proto::MessageItemType;
    let items = &message.item_list;
    items
        .iter()
        .find(|i| i.item_type == Some(MessageItemType::Text))
        .and_then(|i| i.text_item.as_ref())
        .and_then(|t| t.text.as_deref())
        .or_else(|| {
            items
                .iter()
                .filter_map(|i| i.voice_item.as_ref())
                .find_map(|v| v.text.as_deref().filter(|t| !t.is_empty()))
        })
}

/// A handler's request for its user's waiting messages.
pub(crate) struct TakeRequest {
    /// The user whose messages are asked for.
    pub(crate) user: String,
    /// Where the runner sends them.
    pub(crate) reply: tokio::sync::oneshot::Sender<Vec<JournalEntry>>,
}
