//! [`Updates`]: the stream of inbound messages that never loses or repeats
//! one.
//!
//! The loop follows the official one (ILINK.md §6.5) with the changes §9
//! asks for:
//!
//! 1. `notifystart`, then the journal's unacknowledged messages (left over
//!    from a crash or a restart) are yielded before anything new.
//! 2. Each long poll waits the hold the server is expected to use plus a
//!    margin (5 s): 35 s plus 5 s for the first poll
//!    ([`FIRST_POLL_TIMEOUT`](crate::client::FIRST_POLL_TIMEOUT)), then the
//!    server's `longpolling_timeout_ms` plus 5 s, so that the server's
//!    answer is never cut off; a client-side timeout is an empty success.
//! 3. The batch is filtered (bot messages, messages without a sender) and
//!    committed to the store **with** the new cursor in one transaction,
//!    de-duplicated there; only then are the new messages yielded.
//! 4. A message leaves the journal when the application acknowledges it
//!    ([`Delivery::ack`]).
//! 5. Failures back off (2 s, 30 s after three in a row, with jitter); a
//!    failing store keeps the batch in memory and retries it before polling
//!    again. `-14` ends the stream with [`RuntimeError::SessionExpired`], or
//!    pauses it when configured to.
//! 6. A shutdown signal or dropping the stream aborts the poll in flight;
//!    `notifystop` is sent best effort with its own 10 s limit.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use wxlink_proto::{MessageItemType, MessageType, WeixinMessage};

use super::api::RuntimeApi;
use super::backoff::{Backoff, BackoffPolicy};
use super::bot::{BotRuntime, blocking, now_ms};
use super::error::RuntimeError;
use super::store::{
    DedupeSettings, InboundBatch, InboundMessage, JournalEntry, JournalKey, Store, fingerprint,
};

/// What the update stream does when the server answers `-14`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnSessionExpired {
    /// Yield [`RuntimeError::SessionExpired`] and end (the default): the
    /// application should start a new QR login.
    #[default]
    Stop,
    /// Yield [`RuntimeError::SessionPaused`], wait this long, then poll
    /// again with the same token (the official client waits 1 h). Sends are
    /// refused during the pause.
    Pause(Duration),
}

/// Options of one update stream.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UpdatesOptions {
    /// The de-duplication windows.
    pub dedupe: DedupeSettings,
    /// The failure backoff.
    pub backoff: BackoffPolicy,
    /// What to do on `-14`.
    pub on_session_expired: OnSessionExpired,
    /// How long the server is expected to hold the first poll (ILINK.md
    /// §6.6: 35 s), until it suggests a hold in `longpolling_timeout_ms`.
    /// The first poll's client-side limit is this **plus**
    /// [`poll_timeout_margin`](Self::poll_timeout_margin), as every later
    /// poll's is the server's hold plus the margin.
    pub poll_timeout: Duration,
    /// Added to every poll's expected hold, so that the server's own answer
    /// wins the race (ILINK.md §6.5 recommends about 5 s; the default is
    /// [`LONG_POLL_MARGIN`](crate::client::LONG_POLL_MARGIN)). A batch
    /// answered as the client's timer fires is lost, since the server counts
    /// it as delivered.
    pub poll_timeout_margin: Duration,
    /// Call `notifystart` before the first poll and `notifystop` at the end.
    pub notify: bool,
}

impl Default for UpdatesOptions {
    fn default() -> Self {
        Self {
            dedupe: DedupeSettings::default(),
            backoff: BackoffPolicy::default(),
            on_session_expired: OnSessionExpired::Stop,
            poll_timeout: Duration::from_millis(wxlink_proto::consts::LONG_POLL_TIMEOUT_MS),
            poll_timeout_margin: crate::client::LONG_POLL_MARGIN,
            notify: true,
        }
    }
}

impl UpdatesOptions {
    /// Sets the failure backoff.
    pub fn backoff(mut self, backoff: BackoffPolicy) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets what to do on `-14`.
    pub fn on_session_expired(mut self, policy: OnSessionExpired) -> Self {
        self.on_session_expired = policy;
        self
    }

