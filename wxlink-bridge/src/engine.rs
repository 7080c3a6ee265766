//! The turn engine: how inbound messages become turns and answers become
//! messages, independent of where messages come from and go to.
//!
//! [`Engine::dispatch`] takes an [`Inbound`] message. The engine keeps one
//! queue per (account, user):
//!
//! - **One turn at a time per user, in order.** While the agent works on a
//!   user's turn, that user's new messages wait. When the turn is done, all
//!   of them go to the agent together as the next turn (texts joined by
//!   line breaks, media concatenated, every id in
//!   [`Turn::message_ids`](crate::Turn::message_ids)). A user who sends
//!   three quick messages gets one answer to all three instead of three
//!   answers to fragments, and nothing they said is dropped. Commands are
//!   never merged: `/reset` and `/help` are handled in their place in the
//!   order.
//! - **Users run concurrently**, up to [`EngineOptions::max_concurrent_turns`]
//!   turns at once across all users and accounts.
//! - **Failures**: an agent call that times out
//!   ([`EngineOptions::agent_timeout`]), fails or answers something
//!   unreadable is tried again, up to [`EngineOptions::attempts`] times,
//!   [`EngineOptions::retry_delay`] apart. The user gets
//!   [`EngineOptions::failure_notice`] once, at the first failure, and
//!   [`EngineOptions::give_up_notice`] when the last attempt failed; then the
//!   turn's messages are settled as failed, which dead-letters them in the
//!   runtime. When the runtime counts attempts itself
//!   ([`Inbound::attempt`], as the bot runtime does, across restarts), each
//!   delivery makes one agent call and a failure is settled as failed for
//!   the runtime to retry; the notices are the same.
//! - **Reply indexes** count the messages of one delivery from 0 in the
//!   order they are sent, notices included. A retried delivery sends the
//!   failure notice again first as message 0, which the runtime skips as
//!   already accepted, so the answer's messages keep their indexes.
//! - **Typing** is shown before the agent is called and stays on while it
//!   works; it is cancelled once the reply has been sent.
//! - **Replies** are filtered (optionally, [`EngineOptions::markdown_filter`])
//!   and chunked with [`chunk_markdown`] at
//!   [`EngineOptions::chunk_chars`]; each chunk, then each media file, goes
//!   out through the [`Outbox`] with its index in the reply, so the runtime
//!   can pace and budget it and skip what it already sent before a crash.
//! - **The reply budget.** The server delivers only about ten replies per
//!   inbound message, and the runtime enforces that budget
//!   ([`Inbound::reply_budget`]). An answer that needs more messages than
//!   the budget leaves is cut, never silently dropped: the last message the
//!   budget allows is [`EngineOptions::more_notice`], which says how many
//!   messages remain and that `/more` sends them, and the remainder waits
//!   in a bounded queue, one per user in memory (at most
//!   [`MAX_HELD_MESSAGES`] messages each, [`MAX_HELD_USERS`] users). The
//!   user's `/more` is an inbound message with a budget of its own, so it
//!   sends the next part, cut again if it is still too long. A newer cut
//!   answer replaces an older remainder, `/reset` forgets it, and a restart
//!   loses it (it is not journaled); each of these is logged. A send the
//!   runtime refuses by policy half-way keeps the unsent rest the same way.
//! - **Refused media.** A reply file outside the media directory, or a URL
//!   whose host resolves to a loopback, private, link-local or cloud
//!   metadata address (refused by the runtime's fetch policy), is not sent;
//!   the reason is logged in full, and the user gets
//!   [`EngineOptions::media_notice`] in its place instead of silence.
//! - An **allow-list** per account: messages from anyone else are settled
//!   without a reply and logged. An account without a list allows everyone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::agent::{Agent, BoxFuture};
use crate::error::{Error, Kind};
use crate::markdown::{DEFAULT_CHUNK_CHARS, chunk_markdown, filter_markdown};
use crate::metrics::Metrics;
use crate::turn::{Reply, ReplyMedia, Turn, TurnMedia};
use crate::webhook::{DeferredReply, ReplySink};

