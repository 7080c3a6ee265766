//! [`Incoming`]: one inbound message handed to a [`Handler`](crate::Handler),
//! with the replies that answer it.
//!
//! # No reply sent twice after a crash
//!
//! Each reply of a delivery has an index (0, 1, 2 … in the order the
//! handler sends them; every chunk of long text counts). Its `client_id`
//! is derived from the inbound message's id and that index, and once the
//! server accepted it the index is recorded in the journal entry. When the
//! delivery is replayed (a crash, a lost lease, a failed attempt), the
//! handler runs again and the replies whose index was accepted are
//! skipped, not sent.
//!
//! What remains possible: a send the server accepted whose answer never
//! reached the runner (the connection broke after the request was sent, or
//! the process died between the answer and the journal write). The replay
//! then sends that reply again, under the same `client_id`; the gateway is
//! reported to drop a repeated `client_id`, but that is not confirmed. The
//! window is one reply wide per delivery.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use wxlink_client::WxLinkClient;
use wxlink_proto::{ContextToken, WeixinMessage};

use crate::error::{Error, Kind};
use crate::shared::{Shared, message_text};
use crate::store::{AccountId, BudgetKind, JournalEntry, JournalKey};
use crate::typing::TypingGuard;

/// One inbound message, and the way to answer it.
pub struct Incoming {
    shared: Arc<Shared>,
    entry: JournalEntry,
    message: WeixinMessage,
    next_index: AtomicU32,
    /// Later messages of the same user merged into this turn.
    merged: Arc<std::sync::Mutex<Vec<JournalEntry>>>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // WeixinMessage's Debug redacts the context token.
        f.debug_struct("Incoming")
            .field("account", &self.shared.id)
            .field("key", &self.entry.key)
            .field("attempts", &self.entry.attempts)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// What a [`Incoming::reply_with`] call may use to send.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplyPermit {
    /// The account's client.
    pub client: WxLinkClient,
    /// The user to answer.
    pub user: String,
    /// The user's latest context token.
    pub context_token: ContextToken,
    /// The `client_id` derived for this reply (usable with
    /// [`SendTextRequest::client_id`](wxlink_client::client::SendTextRequest::client_id)).
    pub client_id: String,
}

/// The `client_id` of reply `index` to the message with `message_id` (or,
/// without one, journal key `key`) on `account`.
pub fn reply_client_id(
    account: &AccountId,
    message_id: Option<u64>,
    key: JournalKey,
    index: u32,
) -> String {
    // The account is hashed in, so that two bots answering one message id
    // never share an id; FNV-1a is enough for that.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in account.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    match message_id {
        Some(id) => format!("wxlink-r:{hash:08x}-{id}-{index}"),
        None => format!("wxlink-r:{hash:08x}-k{}-{index}", key.0),
    }
}

impl Incoming {
    pub(crate) fn new(
        shared: Arc<Shared>,
        entry: JournalEntry,
        message: WeixinMessage,
        merged: Arc<std::sync::Mutex<Vec<JournalEntry>>>,
    ) -> Self {
        Self {
            shared,
            entry,
            message,
            next_index: AtomicU32::new(0),
            merged,
        }
    }

