//! The I/O side of QR login: fetching codes, polling their status and
//! driving [`Machine`](super::machine::Machine).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use wxlink_proto::{
    GetBotQrcode, GetBotQrcodeRequest, GetQrcodeStatus, GetQrcodeStatusRequest,
    GetQrcodeStatusResponse, QrStatus,
};

use super::machine::{Confirmation, Machine, MachineConfig, Polled, Step};
use super::{LoginOptions, LoginResult, LoginState};
use crate::Error;
use crate::api::Api;
use crate::error::LoginFailure;

/// What the caller of [`login_with_qr`] hears about.
///
/// Every method has a default, so an implementation overrides only what it
/// needs. `()` and [`NoCallbacks`] implement it with the defaults, which
/// cannot answer a pairing-code challenge.
pub trait LoginCallbacks: Send {
    /// A QR code to show: put `url` in the QR image (not the bare code id,
    /// docs/protocol.md, "QR login"). Called for the first code and for every refresh.
    fn on_qr(&mut self, url: &str) {
        let _ = url;
    }

    /// The login moved to a new state (called once per change).
    fn on_status(&mut self, state: &LoginState) {
        let _ = state;
    }

    /// The server wants the pairing code shown on the user's phone.
    /// `retry` is true when the previous code was wrong. Returning `None`
    /// ends the login with an error whose
    /// [`Error::is_verify_code_required`] is true.
    fn verify_code(&mut self, retry: bool) -> impl Future<Output = Option<String>> + Send {
        let _ = retry;
        std::future::ready(None)
    }
}

/// Callbacks that do nothing and give no pairing code.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallbacks;

impl LoginCallbacks for NoCallbacks {}

impl LoginCallbacks for () {}

/// A boxed closure told about a QR URL.
type QrFn = Box<dyn FnMut(&str) + Send>;

/// A boxed closure told about a state change.
type StatusFn = Box<dyn FnMut(&LoginState) + Send>;

/// A boxed closure answering a pairing-code request.
type VerifyFn = Box<dyn FnMut(bool) -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send>;

/// [`LoginCallbacks`] made of closures, for callers who prefer them to a
/// trait implementation. Unset closures do nothing (and give no pairing
/// code).
///
/// ```no_run
/// use wxlink_client::login::ClosureCallbacks;
/// use wxlink_client::{LoginOptions, login_with_qr};
///
/// # async fn run() -> Result<(), wxlink_client::Error> {
/// let callbacks = ClosureCallbacks::new()
///     .on_qr(|url| println!("scan: {url}"))
///     .on_status(|state| println!("{state:?}"))
///     .verify_code(|_retry| async { Some("123456".to_owned()) });
/// login_with_qr(LoginOptions::new(), callbacks).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct ClosureCallbacks {
    on_qr: Option<QrFn>,
    on_status: Option<StatusFn>,
    verify_code: Option<VerifyFn>,
}

impl std::fmt::Debug for ClosureCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosureCallbacks")
            .field("on_qr", &self.on_qr.is_some())
            .field("on_status", &self.on_status.is_some())
            .field("verify_code", &self.verify_code.is_some())
            .finish()
    }
}

impl ClosureCallbacks {
    /// Callbacks that do nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called with each QR URL to show.
    #[must_use]
    pub fn on_qr(mut self, f: impl FnMut(&str) + Send + 'static) -> Self {
        self.on_qr = Some(Box::new(f));
        self
    }

    /// Called on each state change.
    #[must_use]
    pub fn on_status(mut self, f: impl FnMut(&LoginState) + Send + 'static) -> Self {
        self.on_status = Some(Box::new(f));
        self
    }

    /// Asked for the pairing code; the argument is `retry`.
    #[must_use]
    pub fn verify_code<F, Fut>(mut self, mut f: F) -> Self
    where
        F: FnMut(bool) -> Fut + Send + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.verify_code = Some(Box::new(move |retry| Box::pin(f(retry))));
        self
    }
}