/// The most messages of a cut answer kept for one user's `/more`.
pub const MAX_HELD_MESSAGES: usize = 200;
/// The most users whose cut answers are kept at once; past it, the oldest
/// remainder is forgotten (and logged).
pub const MAX_HELD_USERS: usize = 10_000;

/// How an inbound message is settled with the runtime once the bridge is
/// done with it.
pub trait Settle: Send + 'static {
    /// The message was handled (answered, or deliberately not answered).
    fn done(self: Box<Self>) -> BoxFuture<'static, ()>;
    /// Every attempt failed; `reason` says why. The runtime dead-letters
    /// the message.
    fn failed(self: Box<Self>, reason: String) -> BoxFuture<'static, ()>;
}

/// An inbound message for the bridge.
#[non_exhaustive]
pub struct Inbound {
    /// The bot account it came to.
    pub account: String,
    /// Who sent it.
    pub user: String,
    /// Its id.
    pub message_id: u64,
    /// Its text (for voice, the transcript).
    pub text: String,
    /// The text of the message it quotes, when known.
    pub quote: Option<String>,
    /// Its media, downloaded.
    pub media: Vec<TurnMedia>,
    /// Which delivery attempt this is, when the runtime counts attempts
    /// (and retries and dead-letters); `None` lets the engine retry by
    /// itself ([`EngineOptions::attempts`]).
    pub attempt: Option<DeliveryAttempt>,
    /// How many messages the runtime lets this delivery send in all (its
    /// reply budget, notices included); `None` is no limit.
    pub reply_budget: Option<u32>,
    /// How to settle it.
    pub settle: Box<dyn Settle>,
}

/// A delivery attempt the runtime counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// This attempt, from 1.
    pub number: u32,
    /// The last attempt before the message is dead-lettered.
    pub max: u32,
}

impl DeliveryAttempt {
    /// Attempt `number` of `max`.
    pub fn new(number: u32, max: u32) -> Self {
        Self { number, max }
    }
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("message_id", &self.message_id)
            .field("text_chars", &self.text.chars().count())
            .field("media", &self.media.len())
            .finish_non_exhaustive()
    }
}

impl Inbound {
    /// A text message.
    pub fn new(
        account: impl Into<String>,
        user: impl Into<String>,
        message_id: u64,
        text: impl Into<String>,
        settle: Box<dyn Settle>,
    ) -> Self {
        Self {
            account: account.into(),
            user: user.into(),
            message_id,
            text: text.into(),
            quote: None,
            media: Vec::new(),
            attempt: None,
            reply_budget: None,
            settle,
        }
    }

    /// Says how many messages the runtime lets this delivery send.
    #[must_use]
    pub fn reply_budget(mut self, budget: u32) -> Self {
        self.reply_budget = Some(budget);
        self
    }

    /// Says which attempt the runtime counts this delivery as.
    #[must_use]
    pub fn attempt(mut self, attempt: DeliveryAttempt) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Sets the quoted text.
    #[must_use]
    pub fn quote(mut self, quote: Option<String>) -> Self {
        self.quote = quote;
        self
    }

    /// Sets the media.
    #[must_use]
    pub fn media(mut self, media: Vec<TurnMedia>) -> Self {
        self.media = media;
        self
    }
}

/// Whom a message goes to and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyTo {
    /// The bot account that sends.
    pub account: String,
    /// The user it goes to.
    pub user: String,
    /// The inbound message it answers (the last of the turn); `None` for a
    /// proactive push.
    pub message_id: Option<u64>,
}

/// "typing…" for one user, shown until [`stop`](Self::stop).
pub trait Typing: Send + 'static {
    /// Cancels the indicator.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Where replies go: the runtime, which paces, budgets and sends them.