    /// Turns on the content-fingerprint window: the same text from the same
    /// sender within `ttl` is dropped even under a new message id (ILINK.md
    /// §10 item 8 suggests 300 s). Off by default, because a user may
    /// really send "ok" twice.
    pub fn fingerprint_window(mut self, ttl: Duration) -> Self {
        self.dedupe.fingerprint_ttl_ms = Some(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// Sets how many exact message ids are remembered.
    pub fn id_window(mut self, ids: usize) -> Self {
        self.dedupe.id_window = ids;
        self
    }

    /// Sets the hold expected for the first poll; the poll waits this plus
    /// the margin.
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Sets the margin added to each poll's expected hold.
    pub fn poll_timeout_margin(mut self, margin: Duration) -> Self {
        self.poll_timeout_margin = margin;
        self
    }

    /// Turns `notifystart`/`notifystop` on or off.
    pub fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }
}

/// One inbound message handed to the application, with its acknowledgement.
///
/// Until [`ack`](Self::ack) is called the message stays in the journal and
/// is yielded again by the next stream over the same store (after a crash or
/// a restart). Dropping a delivery without acknowledging it is allowed.
pub struct Delivery {
    message: WeixinMessage,
    key: JournalKey,
    replayed: bool,
    store: Arc<dyn Store>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // WeixinMessage's Debug redacts the context token.
        f.debug_struct("Delivery")
            .field("key", &self.key)
            .field("replayed", &self.replayed)
            .field("message", &self.message)
            .finish()
    }
}

impl Delivery {
    /// The message.
    pub fn message(&self) -> &WeixinMessage {
        &self.message
    }

    /// The sender's user id.
    pub fn sender(&self) -> &str {
        self.message.from_user_id.as_deref().unwrap_or_default()
    }

    /// The text of the first text item, or a voice item's transcript.
    pub fn text(&self) -> Option<&str> {
        message_text(&self.message)
    }

    /// The message's journal key.
    pub fn key(&self) -> JournalKey {
        self.key
    }

    /// True when the message was journaled by an earlier stream and never
    /// acknowledged (a crash or restart happened in between).
    pub fn is_replay(&self) -> bool {
        self.replayed
    }

    /// Acknowledges the message: it leaves the journal and is never yielded
    /// again.
    pub async fn ack(self) -> Result<(), RuntimeError> {
        let key = self.key;
        blocking(&self.store, move |s| s.acknowledge(key)).await?;
        Ok(())
    }

    /// The message, giving up the acknowledgement (it stays journaled).
    pub fn into_message(self) -> WeixinMessage {
        self.message
    }
}

impl AsRef<WeixinMessage> for Delivery {
    fn as_ref(&self) -> &WeixinMessage {
        &self.message
    }
}