impl LoginCallbacks for ClosureCallbacks {
    fn on_qr(&mut self, url: &str) {
        if let Some(f) = &mut self.on_qr {
            f(url);
        }
    }

    fn on_status(&mut self, state: &LoginState) {
        if let Some(f) = &mut self.on_status {
            f(state);
        }
    }

    fn verify_code(&mut self, retry: bool) -> impl Future<Output = Option<String>> + Send {
        let fut: Pin<Box<dyn Future<Output = Option<String>> + Send>> = match &mut self.verify_code
        {
            Some(f) => f(retry),
            None => Box::pin(std::future::ready(None)),
        };
        fut
    }
}

/// How a successful [`login_with_qr`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// New credentials; store them (see [`LoginResult::to_account`]).
    Confirmed(LoginResult),
    /// The bot is already bound to this client (the server recognised one of
    /// [`LoginOptions::local_tokens`]); keep using the stored account.
    AlreadyConnected,
}

/// Runs a whole QR login, reporting through `callbacks`.
///
/// Returns when the user confirmed on the phone, or the server said the bot
/// is already connected. Fails with an error whose [`Error::is_login`] is true when
/// the codes run out ([`Error::is_login_expired`]), the deadline passes
/// ([`Error::is_login_timeout`]) or a pairing code is needed and none is
/// given ([`Error::is_verify_code_required`]), and with an API failure
/// ([`Error::is_api`]) when a QR code cannot be fetched.
///
/// ```no_run
/// use wxlink_client::{LoginCallbacks, LoginOptions, LoginOutcome, login_with_qr};
///
/// struct Terminal;
/// impl LoginCallbacks for Terminal {
///     fn on_qr(&mut self, url: &str) {
///         println!("scan this with WeChat: {url}");
///     }
/// }
///
/// # async fn run() -> Result<(), wxlink_client::Error> {
/// match login_with_qr(LoginOptions::new(), Terminal).await? {
///     LoginOutcome::Confirmed(result) => result.to_account().save("account.json")?,
///     LoginOutcome::AlreadyConnected => println!("already connected"),
///     _ => {}
/// }
/// # Ok(())
/// # }
/// ```
pub async fn login_with_qr(
    options: LoginOptions,
    mut callbacks: impl LoginCallbacks,
) -> Result<LoginOutcome, Error> {
    let mut session = LoginSession::start(options).await?;
    callbacks.on_qr(session.qr_url());
    let mut last: Option<LoginState> = None;
    loop {
        let state = session.poll_once().await?;
        if last.as_ref() != Some(&state) {
            callbacks.on_status(&state);
        }
        match &state {
            LoginState::Waiting | LoginState::Scanned => {}
            LoginState::NeedVerifyCode { retry } => {
                let code = callbacks.verify_code(*retry).await;
                match code.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()) {
                    Some(code) => session.submit_verify_code(code),
                    None => return Err(LoginFailure::VerifyCodeRequired.into()),
                }
            }
            LoginState::Refreshed { qr_url } => callbacks.on_qr(qr_url),
            LoginState::Confirmed(result) => return Ok(LoginOutcome::Confirmed(result.clone())),
            LoginState::AlreadyConnected => return Ok(LoginOutcome::AlreadyConnected),
            LoginState::Failed(e) => return Err(e.clone()),
        }
        last = Some(state);
    }
}

/// A QR login driven one step at a time, for applications that run it from
/// a web page or their own event loop.
///
/// ```no_run
/// use wxlink_client::{LoginOptions, LoginSession, LoginState};
///
/// # async fn run() -> Result<(), wxlink_client::Error> {
/// let mut session = LoginSession::start(LoginOptions::new()).await?;
/// println!("show this as a QR code: {}", session.qr_url());
/// loop {
///     match session.poll_once().await? {
///         LoginState::Confirmed(result) => {
///             result.to_account().save("account.json")?;
///             break;
///         }
///         LoginState::NeedVerifyCode { .. } => session.submit_verify_code("123456"),
///         LoginState::Refreshed { qr_url } => println!("new code: {qr_url}"),
///         state if state.is_final() => break,
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct LoginSession {
    api: Api,
    machine: Machine,
    local_tokens: Vec<wxlink_proto::BotToken>,
    qrcode: String,
    qr_url: String,
    next_poll_at: Instant,
    /// The `retry` flag of the pairing-code request being waited on.
    code_retry: bool,
    /// True when a new QR code must be fetched before polling again (a
    /// previous fetch failed).
    refresh_pending: bool,
    finished: Option<LoginState>,
}

