//! One bot account of a simulator: the [`Account`] handle tests use to
//! inject messages for it and read its own records, and the operations the
//! one-account API of [`Simulator`] shares with it.

use std::fmt;
use std::time::Duration;

use wxlink_media::{KeyEncoding, MediaKind};
use wxlink_proto::{BotToken, ContextToken, MessageState, MessageType, WeixinMessage};

use super::Simulator;
use crate::error::SimError;
use crate::inbound::{InboundMessage, InjectedMessage};
use crate::records::{
    NotifyCall, PollRecord, RecordCounts, RequestRecord, SentMessage, TypingCall, UploadRecord,
};
use crate::state::{Queued, Shared};
use crate::truth::GroundTruth;

/// Message ids at or above this are beyond JavaScript's exact integers
/// (2^53); every other injected message gets one.
const BIG_ID_BASE: u64 = 7_423_198_823_477_151_811;
/// Base of the ordinary-sized message ids.
const SMALL_ID_BASE: u64 = 1_000_000_000_000;

/// One bot account of a [`Simulator`]: its own token, bot id, owner,
/// inbound queue, cursor, users, context tokens, typing tickets, send
/// limits and records.
///
/// Cheap to clone; it keeps the simulator running like a [`Simulator`]
/// clone does. Once the account is [deleted](Self::delete), its methods
/// fail with an error for which [`SimError::is_unknown_account`] holds, or answer nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), wxlink_sim::SimError> {
/// let sim = wxlink_sim::Simulator::builder().accounts(3).start().await?;
/// let accounts = sim.accounts();
/// assert_eq!(accounts.len(), 3);
/// // Each bot gets its own messages: this one is queued for the second.
/// let msg = accounts[1].inject_text(accounts[1].user_id(), "hello")?;
/// assert_eq!(msg.bot_id, accounts[1].bot_id());
/// assert_eq!(accounts[1].pending_messages(), 1);
/// assert_eq!(accounts[0].pending_messages(), 0);
/// // A fresh account, as if a new bot had logged in.
/// let extra = sim.create_account();
/// assert_eq!(sim.account(extra.bot_id()).map(|a| a.token()), Some(extra.token()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Account {
    sim: Simulator,
    id: u32,
    token: BotToken,
    bot_id: String,
    user_id: String,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("bot_id", &self.bot_id)
            .field("user_id", &self.user_id)
            .field("token", &self.token)
            .finish()
    }
}

/// The `getupdates` polls of one account, from
/// [`Account::poll_counts`]: how many overlapped in time on its token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PollCounts {
    /// Polls that started while another poll of the same token was still
    /// in flight: 0 for a client that never polls one account twice at
    /// once, 1 for two overlapping polls.
    pub concurrent_polls: u64,
    /// Polls in flight right now.
    pub in_flight: u32,
    /// The most polls that were in flight at once.
    pub max_in_flight: u32,
}

impl Account {
    /// A handle on account `id`, if it exists.
    pub(crate) fn of(sim: &Simulator, id: u32) -> Option<Self> {
        let st = sim.shared.state();
        let bot = st.bot(id)?;
        Some(Self {
            sim: sim.clone(),
            id,
            token: BotToken::new(bot.token.clone()),
            bot_id: bot.bot_id.clone(),
            user_id: bot.user_id.clone(),
        })
    }

    fn shared(&self) -> &Shared {
        &self.sim.shared
    }

    fn unknown(&self) -> SimError {
        SimError::unknown_account(self.bot_id.clone())
    }

    /// The bot token (`Authorization: Bearer …`).
    pub fn token(&self) -> BotToken {
        self.token.clone()
    }

    /// The bot id, `<12 hex>@im.bot`.
    pub fn bot_id(&self) -> &str {
        &self.bot_id
    }

    /// The WeChat user who owns the bot (`…@im.wechat`), the default
    /// sender of injected messages.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Whether the account still exists and its token is live.
    pub fn is_valid(&self) -> bool {
        self.shared().state().bot(self.id).is_some_and(|b| b.valid)
    }

