//! The runtime's persistent state: the [`Store`] trait, keyed by account,
//! with leases and epoch fencing, and the records it keeps.
//!
//! One store holds every account of a deployment: per account the
//! long-poll cursor, the journal of inbound messages not acknowledged yet
//! (with attempt counts and the replies the server accepted), the
//! de-duplication window, the latest context token per user, the reply and
//! push budgets, the throttle state and the dead letters.
//!
//! # Leases and fencing
//!
//! An account is run by one runner at a time. A runner first
//! [`claim`](Store::claim)s the account's lease, which names it as the
//! owner until an expiry and carries an **epoch** that grows by one with
//! every claim that changes hands (or follows an expiry). The runner
//! [`renew`](Store::renew)s the lease well before it expires and
//! [`release`](Store::release)s it on a clean stop.
//!
//! Every write that belongs to a running account takes the runner's
//! [`Lease`] and is **fenced**: it happens only if the account's current
//! lease still has this owner and this epoch, in the same transaction as
//! the write. A runner that lost its lease (it was frozen past the expiry
//! and another runner claimed the account) therefore writes nothing; its
//! writes fail with an error whose [`is_fenced`](Error::is_fenced) is
//! true. Reads are not fenced.
//!
//! # The one write that matters most
//!
//! [`Store::commit_batch`] writes a poll's new messages *and* the new
//! cursor in one transaction, before any message is handed out. The server
//! never replays an old cursor (docs/architecture.md, "Leases and fencing"), so a message
//! must be durable before the cursor that skips past it is.
//!
//! # Implementing a store
//!
//! Methods return boxed futures ([`StoreFuture`]), so the trait is
//! object-safe (`Arc<dyn Store>`) and an implementation may be async all the
//! way down (a connection pool) or run blocking work on a thread pool (the
//! SQLite store does). Every method is one short transaction; the runtime
//! may call them concurrently from many tasks. Times are milliseconds since
//! the Unix epoch, passed in by the caller, so that a store never reads a
//! clock of its own and tests can drive time.
//!
//! Methods fail with the crate's one [`Error`], built with the
//! constructors for what the contract below names: [`Error::store`] or
//! [`Error::store_with`] for a backend failure (the only retryable kind),
//! [`Error::leased`] for a live lease of another owner, [`Error::fenced`]
//! for a write the fence refused, [`Error::invalid_store_argument`] for an
//! unusable argument or a call the store does not support, and
//! [`Error::newer_schema`] for a store written by a newer version.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use wxlink_proto::ContextToken;

use crate::error::Error;

#[cfg(feature = "test-util")]
pub mod conformance;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rules;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// The future every [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The name under which a store keeps one bot account.
///
/// Any non-empty string of at most 200 bytes without control characters;
/// the runtime uses the bot's id (`…@im.bot`) unless told otherwise.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AccountId(String);

impl AccountId {
    /// Checks and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
            return Err(Error::invalid_store_argument(
                "use an account id that is 1 to 200 bytes without control characters",
            ));
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A runner's lease on one account: the fence every write carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The account.
    pub account: AccountId,
    /// The runner holding it (unique per runner process and start).
    pub owner: String,
    /// The fencing epoch: grows by one with every claim after another
    /// owner's lease, an expiry or a release.
    pub epoch: u64,
    /// When the lease expires unless renewed, in ms since the Unix epoch.
    pub expires_at_ms: i64,
}

/// One account as the store knows it, with its lease (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account.
    pub account: AccountId,
    /// The current or last lease holder, if the account was ever claimed.
    pub owner: Option<String>,
    /// The current epoch (0 if never claimed).
    pub epoch: u64,
    /// When the current lease expires (0 if never claimed or released).
    pub expires_at_ms: i64,
    /// Journal entries not yet acknowledged.
    pub pending: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// An account file kept in the store for runners to start the account from
/// (JSON with the bot token and base URL, as `wxlink login` writes it).
///
/// `Debug` and `Display` print its length only: it holds the bot token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountCredentials(String);

impl AccountCredentials {
    /// Wraps the account file's JSON text.
    pub fn new(json: impl Into<String>) -> Self {
        Self(json.into())
    }

    /// The JSON text, token included.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountCredentials(<redacted, {} bytes>)", self.0.len())
    }
}

/// The key of one journal entry, assigned by the store in arrival order
/// within an account. Dead letters keep the key they had in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JournalKey(pub u64);

