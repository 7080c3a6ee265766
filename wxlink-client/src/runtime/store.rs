//! The runtime's persistent state: the [`Store`] trait and the records it
//! keeps.
//!
//! A store holds everything a bot must not forget across a restart: the
//! long-poll cursor, the journal of inbound messages the application has not
//! acknowledged yet, the de-duplication windows, the latest context token per
//! user and the per-user send budget of the current turn.
//!
//! The one operation that matters most is [`Store::commit_batch`]: it writes a
//! poll's new messages *and* the new cursor in one transaction. The server
//! never replays an old cursor (ILINK.md §9), so a message must be durable
//! before the cursor that skips past it is.
//!
//! Methods are synchronous and short. The runtime calls them from
//! `tokio::task::spawn_blocking`, so an implementation may block on disk I/O.

use std::error::Error as StdError;
use std::fmt;

use wxlink_proto::ContextToken;

/// The boxed cause carried by a [`StoreError`].
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failed store operation.
///
/// The cause (for example the SQLite error) is reachable through
/// [`std::error::Error::source`]; the message names the operation.
pub struct StoreError {
    operation: &'static str,
    source: Option<BoxError>,
}

impl StoreError {
    /// An error for `operation` (a short lowercase phrase such as
    /// `"commit batch"`) with no further cause.
    pub fn new(operation: &'static str) -> Self {
        Self {
            operation,
            source: None,
        }
    }

    /// An error for `operation` caused by `source`.
    pub fn with_source(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            source: Some(source.into()),
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source is printed through its own Debug; store causes (SQLite,
        // I/O, JSON) never carry a context token because tokens are bound as
        // query parameters, never formatted into SQL.
        f.debug_struct("StoreError")
            .field("operation", &self.operation)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store failed to {}", self.operation)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn StdError + 'static))
    }
}

/// The key of one journal entry, assigned by the store in arrival order.
///
/// Acknowledging uses this key rather than the message id because a message
/// may (rarely) come without an id.
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
    /// When the runtime journaled it, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

impl fmt::Debug for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalEntry")
            .field("key", &self.key)
            .field("message_id", &self.message_id)
            .field("sender", &self.sender)
            .field("json_len", &self.json.len())
            .field("received_at_ms", &self.received_at_ms)
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
    /// A content fingerprint (sender plus a hash of the text), when the
    /// message has text; used by the optional fingerprint window.
    pub fingerprint: Option<String>,
    /// The context token the message carried, if any.
    pub context_token: Option<ContextToken>,
    /// The message as JSON.
    pub json: String,
}

impl fmt::Debug for InboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The JSON holds the context token in clear, so it is left out here.
        f.debug_struct("InboundMessage")
            .field("message_id", &self.message_id)
            .field("sender", &self.sender)
            .field("fingerprint", &self.fingerprint)
            .field("context_token", &self.context_token)
            .field("json_len", &self.json.len())
            .finish()
    }
}

/// How the store decides that a message was already seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupeSettings {
    /// How many exact message ids to remember (the newest are kept).
    pub id_window: usize,
    /// How long a content fingerprint counts as a duplicate, in
    /// milliseconds; `None` turns the fingerprint window off.
    pub fingerprint_ttl_ms: Option<i64>,
}

impl Default for DedupeSettings {
    fn default() -> Self {
        Self {
            id_window: 10_000,
            fingerprint_ttl_ms: None,
        }
    }
}

/// One poll's worth of work for [`Store::commit_batch`].
#[derive(Clone, Debug)]
pub struct InboundBatch {
    /// The cursor to save, or `None` to keep the current one. An empty
    /// cursor is never saved (ILINK.md §9).
    pub cursor: Option<String>,
    /// The poll's user messages, in server order.
    pub messages: Vec<InboundMessage>,
    /// The current time, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The de-duplication rules to apply.
    pub dedupe: DedupeSettings,
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
    /// The token to echo in replies (ILINK.md §8.3). Redacted in `Debug`.
    pub token: ContextToken,
    /// When the runtime saw it, in milliseconds since the Unix epoch.
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

/// The send count of one user's current turn (since their latest message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnRecord {
    /// When the turn started (the user's latest new message), in
    /// milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// How many bot messages were sent to the user in this turn.
    pub sent: u32,
}