///
/// A send that fails returns [`Error::send`]; one the runtime refuses by
/// policy returns [`Error::refused`], and the engine holds the rest of the
/// reply for `/more` instead of sending it again; a media file the outbox
/// refuses returns [`Error::media_refused`], and the engine sends a notice
/// in its place.
pub trait Outbox: Send + Sync + 'static {
    /// Shows "typing…" to the user and keeps it alive until the returned
    /// guard is stopped. Failures are the outbox's to log: typing is
    /// cosmetic.
    fn typing<'a>(&'a self, to: &'a ReplyTo) -> BoxFuture<'a, Box<dyn Typing>>;

    /// Sends one text message, number `index` of the reply.
    fn send_text<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        text: String,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Sends one media file, number `index` of the reply. A path has been
    /// checked to lie inside the media directory; a URL is fetched by the
    /// outbox with its address checks.
    fn send_media<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        media: &'a ReplyMedia,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Sends one media file as message `index` or, when it is refused
    /// ([`Error::is_media_refused`]), `notice` in its place as that same
    /// message. The default sends the notice after the refusal; an outbox
    /// whose runtime counts the refused attempt against a budget should
    /// send both under one permit, so that the refusal costs one message.
    fn send_media_or<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        media: &'a ReplyMedia,
        notice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<MediaOutcome, Error>> {
        Box::pin(async move {
            match self.send_media(to, index, media).await {
                Ok(()) => Ok(MediaOutcome::Sent),
                Err(err) if err.is_media_refused() => {
                    if let Some(notice) = notice {
                        self.send_text(to, index, notice.to_owned()).await?;
                    }
                    Ok(MediaOutcome::Refused(err))
                }
                Err(err) => Err(err),
            }
        })
    }
}

/// What became of a media message ([`Outbox::send_media_or`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaOutcome {
    /// The file went out.
    Sent,
    /// The file was refused for the reason given; the notice, if any, went
    /// out in its place.
    Refused(Error),
}

/// Settings of the [`Engine`]; see the [module docs](self).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Characters per text message (default 2 000).
    pub chunk_chars: usize,
    /// Apply [`filter_markdown`] to answers (default off).
    pub markdown_filter: bool,
    /// How long one agent call may take (default 120 s).
    pub agent_timeout: Duration,
    /// Agent calls per turn before it is given up (default 3).
    pub attempts: u32,
    /// The pause between attempts (default 2 s).
    pub retry_delay: Duration,
    /// Sent at a turn's first failure; `None` sends nothing.
    pub failure_notice: Option<String>,
    /// Sent when a turn is given up; `None` sends nothing.
    pub give_up_notice: Option<String>,
    /// The answer to `/help`.
    pub help_text: String,
    /// The answer to `/reset`.
    pub reset_text: String,
    /// Users allowed per account; an account not in the map allows all.
    pub allow: HashMap<String, HashSet<String>>,
    /// Turns answered at once, across users and accounts (default 64).
    pub max_concurrent_turns: usize,
    /// Where reply files may come from; `None` refuses every path.
    pub media_dir: Option<PathBuf>,
    /// The last message of an answer cut at the reply budget; `{n}` is
    /// replaced by the number of messages waiting for `/more`.
    pub more_notice: String,
    /// The answer to `/more` when nothing waits.
    pub nothing_more_text: String,
    /// Sent in place of a reply file or URL that is refused; `None` sends
    /// nothing.
    pub media_notice: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            chunk_chars: DEFAULT_CHUNK_CHARS,
            markdown_filter: false,
            agent_timeout: Duration::from_secs(120),
            attempts: 3,
            retry_delay: Duration::from_secs(2),
            failure_notice: Some("Sorry, something went wrong. Trying again…".to_owned()),
            give_up_notice: Some(
                "Sorry, I could not answer that. Please try again later.".to_owned(),
            ),
            help_text: "Commands:\n/reset – forget our conversation\n/more – the rest of a long answer\n/help – this list".to_owned(),
            reset_text: "Our conversation is cleared.".to_owned(),
            allow: HashMap::new(),
            max_concurrent_turns: 64,
            media_dir: None,
            more_notice: "(The answer is cut here: {n} more messages are waiting. Send /more to get them.)".to_owned(),
            nothing_more_text: "There is nothing more to send.".to_owned(),
            media_notice: Some("(A file in this answer could not be sent.)".to_owned()),
        }
    }
}

