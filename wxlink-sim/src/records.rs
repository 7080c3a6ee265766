//! What the simulator saw: sent messages, typing calls, presence calls,
//! CDN uploads and every HTTP request, as read by tests.
//!
//! Each kind of record lives in a bounded [`RecordLog`]: the newest entries
//! are kept (see [`SimConfig::record_limit`](crate::SimConfig::record_limit)
//! and [`SimConfig::request_log_limit`](crate::SimConfig::request_log_limit)),
//! and an all-time count keeps going, so a simulator serving a long load
//! test does not grow without bound while "the 20 000th message" can still
//! be waited for.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use wxlink_proto::WeixinMessage;
use wxlink_proto::redact::Redacted;

use crate::redact::redact_query;

/// One message a bot sent through `sendmessage` and the simulator accepted.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SentMessage {
    /// When the simulator accepted it.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// The bot that sent it (`…@im.bot`).
    pub bot_id: String,
    /// The message as decoded from the request.
    pub msg: WeixinMessage,
    /// `false` when a fidelity switch dropped it silently: the bot was
    /// told it succeeded, but the user would never see it.
    pub delivered: bool,
    /// Why the user would not see it, when `delivered` is `false`:
    /// `outside the reply window` or `voice is not shown`.
    pub not_shown: Option<&'static str>,
}

impl SentMessage {
    /// The recipient (`msg.to_user_id`).
    pub fn to_user_id(&self) -> &str {
        self.msg.to_user_id.as_deref().unwrap_or_default()
    }

    /// The text of the message's text item, if it has one.
    pub fn text(&self) -> Option<&str> {
        self.msg
            .item_list
            .iter()
            .find_map(|item| item.text_item.as_ref()?.text.as_deref())
    }
}

/// One accepted `sendtyping` call.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TypingCall {
    /// When it arrived.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// The bot that called (`…@im.bot`).
    pub bot_id: String,
    /// The user whose chat shows the indicator.
    pub ilink_user_id: String,
    /// 1 = typing, 2 = cancel.
    pub status: i64,
}

/// One `msg/notifystart` or `msg/notifystop` call.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NotifyCall {
    /// When it arrived.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// `true` for notifystart, `false` for notifystop.
    pub start: bool,
    /// The bot that called.
    pub bot_id: String,
}

/// One CDN upload attempt, accepted or refused.
///
/// `Debug` prints `filekey` and `download_param`, which open the CDN
/// object, as `<redacted, N bytes>`; read the fields themselves when a test
/// needs them.
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct UploadRecord {
    /// When it finished.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// The bot whose `getuploadurl` issued the slot.
    pub bot_id: String,
    /// The `filekey` of the upload.
    pub filekey: String,
    /// The `media_type` declared to `getuploadurl` (1 image, 2 video, 3
    /// file, 4 voice).
    pub media_type: i64,
    /// The user the upload is bound to.
    pub to_user_id: String,
    /// Declared plaintext size.
    pub rawsize: u64,
    /// Declared ciphertext size.
    pub filesize: u64,
    /// Ciphertext bytes actually received.
    pub received: u64,
    /// The download parameter issued (`x-encrypted-param`), when accepted.
    pub download_param: Option<String>,
    /// The `x-error-message` of a refused upload.
    pub error: Option<String>,
    /// Where the ciphertext is kept: `memory`, `disk` or `digest`.
    pub stored: Option<&'static str>,
}

/// Whether and how a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthSeen {
    /// No `Authorization` header.
    Missing,
    /// A bearer token of a live session.
    Valid,
    /// A header the simulator did not accept (unknown or expired token, or
    /// not a bearer token).
    Rejected,
}

/// One answered `getupdates` poll of an account, from
/// [`Account::polls`](crate::Account::polls): when it was held, the cursor
/// it came with and the one it got, and the messages it took off the
/// queue. Since delivery is at most once, this is how a test tells where a
/// message went: the poll that carried it, and whether the next poll of
/// the token came back with that poll's new cursor (its client kept the
/// batch) or with an older one (the batch never reached the client's
/// store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PollRecord {
    /// When the request arrived.
    #[serde(with = "unix_ms")]
    pub started: SystemTime,
    /// When the answer was ready to go out.
    #[serde(with = "unix_ms")]
    pub ended: SystemTime,
    /// The `get_updates_buf` the client sent.
    pub cursor_sent: String,
    /// The `get_updates_buf` the answer carried.
    pub cursor_returned: String,
    /// The ids of the messages the answer carried, in order.
    pub message_ids: Vec<u64>,
    /// An injected fault kept the answer from the client.
    pub answer_lost: bool,
}