/// The text a message carries: the first text item, else a voice
/// transcript.
pub(crate) fn message_text(message: &WeixinMessage) -> Option<&str> {
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

/// Whether the stream's start and stop calls have happened; shared with the
/// drop handler.
#[derive(Debug, Default)]
struct Lifecycle {
    started: AtomicBool,
    stopped: AtomicBool,
}

/// The boxed shutdown signal.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The stream's state between items.
struct Looper {
    runtime: BotRuntime,
    options: UpdatesOptions,
    life: Arc<Lifecycle>,
    shutdown: Option<Shutdown>,
    started: bool,
    finished: bool,
    cursor: String,
    /// How long the server is expected to hold the next poll: the
    /// configured first hold, then the server's `longpolling_timeout_ms`.
    hold: Duration,
    backoff: Backoff,
    backlog: VecDeque<(JournalEntry, bool)>,
    pending: Option<InboundBatch>,
    pause_until: Option<Instant>,
}

/// How a wait ended.
enum Waited {
    Elapsed,
    Shutdown,
}

impl Looper {
    /// Sleeps for `duration` unless the shutdown signal fires first.
    async fn sleep(&mut self, duration: Duration) -> Waited {
        let sleep = tokio::time::sleep(duration);
        match self.shutdown.as_mut() {
            Some(signal) => tokio::select! {
                _ = sleep => Waited::Elapsed,
                _ = signal => Waited::Shutdown,
            },
            None => {
                sleep.await;
                Waited::Elapsed
            }
        }
    }

    /// Ends the stream: `notifystop` (unless the session expired) and done.
    async fn finish(&mut self, notify_stop: bool) {
        self.finished = true;
        self.life.stopped.store(true, Ordering::SeqCst);
        if notify_stop && self.options.notify && self.life.started.load(Ordering::SeqCst) {
            let timeout = self.runtime.inner.options.call_timeout;
            stop_call(Arc::clone(&self.runtime.inner.api), timeout).await;
        }
    }

    /// Produces the next item, or `None` when the stream is over.
    async fn next_item(&mut self) -> Option<Result<Delivery, RuntimeError>> {
        loop {
            if self.finished {
                return None;
            }
            if !self.started {
                if let Err(err) = self.start().await {
                    // The journal could not be read: report it once and try
                    // again on the next call, after a pause.
                    tracing::warn!(error = %err, "loading the runtime state failed");
                    if let Waited::Shutdown = self.sleep(self.options.backoff.retry_delay).await {
                        self.finish(true).await;
                        return None;
                    }
                    return Some(Err(err));
                }
                continue;
            }
            if let Some((entry, replayed)) = self.backlog.pop_front() {
                match serde_json::from_str::<WeixinMessage>(&entry.json) {
                    Ok(message) => {
                        return Some(Ok(Delivery {
                            message,
                            key: entry.key,
                            replayed,
                            store: self.runtime.store(),
                        }));
                    }
                    Err(err) => {
                        // Only this crate writes the journal, so this means
                        // corruption; the entry stays for inspection.
                        tracing::error!(key = entry.key.0, error = %err, "unreadable journal entry skipped");
                        return Some(Err(RuntimeError::CorruptEntry(err)));
                    }
                }
            }
            if let Some(until) = self.pause_until {
                let now = Instant::now();
                if now < until
                    && let Waited::Shutdown = self.sleep(until - now).await
                {
                    self.finish(true).await;
                    return None;
                }
                self.pause_until = None;
                self.runtime.mark_active();
            }
            if let Some(batch) = self.pending.take() {
                self.commit(batch).await;
                continue;
            }
            if let Some(item) = self.poll_once().await {
                return item;
            }
        }
    }

    /// `notifystart`, the cursor and the journal backlog.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        if self.options.notify && !self.life.started.swap(true, Ordering::SeqCst) {
            let timeout = self.runtime.inner.options.call_timeout;
            let call = self.runtime.inner.api.notify_start();
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "notifystart failed"),
                Err(_) => tracing::warn!("notifystart timed out"),
            }
        }
        let store = self.runtime.store();
        let (cursor, backlog) =
            blocking(&store, |s| Ok((s.cursor()?, s.unacknowledged()?))).await?;
        self.cursor = cursor.unwrap_or_default();
        if !backlog.is_empty() {
            tracing::info!(
                count = backlog.len(),
                "yielding unacknowledged messages first"
            );
        }
        self.backlog.extend(backlog.into_iter().map(|e| (e, true)));
        self.started = true;
        Ok(())
    }

    /// Commits a batch, keeping it for a retry when the store fails.
    async fn commit(&mut self, batch: InboundBatch) {
        let store = self.runtime.store();
        let attempt = batch.clone();
        match blocking(&store, move |s| s.commit_batch(&attempt)).await {
            Ok(outcome) => {
                if let Some(cursor) = batch.cursor.filter(|c| !c.is_empty()) {
                    self.cursor = cursor;
                }
                if outcome.duplicates > 0 {
                    tracing::debug!(count = outcome.duplicates, "duplicate messages dropped");
                }
                if !outcome.accepted.is_empty() {
                    self.runtime.turns_started();
                }
                self.backlog
                    .extend(outcome.accepted.into_iter().map(|e| (e, false)));
            }
            Err(err) => {
                // The server will not send these messages again, so the
                // batch is held here and retried; nothing is polled until
                // it is safe.
                tracing::warn!(error = %err, "journaling a batch failed; retrying");
                self.pending = Some(batch);
                let wait = self.backoff.failed(&mut rand::rng());
                if let Waited::Shutdown = self.sleep(wait).await {
                    tracing::error!(
                        count = self.pending.as_ref().map_or(0, |b| b.messages.len()),
                        "stopping with messages that could not be journaled"
                    );
                    self.finish(true).await;
                }
            }
        }
    }

    /// One long poll. Returns an item to yield, or `None` to go round the
    /// loop again.
    async fn poll_once(&mut self) -> Option<Option<Result<Delivery, RuntimeError>>> {
        let api = Arc::clone(&self.runtime.inner.api);
        let limit = self.hold.saturating_add(self.options.poll_timeout_margin);
        // The facade ends the poll at `limit` with an empty answer; this
        // outer guard, a second later, only matters if it does not.
        let guard = limit.saturating_add(Duration::from_secs(1));
        let call = tokio::time::timeout(guard, api.poll(self.cursor.clone(), limit));
        let outcome = match self.shutdown.as_mut() {
            Some(signal) => tokio::select! {
                outcome = call => Some(outcome),
                _ = signal => None,
            },
            None => Some(call.await),
        };
        let Some(outcome) = outcome else {
            // Dropping `call` aborted the request.
            self.finish(true).await;
            return Some(None);
        };
        let response = match outcome {
            // A client-side timeout is an empty success (ILINK.md §4.4).
            Err(_elapsed) => {
                self.backoff.succeeded();
                return None;
            }
            Ok(Ok(response)) => response,
            Ok(Err(err)) if err.session_expired => {
                return self.session_expired();
            }
            Ok(Err(err)) => {
                let wait = self.backoff.failed(&mut rand::rng());
                tracing::warn!(error = %err, wait_ms = wait.as_millis(), "poll failed; backing off");
                if let Waited::Shutdown = self.sleep(wait).await {
                    self.finish(true).await;
                    return Some(None);
                }
                return None;
            }
        };
        self.backoff.succeeded();
        // A poll that worked proves the session is alive again, even if a
        // send saw `-14` in the meantime.
        self.runtime.mark_active();
        if let Some(ms) = response.longpolling_timeout_ms.filter(|ms| *ms > 0) {
            self.hold = Duration::from_millis(ms.unsigned_abs());
        }
        let batch = self.batch_from(response.msgs, response.get_updates_buf);
        if batch.messages.is_empty() && batch.cursor.as_deref().is_none_or(|c| c == self.cursor) {
            return None;
        }
        self.pending = Some(batch);
        None
    }

    /// Handles `-14` by the configured policy.
    fn session_expired(&mut self) -> Option<Option<Result<Delivery, RuntimeError>>> {
        match self.options.on_session_expired {
            OnSessionExpired::Stop => {
                tracing::warn!("session expired (-14); the update stream ends");
                self.runtime.mark_expired();
                self.finished = true;
                self.life.stopped.store(true, Ordering::SeqCst);
                Some(Some(Err(RuntimeError::SessionExpired)))
            }
            OnSessionExpired::Pause(pause) => {
                tracing::warn!(
                    pause_ms = pause.as_millis(),
                    "session expired (-14); pausing"
                );
                let until = Instant::now() + pause;
                self.runtime.mark_paused(until);
                self.pause_until = Some(until);
                self.backoff.succeeded();
                Some(Some(Err(RuntimeError::SessionPaused { remaining: pause })))
            }
        }
    }

    /// Turns a poll's messages into a batch for the store.
    fn batch_from(&self, msgs: Vec<WeixinMessage>, cursor: Option<String>) -> InboundBatch {
        let bot_id = self.runtime.inner.options.bot_id.clone();
        let mut messages = Vec::with_capacity(msgs.len());
        for message in msgs {
            let sender = message.from_user_id.clone().unwrap_or_default();
            let from_bot = message.message_type == Some(MessageType::Bot)
                || bot_id.as_deref().is_some_and(|id| id == sender);
            if from_bot || sender.is_empty() {
                tracing::debug!(
                    message_id = message.message_id,
                    from_bot,
                    "message skipped (sent by the bot or without a sender)"
                );
                continue;
            }
            let json = match serde_json::to_string(&message) {
                Ok(json) => json,
                Err(err) => {
                    tracing::error!(error = %err, "message could not be serialised; skipped");
                    continue;
                }
            };
            messages.push(InboundMessage {
                message_id: message.message_id,
                fingerprint: message_text(&message).map(|t| fingerprint(&sender, t)),
                context_token: message.context_token.clone().filter(|t| !t.is_empty()),
                sender,
                json,
            });
        }
        InboundBatch {
            cursor: cursor.filter(|c| !c.is_empty()),
            messages,
            now_ms: now_ms(),
            dedupe: self.options.dedupe,
        }
    }
}