impl EngineOptions {
    fn allows(&self, account: &str, user: &str) -> bool {
        self.allow
            .get(account)
            .is_none_or(|users| users.contains(user))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Reset,
    Help,
    More,
}

fn command(text: &str) -> Option<Command> {
    match text.trim() {
        "/reset" => Some(Command::Reset),
        "/help" => Some(Command::Help),
        "/more" => Some(Command::More),
        _ => None,
    }
}

/// One message of a reply.
#[derive(Debug, Clone)]
enum Item {
    Text(String),
    Media(ReplyMedia),
}

/// The rest of a cut answer, waiting for the user's `/more`.
struct Held {
    items: VecDeque<Item>,
    since: Instant,
}

type UserKey = (String, String);

struct Shared {
    agent: Arc<dyn Agent>,
    outbox: Arc<dyn Outbox>,
    options: EngineOptions,
    metrics: Arc<Metrics>,
    queues: Mutex<HashMap<UserKey, VecDeque<Inbound>>>,
    permits: Arc<Semaphore>,
    /// The next reply index for replies sent later through the send
    /// endpoint, per (account, message).
    deferred_index: Mutex<HashMap<(String, u64), u32>>,
    /// Cut answers' remainders, per (account, user).
    held: Mutex<HashMap<UserKey, Held>>,
    idle: tokio::sync::Notify,
}

/// The turn engine; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("agent", &self.shared.agent.name())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// Replies sent later get indexes from here on, clear of a turn's own.
const DEFERRED_INDEX_BASE: u32 = 1000;

impl Engine {
    /// An engine answering with `agent` and sending through `outbox`.
    pub fn new(agent: Arc<dyn Agent>, outbox: Arc<dyn Outbox>, options: EngineOptions) -> Self {
        Self::with_metrics(agent, outbox, options, Arc::new(Metrics::new()))
    }

    /// The same, recording into `metrics`.
    pub fn with_metrics(
        agent: Arc<dyn Agent>,
        outbox: Arc<dyn Outbox>,
        options: EngineOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(options.max_concurrent_turns.max(1)));
        Self {
            shared: Arc::new(Shared {
                agent,
                outbox,
                options,
                metrics,
                queues: Mutex::new(HashMap::new()),
                permits,
                deferred_index: Mutex::new(HashMap::new()),
                held: Mutex::new(HashMap::new()),
                idle: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The metrics it records.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Takes an inbound message: queues it behind the user's turn in
    /// progress, or starts a turn. Returns at once.
    pub fn dispatch(&self, inbound: Inbound) {
        self.dispatch_all(vec![inbound]);
    }

    /// Takes several messages of one or more users at once: each user's
    /// are queued together, so those of one user go into one turn when no
    /// turn of theirs is in progress.
    pub fn dispatch_all(&self, batch: Vec<Inbound>) {
        let Ok(mut queues) = self.shared.queues.lock() else {
            tracing::error!("the engine's queue lock is poisoned; messages stay unsettled");
            return;
        };
        for inbound in batch {
            let key = (inbound.account.clone(), inbound.user.clone());
            match queues.get_mut(&key) {
                Some(queue) => queue.push_back(inbound),
                None => {
                    queues.insert(key.clone(), VecDeque::from([inbound]));
                    let shared = self.shared.clone();
                    tokio::spawn(async move { worker(shared, key).await });
                }
            }
        }
    }

    /// How many messages are queued or in a turn now.
    pub fn pending(&self) -> usize {
        self.shared
            .queues
            .lock()
            .map(|q| q.values().map(VecDeque::len).sum::<usize>() + q.len())
            .unwrap_or(0)
    }

    /// How many messages of cut answers wait for `user`'s `/more`.
    pub fn held(&self, account: &str, user: &str) -> usize {
        self.shared
            .held
            .lock()
            .ok()
            .and_then(|h| {
                h.get(&(account.to_owned(), user.to_owned()))
                    .map(|held| held.items.len())
            })
            .unwrap_or(0)
    }

    /// Waits until no turn is in progress or queued.
    pub async fn idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self
                .shared
                .queues
                .lock()
                .map(|q| q.is_empty())
                .unwrap_or(true)
            {
                return;
            }
            notified.await;
        }
    }
}

impl ReplySink for Engine {
    fn deliver(&self, reply: DeferredReply) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let to = ReplyTo {
                account: reply.account,
                user: reply.user,
                message_id: reply.message_id,
            };
            let count = reply_items(&self.shared.options, &reply.reply);
            let base = match to.message_id {
                Some(id) => {
                    let mut map = self.shared.deferred_index.lock().map_err(|_| {
                        Error::new(Kind::Send, "the engine's index lock is poisoned")
                    })?;
                    let next = map
                        .entry((to.account.clone(), id))
                        .or_insert(DEFERRED_INDEX_BASE);
                    let base = *next;
                    *next += count;
                    base
                }
                None => 0,
            };
            send_reply(&self.shared, &to, &reply.reply, base, None).await
        })
    }
}

