//! One account's runner: its lease, poll loop, backoff and dispatch.
//!
//! The loop, per account:
//!
//! 1. Claim the lease (or wait for another runner's to expire), load the
//!    cursor and the throttle state, `notifystart`.
//! 2. Long-poll; commit each batch's new messages **with** the new cursor
//!    in one fenced transaction; only then are they handed out.
//! 3. Read the journal from the store page by page, as the handlers need
//!    it (never whole), and dispatch: one handler at a time per user, in
//!    journal order; users and accounts run concurrently up to the host's
//!    bound.
//! 4. A handler's success acknowledges the entry; a failure counts an
//!    attempt (in the store, so across restarts) and is retried after a
//!    pause, the user's later messages waiting behind it; after the last
//!    attempt the entry moves to the dead letters and an event says so.
//! 5. The lease is renewed every third of its time to live, or sooner when
//!    what is left of it is too short for a whole poll: a poll starts only
//!    when it ends before the lease does. A renewal the fence refuses means
//!    another runner took over: polling stops at once and the running
//!    handlers are cancelled (their writes would be refused anyway); a
//!    renewal that keeps failing starts no poll and stops the account when
//!    the lease runs out.
//! 6. `-14` stops polling this account only; a new token
//!    ([`Host::update_token`](crate::Host::update_token)) resumes it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use wxlink_client::WxLinkClient;
use wxlink_proto::{MessageType, WeixinMessage};

use crate::backoff::Backoff;
use crate::events::EventKind;
use crate::handler::{Handler, HandlerError};
use crate::incoming::Incoming;
use crate::options::{ms, now_ms, system_time};
use crate::shared::{Shared, TakeRequest};
use crate::store::{FailureOutcome, InboundBatch, InboundMessage, JournalEntry, JournalKey, Lease};

/// The boxed future of one poll.
type PollFuture =
    Pin<Box<dyn Future<Output = Result<wxlink_client::PollResult, wxlink_client::Error>> + Send>>;

/// What a handler task reports back to the loop.
struct Done {
    user: String,
    entry: JournalEntry,
    outcome: Result<(), String>,
    /// Messages merged into the turn that were handled with it.
    merged_done: usize,
    /// Messages merged into the turn that go back to the user's queue.
    merged_back: Vec<JournalEntry>,
}

/// The per-account dispatch state.
struct Dispatch {
    /// Entries waiting, per user, in journal order.
    queues: HashMap<String, VecDeque<JournalEntry>>,
    /// Users with a handler running or a retry pending.
    busy: HashSet<String>,
    /// Failed entries waiting for their retry time.
    retries: Vec<(Instant, String, JournalEntry)>,
    /// Entries held in memory (queued, running, or waiting for a retry).
    held: usize,
    /// The highest key read from the journal.
    loaded: Option<JournalKey>,
    /// The journal may hold entries past `loaded`.
    more: bool,
}

/// Why [`run_lease`] returned.
enum Exit {
    Stopped,
    LeaseLost,
}

/// The whole life of an account's runner: claim, run, and claim again
/// after a lost lease, until stopped. `first` is the lease `add_account`
/// already took, if any.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    permits: Arc<Semaphore>,
    mut first: Option<Lease>,
) {
    loop {
        let lease = match first.take() {
            Some(lease) => lease,
            None => match claim_when_free(&shared).await {
                Some(lease) => lease,
                None => break,
            },
        };
        match run_lease(&shared, &handler, &permits, lease).await {
            Exit::Stopped => break,
            Exit::LeaseLost => {
                shared.emit(EventKind::LeaseLost);
                continue;
            }
        }
    }
    shared.set_lease(None);
    shared.emit(EventKind::Stopped);
}

