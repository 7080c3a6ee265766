//! Default hosts, identifiers and the timing numbers of the official client.
//!
//! Each value names the ILINK.md section it comes from. Timings are in
//! milliseconds, as the reference gives them.

/// The API base URL (ILINK.md §1.1). Login always starts here.
pub const DEFAULT_BASE_URL: &str = "https://ilinkai.weixin.qq.com";
/// The CDN base URL, without a trailing slash (ILINK.md §1.1).
pub const DEFAULT_CDN_BASE_URL: &str = "https://novac2c.cdn.weixin.qq.com/c2c";
/// The `bot_type` query parameter of `get_bot_qrcode` (ILINK.md §1.1).
pub const BOT_TYPE: &str = "3";
/// The `iLink-App-Id` header value (ILINK.md §1.1, §2.1).
pub const APP_ID: &str = "bot";
/// The most bot tokens sent in `local_token_list` (ILINK.md §4.1).
pub const MAX_LOCAL_TOKENS: usize = 10;

/// The default client timeout of a long poll, `getupdates` and
/// `get_qrcode_status` (ILINK.md §4.4, §6.6).
pub const LONG_POLL_TIMEOUT_MS: u64 = 35_000;
/// The client timeout of `sendmessage` and `getuploadurl` (ILINK.md §6.6).
pub const API_TIMEOUT_MS: u64 = 15_000;
/// The client timeout of `getconfig`, `sendtyping` and the notify calls
/// (ILINK.md §6.6).
pub const CONFIG_TIMEOUT_MS: u64 = 10_000;

/// The overall deadline of a QR login wait (ILINK.md §4.3).
pub const LOGIN_DEADLINE_MS: u64 = 480_000;
/// The shortest login deadline the official client accepts (ILINK.md §4.3).
pub const MIN_LOGIN_DEADLINE_MS: u64 = 1_000;
/// The sleep between QR status polls (ILINK.md §4.3).
pub const QR_POLL_INTERVAL_MS: u64 = 1_000;
/// How many QR codes one login may show in total (ILINK.md §4.3).
pub const QR_REFRESH_LIMIT: u32 = 3;
/// How long an abandoned login session lives (ILINK.md §4.3).
pub const LOGIN_SESSION_TTL_MS: u64 = 300_000;

/// The typing indicator keepalive interval (ILINK.md §8.4).
pub const TYPING_KEEPALIVE_MS: u64 = 5_000;
/// The first `getconfig` retry delay after a failure (ILINK.md §8.4).
pub const CONFIG_RETRY_INITIAL_MS: u64 = 2_000;
/// The cap of the doubling `getconfig` retry delay (ILINK.md §8.4).
pub const CONFIG_RETRY_MAX_MS: u64 = 3_600_000;
/// The longest random delay before a typing ticket is refreshed (ILINK.md §8.4).
pub const CONFIG_REFRESH_MAX_MS: u64 = 86_400_000;

/// The sleep after a failed poll (ILINK.md §6.5).
pub const POLL_BACKOFF_MS: u64 = 2_000;
/// The longer sleep once failures reach [`POLL_FAILURES_BEFORE_LONG_BACKOFF`]
/// (ILINK.md §6.5).
pub const POLL_LONG_BACKOFF_MS: u64 = 30_000;
/// Consecutive poll failures that trigger the long backoff (ILINK.md §6.5).
pub const POLL_FAILURES_BEFORE_LONG_BACKOFF: u32 = 3;
/// How long the official client pauses an account after −14 (ILINK.md §6.4).
pub const SESSION_PAUSE_MS: u64 = 3_600_000;
/// The window after a user's last message in which bot messages are
/// delivered (ILINK.md §8.3).
pub const REPLY_WINDOW_MS: u64 = 86_400_000;

/// The `client_id` prefix WxLink uses for outbound messages (ILINK.md §5.6).
pub const CLIENT_ID_PREFIX: &str = "wxlink";