/// Serves one user's queue until it is empty.
async fn worker(shared: Arc<Shared>, key: UserKey) {
    loop {
        let batch = {
            let Ok(mut queues) = shared.queues.lock() else {
                return;
            };
            let Some(queue) = queues.get_mut(&key) else {
                return;
            };
            let mut batch = Vec::new();
            while let Some(next) = queue.front() {
                let is_command = command(&next.text).is_some();
                if is_command && !batch.is_empty() {
                    break;
                }
                if let Some(inbound) = queue.pop_front() {
                    batch.push(inbound);
                }
                if is_command {
                    break;
                }
            }
            if batch.is_empty() {
                queues.remove(&key);
                if queues.is_empty() {
                    shared.idle.notify_waiters();
                }
                return;
            }
            batch
        };
        let permit = shared.permits.clone().acquire_owned().await;
        shared.metrics.in_flight(1);
        handle_batch(&shared, batch).await;
        shared.metrics.in_flight(-1);
        drop(permit);
    }
}

async fn settle_all(batch: Vec<Box<dyn Settle>>, failure: Option<&str>) {
    for settle in batch {
        match failure {
            None => settle.done().await,
            Some(reason) => settle.failed(reason.to_owned()).await,
        }
    }
}

/// Handles one turn: a command alone, or consecutive messages merged.
async fn handle_batch(shared: &Shared, batch: Vec<Inbound>) {
    let options = &shared.options;
    let (account, user) = match batch.first() {
        Some(first) => (first.account.clone(), first.user.clone()),
        None => return,
    };
    let last_id = batch.last().map(|m| m.message_id);
    let to = ReplyTo {
        account: account.clone(),
        user: user.clone(),
        message_id: last_id,
    };
    if !options.allows(&account, &user) {
        tracing::info!(%account, %user, "a user not on the allow-list wrote; no answer");
        shared.metrics.turn("refused");
        settle_all(batch.into_iter().map(|m| m.settle).collect(), None).await;
        return;
    }

    // Commands.
    let budget = batch.first().and_then(|m| m.reply_budget);
    if let Some(cmd) = batch.first().and_then(|m| command(&m.text)) {
        let text = match cmd {
            Command::More => {
                let settles: Vec<_> = batch.into_iter().map(|m| m.settle).collect();
                shared.metrics.turn("command");
                let held = take_held(shared, &account, &user);
                // Kept for a retry: the runtime delivers this `/more` again
                // and skips the messages it already accepted.
                let copy = held.clone();
                let sent = if held.is_empty() {
                    shared
                        .outbox
                        .send_text(&to, 0, options.nothing_more_text.clone())
                        .await
                } else {
                    deliver(shared, &to, held, 0, budget).await
                };
                let failure = match sent {
                    Ok(()) => None,
                    Err(err) if err.is_refused() => None,
                    Err(err) => {
                        shared.metrics.send_error();
                        tracing::warn!(%account, %user, error = %err, "cannot send the rest of an answer; it waits for the retry");
                        hold(shared, &to, copy);
                        Some(err.to_string())
                    }
                };
                settle_all(settles, failure.as_deref()).await;
                return;
            }
            Command::Help => options.help_text.clone(),
            Command::Reset => match shared.agent.reset(&account, &user).await {
                Ok(()) => {
                    if !take_held(shared, &account, &user).is_empty() {
                        tracing::info!(%account, %user, "/reset forgets the rest of a cut answer");
                    }
                    options.reset_text.clone()
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the agent could not forget a conversation");
                    options
                        .give_up_notice
                        .clone()
                        .unwrap_or_else(|| "The conversation could not be cleared.".to_owned())
                }
            },
        };
        let settles: Vec<_> = batch.into_iter().map(|m| m.settle).collect();
        shared.metrics.turn("command");
        let sent = shared.outbox.send_text(&to, 0, text).await;
        if let Err(err) = &sent {
            shared.metrics.send_error();
            tracing::warn!(error = %err, "cannot send a command's answer");
        }
        settle_all(settles, sent.err().map(|e| e.to_string()).as_deref()).await;
        return;
    }

    // Merge the batch into one turn.
    let mut turn = Turn::new(&account, &user, batch[0].message_id, String::new());
    turn.message_ids.clear();
    let mut texts = Vec::new();
    let mut settles = Vec::with_capacity(batch.len());
    let attempt = batch[0].attempt;
    for inbound in batch {
        turn.message_ids.push(inbound.message_id);
        if !inbound.text.is_empty() {
            texts.push(inbound.text);
        }
        if turn.quote.is_none() {
            turn.quote = inbound.quote;
        }
        turn.media.extend(inbound.media);
        settles.push(inbound.settle);
    }
    turn.text = texts.join("\n");

    // The attempts this delivery makes: all of them here, or the one the
    // runtime counts (it retries and dead-letters across restarts).
    let (first, last, counted_outside) = match attempt {
        Some(a) => (a.number.max(1), a.max.max(1), true),
        None => (1, options.attempts.max(1), false),
    };
    let end = if counted_outside { first } else { last };
    let mut index = 0u32;
    if first >= 2
        && let Some(notice) = &options.failure_notice
    {
        // The earlier attempt sent the notice as reply 0; the runtime
        // skips it as already accepted, and the answer keeps its
        // indexes.
        if let Err(err) = shared.outbox.send_text(&to, index, notice.clone()).await {
            tracing::warn!(error = %err, "cannot send the failure notice");
        }
        index += 1;
    }
    let typing = shared.outbox.typing(&to).await;
    let mut last_error: Option<Error> = None;
    let mut reply = None;
    let mut failed_at = first;
    for attempt in first..=end {
        turn.attempt = attempt;
        failed_at = attempt;
        let started = Instant::now();
        let result =
            match tokio::time::timeout(options.agent_timeout, shared.agent.respond(&turn)).await {
                Ok(result) => result,
                Err(_) => Err(Error::timeout(options.agent_timeout)),
            };
        shared.metrics.latency(started.elapsed());
        let err = match result {
            Ok(answer) if answer.is_empty() && !answer.deferred => {
                Error::unreadable("the agent's reply is empty")
            }
            Ok(answer) => {
                reply = Some(answer);
                break;
            }
            Err(err) => err,
        };
        shared.metrics.agent_error(err.kind());
        tracing::warn!(
            %account, %user, attempt, attempts = last, agent = shared.agent.name(), error = %err,
            "the agent failed a turn"
        );
        last_error = Some(err);
        if attempt == 1
            && last > 1
            && let Some(notice) = &options.failure_notice
        {
            if let Err(err) = shared.outbox.send_text(&to, index, notice.clone()).await {
                tracing::warn!(error = %err, "cannot send the failure notice");
            }
            index += 1;
        }
        if attempt < end {
            tokio::time::sleep(options.retry_delay).await;
        }
    }
    let Some(reply) = reply else {
        typing.stop().await;
        let reason = last_error.map_or_else(|| "the agent failed".to_owned(), |e| e.to_string());
        if failed_at < last {
            // The runtime tries the delivery again later.
            shared.metrics.turn("failed");
            settle_all(settles, Some(&reason)).await;
            return;
        }
        if let Some(notice) = &options.give_up_notice
            && let Err(err) = shared.outbox.send_text(&to, index, notice.clone()).await
        {
            tracing::warn!(error = %err, "cannot send the give-up notice");
        }
        shared.metrics.turn("dead_lettered");
        shared.metrics.dead_letter();
        tracing::warn!(%account, %user, %reason, "a turn is given up and dead-lettered");
        settle_all(settles, Some(&reason)).await;
        return;
    };
    if reply.deferred {
        typing.stop().await;
        shared.metrics.turn("deferred");
        settle_all(settles, None).await;
        return;
    }
    let sent = send_reply(shared, &to, &reply, index, budget).await;
    typing.stop().await;
    match sent {
        Ok(()) => {
            shared.metrics.turn("answered");
            settle_all(settles, None).await;
        }
        Err(err) if err.is_refused() => {
            // The runtime's policy stops the rest of the answer; sending it
            // again would be refused again, so it waits for `/more`.
            shared.metrics.send_error();
            tracing::warn!(%account, %user, error = %err, "the runtime refused part of a reply; the rest waits for /more");
            shared.metrics.turn("answered");
            settle_all(settles, None).await;
        }
        Err(err) => {
            shared.metrics.send_error();
            tracing::warn!(%account, %user, error = %err, "cannot send a reply");
            settle_all(settles, Some(&err.to_string())).await;
        }
    }
}