/// Persistent state of the bot runtime.
///
/// Implementations must be safe to share between threads. Every method is a
/// short synchronous operation; the runtime runs them on the blocking pool.
/// [`MemoryStore`](super::MemoryStore) and [`SqliteStore`](super::SqliteStore)
/// are the two provided implementations.
pub trait Store: Send + Sync {
    /// The saved long-poll cursor, if any.
    fn cursor(&self) -> Result<Option<String>, StoreError>;

    /// Saves the long-poll cursor. An empty cursor is ignored.
    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError>;

    /// In one transaction: drops duplicates (by exact id, and by fingerprint
    /// when enabled), journals the new messages, remembers their ids and
    /// fingerprints, starts a new send-budget turn for each sender of a new
    /// message, stores the newest context token per sender and saves the
    /// cursor. Either all of it happens or none of it does.
    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError>;

    /// The unacknowledged journal entries, oldest first.
    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError>;

    /// Removes an entry from the journal. Returns `false` when there was no
    /// such entry (already acknowledged).
    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError>;

    /// True when `message_id` is inside the de-duplication window.
    fn is_seen(&self, message_id: u64) -> Result<bool, StoreError>;

    /// The latest context token of `user`.
    fn context(&self, user: &str) -> Result<Option<ContextRecord>, StoreError>;

    /// Replaces the context token of `user`.
    fn set_context(&self, user: &str, record: &ContextRecord) -> Result<(), StoreError>;

    /// The send count of `user`'s current turn.
    fn turn(&self, user: &str) -> Result<Option<TurnRecord>, StoreError>;

    /// Replaces the send count of `user`'s current turn.
    fn set_turn(&self, user: &str, record: &TurnRecord) -> Result<(), StoreError>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn cursor(&self) -> Result<Option<String>, StoreError> {
        (**self).cursor()
    }
    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        (**self).set_cursor(cursor)
    }
    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError> {
        (**self).commit_batch(batch)
    }
    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError> {
        (**self).unacknowledged()
    }
    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError> {
        (**self).acknowledge(key)
    }
    fn is_seen(&self, message_id: u64) -> Result<bool, StoreError> {
        (**self).is_seen(message_id)
    }
    fn context(&self, user: &str) -> Result<Option<ContextRecord>, StoreError> {
        (**self).context(user)
    }
    fn set_context(&self, user: &str, record: &ContextRecord) -> Result<(), StoreError> {
        (**self).set_context(user, record)
    }
    fn turn(&self, user: &str) -> Result<Option<TurnRecord>, StoreError> {
        (**self).turn(user)
    }
    fn set_turn(&self, user: &str, record: &TurnRecord) -> Result<(), StoreError> {
        (**self).set_turn(user, record)
    }
}

/// The content fingerprint of a text message: the sender and the MD5 of the
/// text (ILINK.md §10 item 8), as `"<sender>:<hex md5>"`.
pub fn fingerprint(sender: &str, text: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(text.as_bytes());
    format!("{sender}:{}", hex_lower(&digest))
}

/// Lowercase hex of `bytes`.
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sender_and_md5_of_text() {
        // MD5("abc") is the RFC 1321 test vector.
        assert_eq!(
            fingerprint("u@im.wechat", "abc"),
            "u@im.wechat:900150983cd24fb0d6963f7d28e17f72"
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
            fingerprint: None,
            context_token: Some(ContextToken::new("secret-token-value")),
            json: r#"{"context_token":"secret-token-value"}"#.into(),
        };
        let entry = JournalEntry {
            key: JournalKey(1),
            message_id: Some(1),
            sender: "u".into(),
            json: r#"{"context_token":"secret-token-value"}"#.into(),
            received_at_ms: 0,
        };
        let printed = format!("{record:?} {message:?} {entry:?}");
        assert!(!printed.contains("secret-token-value"), "{printed}");
    }

    #[test]
    fn store_error_names_the_operation() {
        let err = StoreError::with_source("commit batch", std::io::Error::other("disk full"));
        assert_eq!(err.to_string(), "store failed to commit batch");
        assert!(err.source().is_some());
    }
}