impl std::fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSession")
            .field("qr_url", &self.qr_url)
            .field("poll_base", &self.machine.poll_base())
            .field("qr_codes_shown", &self.machine.qr_codes_shown())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl LoginSession {
    /// Fetches the first QR code and starts the clock.
    pub async fn start(options: LoginOptions) -> Result<Self, Error> {
        let api = Api::for_login(options.settings.as_ref(), &options.base_url)?;
        let local_tokens: Vec<_> = options
            .local_tokens
            .iter()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .take(wxlink_proto::MAX_LOCAL_TOKENS)
            .cloned()
            .collect();
        let (qrcode, qr_url) = fetch_qr(&api, &options.base_url, &local_tokens).await?;
        let now = Instant::now();
        let machine = Machine::new(
            MachineConfig {
                base_url: options.base_url.trim_end_matches('/').to_owned(),
                poll_interval: options.poll_interval,
                max_qr_codes: options.max_qr_codes.max(1),
                deadline: options.deadline,
                allow_insecure_http: api.allows_insecure_http(),
            },
            now,
        );
        Ok(Self {
            api,
            machine,
            local_tokens,
            qrcode,
            qr_url,
            next_poll_at: now,
            code_retry: false,
            refresh_pending: false,
            finished: None,
        })
    }

    /// The URL to show as a QR code (the current one, after refreshes).
    pub fn qr_url(&self) -> &str {
        &self.qr_url
    }

    /// The opaque id of the current QR code.
    pub fn qrcode(&self) -> &str {
        &self.qrcode
    }

    /// Where status polls currently go (changes after a redirect).
    pub fn poll_base_url(&self) -> &str {
        self.machine.poll_base()
    }

    /// Hands in the pairing code the user read off the phone; the next
    /// [`poll_once`](Self::poll_once) sends it without waiting.
    pub fn submit_verify_code(&mut self, code: impl Into<String>) {
        self.machine.submit_verify_code(code.into());
        self.next_poll_at = Instant::now();
    }

    /// Waits out the poll interval, polls the status once and returns the new
    /// state. Once a final state is reached it is returned again on every
    /// call. While a pairing code is awaited it returns
    /// [`LoginState::NeedVerifyCode`] without polling.
    ///
    /// A failed status poll counts as `Waiting` (docs/protocol.md, "QR login"); the only
    /// error is a failure to fetch a replacement QR code, after which the
    /// session can be polled again to retry the fetch.
    pub async fn poll_once(&mut self) -> Result<LoginState, Error> {
        if let Some(done) = &self.finished {
            return Ok(done.clone());
        }
        if let Some(e) = self.machine.check_deadline(Instant::now()) {
            return Ok(self.finish(LoginState::Failed(e.into())));
        }
        if self.refresh_pending {
            return self.refresh().await;
        }
        if self.machine.awaiting_verify_code() {
            return Ok(LoginState::NeedVerifyCode {
                retry: self.code_retry,
            });
        }

        // Sleep until the next poll is due, but not past the deadline.
        let now = Instant::now();
        let wait = self
            .next_poll_at
            .saturating_duration_since(now)
            .min(self.machine.remaining(now));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }

        let polled = self.poll_status().await;
        let now = Instant::now();
        match self.machine.on_polled(polled, now) {
            Step::Poll { delay, scanned } => {
                self.next_poll_at = super::machine::instant_after(now, delay);
                Ok(if scanned {
                    LoginState::Scanned
                } else {
                    LoginState::Waiting
                })
            }
            Step::NeedVerifyCode { retry } => {
                self.code_retry = retry;
                Ok(LoginState::NeedVerifyCode { retry })
            }
            Step::RefreshQr => {
                self.refresh_pending = true;
                self.refresh().await
            }
            Step::Confirmed(result) => Ok(self.finish(LoginState::Confirmed(result))),
            Step::AlreadyConnected => Ok(self.finish(LoginState::AlreadyConnected)),
            Step::Failed(e) => Ok(self.finish(LoginState::Failed(e.into()))),
        }
    }

    /// Records a final state and returns it.
    fn finish(&mut self, state: LoginState) -> LoginState {
        self.finished = Some(state.clone());
        state
    }

    /// Fetches a replacement QR code.
    async fn refresh(&mut self) -> Result<LoginState, Error> {
        let base = self.machine.qr_base().to_owned();
        let (qrcode, qr_url) = fetch_qr(&self.api, &base, &self.local_tokens).await?;
        self.refresh_pending = false;
        self.machine.qr_refreshed();
        self.qrcode = qrcode;
        self.qr_url = qr_url.clone();
        self.next_poll_at =
            super::machine::instant_after(Instant::now(), self.machine.poll_interval());
        Ok(LoginState::Refreshed { qr_url })
    }

    /// One `get_qrcode_status` call; every failure reads as `wait`.
    async fn poll_status(&self) -> Polled {
        let request = GetQrcodeStatusRequest {
            qrcode: Some(self.qrcode.clone()),
            verify_code: self.machine.verify_code().map(str::to_owned),
        };
        let remaining = self.machine.remaining(Instant::now());
        // The server holds a status poll for up to 35 s (docs/protocol.md, "Timeouts and retries"); the
        // same margin as for `getupdates` lets its answer (a scan or the
        // confirmation) win over a client timer firing at that instant.
        let timeout = crate::api::FIRST_POLL_TIMEOUT.min(remaining.max(Duration::from_millis(1)));
        match self
            .api
            .call_at::<GetQrcodeStatus>(&request, self.machine.poll_base(), Some(timeout))
            .await
        {
            Ok(resp) => polled_from(resp),
            Err(e) => {
                tracing::debug!(error = %e, "qr status poll failed; treating it as wait");
                Polled::Wait
            }
        }
    }
}