/// One HTTP request the simulator answered (control calls under `/_sim/`
/// are not logged).
///
/// `Debug` prints the values of the CDN credentials in the query
/// (`encrypted_query_param`, `filekey`) as `<redacted, N bytes>`; the
/// `query` field itself holds them unchanged.
#[derive(Clone, Serialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// When it arrived.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// `GET`, `POST`, …
    pub method: String,
    /// The HTTP version it arrived over: `HTTP/1.1`, or `HTTP/2.0` for h2c.
    pub http_version: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The endpoint it was routed to (`getupdates`, `cdn_upload`, …);
    /// `None` for a 404.
    pub endpoint: Option<&'static str>,
    /// Every header except `Authorization`, names in lower case.
    pub headers: Vec<(String, String)>,
    /// What the `Authorization` header was.
    pub auth: AuthSeen,
    /// The bot whose valid token authenticated the call; `None` for the
    /// login and CDN calls and for a refused token.
    pub bot_id: Option<String>,
    /// Request body bytes read.
    pub body_size: u64,
    /// HTTP status answered; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// Why the simulator refused the call, when it did.
    pub note: Option<String>,
    /// Whether it reached the second (redirect) listener.
    pub redirect_listener: bool,
}

impl fmt::Debug for UploadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadRecord")
            .field("at", &self.at)
            .field("bot_id", &self.bot_id)
            .field("filekey", &Redacted(&self.filekey))
            .field("media_type", &self.media_type)
            .field("to_user_id", &self.to_user_id)
            .field("rawsize", &self.rawsize)
            .field("filesize", &self.filesize)
            .field("received", &self.received)
            .field("download_param", &Redacted(&self.download_param))
            .field("error", &self.error)
            .field("stored", &self.stored)
            .finish()
    }
}

impl fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecord")
            .field("at", &self.at)
            .field("method", &self.method)
            .field("http_version", &self.http_version)
            .field("path", &self.path)
            .field("query", &self.query.as_deref().map(redact_query))
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers)
            .field("auth", &self.auth)
            .field("bot_id", &self.bot_id)
            .field("body_size", &self.body_size)
            .field("status", &self.status)
            .field("note", &self.note)
            .field("redirect_listener", &self.redirect_listener)
            .finish()
    }
}

impl RequestRecord {
    /// The value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A log that keeps the newest `limit` records, oldest first, and counts
/// every record ever added (until the next reset). Each record may belong
/// to an account and carries its number among that account's records, so
/// one account's records can be read back exactly.
#[derive(Debug)]
pub(crate) struct RecordLog<T> {
    items: VecDeque<Entry<T>>,
    limit: usize,
    total: u64,
}

/// One kept record with its account and its number in that account.
#[derive(Debug)]
struct Entry<T> {
    account: Option<u32>,
    /// 1 for the account's first record, and so on.
    ordinal: u64,
    record: T,
}

impl<T: Clone> RecordLog<T> {
    /// An empty log keeping at most `limit` records (0 keeps none, but
    /// still counts).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            items: VecDeque::new(),
            limit,
            total: 0,
        }
    }

    /// Adds a record of `account` (its `ordinal`-th), dropping the oldest
    /// one when the log is full.
    pub(crate) fn push(&mut self, account: Option<u32>, ordinal: u64, record: T) {
        self.total = self.total.saturating_add(1);
        if self.limit == 0 {
            return;
        }
        if self.items.len() >= self.limit {
            self.items.pop_front();
        }
        self.items.push_back(Entry {
            account,
            ordinal,
            record,
        });
    }

    /// Records added since the start or the last reset, kept or not.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The records kept, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|e| &e.record)
    }

    /// A copy of the records kept, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    /// A copy of the records added after the all-time count was `mark`,
    /// oldest first, as far as they are still kept. A mark above the count
    /// (taken before a reset) gives none.
    pub(crate) fn since(&self, mark: u64) -> Vec<T> {
        let added = self.total.saturating_sub(mark);
        let keep = usize::try_from(added).map_or(self.items.len(), |n| n.min(self.items.len()));
        self.items
            .iter()
            .skip(self.items.len() - keep)
            .map(|e| e.record.clone())
            .collect()
    }

    /// The kept records of `account`, oldest first.
    pub(crate) fn of(&self, account: u32) -> impl Iterator<Item = &T> {
        self.items
            .iter()
            .filter(move |e| e.account == Some(account))
            .map(|e| &e.record)
    }

    /// The kept records of `account` after its own count was `mark`.
    pub(crate) fn of_since(&self, account: u32, mark: u64) -> Vec<T> {
        self.items
            .iter()
            .filter(|e| e.account == Some(account) && e.ordinal > mark)
            .map(|e| e.record.clone())
            .collect()
    }

    /// How many records are kept and how many were added in all.
    pub(crate) fn count(&self) -> LogCount {
        LogCount {
            total: self.total,
            kept: self.items.len(),
        }
    }

    /// The count of `account`'s records, given its all-time `total`.
    pub(crate) fn count_of(&self, account: u32, total: u64) -> LogCount {
        LogCount {
            total,
            kept: self.of(account).count(),
        }
    }

    /// Forgets every record and resets the count.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.total = 0;
    }
}