    /// Queues a text message from `from_user` for this bot.
    ///
    /// # Errors
    ///
    /// [`SimError::is_unknown_account`] once the account was deleted.
    pub fn inject_text(
        &self,
        from_user: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<InjectedMessage, SimError> {
        self.inject_message(InboundMessage::text(from_user, text))
    }

    /// Queues an inbound message for this bot, completed as the real
    /// server would (see [`InboundMessage`]); a message without a sender
    /// comes from the owner.
    ///
    /// # Errors
    ///
    /// [`SimError::is_unknown_account`] once the account was deleted.
    pub fn inject_message(
        &self,
        message: impl Into<InboundMessage>,
    ) -> Result<InjectedMessage, SimError> {
        if self.shared().state().bot(self.id).is_none() {
            return Err(self.unknown());
        }
        Ok(inject(self.shared(), self.id, message.into()))
    }

    /// Stores `plaintext` on the CDN as media of `kind` and queues a
    /// one-item message carrying it (see
    /// [`Simulator::media_item`](Simulator::media_item)).
    ///
    /// # Errors
    ///
    /// As [`Simulator::media_item`], and [`SimError::is_unknown_account`].
    pub fn inject_media(
        &self,
        from_user: impl Into<String>,
        kind: MediaKind,
        plaintext: &[u8],
        encoding: KeyEncoding,
    ) -> Result<InjectedMessage, SimError> {
        let item = self.sim.media_item(kind, plaintext, encoding)?;
        self.inject_message(InboundMessage::new(from_user).item(item))
    }

    /// Makes `user_id` a user this bot knows.
    pub fn add_user(&self, user_id: impl Into<String>) {
        if let Some(bot) = self.shared().state().bot_mut(self.id) {
            bot.users.insert(user_id.into());
        }
    }

    /// Messages queued for this bot and not yet delivered.
    pub fn pending_messages(&self) -> usize {
        self.shared()
            .state()
            .bot(self.id)
            .map_or(0, |b| b.queue.len())
    }

    /// This bot's accepted messages still kept (the simulator-wide logs
    /// keep the newest [`SimConfig::record_limit`](crate::SimConfig::record_limit)
    /// of all accounts), oldest first.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared().state().sent.of(self.id).cloned().collect()
    }

    /// This bot's messages sent after its own count was `mark`
    /// ([`record_counts`](Self::record_counts)`().sent.total`).
    pub fn sent_messages_since(&self, mark: u64) -> Vec<SentMessage> {
        self.shared().state().sent.of_since(self.id, mark)
    }

    /// This bot's typing calls still kept, oldest first.
    pub fn typing_calls(&self) -> Vec<TypingCall> {
        self.shared().state().typing.of(self.id).cloned().collect()
    }

    /// This bot's notify calls still kept, oldest first.
    pub fn notify_calls(&self) -> Vec<NotifyCall> {
        self.shared()
            .state()
            .notify_calls
            .of(self.id)
            .cloned()
            .collect()
    }