    /// Takes the sender's later messages that are already journaled and
    /// waiting behind this one, so that one turn answers them together
    /// (for example an agent that read them all). They are acknowledged
    /// with this message when the handler succeeds; when it fails they go
    /// back to the queue, in order, and are handled after this message's
    /// retry. Replies still count against this message's budget. An entry
    /// that cannot be read back as a message (a damaged store) is logged,
    /// left out of the result and settled with the turn. Called again, it
    /// takes what arrived since.
    pub async fn take_queued(&self) -> Vec<WeixinMessage> {
        let entries = self.shared.take_waiting(self.sender()).await;
        let mut messages = Vec::with_capacity(entries.len());
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            match serde_json::from_str::<WeixinMessage>(&entry.json) {
                Ok(message) => {
                    messages.push(message);
                    kept.push(entry);
                }
                Err(err) => {
                    // Handing it back unread would reorder the queue; it is
                    // merged and acknowledged with the turn instead, and its
                    // failure is logged here.
                    tracing::error!(account = %self.shared.id, key = entry.key.0, error = %err, "unreadable journal entry merged into a turn");
                    kept.push(entry);
                }
            }
        }
        if let Ok(mut merged) = self.merged.lock() {
            merged.extend(kept);
        }
        messages
    }

    /// The account this message came to.
    pub fn account(&self) -> &AccountId {
        &self.shared.id
    }

    /// The message.
    pub fn message(&self) -> &WeixinMessage {
        &self.message
    }

    /// The sender's user id.
    pub fn sender(&self) -> &str {
        &self.entry.sender
    }

    /// The text of the first text item, or a voice item's transcript.
    pub fn text(&self) -> Option<&str> {
        message_text(&self.message)
    }

    /// The message's journal key.
    pub fn key(&self) -> JournalKey {
        self.entry.key
    }

    /// The server's message id, if any.
    pub fn message_id(&self) -> Option<u64> {
        self.entry.message_id
    }

    /// Failed attempts before this one (0 on the first).
    pub fn attempts(&self) -> u32 {
        self.entry.attempts
    }

    /// True when some reply of this message was already accepted by the
    /// server in an earlier attempt (this is a replay).
    pub fn is_replay(&self) -> bool {
        !self.entry.accepted_replies.is_empty() || self.entry.attempts > 0
    }

    /// The account's client, for calls the runtime does not wrap
    /// (downloads of inbound media, for example). Sends made directly on it
    /// bypass pacing, the throttle and the budgets; prefer
    /// [`reply_with`](Self::reply_with).
    pub fn client(&self) -> WxLinkClient {
        self.shared.client()
    }

    /// Starts "typing…" for the sender; it stays on until the guard is
    /// finished or dropped. Best effort: failures are logged only.
    pub fn typing(&self) -> TypingGuard {
        TypingGuard::start(Arc::clone(&self.shared), self.sender().to_owned())
    }

    /// [`typing`](Self::typing), returned once the first `sendtyping` was
    /// answered (see [`TypingGuard::shown`]).
    pub async fn typing_shown(&self) -> TypingGuard {
        let mut guard = self.typing();
        guard.shown().await;
        guard
    }

    /// Replies with `text`, split into messages of at most
    /// [`max_chars`](crate::AccountOptions::max_chars) characters (2 000 by
    /// default); each counts against the reply budget, reserved for all of
    /// them before the first leaves. Replies the server accepted in an
    /// earlier attempt are skipped.
    pub async fn reply(&self, text: &str) -> Result<(), Error> {
        if text.is_empty() {
            return Err(Error::from(wxlink_client::Error::empty_text()));
        }
        let chunks = wxlink_client::chunk_text(text, self.shared.options.max_chars.max(1));
        let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        let first = self.next_index.fetch_add(count, Ordering::SeqCst);
        let todo: Vec<(u32, &str)> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (first + i as u32, *c))
            .filter(|(index, _)| !self.entry.accepted_replies.contains(index))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let user = self.sender().to_owned();
        let context = self.shared.context_for(&user).await?;
        let todo_count = u32::try_from(todo.len()).unwrap_or(u32::MAX);
        self.shared
            .reserve(
                &BudgetKind::Reply {
                    key: self.entry.key,
                },
                todo_count,
            )
            .await?;
        for (index, chunk) in todo {
            let client_id = self.client_id(index);
            let (to, text, ctx) = (user.clone(), chunk.to_owned(), context.clone());
            self.shared
                .paced_send(move |client| async move {
                    client
                        .send_text(to, text)
                        .context_token(ctx)
                        .client_id(client_id)
                        .send()
                        .await
                })
                .await?;
            self.accepted(index).await;
        }
        Ok(())
    }

    /// Sends a reply the runtime does not build itself (media, voice, a
    /// captioned file) through the facade's own builders, with the pacing,
    /// throttle and budget of text replies. `sends` is how many messages
    /// the call sends (2 for a captioned media message, else 1); they are
    /// taken from the reply budget first. `call` gets a [`ReplyPermit`]
    /// with the client, the user, the context token and a derived
    /// `client_id`, and its result is returned.
    ///
    /// ```no_run
    /// # async fn run(incoming: wxlink_bot::Incoming) -> Result<(), wxlink_bot::Error> {
    /// incoming
    ///     .reply_with(1, |p| async move {
    ///         p.client.send_image(p.user, "chart.png").context_token(p.context_token).send().await
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reply_with<T, F, Fut>(&self, sends: u32, call: F) -> Result<Option<T>, Error>
    where
        F: FnOnce(ReplyPermit) -> Fut,
        Fut: Future<Output = Result<T, wxlink_client::Error>>,
    {
        let sends = sends.max(1);
        let first = self.next_index.fetch_add(sends, Ordering::SeqCst);
        if (first..first + sends).all(|i| self.entry.accepted_replies.contains(&i)) {
            return Ok(None);
        }
        let user = self.sender().to_owned();
        let context = self.shared.context_for(&user).await?;
        self.shared
            .reserve(
                &BudgetKind::Reply {
                    key: self.entry.key,
                },
                sends,
            )
            .await?;
        let permit = ReplyPermit {
            client: self.shared.client(),
            user,
            context_token: context,
            client_id: self.client_id(first),
        };
        let value = self.shared.paced_send(move |_| call(permit)).await?;
        for index in first..first + sends {
            self.accepted(index).await;
        }
        Ok(Some(value))
    }

    /// The `client_id` of reply `index` of this message.
    fn client_id(&self, index: u32) -> String {
        reply_client_id(
            &self.shared.id,
            self.entry.message_id,
            self.entry.key,
            index,
        )
    }

    /// Records that reply `index` was accepted. A failure here is logged:
    /// the reply went out, and at worst a replay sends it again under the
    /// same `client_id`.
    async fn accepted(&self, index: u32) {
        let Ok(lease) = self.shared.lease() else {
            return;
        };
        if let Err(err) = self
            .shared
            .store
            .record_reply(&lease, self.entry.key, index)
            .await
        {
            tracing::warn!(account = %self.shared.id, key = self.entry.key.0, index, error = %err, "recording an accepted reply failed");
        }
    }
}