/// `notifystop` with its own time limit; failures are only logged.
async fn stop_call(api: Arc<dyn RuntimeApi>, timeout: Duration) {
    match tokio::time::timeout(timeout, api.notify_stop()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "notifystop failed"),
        Err(_) => tracing::warn!("notifystop timed out"),
    }
}

/// The stream of inbound messages of one bot; see the module docs.
///
/// Items are `Ok(Delivery)` for each new (or never acknowledged) message and
/// `Err(..)` for events the application must see: the session expired (the
/// last item) or paused, or the store could not be read. Poll failures are
/// retried with backoff and only logged.
pub struct Updates {
    inner: Pin<Box<dyn Stream<Item = Result<Delivery, RuntimeError>> + Send>>,
    life: Arc<Lifecycle>,
    runtime: BotRuntime,
    notify: bool,
}

impl fmt::Debug for Updates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Updates").finish_non_exhaustive()
    }
}

impl Updates {
    /// A stream over `runtime` that stops when `shutdown` completes.
    pub(crate) fn new(
        runtime: BotRuntime,
        options: UpdatesOptions,
        shutdown: Option<Shutdown>,
    ) -> Self {
        let life = Arc::new(Lifecycle::default());
        let notify = options.notify;
        let looper = Looper {
            runtime: runtime.clone(),
            backoff: Backoff::new(options.backoff),
            hold: options.poll_timeout,
            options,
            life: Arc::clone(&life),
            shutdown,
            started: false,
            finished: false,
            cursor: String::new(),
            backlog: VecDeque::new(),
            pending: None,
            pause_until: None,
        };
        let inner = futures_util::stream::unfold(looper, |mut looper| async move {
            looper.next_item().await.map(|item| (item, looper))
        });
        Self {
            inner: Box::pin(inner),
            life,
            runtime,
            notify,
        }
    }
}

