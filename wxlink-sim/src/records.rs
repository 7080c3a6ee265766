//! What the simulator saw: sent messages, typing calls, presence calls,
//! CDN uploads and every HTTP request, as read by tests.

use std::time::SystemTime;

use serde::Serialize;
use wxlink_proto::WeixinMessage;

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
    /// `false` when the 24 h window switch dropped it silently: the bot was
    /// told it succeeded, but the user would never see it.
    pub delivered: bool,
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
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UploadRecord {
    /// When it finished.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
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

/// One HTTP request the simulator answered (control calls under `/_sim/`
/// are not logged).
#[derive(Debug, Clone, Serialize)]
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
    /// Request body bytes read.
    pub body_size: u64,
    /// HTTP status answered; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// Why the simulator refused the call, when it did.
    pub note: Option<String>,
    /// Whether it reached the second (redirect) listener.
    pub redirect_listener: bool,
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