    /// Upload attempts on slots this bot's `getuploadurl` issued.
    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.shared().state().uploads.of(self.id).cloned().collect()
    }

    /// Requests authenticated with this bot's token, still kept.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared()
            .state()
            .requests
            .of(self.id)
            .cloned()
            .collect()
    }

    /// This bot's all-time record counts and how many of its records the
    /// logs still keep.
    pub fn record_counts(&self) -> RecordCounts {
        self.shared().state().record_counts_of(self.id)
    }

    /// How this bot's `getupdates` polls overlapped.
    pub fn poll_counts(&self) -> PollCounts {
        let st = self.shared().state();
        st.bot(self.id)
            .map_or_else(PollCounts::default, |b| PollCounts {
                concurrent_polls: b.polls.overlapping,
                in_flight: b.polls.in_flight,
                max_in_flight: b.polls.max_in_flight,
            })
    }

    /// This bot's newest answered `getupdates` polls (at most
    /// [`SimConfig::record_limit`](crate::SimConfig::record_limit)), oldest
    /// first: what each carried and with which cursors.
    pub fn polls(&self) -> Vec<PollRecord> {
        let st = self.shared().state();
        st.bot(self.id)
            .map(|b| b.poll_log.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Polls of this token that started while another was in flight;
    /// see [`PollCounts::concurrent_polls`].
    pub fn concurrent_polls(&self) -> u64 {
        self.poll_counts().concurrent_polls
    }

    /// What the server delivered and lost of this bot's inbound messages.
    pub fn ground_truth(&self) -> GroundTruth {
        self.shared()
            .state()
            .bot(self.id)
            .map(|b| b.truth.snapshot())
            .unwrap_or_default()
    }

    /// Waits until this bot has sent at least `n` messages in all and
    /// returns those kept.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_sent(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, SimError> {
        let id = self.id;
        self.sim
            .shared
            .wait_until(timeout, |st| {
                let total = st.bot(id).map_or(0, |b| b.totals.sent);
                super::reached(total, n).then(|| st.sent.of(id).cloned().collect())
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// Waits until this bot's token made at least `n` calls of `endpoint`
    /// and returns those the request log keeps.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_requests(
        &self,
        endpoint: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RequestRecord>, SimError> {
        let id = self.id;
        self.sim
            .shared
            .wait_until(timeout, |st| {
                let total = st
                    .bot(id)
                    .and_then(|b| b.totals.by_endpoint.get(endpoint).copied())
                    .unwrap_or(0);
                super::reached(total, n).then(|| {
                    st.requests
                        .of(id)
                        .filter(|r| r.endpoint == Some(endpoint))
                        .cloned()
                        .collect()
                })
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// Expires this bot's session: its token answers `-14` from now on,
    /// a held poll at once.
    ///
    /// # Errors
    ///
    /// [`SimError::is_unknown_account`] once the account was deleted.
    pub fn expire(&self) -> Result<(), SimError> {
        if self.shared().state().bot(self.id).is_none() {
            return Err(self.unknown());
        }
        expire(self.shared(), self.id);
        Ok(())
    }

    /// Deletes the account: its token is unknown from now on (`-14`) and
    /// its queue is dropped. The last account cannot be deleted.
    ///
    /// # Errors
    ///
    /// [`SimError::is_unknown_account`] when it is gone already,
    /// [`SimError::is_invalid_input`] for the last account.
    pub fn delete(&self) -> Result<(), SimError> {
        let mut st = self.shared().state();
        if st.bot(self.id).is_none() {
            return Err(self.unknown());
        }
        if st.bots.len() == 1 {
            return Err(SimError::invalid_input(
                "the last account cannot be deleted",
            ));
        }
        if let Some(bot) = st.delete_bot(self.id) {
            bot.inbound.notify_waiters();
        }
        Ok(())
    }
}

impl Simulator {
    /// Every account, in creation order (the first is the one the
    /// one-account API means until a QR login creates another).
    pub fn accounts(&self) -> Vec<Account> {
        let ids: Vec<u32> = self.shared.state().bots.keys().copied().collect();
        ids.into_iter()
            .filter_map(|id| Account::of(self, id))
            .collect()
    }

    /// The account whose bot id is `bot_id`.
    pub fn account(&self, bot_id: &str) -> Option<Account> {
        let id = self.shared.state().id_of_bot(bot_id)?;
        Account::of(self, id)
    }

    /// The account the one-account API ([`token`](Self::token),
    /// [`inject_text`](Self::inject_text), …) means: the first one, or the
    /// one the latest confirmed QR login created.
    pub fn default_account(&self) -> Account {
        let id = self.shared.state().current_id();
        Account::of(self, id).unwrap_or_else(|| Account {
            sim: self.clone(),
            id,
            token: BotToken::new(String::new()),
            bot_id: String::new(),
            user_id: String::new(),
        })
    }

    /// The `getupdates` polls of every account added up: polls in flight
    /// now, overlaps on one token in all, and the most in flight at once on
    /// any one token.
    pub fn poll_counts(&self) -> PollCounts {
        let st = self.shared.state();
        st.bots
            .values()
            .fold(PollCounts::default(), |acc, b| PollCounts {
                concurrent_polls: acc.concurrent_polls + b.polls.overlapping,
                in_flight: acc.in_flight + b.polls.in_flight,
                max_in_flight: acc.max_in_flight.max(b.polls.max_in_flight),
            })
    }

    /// Creates an account owned by a fresh user, as if a new bot had
    /// logged in.
    pub fn create_account(&self) -> Account {
        let id = self.shared.state().create_bot(None);
        self.account_or_blank(id)
    }

    /// Creates `n` accounts, each owned by a fresh user.
    pub fn create_accounts(&self, n: usize) -> Vec<Account> {
        let ids: Vec<u32> = {
            let mut st = self.shared.state();
            (0..n).map(|_| st.create_bot(None)).collect()
        };
        ids.into_iter()
            .map(|id| self.account_or_blank(id))
            .collect()
    }

    fn account_or_blank(&self, id: u32) -> Account {
        Account::of(self, id).unwrap_or_else(|| Account {
            sim: self.clone(),
            id,
            token: BotToken::new(String::new()),
            bot_id: String::new(),
            user_id: String::new(),
        })
    }
}

/// Marks account `id` expired and ends its held polls.
pub(crate) fn expire(shared: &Shared, id: u32) {
    let mut st = shared.state();
    if let Some(bot) = st.bot_mut(id) {
        bot.valid = false;
        bot.inbound.notify_waiters();
    }
}

/// Completes `message` as the real server would and queues it for
/// account `id` (when it exists), waking its held poll.
pub(crate) fn inject(shared: &Shared, id: u32, message: InboundMessage) -> InjectedMessage {
    let mut st = shared.state();
    let n = st.injected;
    st.injected += 1;
    let token = match &message.msg.context_token {
        Some(t) if !t.is_empty() => t.clone(),
        _ => ContextToken::new(format!("AARzJWAF{}", st.random_b64(48))),
    };
    let now = st.now_ms();
    let mut msg: WeixinMessage = message.msg.clone();
    let message_id = msg.message_id.unwrap_or(if n.is_multiple_of(2) {
        BIG_ID_BASE + n
    } else {
        SMALL_ID_BASE + n
    });
    let Some(bot) = st.bot_mut(id) else {
        return InjectedMessage {
            message_id,
            seq: 0,
            context_token: token,
            message: msg,
            bot_id: String::new(),
            wire: serde_json::Value::Null,
        };
    };
    let seq = bot.next_seq;
    bot.next_seq += 1;
    let from = msg
        .from_user_id
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| bot.user_id.clone());
    msg.seq = Some(seq);
    msg.message_id = Some(message_id);
    msg.from_user_id = Some(from.clone());
    msg.to_user_id = Some(bot.bot_id.clone());
    msg.create_time_ms.get_or_insert(now);
    msg.message_type.get_or_insert(MessageType::User);
    msg.message_state.get_or_insert(MessageState::Finish);
    msg.context_token = Some(token.clone());
    // The wire form: the completed message, with the caller's patch on top
    // (but the simulator's own fields win).
    let mut wire = InboundMessage {
        msg: msg.clone(),
        patch: message.patch,
    }
    .wire();
    if let Some(obj) = wire.as_object_mut() {
        obj.insert("seq".into(), seq.into());
        obj.insert("message_id".into(), message_id.into());
        obj.insert("to_user_id".into(), bot.bot_id.clone().into());
    }
    bot.users.insert(from.clone());
    let conv = bot.conversations.entry(from).or_default();
    conv.last_inbound_ms = Some(now);
    conv.replies_since = 0;
    bot.queue.push_back(Queued {
        message_id,
        json: wire.to_string().into(),
    });
    bot.truth.injected(message_id);
    bot.inbound.notify_waiters();
    let bot_id = bot.bot_id.clone();
    drop(st);
    shared.touch();
    InjectedMessage {
        message_id,
        seq,
        context_token: token,
        message: msg,
        bot_id,
        wire,
    }
}