impl Stream for Updates {
    type Item = Result<Delivery, RuntimeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Drop for Updates {
    fn drop(&mut self) {
        // Dropping `inner` aborts a poll in flight. notifystop still goes
        // out, best effort, when the stream had started and not stopped.
        let started = self.life.started.load(Ordering::SeqCst);
        let stopped = self.life.stopped.swap(true, Ordering::SeqCst);
        if self.notify
            && started
            && !stopped
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let api = Arc::clone(&self.runtime.inner.api);
            let timeout = self.runtime.inner.options.call_timeout;
            handle.spawn(stop_call(api, timeout));
        }
    }
}

impl BotRuntime {
    /// The update stream of this bot. It runs until the session expires or
    /// the stream is dropped.
    pub fn updates(&self, options: UpdatesOptions) -> Updates {
        Updates::new(self.clone(), options, None)
    }

    /// The update stream, ending cleanly (poll aborted, `notifystop` sent)
    /// when `shutdown` completes, for example
    /// `token.cancelled_owned()` of a `tokio_util` cancellation token or a
    /// Ctrl-C future.
    pub fn updates_until(
        &self,
        options: UpdatesOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Updates {
        Updates::new(self.clone(), options, Some(Box::pin(shutdown)))
    }

    /// Runs `handler` on each message in turn, acknowledging it when the
    /// handler returns `Ok`. A handler error is logged and the message stays
    /// journaled (it is yielded again by the next run). Returns `Ok` when
    /// `shutdown` completes and the error that ended the stream otherwise
    /// (typically [`RuntimeError::SessionExpired`]).
    pub async fn run<H, Fut, E>(
        &self,
        options: UpdatesOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
        mut handler: H,
    ) -> Result<(), RuntimeError>
    where
        H: FnMut(WeixinMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: fmt::Display,
    {
        use futures_util::StreamExt;
        let mut updates = self.updates_until(options, shutdown);
        let mut last_error = None;
        while let Some(item) = updates.next().await {
            match item {
                Ok(delivery) => {
                    let key = delivery.key();
                    match handler(delivery.message.clone()).await {
                        Ok(()) => delivery.ack().await?,
                        Err(err) => {
                            tracing::warn!(key = key.0, error = %err, "handler failed; message left unacknowledged");
                        }
                    }
                }
                Err(RuntimeError::SessionExpired) => {
                    last_error = Some(RuntimeError::SessionExpired)
                }
                Err(err) => tracing::warn!(error = %err, "update stream reported an error"),
            }
        }
        last_error.map_or(Ok(()), Err)
    }
}