/// The messages a reply becomes: its text's chunks, then its media.
fn plan(options: &EngineOptions, reply: &Reply) -> Vec<Item> {
    let mut items = Vec::new();
    if let Some(text) = reply.text.as_deref().filter(|t| !t.trim().is_empty()) {
        let text = if options.markdown_filter {
            filter_markdown(text)
        } else {
            text.to_owned()
        };
        items.extend(
            chunk_markdown(&text, options.chunk_chars)
                .into_iter()
                .map(Item::Text),
        );
    }
    items.extend(reply.media.iter().cloned().map(Item::Media));
    items
}

/// How many messages a reply becomes.
fn reply_items(options: &EngineOptions, reply: &Reply) -> u32 {
    u32::try_from(plan(options, reply).len()).unwrap_or(u32::MAX)
}

/// Sends a reply's chunks, then its media, from index `base` on, within
/// `budget` messages for the whole delivery.
async fn send_reply(
    shared: &Shared,
    to: &ReplyTo,
    reply: &Reply,
    base: u32,
    budget: Option<u32>,
) -> Result<(), Error> {
    deliver(
        shared,
        to,
        plan(&shared.options, reply).into(),
        base,
        budget,
    )
    .await
}

/// Sends `items` from index `base` on. When they need more messages than
/// `budget` leaves, the last message allowed is the cut notice and the
/// rest is held for the user's `/more`; so is the rest after a send the
/// runtime refuses by policy.
async fn deliver(
    shared: &Shared,
    to: &ReplyTo,
    mut items: VecDeque<Item>,
    base: u32,
    budget: Option<u32>,
) -> Result<(), Error> {
    let allowed = budget.map(|b| usize::try_from(b.saturating_sub(base)).unwrap_or(usize::MAX));
    let mut rest = VecDeque::new();
    if let Some(allowed) = allowed
        && items.len() > allowed
    {
        rest = items.split_off(allowed.saturating_sub(1));
        shared.metrics.reply_cut();
        if allowed == 0 {
            tracing::warn!(
                account = %to.account, user = %to.user, waiting = rest.len(),
                "the reply budget of this message is used up; the answer waits for /more"
            );
            hold(shared, to, rest);
            return Ok(());
        }
    }
    let mut index = base;
    while let Some(item) = items.pop_front() {
        if let Err(err) = send_item(shared, to, index, &item).await {
            if err.is_refused() {
                items.push_front(item);
                items.extend(rest);
                hold(shared, to, items);
            }
            return Err(err);
        }
        index += 1;
    }
    if !rest.is_empty() {
        let waiting = rest.len();
        tracing::info!(
            account = %to.account, user = %to.user, waiting,
            "the answer is longer than the reply budget; the rest waits for /more"
        );
        hold(shared, to, rest);
        let notice = shared
            .options
            .more_notice
            .replace("{n}", &waiting.to_string());
        if let Err(err) = shared.outbox.send_text(to, index, notice).await {
            tracing::warn!(error = %err, "cannot send the notice that the answer was cut");
        }
    }
    Ok(())
}