/// One inbound message kept in the journal until it is acknowledged.
///
/// `Debug` leaves the JSON out, because it holds the context token.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The store's key for this entry; increases in arrival order.
    pub key: JournalKey,
    /// The server's exact 64-bit `message_id`, when the message had one.
    pub message_id: Option<u64>,
    /// The sender's user id (`…@im.wechat`).
    pub sender: String,
    /// The message as JSON, exactly as the runtime serialised it.
    pub json: String,
    /// When the runtime journaled it, in ms since the Unix epoch.
    pub received_at_ms: i64,
    /// How many handler attempts failed so far (across restarts).
    pub attempts: u32,
    /// The last failure's message, if any attempt failed.
    pub last_error: Option<String>,
    /// The indexes of this message's replies that the server accepted, in
    /// ascending order; a replayed delivery skips them.
    pub accepted_replies: Vec<u32>,
}

impl fmt::Debug for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalEntry")
            .field("key", &self.key)
            .field("message_id", &self.message_id)
            .field("sender", &self.sender)
            .field("json_len", &self.json.len())
            .field("received_at_ms", &self.received_at_ms)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("accepted_replies", &self.accepted_replies)
            .finish()
    }
}

/// A message offered to [`Store::commit_batch`].
#[derive(Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The server's exact 64-bit `message_id`, when present.
    pub message_id: Option<u64>,
    /// The sender's user id.
    pub sender: String,
    /// The context token the message carried, if any.
    pub context_token: Option<ContextToken>,
    /// The message as JSON.
    pub json: String,
}

impl fmt::Debug for InboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON holds the context token in clear, so it is left out.
        f.debug_struct("InboundMessage")
            .field("message_id", &self.message_id)
            .field("sender", &self.sender)
            .field("context_token", &self.context_token)
            .field("json_len", &self.json.len())
            .finish()
    }
}

/// One poll's worth of work for [`Store::commit_batch`].
#[derive(Clone, Debug)]
pub struct InboundBatch {
    /// The cursor to save, or `None` to keep the current one. An empty
    /// cursor is never saved.
    pub cursor: Option<String>,
    /// The poll's user messages, in server order.
    pub messages: Vec<InboundMessage>,
    /// The current time, in ms since the Unix epoch.
    pub now_ms: i64,
    /// How many exact message ids to remember per account (the newest are
    /// kept); 10 000 by default in the runtime.
    pub id_window: usize,
}

/// What [`Store::commit_batch`] did with a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The messages that were new, now in the journal, in server order.
    pub accepted: Vec<JournalEntry>,
    /// How many messages were dropped as duplicates.
    pub duplicates: usize,
}

/// The latest context token seen from one user.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextRecord {
    /// The token to echo in replies. Redacted in `Debug`.
    pub token: ContextToken,
    /// When the runtime saw it, in ms since the Unix epoch.
    pub seen_at_ms: i64,
}

impl fmt::Debug for ContextRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextRecord")
            .field("token", &self.token)
            .field("seen_at_ms", &self.seen_at_ms)
            .finish()
    }
}

/// Which budget a send draws on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetKind {
    /// A reply to the inbound message journaled under `key`: each message
    /// allows `limit` replies of its own (the server caps replies at about
    /// 10 per inbound message). A key no longer in the journal (handled or
    /// dead-lettered) has no budget left.
    Reply {
        /// The journal key of the message being answered.
        key: JournalKey,
    },
    /// A proactive push of the account: counted per fixed window of
    /// `window_ms` that starts with the first push after the previous
    /// window ended.
    Push {
        /// The window length in ms.
        window_ms: i64,
    },
}

/// What [`Store::spend_budget`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetOutcome {
    /// The sends were taken; `used` is the count after taking them.
    Granted {
        /// Sends used in the current turn or window, these included.
        used: u32,
    },
    /// Taking `count` more would pass the limit; nothing was taken.
    Exhausted {
        /// Sends already used in the current turn or window.
        used: u32,
        /// When a push window ends (ms since the Unix epoch); `None` for a
        /// reply budget, which never renews.
        resets_at_ms: Option<i64>,
    },
}

/// The bot-wide throttle state, kept so that a restart never hot-retries a
/// throttled bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// When the first `-2` of this throttle was seen, ms since the epoch.
    pub since_ms: i64,
    /// When one probe send may be tried, ms since the epoch.
    pub next_probe_ms: i64,
    /// How many probes failed so far (the cool-down grows with each).
    pub failed_probes: u32,
}

/// What [`Store::record_failure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureOutcome {
    /// The entry stays in the journal; `attempts` failed so far.
    Retry {
        /// Failed attempts so far.
        attempts: u32,
    },
    /// The entry moved to the dead letters after `attempts` failures.
    DeadLettered {
        /// Failed attempts in all.
        attempts: u32,
    },
    /// There was no such entry (already acknowledged or dead-lettered).
    Missing,
}