/// Checks that pushes are on, finds the context token and takes `count`
/// sends from the push budget.
async fn reserve_push(shared: &Shared, user: &str, count: u32) -> Result<ContextToken, Error> {
    if shared.options.push_budget == 0 {
        return Err(Error::new(Kind::BudgetExhausted {
            used: 0,
            limit: 0,
            push: true,
        }));
    }
    let context = shared.context_for(user).await?;
    shared
        .reserve(
            &BudgetKind::Push {
                window_ms: crate::options::ms(shared.options.push_window),
            },
            count,
        )
        .await?;
    Ok(context)
}

/// Pushes through a facade builder; see
/// [`AccountHandle::push_with`](crate::AccountHandle::push_with).
pub(crate) async fn push_with<T, F, Fut>(
    shared: &Shared,
    user: &str,
    sends: u32,
    call: F,
) -> Result<T, Error>
where
    F: FnOnce(ReplyPermit) -> Fut,
    Fut: Future<Output = Result<T, wxlink_client::Error>>,
{
    let context = reserve_push(shared, user, sends.max(1)).await?;
    let permit = ReplyPermit {
        client: shared.client(),
        user: user.to_owned(),
        context_token: context,
        client_id: wxlink_proto::new_client_id(wxlink_proto::consts::CLIENT_ID_PREFIX),
    };
    shared.paced_send(move |_| call(permit)).await
}

/// Pushes `text` to `user` without an inbound message to answer: the push
/// budget applies, and the user must have written within the reply window.
pub(crate) async fn push_text(shared: &Shared, user: &str, text: &str) -> Result<(), Error> {
    if text.is_empty() {
        return Err(Error::from(wxlink_client::Error::empty_text()));
    }
    let chunks = wxlink_client::chunk_text(text, shared.options.max_chars.max(1));
    let count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    let context = reserve_push(shared, user, count).await?;
    for chunk in chunks {
        let (to, text, ctx) = (user.to_owned(), chunk.to_owned(), context.clone());
        shared
            .paced_send(move |client| async move {
                client.send_text(to, text).context_token(ctx).send().await
            })
            .await?;
    }
    Ok(())
}