/// Sends one message; a refused file or URL is logged with its reason and
/// replaced by the media notice.
async fn send_item(shared: &Shared, to: &ReplyTo, index: u32, item: &Item) -> Result<(), Error> {
    let media = match item {
        Item::Text(text) => return shared.outbox.send_text(to, index, text.clone()).await,
        Item::Media(media) => media,
    };
    let checked = match media {
        ReplyMedia::Path(path) => {
            check_path(shared.options.media_dir.as_deref(), path).map(ReplyMedia::Path)
        }
        ReplyMedia::Url(url) => Ok(ReplyMedia::Url(url.clone())),
    };
    let notice = shared.options.media_notice.as_deref();
    let refusal = match checked {
        Ok(checked) => match shared
            .outbox
            .send_media_or(to, index, &checked, notice)
            .await?
        {
            MediaOutcome::Sent => return Ok(()),
            MediaOutcome::Refused(err) => err,
        },
        Err(err) => {
            if let Some(notice) = notice {
                shared
                    .outbox
                    .send_text(to, index, notice.to_owned())
                    .await?;
            }
            err
        }
    };
    shared.metrics.media_refusal();
    tracing::warn!(
        account = %to.account, user = %to.user, media = %media_name(media),
        reason = %error_chain(&refusal), "a reply file is refused"
    );
    Ok(())
}