/// A message that failed too often and is no longer replayed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The key it had in the journal.
    pub key: JournalKey,
    /// The server's message id, if any.
    pub message_id: Option<u64>,
    /// The sender.
    pub sender: String,
    /// The message as JSON (holds the context token; left out of `Debug`).
    pub json: String,
    /// When it was first journaled.
    pub received_at_ms: i64,
    /// When it was dead-lettered.
    pub failed_at_ms: i64,
    /// How many attempts failed.
    pub attempts: u32,
    /// The last failure's message.
    pub last_error: String,
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("key", &self.key)
            .field("message_id", &self.message_id)
            .field("sender", &self.sender)
            .field("json_len", &self.json.len())
            .field("received_at_ms", &self.received_at_ms)
            .field("failed_at_ms", &self.failed_at_ms)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .finish()
    }
}

/// The persistent state of the bot runtime, for every account of a
/// deployment. See the [module documentation](self) for leases and
/// fencing.
///
/// "Fenced" below means: the write happens only if `lease` is still the
/// account's current lease (same owner, same epoch), checked in the same
/// transaction; otherwise nothing is written and the method fails with
/// [`Error::fenced`]. A fenced write does **not** check the expiry
/// time: a lease that expired but was not claimed by anyone else is still
/// the current one, and its holder may go on (and renew).
pub trait Store: Send + Sync + 'static {
    // ----- leases -----

    /// Claims `account` for `owner` until `now_ms + ttl_ms`, registering the
    /// account if the store has never seen it.
    ///
    /// Succeeds when the account has no lease, when its lease expired
    /// (`expires_at_ms <= now_ms`), was released, or is already held by
    /// `owner`. The epoch grows by one unless `owner` still holds an
    /// unexpired lease (then the claim is a renewal). Fails with
    /// [`Error::leased`] when another owner's lease is still valid.
    fn claim<'a>(
        &'a self,
        account: &'a AccountId,
        owner: &'a str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Lease>;

    /// Extends `lease` to `now_ms + ttl_ms`. Fenced.
    fn renew<'a>(&'a self, lease: &'a Lease, ttl_ms: i64, now_ms: i64) -> StoreFuture<'a, Lease>;

    /// Gives `lease` up, so that another runner may claim the account at
    /// once (its expiry becomes 0). Fenced; releasing a lease already lost
    /// fails with [`Error::fenced`] and changes nothing.
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;

    /// Every account the store knows, with its lease and counts, ordered by
    /// id.
    fn accounts(&self) -> StoreFuture<'_, Vec<AccountSummary>>;

    // ----- polling and the journal -----

    /// The saved long-poll cursor of `account`, if any.
    fn cursor<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<String>>;

    /// In one fenced transaction: drops messages whose exact id is in the
    /// account's id window (or repeats within the batch), journals the new
    /// ones with 0 attempts and no replies used, remembers their ids
    /// (keeping the newest `batch.id_window`), stores the newest context
    /// token per sender, and saves the cursor. Either all of it happens or
    /// none of it does.
    fn commit_batch<'a>(
        &'a self,
        lease: &'a Lease,
        batch: &'a InboundBatch,
    ) -> StoreFuture<'a, CommitOutcome>;

    /// Up to `limit` unacknowledged journal entries of `account` with a key
    /// greater than `after` (all when `None`), oldest first. The runtime
    /// pages through the backlog with this instead of loading it whole.
    fn pending<'a>(
        &'a self,
        account: &'a AccountId,
        after: Option<JournalKey>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<JournalEntry>>;

    /// Removes an entry from the journal: the message was handled. Returns
    /// `false` when there was no such entry. Fenced.
    fn acknowledge<'a>(&'a self, lease: &'a Lease, key: JournalKey) -> StoreFuture<'a, bool>;

    /// Records a failed attempt at handling `key`: increments its attempt
    /// count and stores `error` as its last error; when the count reaches
    /// `max_attempts`, moves the entry to the dead letters in the same
    /// transaction. Fenced.
    fn record_failure<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        error: &'a str,
        max_attempts: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, FailureOutcome>;

    /// Records that the server accepted reply number `index` of the
    /// journal entry `key` (so that a replay skips it). Idempotent; a
    /// missing entry is not an error. Fenced.
    fn record_reply<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        index: u32,
    ) -> StoreFuture<'a, ()>;

    /// True when `message_id` is inside the account's id window.
    fn is_seen<'a>(&'a self, account: &'a AccountId, message_id: u64) -> StoreFuture<'a, bool>;

    // ----- dead letters -----

    /// Up to `limit` dead letters of `account`, oldest key first.
    fn dead_letters<'a>(
        &'a self,
        account: &'a AccountId,
        limit: usize,
    ) -> StoreFuture<'a, Vec<DeadLetter>>;

    /// Moves a dead letter back into the journal with 0 attempts, no error
    /// and no replies used, under its old key, so the account's runner handles it again.
    /// Returns `false` when there is no such dead letter. Not fenced: an
    /// operator may re-queue while a runner holds the lease, and the runner
    /// picks the entry up on its next pass over the journal.
    fn requeue<'a>(&'a self, account: &'a AccountId, key: JournalKey) -> StoreFuture<'a, bool>;

    // ----- context tokens, budgets, throttle -----

    /// The latest context token of `user` on `account`.
    fn context<'a>(
        &'a self,
        account: &'a AccountId,
        user: &'a str,
    ) -> StoreFuture<'a, Option<ContextRecord>>;

    /// Takes `count` sends from the budget `kind` of the account if that
    /// leaves at most `limit` used; otherwise takes nothing. Fenced.
    fn spend_budget<'a>(
        &'a self,
        lease: &'a Lease,
        kind: &'a BudgetKind,
        count: u32,
        limit: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, BudgetOutcome>;

    /// The account's throttle state, if it is throttled.
    fn throttle<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<ThrottleRecord>>;

    /// Saves (`Some`) or clears (`None`) the throttle state. Fenced.
    fn set_throttle<'a>(
        &'a self,
        lease: &'a Lease,
        record: Option<ThrottleRecord>,
    ) -> StoreFuture<'a, ()>;

    // ----- account records (`wxlink accounts`) -----

    /// Stores the account file of `account`, registering the account if
    /// it is new, so that runners sharing the store can start it. Not
    /// fenced (an operator action). Stores that keep no account records
    /// fail with [`Error::invalid_store_argument`].
    fn put_credentials<'a>(
        &'a self,
        account: &'a AccountId,
        credentials: &'a AccountCredentials,
    ) -> StoreFuture<'a, ()> {
        let _ = (account, credentials);
        Box::pin(async {
            Err(Error::invalid_store_argument(
                "this store keeps no account records",
            ))
        })
    }

    /// The account file stored for `account`, if any.
    fn credentials<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> StoreFuture<'a, Option<AccountCredentials>> {
        let _ = account;
        Box::pin(async {
            Err(Error::invalid_store_argument(
                "this store keeps no account records",
            ))
        })
    }

    /// Removes `account` and everything kept for it. Refused with
    /// [`Error::leased`] while a runner holds a lease on it that is
    /// live at `now_ms`. Returns `false` when there was no such account.
    fn remove_account<'a>(&'a self, account: &'a AccountId, now_ms: i64) -> StoreFuture<'a, bool> {
        let _ = (account, now_ms);
        Box::pin(async {
            Err(Error::invalid_store_argument(
                "this store keeps no account records",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn account_ids_refuse_empty_and_control_characters() {
        assert!(AccountId::new("").is_err());
        assert!(AccountId::new("a\nb").is_err());
        assert!(AccountId::new("x".repeat(201)).is_err());
        assert_eq!(
            AccountId::new("bot@im.bot").map(|a| a.to_string()).ok(),
            Some("bot@im.bot".into())
        );
    }

    #[test]
    fn debug_output_hides_the_context_token() {
        let record = ContextRecord {
            token: ContextToken::new("secret-token-value"),
            seen_at_ms: 5,
        };
        let message = InboundMessage {
            message_id: Some(1),
            sender: "u".into(),
            context_token: Some(ContextToken::new("secret-token-value")),
            json: r#"{"context_token":"secret-token-value"}"#.into(),
        };
        let entry = JournalEntry {
            key: JournalKey(1),
            message_id: Some(1),
            sender: "u".into(),
            json: r#"{"context_token":"secret-token-value"}"#.into(),
            received_at_ms: 0,
            attempts: 0,
            last_error: None,
            accepted_replies: vec![],
        };
        let printed = format!("{record:?} {message:?} {entry:?}");
        assert!(!printed.contains("secret-token-value"), "{printed}");
    }

    #[test]
    fn store_errors_say_what_happened() {
        let err = Error::store_with("commit batch", std::io::Error::other("disk full"));
        assert_eq!(err.to_string(), "store failed to commit batch");
        assert!(err.source().is_some());
        let leased = Error::leased("runner-2", 10);
        assert!(leased.is_leased() && !leased.is_fenced());
        assert!(leased.to_string().contains("leased by another runner"));
        let fenced = Error::fenced("acknowledge");
        assert!(fenced.is_fenced() && !fenced.is_leased());
    }
}