/// Fetches a QR code at `base`: its id and the URL to show.
async fn fetch_qr(
    api: &Api,
    base: &str,
    local_tokens: &[wxlink_proto::BotToken],
) -> Result<(String, String), Error> {
    let request = GetBotQrcodeRequest {
        bot_type: None,
        local_token_list: local_tokens.to_vec(),
    };
    let resp = api.call_at::<GetBotQrcode>(&request, base, None).await?;
    let qrcode = resp.qrcode.filter(|q| !q.is_empty());
    let url = resp.qrcode_img_content.filter(|u| !u.is_empty());
    match (qrcode, url) {
        (Some(q), Some(u)) => Ok((q, u)),
        _ => Err(LoginFailure::NoQrCode.into()),
    }
}

/// Reduces a status response to what the machine needs.
fn polled_from(resp: GetQrcodeStatusResponse) -> Polled {
    match resp.status {
        Some(QrStatus::Scaned) => Polled::Scanned,
        Some(QrStatus::ScanedButRedirect) => Polled::ScannedButRedirect(resp.redirect_host),
        Some(QrStatus::NeedVerifycode) => Polled::NeedVerifyCode,
        Some(QrStatus::VerifyCodeBlocked) => Polled::VerifyCodeBlocked,
        Some(QrStatus::Expired) => Polled::Expired,
        Some(QrStatus::BindedRedirect) => Polled::AlreadyBound,
        Some(QrStatus::Confirmed) => Polled::Confirmed(Confirmation {
            bot_token: resp.bot_token,
            ilink_bot_id: resp.ilink_bot_id,
            baseurl: resp.baseurl,
            ilink_user_id: resp.ilink_user_id,
        }),
        // `wait`, a missing status and any value this version does not know.
        _ => Polled::Wait,
    }
}
