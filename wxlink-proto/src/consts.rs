//! Default hosts, identifiers and the timing numbers of the official client.
//!
//! Each value names the section of `docs/protocol.md` that states it. Timings
//! are in milliseconds.

/// The API base URL (docs/protocol.md, "Hosts and URL joining"). Login always
/// starts here.
pub const DEFAULT_BASE_URL: &str = "https://ilinkai.weixin.qq.com";
/// The CDN base URL, without a trailing slash (docs/protocol.md, "Hosts and URL
/// joining").
pub const DEFAULT_CDN_BASE_URL: &str = "https://novac2c.cdn.weixin.qq.com/c2c";
/// The `bot_type` query parameter of `get_bot_qrcode` (docs/protocol.md, "Hosts
/// and URL joining").
pub const BOT_TYPE: &str = "3";
/// The `iLink-App-Id` header value (docs/protocol.md, "Hosts and URL joining",
/// "Request headers").
pub const APP_ID: &str = "bot";
/// The most bot tokens sent in `local_token_list` (docs/protocol.md, "QR
/// login").
pub const MAX_LOCAL_TOKENS: usize = 10;

/// The default client timeout of a long poll, `getupdates` and
/// `get_qrcode_status` (docs/protocol.md, "Timeouts and retries").
pub const LONG_POLL_TIMEOUT_MS: u64 = 35_000;
/// The client timeout of `sendmessage` and `getuploadurl` (docs/protocol.md,
/// "Timeouts and retries").
pub const API_TIMEOUT_MS: u64 = 15_000;
/// The client timeout of `getconfig`, `sendtyping` and the notify calls
/// (docs/protocol.md, "Timeouts and retries").
pub const CONFIG_TIMEOUT_MS: u64 = 10_000;

/// The overall deadline of a QR login wait (docs/protocol.md, "QR login").
pub const LOGIN_DEADLINE_MS: u64 = 480_000;
/// The shortest login deadline the official client accepts (docs/protocol.md,
/// "QR login").
pub const MIN_LOGIN_DEADLINE_MS: u64 = 1_000;
/// The sleep between QR status polls (docs/protocol.md, "QR login").
pub const QR_POLL_INTERVAL_MS: u64 = 1_000;
/// How many QR codes one login may show in total (docs/protocol.md, "QR
/// login").
pub const QR_REFRESH_LIMIT: u32 = 3;
/// How long an abandoned login session lives (docs/protocol.md, "QR login").
pub const LOGIN_SESSION_TTL_MS: u64 = 300_000;

/// The typing indicator keepalive interval (docs/protocol.md, "Typing
/// tickets").
pub const TYPING_KEEPALIVE_MS: u64 = 5_000;
/// The first `getconfig` retry delay after a failure (docs/protocol.md, "Typing
/// tickets").
pub const CONFIG_RETRY_INITIAL_MS: u64 = 2_000;
/// The cap of the doubling `getconfig` retry delay (docs/protocol.md, "Typing
/// tickets").
pub const CONFIG_RETRY_MAX_MS: u64 = 3_600_000;
/// The longest random delay before a typing ticket is refreshed
/// (docs/protocol.md, "Typing tickets").
pub const CONFIG_REFRESH_MAX_MS: u64 = 86_400_000;

/// The sleep after a failed poll (docs/protocol.md, "Long polling").
pub const POLL_BACKOFF_MS: u64 = 2_000;
/// The longer sleep once failures reach [`POLL_FAILURES_BEFORE_LONG_BACKOFF`]
/// (docs/protocol.md, "Long polling").
pub const POLL_LONG_BACKOFF_MS: u64 = 30_000;
/// Consecutive poll failures that trigger the long backoff (docs/protocol.md,
/// "Long polling").
pub const POLL_FAILURES_BEFORE_LONG_BACKOFF: u32 = 3;
/// How long the official client pauses an account after −14 (docs/protocol.md,
/// "Status and errors").
pub const SESSION_PAUSE_MS: u64 = 3_600_000;
/// The window after a user's last message in which bot messages are delivered
/// (docs/protocol.md, "Context tokens").
pub const REPLY_WINDOW_MS: u64 = 86_400_000;

/// The `client_id` prefix WxLink uses for outbound messages (docs/protocol.md,
/// "Shape of a bot reply").
pub const CLIENT_ID_PREFIX: &str = "wxlink";