/// A reply file as a log shows it: the path, or the URL without its query.
fn media_name(media: &ReplyMedia) -> String {
    match media {
        ReplyMedia::Path(path) => path.display().to_string(),
        ReplyMedia::Url(url) => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// An error and its causes, joined by `: `.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let part = next.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = next.source();
    }
    text
}

/// Keeps the rest of a cut answer for the user's `/more`, replacing an
/// older one.
fn hold(shared: &Shared, to: &ReplyTo, mut items: VecDeque<Item>) {
    if items.is_empty() {
        return;
    }
    if items.len() > MAX_HELD_MESSAGES {
        tracing::warn!(
            account = %to.account, user = %to.user, dropped = items.len() - MAX_HELD_MESSAGES + 1,
            "a cut answer is too long to keep whole; its end is replaced by a notice"
        );
        items.truncate(MAX_HELD_MESSAGES - 1);
        items.push_back(Item::Text(
            "(The rest of this answer was too long to keep.)".to_owned(),
        ));
    }
    let Ok(mut held) = shared.held.lock() else {
        tracing::error!("the engine's held-answer lock is poisoned; the rest of an answer is lost");
        return;
    };
    let key = (to.account.clone(), to.user.clone());
    if !held.contains_key(&key)
        && held.len() >= MAX_HELD_USERS
        && let Some(oldest) = held
            .iter()
            .min_by_key(|(_, h)| h.since)
            .map(|(k, _)| k.clone())
    {
        tracing::warn!(account = %oldest.0, user = %oldest.1, "too many cut answers are held; the oldest is forgotten");
        held.remove(&oldest);
    }
    let old = held.insert(
        key,
        Held {
            items,
            since: Instant::now(),
        },
    );
    if let Some(old) = old {
        tracing::info!(
            account = %to.account, user = %to.user, forgotten = old.items.len(),
            "a newer cut answer replaces the rest of an older one"
        );
    }
}

/// Takes the rest of the user's cut answer, if any.
fn take_held(shared: &Shared, account: &str, user: &str) -> VecDeque<Item> {
    shared
        .held
        .lock()
        .ok()
        .and_then(|mut h| h.remove(&(account.to_owned(), user.to_owned())))
        .map(|h| h.items)
        .unwrap_or_default()
}

/// The canonical form of a reply path, when it lies inside `dir`.
pub(crate) fn check_path(dir: Option<&Path>, path: &Path) -> Result<PathBuf, Error> {
    let Some(dir) = dir else {
        return Err(Error::new(
            Kind::MediaRefused,
            "reply files are off: no media directory is configured",
        ));
    };
    let dir = dir
        .canonicalize()
        .map_err(|err| Error::with_source(Kind::Io, "the media directory cannot be read", err))?;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    let real = joined.canonicalize().map_err(|err| {
        Error::with_source(
            Kind::MediaRefused,
            format!("the reply file {} cannot be read", path.display()),
            err,
        )
    })?;
    if !real.starts_with(&dir) {
        return Err(Error::new(
            Kind::MediaRefused,
            format!(
                "the reply file {} lies outside the media directory",
                path.display()
            ),
        ));
    }
    Ok(real)
}
