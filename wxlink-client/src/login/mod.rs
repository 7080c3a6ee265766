//! QR-code login: the one way to obtain a bot token (docs/protocol.md, "QR login").
//!
//! Two ways to drive it:
//!
//! - [`login_with_qr`] runs the whole login and reports through
//!   [`LoginCallbacks`]: the QR URL to show, status changes and, when the
//!   server asks, the pairing code the user reads off the phone.
//! - [`LoginSession`] is the same state machine one step at a time, for an
//!   application that drives the login from a web page: start a session,
//!   show [`LoginSession::qr_url`], call [`LoginSession::poll_once`] until it
//!   returns a final [`LoginState`], and pass a pairing code in with
//!   [`LoginSession::submit_verify_code`].
//!
//! The rules follow the official client: QR codes are fetched from the login
//! base URL (the default host unless [`LoginOptions::base_url`] says
//! otherwise); status polls follow `scaned_but_redirect` to `https://` + the
//! bare host the server names, whatever the login base's scheme (docs/protocol.md, "Hosts and URL joining"; a named host that carries its own `http://` or `https://` is used as
//! given); at most three QR codes are shown; the whole wait ends after
//! 480 s; a failed status poll counts as `wait`; `binded_redirect` means the
//! bot is already connected; `confirmed` must carry both the bot id and the
//! token. A successful login becomes an [`AccountRecord`] for storage.

mod machine;
mod session;

use std::time::Duration;

use wxlink_proto::BotToken;

use crate::{AccountRecord, Error};

pub use session::{
    ClosureCallbacks, LoginCallbacks, LoginOutcome, LoginSession, NoCallbacks, login_with_qr,
};

/// Settings of a QR login.
///
/// ```
/// use std::time::Duration;
/// use wxlink_client::LoginOptions;
///
/// let options = LoginOptions::new()
///     .base_url("http://127.0.0.1:8080")
///     .deadline(Duration::from_secs(120));
/// assert_eq!(options.max_qr_codes, 3);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct LoginOptions {
    /// Where QR codes are fetched and status polling starts; the default API
    /// host unless set.
    pub base_url: String,
    /// Tokens of bots already logged in on this machine, newest first. At
    /// most 10 are sent; they let the server answer "already connected"
    /// instead of binding a second bot (docs/protocol.md, "QR login").
    pub local_tokens: Vec<BotToken>,
    /// The overall deadline of the login (480 s; at least 1 s).
    pub deadline: Duration,
    /// The pause between status polls (1 s).
    pub poll_interval: Duration,
    /// How many QR codes may be shown in total, the first included (3).
    pub max_qr_codes: u32,
    /// The HTTP transport and client settings, set through
    /// `LoginOptions::client`; the default HTTPS transport when unset.
    pub(crate) settings: Option<crate::api::ApiSettings>,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            base_url: wxlink_proto::DEFAULT_BASE_URL.to_owned(),
            local_tokens: Vec::new(),
            deadline: Duration::from_millis(wxlink_proto::consts::LOGIN_DEADLINE_MS),
            poll_interval: Duration::from_millis(wxlink_proto::consts::QR_POLL_INTERVAL_MS),
            max_qr_codes: wxlink_proto::consts::QR_REFRESH_LIMIT,
            settings: None,
        }
    }
}

impl std::fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOptions")
            .field("base_url", &self.base_url)
            .field("local_tokens", &self.local_tokens.len())
            .field("deadline", &self.deadline)
            .field("poll_interval", &self.poll_interval)
            .field("max_qr_codes", &self.max_qr_codes)
            .finish_non_exhaustive()
    }
}

impl LoginOptions {
    /// The official defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets where QR codes are fetched and status polling starts.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets the tokens of bots already logged in here, newest first.
    #[must_use]
    pub fn local_tokens(mut self, tokens: impl IntoIterator<Item = BotToken>) -> Self {
        self.local_tokens = tokens.into_iter().collect();
        self
    }

    /// Sets the overall deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the pause between status polls.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets how many QR codes may be shown in total.
    #[must_use]
    pub fn max_qr_codes(mut self, codes: u32) -> Self {
        self.max_qr_codes = codes.max(1);
        self
    }
}

/// The credentials a confirmed login returned.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginResult {
    /// The bearer token (`bot_token`).
    pub bot_token: BotToken,
    /// The bot id (`ilink_bot_id`, `…@im.bot`).
    pub account_id: String,
    /// The API base URL for this account: `baseurl`, or the login base when
    /// the server sent none (docs/protocol.md, "Hosts and URL joining").
    pub base_url: String,
    /// The WeChat user who scanned (`ilink_user_id`).
    pub user_id: Option<String>,
}

impl LoginResult {
    /// The record to store and build clients from.
    pub fn to_account(&self) -> AccountRecord {
        AccountRecord {
            token: self.bot_token.clone(),
            base_url: self.base_url.clone(),
            cdn_base_url: None,
            account_id: Some(self.account_id.clone()),
            user_id: self.user_id.clone(),
        }
    }
}

impl From<LoginResult> for AccountRecord {
    fn from(r: LoginResult) -> Self {
        AccountRecord {
            token: r.bot_token,
            base_url: r.base_url,
            cdn_base_url: None,
            account_id: Some(r.account_id),
            user_id: r.user_id,
        }
    }
}

impl std::fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResult")
            .field("bot_token", &self.bot_token)
            .field("account_id", &self.account_id)
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Where a login stands, as [`LoginSession::poll_once`] reports it.
///
/// Two states are equal when they say the same; two failures are equal when
/// they are the same login failure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoginState {
    /// The QR code has not been scanned yet.
    Waiting,
    /// The user scanned the code and must confirm on the phone.
    Scanned,
    /// The server wants the pairing code shown on the user's phone; pass it
    /// to [`LoginSession::submit_verify_code`]. `retry` is true when the
    /// previous code was wrong.
    NeedVerifyCode {
        /// True when a code was sent and refused.
        retry: bool,
    },
    /// The previous QR code expired (or pairing was blocked); show this new
    /// one.
    Refreshed {
        /// The URL to put in the new QR image.
        qr_url: String,
    },
    /// The login succeeded.
    Confirmed(LoginResult),
    /// The bot is already bound to this client; keep the stored account.
    AlreadyConnected,
    /// The login failed for good; [`Error::is_login`] is true, and the
    /// login predicates such as [`Error::is_login_expired`] say why.
    Failed(Error),
}

impl PartialEq for LoginState {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Waiting, Self::Waiting)
            | (Self::Scanned, Self::Scanned)
            | (Self::AlreadyConnected, Self::AlreadyConnected) => true,
            (Self::NeedVerifyCode { retry: a }, Self::NeedVerifyCode { retry: b }) => a == b,
            (Self::Refreshed { qr_url: a }, Self::Refreshed { qr_url: b }) => a == b,
            (Self::Confirmed(a), Self::Confirmed(b)) => a == b,
            (Self::Failed(a), Self::Failed(b)) => a.same_failure(b),
            _ => false,
        }
    }
}

impl Eq for LoginState {}

impl LoginState {
    /// True for the states after which polling stops.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Confirmed(_) | Self::AlreadyConnected | Self::Failed(_)
        )
    }
}