/// Claims the lease, waiting for another runner's to expire. `None` when
/// stopped first.
async fn claim_when_free(shared: &Shared) -> Option<Lease> {
    let ttl = ms(shared.options.lease_ttl);
    let mut announced = false;
    loop {
        match shared
            .store
            .claim(&shared.id, &shared.owner, ttl, now_ms())
            .await
        {
            Ok(lease) => return Some(lease),
            Err(err) => {
                let wait = match err.leased_by() {
                    Some((owner, expires_at_ms)) => {
                        if !announced {
                            shared.emit(EventKind::Leased {
                                owner: owner.to_owned(),
                                until: system_time(expires_at_ms),
                            });
                            announced = true;
                        }
                        let left = (expires_at_ms - now_ms()).max(1).unsigned_abs();
                        Duration::from_millis(left).min(shared.options.lease_ttl / 2)
                            + Duration::from_millis(5)
                    }
                    _ => {
                        tracing::warn!(account = %shared.id, error = %err, "claiming the lease failed");
                        shared.options.backoff.retry_delay
                    }
                };
                if shared.sleep_or_stop(wait).await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// Runs the account while `lease` holds.
async fn run_lease(
    shared: &Arc<Shared>,
    handler: &Arc<dyn Handler>,
    permits: &Arc<Semaphore>,
    lease: Lease,
) -> Exit {
    let mut lease = lease;
    shared.set_lease(Some(lease.clone()));
    shared.emit(EventKind::Started { epoch: lease.epoch });
    let mut stop = shared.stop.clone();
    let mut tokens = shared.token_changed.subscribe();
    let ttl = shared.options.lease_ttl;
    let mut renew_at = Instant::now() + ttl / 3;
    // Until when this runner may be sure it holds the lease, by its own
    // clock; a poll must end before then (see `poll_limit`).
    let mut renew_failed = false;
    let mut valid_until = Instant::now()
        + Duration::from_millis(
            lease
                .expires_at_ms
                .saturating_sub(now_ms())
                .max(0)
                .unsigned_abs(),
        );

    // State from the store: cursor, throttle.
    let mut cursor = loop {
        match shared.store.cursor(&shared.id).await {
            Ok(c) => break c.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(account = %shared.id, error = %err, "reading the cursor failed");
                if shared
                    .sleep_or_stop(shared.options.backoff.retry_delay)
                    .await
                    .is_err()
                {
                    return Exit::Stopped;
                }
            }
        }
    };
    if let Ok(t) = shared.store.throttle(&shared.id).await {
        shared.limiter.load_throttle(t);
    }
    if shared.options.notify
        && let Err(err) = shared.client().notify_start().await
    {
        tracing::warn!(account = %shared.id, error = %err, "notifystart failed");
    }

    let mut backoff = Backoff::new(shared.options.backoff);
    let mut dispatch = Dispatch {
        queues: HashMap::new(),
        busy: HashSet::new(),
        retries: Vec::new(),
        held: 0,
        loaded: None,
        more: true,
    };
    // Boxed messages: a channel allocates its first block of 32 slots at
    // once, which for `Done` held inline is about 8 KiB per idle account.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Box<Done>>();
    let (take_tx, mut take_rx) = mpsc::unbounded_channel::<Box<TakeRequest>>();
    if let Ok(mut takes) = shared.takes.lock() {
        *takes = Some(take_tx);
    }
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut poll: Option<PollFuture> = None;
    let mut pause_until: Option<Instant> = None;
    let page = shared.options.backlog_page.max(1);

    let exit = loop {
        // Read more of the journal while there is room.
        if dispatch.more && dispatch.held < page {
            match shared
                .store
                .pending(&shared.id, dispatch.loaded, page - dispatch.held)
                .await
            {
                Ok(entries) => {
                    dispatch.more = entries.len() >= page - dispatch.held;
                    for entry in entries {
                        dispatch.loaded = Some(entry.key);
                        dispatch.held += 1;
                        dispatch
                            .queues
                            .entry(entry.sender.clone())
                            .or_default()
                            .push_back(entry);
                    }
                }
                Err(err) => {
                    tracing::warn!(account = %shared.id, error = %err, "reading the journal failed");
                }
            }
        }
        // Retries that are due go back to the front of their user's queue.
        let now = Instant::now();
        let mut i = 0;
        while i < dispatch.retries.len() {
            if dispatch.retries[i].0 <= now {
                let (_, user, entry) = dispatch.retries.swap_remove(i);
                dispatch.busy.remove(&user);
                dispatch.queues.entry(user).or_default().push_front(entry);
            } else {
                i += 1;
            }
        }
        // Start a handler for every idle user with work.
        let ready: Vec<String> = dispatch
            .queues
            .iter()
            .filter(|(u, q)| !q.is_empty() && !dispatch.busy.contains(*u))
            .map(|(u, _)| u.clone())
            .collect();
        for user in ready {
            let Some(entry) = dispatch.queues.get_mut(&user).and_then(VecDeque::pop_front) else {
                continue;
            };
            if dispatch.queues.get(&user).is_some_and(VecDeque::is_empty) {
                dispatch.queues.remove(&user);
            }
            dispatch.busy.insert(user.clone());
            tasks.spawn(run_handler(
                Arc::clone(shared),
                Arc::clone(handler),
                Arc::clone(permits),
                lease.clone(),
                user,
                entry,
                done_tx.clone(),
            ));
        }
        // Poll when the session is live, nothing waits to be read and no
        // pause is running.
        let session_ok = shared.check_session().is_ok();
        let paused = pause_until.is_some_and(|t| Instant::now() < t);
        if poll.is_none() && session_ok && !paused && !dispatch.more && dispatch.held < page {
            let client = shared.client();
            if poll_limit(&client, ttl, valid_until).is_some() {
                let from = cursor.clone();
                poll = Some(Box::pin(async move { client.poll(from).await }));
            } else if !renew_failed {
                // Too little of the lease is left for a whole poll: renew
                // now rather than at the third.
                renew_at = renew_at.min(Instant::now());
            }
        }
        let next_retry = dispatch.retries.iter().map(|r| r.0).min();
        let wake = [next_retry, pause_until.filter(|_| paused)]
            .into_iter()
            .flatten()
            .min();

        tokio::select! {
            _ = stop.changed() => break Exit::Stopped,
            _ = tokio::time::sleep_until(renew_at) => {
                let asked = Instant::now();
                match shared.store.renew(&lease, ms(ttl), now_ms()).await {
                    Ok(renewed) => {
                        lease = renewed;
                        shared.set_lease(Some(lease.clone()));
                        valid_until = asked + ttl;
                        renew_failed = false;
                        renew_at = Instant::now() + ttl / 3;
                    }
                    Err(err) if err.is_fenced() => break Exit::LeaseLost,
                    Err(err) => {
                        tracing::warn!(account = %shared.id, error = %err, "renewing the lease failed");
                        // No poll starts until a renewal works (the lease
                        // may run out); at the end of the lease the account
                        // stops, since another runner may take it then.
                        if Instant::now() + lease_margin(ttl) >= valid_until {
                            break Exit::LeaseLost;
                        }
                        renew_failed = true;
                        renew_at = Instant::now() + Duration::from_millis(200).min(ttl / 10);
                    }
                }
            }
            _ = tokens.changed() => {
                if shared.session_expired.swap(false, Ordering::SeqCst) {
                    shared.emit(EventKind::Resumed);
                }
                // A poll in flight with the old token is dropped.
                poll = None;
            }
            Some(take) = take_rx.recv() => {
                // The entries stay held: the handler that took them
                // acknowledges them or gives them back.
                let taken: Vec<JournalEntry> = dispatch
                    .queues
                    .remove(&take.user)
                    .map(Vec::from)
                    .unwrap_or_default();
                if let Err(taken) = take.reply.send(taken) {
                    dispatch.queues.insert(take.user, taken.into());
                }
            }
            _ = shared.requeue_signal.notified() => {
                let keys: Vec<JournalKey> = shared
                    .requeued
                    .lock()
                    .map(|mut k| std::mem::take(&mut *k))
                    .unwrap_or_default();
                for key in keys {
                    let before = JournalKey(key.0.saturating_sub(1));
                    match shared.store.pending(&shared.id, Some(before), 1).await {
                        Ok(mut found) if found.first().is_some_and(|e| e.key == key) => {
                            let entry = found.remove(0);
                            dispatch.held += 1;
                            dispatch.queues.entry(entry.sender.clone()).or_default().push_back(entry);
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(account = %shared.id, error = %err, "loading a re-queued message failed; it runs after a restart"),
                    }
                }
            }
            Some(done) = done_rx.recv() => {
                finish(shared, &mut dispatch, *done, shared.options.retry_delay).await;
            }
            _ = async { tasks.join_next().await }, if !tasks.is_empty() => {}
            _ = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
            result = async {
                match poll.as_mut() {
                    Some(p) => p.await,
                    None => std::future::pending().await,
                }
            } => {
                poll = None;
                match result {
                    Ok(polled) => {
                        backoff.succeeded();
                        let next = polled.next_cursor.clone();
                        let batch = InboundBatch {
                            cursor: Some(next.clone()).filter(|c| !c.is_empty() && *c != cursor),
                            messages: inbound(&polled.response.msgs),
                            now_ms: now_ms(),
                            id_window: shared.options.id_window,
                        };
                        if batch.messages.is_empty() && batch.cursor.is_none() {
                            continue;
                        }
                        // The server will not send these again: commit until
                        // it works, or until the lease is gone.
                        let mut lost = false;
                        loop {
                            match shared.store.commit_batch(&lease, &batch).await {
                                Ok(outcome) => {
                                    if !next.is_empty() {
                                        cursor = next.clone();
                                    }
                                    if !outcome.accepted.is_empty() {
                                        dispatch.more = true;
                                    }
                                    break;
                                }
                                Err(err) if err.is_fenced() => {
                                    tracing::error!(account = %shared.id, count = batch.messages.len(), "lease lost with a polled batch; the new runner will not see it");
                                    lost = true;
                                    break;
                                }
                                Err(err) => {
                                    tracing::warn!(account = %shared.id, error = %err, "journaling a batch failed; retrying");
                                    if shared.sleep_or_stop(shared.options.backoff.retry_delay).await.is_err() {
                                        tracing::error!(account = %shared.id, count = batch.messages.len(), "stopping with messages that could not be journaled");
                                        break;
                                    }
                                }
                            }
                        }
                        if lost {
                            break Exit::LeaseLost;
                        }
                    }
                    Err(err) if err.is_session_expired() => {
                        tracing::warn!(account = %shared.id, "session expired; polling stops until a new token");
                        shared.mark_session_expired();
                    }
                    Err(err) => {
                        let wait = backoff.failed(&mut rand::rng());
                        tracing::debug!(account = %shared.id, error = %err, ?wait, "poll failed");
                        shared.emit(EventKind::PollFailed { error: err.to_string() });
                        pause_until = Some(Instant::now() + wait);
                    }
                }
            }
        }
    };
    // A stop (a handover to another runner, a shutdown) lets the poll in
    // flight end and journals its batch: the server counts a batch as
    // delivered once it sent it, so a poll dropped now could take messages
    // with it. The poll ends before the lease does (see `poll_limit`).
    if let (Exit::Stopped, Some(pending)) = (&exit, poll.take())
        && let Ok(polled) = pending.await
    {
        let batch = InboundBatch {
            cursor: Some(polled.next_cursor.clone()).filter(|c| !c.is_empty() && *c != cursor),
            messages: inbound(&polled.response.msgs),
            now_ms: now_ms(),
            id_window: shared.options.id_window,
        };
        if (!batch.messages.is_empty() || batch.cursor.is_some())
            && let Err(err) = shared.store.commit_batch(&lease, &batch).await
        {
            tracing::error!(account = %shared.id, error = %err, count = batch.messages.len(), "journaling the last batch before stopping failed");
        }
    }
    // On a stop the running handlers may finish (and acknowledge) while
    // the lease still holds, so that a handover does not hand the next
    // runner a message that was handled already. Aborting the rest drops
    // their sends in flight; nothing they did is lost, since their entries
    // stay in the journal.
    if matches!(exit, Exit::Stopped) && !tasks.is_empty() {
        let left = valid_until
            .checked_duration_since(Instant::now())
            .and_then(|d| d.checked_sub(lease_margin(ttl)))
            .unwrap_or_default()
            .min(HANDLER_GRACE);
        let _ =
            tokio::time::timeout(left, async { while tasks.join_next().await.is_some() {} }).await;
    }
    tasks.abort_all();
    drop(poll);
    if let Ok(mut takes) = shared.takes.lock() {
        *takes = None;
    }
    match exit {
        Exit::Stopped => {
            if shared.options.notify {
                let client = shared.client();
                let _ = tokio::time::timeout(Duration::from_secs(10), client.notify_stop()).await;
            }
            if let Err(err) = shared.store.release(&lease).await {
                tracing::debug!(account = %shared.id, error = %err, "releasing the lease failed");
            }
        }
        Exit::LeaseLost => {
            tracing::warn!(account = %shared.id, "lease lost; another runner holds the account");
        }
    }
    shared.set_lease(None);
    exit
}

/// How long a stopping account waits for its running handlers at most.
const HANDLER_GRACE: Duration = Duration::from_secs(5);

/// The time a lease keeps in reserve at its end: no poll may run into it.
fn lease_margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(20))
}

/// Whether a poll may start now under a lease held until `valid_until`
/// (`None`: renew first).
///
/// A poll that outlasts the lease could take a batch from the server
/// after another runner took the account over, and the server sends a
/// batch only once: so a poll starts only when the client's whole limit
/// ends before the lease (less [`lease_margin`]); otherwise the account
/// renews first. A lease too short for even one whole poll (`ttl` not
/// above the limit and the margin) cannot give that guarantee; its polls
/// start anyway, whole, since cutting a poll short loses the batch the
/// server sends as it is cut: give a lease longer than the poll limit.
fn poll_limit(client: &WxLinkClient, ttl: Duration, valid_until: Instant) -> Option<()> {
    let margin = lease_margin(ttl);
    let left = valid_until
        .checked_duration_since(Instant::now())?
        .checked_sub(margin)?;
    match client.next_poll_timeout() {
        Some(limit) if limit > left && limit + margin < ttl => None,
        _ => Some(()),
    }
}

/// The user messages of a poll as store records (bot messages and
/// messages without a sender are dropped).
fn inbound(msgs: &[WeixinMessage]) -> Vec<InboundMessage> {
    msgs.iter()
        .filter(|m| m.message_type != Some(MessageType::Bot))
        .filter_map(|m| {
            let sender = m.from_user_id.clone().filter(|s| !s.is_empty())?;
            let json = serde_json::to_string(m).ok()?;
            Some(InboundMessage {
                message_id: m.message_id,
                sender,
                context_token: m.context_token.clone(),
                json,
            })
        })
        .collect()
}

/// Applies a handler's outcome to the dispatch state.
async fn finish(shared: &Shared, dispatch: &mut Dispatch, done: Done, retry: Duration) {
    dispatch.held = dispatch.held.saturating_sub(done.merged_done);
    if !done.merged_back.is_empty() {
        // Later messages than the turn's own: back to the front of the
        // user's queue, in order, behind any retry of the turn.
        let queue = dispatch.queues.entry(done.user.clone()).or_default();
        for entry in done.merged_back.into_iter().rev() {
            queue.push_front(entry);
        }
    }
    match done.outcome {
        Ok(()) => {
            dispatch.held = dispatch.held.saturating_sub(1);
            dispatch.busy.remove(&done.user);
        }
        Err(_) => {
            // The attempt was counted by the task; wait, then try again,
            // the user's later messages behind it.
            dispatch
                .retries
                .push((Instant::now() + retry, done.user, done.entry));
        }
    }
    let _ = shared;
}

/// Runs the handler for one entry, then acknowledges it or records the
/// failure.
async fn run_handler(
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    permits: Arc<Semaphore>,
    lease: Lease,
    user: String,
    entry: JournalEntry,
    done: mpsc::UnboundedSender<Box<Done>>,
) {
    let Ok(_permit) = permits.acquire_owned().await else {
        return;
    };
    let merged: Arc<Mutex<Vec<JournalEntry>>> = Arc::default();
    let outcome = match serde_json::from_str::<WeixinMessage>(&entry.json) {
        Ok(message) => {
            let incoming = Incoming::new(
                Arc::clone(&shared),
                entry.clone(),
                message,
                Arc::clone(&merged),
            );
            // The handler runs in its own task so that a panic is an
            // attempt that failed, not a dead runner.
            let task = tokio::spawn({
                let handler = Arc::clone(&handler);
                async move { handler.handle(incoming).await }
            });
            match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(describe(&err)),
                Err(join) if join.is_panic() => Err("handler panicked".to_owned()),
                Err(_) => return,
            }
        }
        Err(err) => Err(format!("journal entry is not a valid message: {err}")),
    };
    let merged: Vec<JournalEntry> = merged
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_default();
    let (mut merged_done, mut merged_back) = (0, Vec::new());
    if outcome.is_ok() {
        for extra in merged {
            match shared.store.acknowledge(&lease, extra.key).await {
                Err(err) if err.is_fenced() => return,
                Err(err) => {
                    tracing::warn!(account = %shared.id, key = extra.key.0, error = %err, "acknowledging a merged message failed; it stays journaled");
                    merged_done += 1;
                }
                Ok(_) => merged_done += 1,
            }
        }
    } else {
        merged_back = merged;
    }
    let report = match outcome {
        Ok(()) => match shared.store.acknowledge(&lease, entry.key).await {
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(account = %shared.id, key = entry.key.0, error = %err, "acknowledging failed; the message stays journaled");
                if err.is_fenced() {
                    return;
                }
                // Counted as handled in memory; it is replayed after a
                // restart, where the accepted replies are skipped.
                Ok(())
            }
        },
        Err(error) => {
            tracing::warn!(account = %shared.id, key = entry.key.0, %error, "handler failed");
            match shared
                .store
                .record_failure(
                    &lease,
                    entry.key,
                    &error,
                    shared.options.max_attempts,
                    now_ms(),
                )
                .await
            {
                Ok(FailureOutcome::DeadLettered { attempts }) => {
                    shared.emit(EventKind::DeadLettered {
                        key: entry.key,
                        message_id: entry.message_id,
                        attempts,
                        error: error.clone(),
                    });
                    Ok(())
                }
                Ok(FailureOutcome::Missing) => Ok(()),
                Ok(FailureOutcome::Retry { .. }) => Err(error),
                Err(err) if err.is_fenced() => return,
                Err(_) => Err(error),
            }
        }
    };
    // The entry comes back from the store with its new attempt count.
    let entry = match &report {
        Err(_) => refreshed(&shared, entry).await,
        Ok(()) => entry,
    };
    let _ = done.send(Box::new(Done {
        user,
        entry,
        outcome: report,
        merged_done,
        merged_back,
    }));
}

/// The entry as the store has it now (attempts, accepted replies), or as
/// it was when the store cannot say.
async fn refreshed(shared: &Shared, entry: JournalEntry) -> JournalEntry {
    let before = JournalKey(entry.key.0.saturating_sub(1));
    match shared.store.pending(&shared.id, Some(before), 1).await {
        Ok(mut list) if list.first().is_some_and(|e| e.key == entry.key) => list.remove(0),
        _ => entry,
    }
}

/// A handler error as one line, with its causes.
fn describe(err: &HandlerError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