/// The size of one record log: how many records were added in all and how
/// many of the newest are still kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LogCount {
    /// Records added since the simulator started or was last reset,
    /// including those no longer kept.
    pub total: u64,
    /// Records kept, at most the log's limit; these are what the accessors
    /// such as [`Simulator::sent_messages`](crate::Simulator::sent_messages)
    /// return.
    pub kept: usize,
}

impl LogCount {
    /// Records dropped to stay within the limit (`total - kept`).
    pub fn dropped(&self) -> u64 {
        self.total.saturating_sub(self.kept as u64)
    }
}

/// The all-time and kept sizes of every record log, from
/// [`Simulator::record_counts`](crate::Simulator::record_counts) (and
/// `GET /_sim/counts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordCounts {
    /// Messages accepted by `sendmessage`.
    pub sent: LogCount,
    /// Accepted `sendtyping` calls.
    pub typing: LogCount,
    /// `msg/notifystart` and `msg/notifystop` calls.
    pub notify: LogCount,
    /// CDN upload attempts that reached the checks.
    pub uploads: LogCount,
    /// Requests answered (control calls excluded).
    pub requests: LogCount,
    /// Requests answered per endpoint name (`getupdates`, `cdn_upload`, …),
    /// all-time; requests that matched no endpoint are not listed.
    pub requests_by_endpoint: BTreeMap<String, u64>,
}

/// Serializes a `SystemTime` as Unix milliseconds.
mod unix_ms {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub(super) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        s.serialize_u64(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_returns_what_was_added_after_the_mark_even_when_the_ring_is_full() {
        let mut log = RecordLog::new(3);
        for n in 0..5 {
            log.push(Some(n as u32 % 2), 1 + n as u64 / 2, n);
        }
        // Kept: 2, 3, 4; the all-time count is 5.
        assert_eq!(log.since(5), Vec::<i32>::new());
        assert_eq!(log.since(4), [4]);
        assert_eq!(log.since(3), [3, 4]);
        // More was added than is kept: what is kept.
        assert_eq!(log.since(0), [2, 3, 4]);
        // A mark from before a reset.
        // Account 0 added 0, 2, 4 (its 1st, 2nd, 3rd); 0 is no longer kept.
        assert_eq!(log.of_since(0, 0), [2, 4]);
        assert_eq!(log.of_since(0, 2), [4]);
        assert_eq!(log.of_since(1, 1), [3]);
        assert_eq!(log.count_of(0, 3).kept, 2);
        log.clear();
        log.push(None, 1, 9);
        assert_eq!(log.since(5), Vec::<i32>::new());
        let mut none = RecordLog::new(0);
        none.push(None, 1, 1);
        assert_eq!(none.since(0), Vec::<i32>::new());
    }
}
