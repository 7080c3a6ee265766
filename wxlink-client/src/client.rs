//! [`WxLinkClient`], its builder and the request builders of its calls.
//!
//! Every call takes its required arguments positionally and returns a
//! request builder; optional arguments are setters on the builder, which is
//! sent with `.await` (it implements [`IntoFuture`]) or `.send().await`:
//!
//! ```no_run
//! # async fn run(client: wxlink_client::WxLinkClient, ctx: wxlink_proto::ContextToken) -> Result<(), wxlink_client::Error> {
//! client.send_text("alice@im.wechat", "hello").context_token(ctx).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wxlink_proto::{
    ApiResponse, ApiStatus, BotToken, ContextToken, GetConfig, GetConfigRequest, GetConfigResponse,
    GetUpdates, GetUpdatesRequest, GetUpdatesResponse, MessageItem, MessageItemType, MessageState,
    MessageType, NotifyStart, NotifyStartRequest, NotifyStop, NotifyStopRequest, SendMessage,
    SendMessageRequest, SendTyping, SendTypingRequest, TextItem, TypingStatus, TypingTicket,
    WeixinMessage,
};

pub use crate::api::BoxHttpService;
use crate::api::{Api, ApiSettings};
pub use crate::api::{FIRST_POLL_TIMEOUT, LONG_POLL_MARGIN};
use crate::chunk::{DEFAULT_MAX_CHARS, chunk_text};
use crate::{AccountRecord, Error};
pub use wxlink_transport::{Body, RetryPolicy, Timeouts};

/// A boxed, sendable future: what every request builder resolves through.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The shortest long-poll hold a server suggestion is raised to.
pub const MIN_SERVER_HOLD: Duration = Duration::from_secs(1);

/// The longest long-poll hold a server suggestion is cut to: nine times the
/// official 35 s is generous for any real server and keeps a broken or
/// hostile `longpolling_timeout_ms` (up to `i64::MAX` ms) from parking a
/// poll for centuries.
pub const MAX_SERVER_HOLD: Duration = Duration::from_secs(300);

/// The hold a server's `longpolling_timeout_ms` suggests, clamped to
/// [`MIN_SERVER_HOLD`]..=[`MAX_SERVER_HOLD`]; `None` for zero or a
/// negative value, which suggest nothing.
///
/// ```
/// use std::time::Duration;
/// use wxlink_client::client::{MAX_SERVER_HOLD, server_hold};
///
/// assert_eq!(server_hold(35_000), Some(Duration::from_secs(35)));
/// assert_eq!(server_hold(i64::MAX), Some(MAX_SERVER_HOLD));
/// assert_eq!(server_hold(-5), None);
/// ```
pub fn server_hold(ms: i64) -> Option<Duration> {
    let ms = u64::try_from(ms).ok().filter(|ms| *ms > 0)?;
    Some(Duration::from_millis(ms).clamp(MIN_SERVER_HOLD, MAX_SERVER_HOLD))
}

/// The client-side limit of a poll the server is expected to hold for
/// `hold`: the hold plus [`LONG_POLL_MARGIN`].
pub(crate) fn poll_limit(hold: Duration) -> Duration {
    hold.saturating_add(LONG_POLL_MARGIN)
}

/// Wraps a `sendmessage` refusal in what it most likely means: `-3` as
/// [`Error::is_invalid_recipient`] with a hint, `-2` as [`Error::rejection`]
/// with a guess at the cause. Other errors are returned as they are.
fn explain_refusal(to: &str, facts: &crate::reject::SendFacts, e: Error) -> Error {
    let Some(status) = e.api_status().cloned() else {
        return e;
    };
    if status.kind() == wxlink_proto::StatusKind::InvalidRecipient {
        return Error::invalid_recipient(to.to_owned(), crate::reject::recipient_hint(to), e);
    }
    match crate::reject::classify_rejection(&status, facts) {
        Some(guess) => Error::rejected(guess, e),
        None => e,
    }
}

/// The high-level client of the iLink bot API.
///
/// Cheap to clone (one `Arc` inside) and `Send + Sync`: clone it into every
/// task that sends. All clones share one connection pool.
///
/// ```no_run
/// use wxlink_client::WxLinkClient;
/// use wxlink_proto::BotToken;
///
/// # fn run() -> Result<(), wxlink_client::Error> {
/// let client = WxLinkClient::builder()
///     .base_url("https://ilinkai.weixin.qq.com")
///     .token(BotToken::new("saved-bot-token"))
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WxLinkClient {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    /// The timeout of the next long poll, in milliseconds (0: none): the
    /// configured hold, then the server's `longpolling_timeout_ms`, each
    /// plus [`LONG_POLL_MARGIN`].
    poll_timeout_ms: AtomicU64,
    /// The last typing ticket `getconfig` returned per user, so that
    /// cancelling does not need another `getconfig`.
    tickets: Mutex<HashMap<String, TypingTicket>>,
}

impl std::fmt::Debug for WxLinkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxLinkClient")
            .field("base_url", &self.base_url())
            .field("cdn_base_url", &self.cdn_base_url())
            .finish_non_exhaustive()
    }
}

/// Builds a [`WxLinkClient`].
///
/// Only the token is required; everything else has the official default.
/// `build` refuses a missing or blank token.
#[derive(Clone, Default)]
pub struct ClientBuilder {
    pub(crate) settings: ApiSettings,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.settings.base_url)
            .field("has_token", &self.settings.token.is_some())
            .field("cdn_base_url", &self.settings.cdn_base_url)
            .finish_non_exhaustive()
    }
}

/// The login's link to a builder: defined beside [`ClientBuilder`] so that
/// the login module sits below the client and never names it.
impl crate::login::LoginOptions {
    /// Uses the transport, timeouts, retry policy and headers of `builder`
    /// (its base URL and token are ignored: login has neither).
    #[must_use]
    pub fn client(mut self, builder: ClientBuilder) -> Self {
        self.settings = Some(builder.settings);
        self
    }
}

impl ClientBuilder {
    /// The API base URL; the default host when unset.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.base_url = Some(url.into());
        self
    }

    /// The bot token from a QR login.
    #[must_use]
    pub fn token(mut self, token: BotToken) -> Self {
        self.settings.token = Some(token);
        self
    }

    /// The CDN base URL; the default CDN when unset.
    #[must_use]
    pub fn cdn_base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.cdn_base_url = Some(url.into());
        self
    }

    /// Sends every request through `service` instead of the default HTTPS
    /// transport: any `tower::Service<http::Request<Body>>` that answers
    /// with `http::Response<Body>`. It is boxed once here, so the client has
    /// no type parameter.
    #[must_use]
    pub fn transport<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<wxlink_transport::Body>,
                Response = http::Response<wxlink_transport::Body>,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<wxlink_transport::BoxError>,
        S::Future: Send + 'static,
    {
        self.settings.transport = Some(crate::api::boxed(service));
        self
    }

    /// Wraps the transport (the one given to [`transport`](Self::transport),
    /// or the default) in a tower layer, for metrics, logging or request
    /// rewriting. The layer sees every API and CDN request after WxLink's
    /// own layers (headers, retries, timeouts), once per attempt.
    ///
    /// ```
    /// use wxlink_client::WxLinkClient;
    /// use wxlink_proto::BotToken;
    ///
    /// let client = WxLinkClient::builder()
    ///     .token(BotToken::new("token"))
    ///     .layer(tower::util::MapRequestLayer::new(|req: http::Request<_>| {
    ///         println!("{} {}", req.method(), req.uri().path());
    ///         req
    ///     }))
    ///     .build()?;
    /// # Ok::<(), wxlink_client::Error>(())
    /// ```
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<BoxHttpService>,
        L::Service: tower::Service<
                http::Request<wxlink_transport::Body>,
                Response = http::Response<wxlink_transport::Body>,
            > + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<http::Request<wxlink_transport::Body>>>::Error:
            Into<wxlink_transport::BoxError>,
        <L::Service as tower::Service<http::Request<wxlink_transport::Body>>>::Future:
            Send + 'static,
    {
        let inner = self
            .settings
            .transport
            .take()
            .unwrap_or_else(|| crate::api::boxed(wxlink_transport::HttpsTransport::new()));
        self.settings.transport = Some(crate::api::boxed(layer.layer(inner)));
        self
    }

    /// The client-side timeouts of each call class.
    ///
    /// For `getupdates`, [`Timeouts::long_poll`] is how long the server is
    /// expected to hold an idle poll (35 s by default, as the real server
    /// does); the first poll waits that **plus [`LONG_POLL_MARGIN`]**, and
    /// later polls wait the server's `longpolling_timeout_ms` plus the same
    /// margin, so that the server's answer is never cut off (see
    /// [`FIRST_POLL_TIMEOUT`]). `None` means polls have no client-side
    /// limit. [`PollRequest::timeout`] sets one poll's limit exactly.
    #[must_use]
    pub fn timeouts(mut self, timeouts: wxlink_transport::Timeouts) -> Self {
        self.settings.timeouts = Some(timeouts);
        self
    }

    /// The time limits of every CDN upload and download: an idle limit
    /// between chunks (30 s by default) and an overall limit of `base +
    /// size / min_rate` (30 s plus one second per 64 KiB by default). A CDN
    /// that stops moving bytes fails the call with an error whose
    /// [`is_timeout`](crate::Error::is_timeout) is true.
    #[must_use]
    pub fn cdn_timeouts(mut self, timeouts: wxlink_media::TransferTimeouts) -> Self {
        self.settings.cdn_timeouts = Some(timeouts);
        self
    }

    /// The limits of URL fetches (`send_media_from_url` and the runtime's
    /// media replies from a URL): size, time, redirects, and which
    /// addresses may be reached. By default only public addresses are
    /// fetched, checked on every redirect hop after resolving the name,
    /// and an `https://` page may not redirect to `http://`; a URL a chat
    /// user supplies cannot reach this machine or its network.
    ///
    /// ```
    /// use wxlink_client::WxLinkClient;
    /// use wxlink_media::{AddressPolicy, FetchOptions};
    /// use wxlink_proto::BotToken;
    ///
    /// let client = WxLinkClient::builder()
    ///     .token(BotToken::new("token"))
    ///     .fetch_options(FetchOptions::default().max_bytes(10 << 20).policy(AddressPolicy::AllowLoopback))
    ///     .build()?;
    /// # Ok::<(), wxlink_client::Error>(())
    /// ```
    #[must_use]
    pub fn fetch_options(mut self, options: wxlink_media::FetchOptions) -> Self {
        self.settings.fetch = Some(options);
        self
    }

    /// Allows a plain `http://` base URL on another host (default: refused
    /// with [`Error::is_insecure_url`]), for a test server elsewhere on a
    /// trusted network. Every call carries the bot token, which plain HTTP
    /// shows to anyone on the path; loopback (`127.0.0.0/8`, `::1`,
    /// `localhost`) never leaves the machine and is always allowed. The
    /// same setting governs a QR login's redirect host and confirmed base
    /// URL when this builder is given to the login.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.settings.allow_insecure_http = allow;
        self
    }

    /// The retry policy for calls that are safe to retry.
    #[must_use]
    pub fn retry(mut self, retry: wxlink_transport::RetryPolicy) -> Self {
        self.settings.retry = Some(retry);
        self
    }

    /// The `bot_agent` self-description (`Name/Version (comment)`,
    /// sanitised per docs/protocol.md, "`base_info` and `bot_agent`").
    #[must_use]
    pub fn bot_agent(mut self, agent: impl Into<String>) -> Self {
        self.settings.bot_agent = Some(agent.into());
        self
    }

    /// The optional `SKRouteTag` header.
    #[must_use]
    pub fn route_tag(mut self, tag: impl Into<String>) -> Self {
        self.settings.route_tag = Some(tag.into());
        self
    }

    /// The `channel_version` sent in `base_info`.
    #[must_use]
    pub fn channel_version(mut self, version: impl Into<String>) -> Self {
        self.settings.channel_version = Some(version.into());
        self
    }

    /// Builds the client. Fails with [`Error::is_missing_token`] when no token,
    /// or a blank one, was given.
    pub fn build(self) -> Result<WxLinkClient, Error> {
        let has_token = self
            .settings
            .token
            .as_ref()
            .is_some_and(|t| !t.expose_secret().trim().is_empty());
        if !has_token {
            return Err(Error::missing_token());
        }
        let api = Api::new(&self.settings)?;
        // The configured long-poll timeout is the hold expected from the
        // server; the margin keeps the first poll from racing its answer.
        let poll_ms = api
            .default_long_poll()
            .map_or(0, |hold| duration_ms(poll_limit(hold)));
        Ok(WxLinkClient {
            inner: Arc::new(Inner {
                api,
                poll_timeout_ms: AtomicU64::new(poll_ms),
                tickets: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl WxLinkClient {
    /// Starts a [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for a saved account: its token, base URL and CDN URL.
    ///
    /// ```no_run
    /// use wxlink_client::{AccountRecord, WxLinkClient};
    ///
    /// # fn run() -> Result<(), wxlink_client::Error> {
    /// let account = AccountRecord::load("account.json")?;
    /// let client = WxLinkClient::from_account(&account)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_account(record: &AccountRecord) -> Result<Self, Error> {
        Self::from_account_with(record, ClientBuilder::default())
    }

    /// A client for a saved account, with the other settings (transport,
    /// timeouts, bot agent…) taken from `builder`. The record's token, base
    /// URL and CDN URL win over the builder's.
    ///
    /// ```no_run
    /// use wxlink_client::{AccountRecord, WxLinkClient};
    ///
    /// # fn run() -> Result<(), wxlink_client::Error> {
    /// let account = AccountRecord::load("account.json")?;
    /// let client = WxLinkClient::from_account_with(
    ///     &account,
    ///     WxLinkClient::builder().bot_agent("MyBot/1.2.0").route_tag("1001"),
    /// )?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_account_with(
        record: &AccountRecord,
        builder: ClientBuilder,
    ) -> Result<Self, Error> {
        let mut builder = builder
            .token(record.token.clone())
            .base_url(record.base_url.clone());
        if let Some(cdn) = &record.cdn_base_url {
            builder = builder.cdn_base_url(cdn.clone());
        }
        builder.build()
    }

    /// The API base URL in use.
    pub fn base_url(&self) -> &str {
        self.inner.api.base_url()
    }

    /// The CDN base URL in use.
    pub fn cdn_base_url(&self) -> &str {
        self.inner.api.cdn_base_url()
    }

    /// The API handle, for the media calls.
    pub(crate) fn api(&self) -> &Api {
        &self.inner.api
    }

    /// One long poll for inbound messages (`getupdates`, docs/protocol.md, "Long polling").
    ///
    /// Pass `""` the first time and [`PollResult::next_cursor`] afterwards.
    /// A client-side timeout is not an error: it returns an empty poll with
    /// the cursor unchanged. A `""` cursor from the server never replaces a
    /// non-empty one (docs/protocol.md, "Cursor"). The next poll waits as long as the
    /// server's `longpolling_timeout_ms` suggests, plus
    /// [`LONG_POLL_MARGIN`]; the first one waits [`FIRST_POLL_TIMEOUT`]
    /// (with the default [`Timeouts`]).
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// let mut cursor = String::new();
    /// loop {
    ///     let updates = client.poll(&cursor).await?;
    ///     for msg in &updates.response.msgs {
    ///         println!("{:?}", msg.from_user_id);
    ///     }
    ///     cursor = updates.next_cursor;
    /// }
    /// # }
    /// ```
    pub fn poll(&self, cursor: impl Into<String>) -> PollRequest {
        PollRequest {
            client: self.clone(),
            cursor: cursor.into(),
            timeout: None,
        }
    }

    /// Sends one text message and returns its id (docs/protocol.md, "Shape of a bot reply").
    ///
    /// Empty text is refused with [`Error::is_empty_text`]. A non-zero
    /// `ret`/`errcode` in the response is an error carrying the
    /// [`ApiStatus`], never a silent success.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, msg: wxlink_proto::WeixinMessage) -> Result<(), wxlink_client::Error> {
    /// let user = msg.from_user_id.clone().unwrap_or_default();
    /// let sent = client
    ///     .send_text(user, "hello")
    ///     .context_token(msg.context_token.clone())
    ///     .await?;
    /// println!("sent {}", sent.client_id);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_text(&self, to: impl Into<String>, text: impl Into<String>) -> SendTextRequest {
        SendTextRequest {
            client: self.clone(),
            to: to.into(),
            text: text.into(),
            context_token: None,
            client_id: None,
        }
    }

    /// Splits long text with [`chunk_text`] (4 000 characters by default)
    /// and sends each piece in order; returns how many messages were sent.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, long_text: String) -> Result<(), wxlink_client::Error> {
    /// let sent = client
    ///     .send_text_chunked("alice@im.wechat", long_text)
    ///     .max_chars(2000)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_text_chunked(
        &self,
        to: impl Into<String>,
        text: impl Into<String>,
    ) -> SendTextChunkedRequest {
        SendTextChunkedRequest {
            client: self.clone(),
            to: to.into(),
            text: text.into(),
            context_token: None,
            max_chars: DEFAULT_MAX_CHARS,
            pace: None,
        }
    }

    /// Shows "typing…" to `user`. Fetches the typing ticket through
    /// [`get_config`](Self::get_config) first (docs/protocol.md, "Typing tickets").
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, ctx: wxlink_proto::ContextToken) -> Result<(), wxlink_client::Error> {
    /// client.send_typing("alice@im.wechat").context_token(ctx.clone()).await?;
    /// // … generate the reply …
    /// client.cancel_typing("alice@im.wechat").context_token(ctx).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_typing(&self, user: impl Into<String>) -> TypingRequest {
        TypingRequest {
            client: self.clone(),
            user: user.into(),
            context_token: None,
            ticket: None,
            status: TypingStatus::Typing,
        }
    }

    /// Hides the typing indicator for `user`. Uses the ticket of the last
    /// [`get_config`](Self::get_config) for that user, fetching one if there
    /// is none.
    pub fn cancel_typing(&self, user: impl Into<String>) -> TypingRequest {
        TypingRequest {
            client: self.clone(),
            user: user.into(),
            context_token: None,
            ticket: None,
            status: TypingStatus::Cancel,
        }
    }

    /// Reads the per-user configuration, which holds the typing ticket
    /// (`getconfig`, docs/protocol.md, "Typing tickets").
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// let config = client.get_config("alice@im.wechat").await?;
    /// let has_ticket = config.typing_ticket.is_some();
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_config(&self, user: impl Into<String>) -> ConfigRequest {
        ConfigRequest {
            client: self.clone(),
            user: user.into(),
            context_token: None,
        }
    }

    /// Tells the server this bot is online (`msg/notifystart`, docs/protocol.md, "Presence"). Call it before the first poll.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// client.notify_start().await?;
    /// // … poll and reply …
    /// client.notify_stop().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn notify_start(&self) -> Result<(), Error> {
        self.inner
            .api
            .call::<NotifyStart>(&NotifyStartRequest::default())
            .await
            .map(drop)
    }

    /// Tells the server this bot is going offline (`msg/notifystop`).
    pub async fn notify_stop(&self) -> Result<(), Error> {
        self.inner
            .api
            .call::<NotifyStop>(&NotifyStopRequest::default())
            .await
            .map(drop)
    }

    /// Sends one message holding exactly `item`, shaped as docs/protocol.md, "Shape of a bot reply"
    /// requires.
    pub(crate) async fn send_item(
        &self,
        to: &str,
        item: MessageItem,
        context_token: Option<&ContextToken>,
    ) -> Result<SentMessage, Error> {
        self.send_item_as(to, item, context_token, None).await
    }

    /// Sends one message holding exactly `item` under `client_id`, or a
    /// fresh one when `None`.
    pub(crate) async fn send_item_as(
        &self,
        to: &str,
        item: MessageItem,
        context_token: Option<&ContextToken>,
        client_id: Option<String>,
    ) -> Result<SentMessage, Error> {
        if to.trim().is_empty() {
            return Err(Error::invalid_argument("recipient user id is empty"));
        }
        let client_id = match client_id {
            Some(id) if !id.trim().is_empty() => id,
            Some(_) => return Err(Error::invalid_argument("client_id is empty")),
            None => wxlink_proto::new_client_id(wxlink_proto::consts::CLIENT_ID_PREFIX),
        };
        let facts = match item.text_item.as_ref().and_then(|t| t.text.as_deref()) {
            Some(text) => crate::reject::SendFacts::text(text, context_token.is_some()),
            None => crate::reject::SendFacts::media(context_token.is_some()),
        };
        let msg = WeixinMessage {
            from_user_id: Some(String::new()),
            to_user_id: Some(to.to_owned()),
            client_id: Some(client_id.clone()),
            message_type: Some(MessageType::Bot),
            message_state: Some(MessageState::Finish),
            item_list: vec![item],
            context_token: context_token.cloned(),
            ..WeixinMessage::default()
        };
        let request = SendMessageRequest {
            msg: Some(msg),
            base_info: None,
        };
        let refused = |status: ApiStatus| {
            explain_refusal(
                to,
                &facts,
                Error::from(wxlink_transport::Error::api(status)),
            )
        };
        let resp = match self.inner.api.call::<SendMessage>(&request).await {
            Ok(resp) => resp,
            Err(e) => return Err(explain_refusal(to, &facts, e)),
        };
        // The transport already turns a non-zero status into an error; this
        // guards the rule "a rejection is never a success" on its own.
        let status = resp.status();
        if !status.is_success() {
            return Err(refused(status));
        }
        Ok(SentMessage {
            client_id,
            message_id: resp.message_id,
        })
    }

    /// Sends one text message after checking it is not empty.
    pub(crate) async fn send_text_now(
        &self,
        to: &str,
        text: &str,
        context_token: Option<&ContextToken>,
    ) -> Result<SentMessage, Error> {
        self.send_text_as(to, text, context_token, None).await
    }

    /// Sends one text message under `client_id` (a fresh one when `None`).
    pub(crate) async fn send_text_as(
        &self,
        to: &str,
        text: &str,
        context_token: Option<&ContextToken>,
        client_id: Option<String>,
    ) -> Result<SentMessage, Error> {
        if text.is_empty() {
            return Err(Error::empty_text());
        }
        self.send_item_as(to, text_item(text), context_token, client_id)
            .await
    }

    async fn get_config_now(
        &self,
        user: &str,
        context_token: Option<&ContextToken>,
    ) -> Result<GetConfigResponse, Error> {
        if user.trim().is_empty() {
            return Err(Error::invalid_argument("user id is empty"));
        }
        let request = GetConfigRequest {
            ilink_user_id: Some(user.to_owned()),
            context_token: context_token.cloned(),
            base_info: None,
        };
        let resp = self.inner.api.call::<GetConfig>(&request).await?;
        if let Some(ticket) = resp.typing_ticket.clone().filter(|t| !t.is_empty())
            && let Ok(mut map) = self.inner.tickets.lock()
        {
            map.insert(user.to_owned(), ticket);
        }
        Ok(resp)
    }

    async fn poll_now(
        &self,
        cursor: String,
        timeout: Option<Duration>,
    ) -> Result<PollResult, Error> {
        let timeout = timeout.or_else(|| self.next_poll_timeout());
        let request = GetUpdatesRequest {
            get_updates_buf: cursor.clone(),
            sync_buf: None,
            base_info: None,
        };
        match self
            .inner
            .api
            .call_with_timeout::<GetUpdates>(&request, timeout)
            .await
        {
            Ok(response) => {
                if let Some(hold) = response.longpolling_timeout_ms.and_then(server_hold) {
                    let limit = poll_limit(hold);
                    self.inner
                        .poll_timeout_ms
                        .store(duration_ms(limit), Ordering::Relaxed);
                }
                let next_cursor = response
                    .get_updates_buf
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or(cursor);
                Ok(PollResult {
                    response,
                    next_cursor,
                    timed_out: false,
                })
            }
            Err(e) if e.is_long_poll_timeout() => Ok(PollResult {
                response: GetUpdatesResponse {
                    ret: Some(0),
                    get_updates_buf: Some(cursor.clone()),
                    ..GetUpdatesResponse::default()
                },
                next_cursor: cursor,
                timed_out: true,
            }),
            Err(e) => Err(Error::from(e)),
        }
    }

    /// The client-side timeout the next poll will use, `None` for no limit:
    /// the configured long-poll timeout ([`FIRST_POLL_TIMEOUT`] by default)
    /// until the server suggests a hold, then that hold; both plus
    /// [`LONG_POLL_MARGIN`].
    pub fn next_poll_timeout(&self) -> Option<Duration> {
        match self.inner.poll_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// `duration` in whole milliseconds, saturating.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A text item holding `text`.
pub(crate) fn text_item(text: &str) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Text),
        text_item: Some(TextItem {
            text: Some(text.to_owned()),
        }),
        ..MessageItem::default()
    }
}

/// Implements `IntoFuture` for a request builder through its `send` method.
macro_rules! into_future {
    ($ty:ty => $out:ty) => {
        impl ::std::future::IntoFuture for $ty {
            type Output = Result<$out, $crate::Error>;
            type IntoFuture = $crate::client::BoxFuture<Result<$out, $crate::Error>>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.send())
            }
        }
    };
}
pub(crate) use into_future;

/// The id of a sent message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SentMessage {
    /// The `client_id` this client generated for the message; the official
    /// client reports it as the message id (docs/protocol.md, "Shape of a bot reply").
    pub client_id: String,
    /// The server's `message_id`, when the response carried one.
    pub message_id: Option<u64>,
}

impl SentMessage {
    /// The message id: the generated `client_id`.
    pub fn id(&self) -> &str {
        &self.client_id
    }
}

/// What one [`WxLinkClient::poll`] returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PollResult {
    /// The server's response (an empty one after a client-side timeout).
    pub response: GetUpdatesResponse,
    /// The cursor to pass to the next poll: the server's new cursor, or the
    /// one sent when the server returned none or an empty one.
    pub next_cursor: String,
    /// True when the client's own timer ended the poll.
    pub timed_out: bool,
}

impl PollResult {
    /// The inbound messages.
    pub fn messages(&self) -> &[WeixinMessage] {
        &self.response.msgs
    }
}

/// A pending [`WxLinkClient::poll`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct PollRequest {
    client: WxLinkClient,
    cursor: String,
    timeout: Option<Duration>,
}

impl PollRequest {
    /// Overrides the client-side timeout of this poll: it ends after
    /// exactly `timeout`, with no margin added. Give the server's hold plus
    /// [`LONG_POLL_MARGIN`] or more, or a batch the server sends as the
    /// timer fires is lost.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the poll.
    pub async fn send(self) -> Result<PollResult, Error> {
        self.client.poll_now(self.cursor, self.timeout).await
    }
}
into_future!(PollRequest => PollResult);

/// A pending [`WxLinkClient::send_text`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct SendTextRequest {
    client: WxLinkClient,
    to: String,
    text: String,
    context_token: Option<ContextToken>,
    client_id: Option<String>,
}

impl SendTextRequest {
    /// The context token of the conversation: the `context_token` of the
    /// user's latest message (docs/protocol.md, "Context tokens"). Accepts a `ContextToken` or an
    /// `Option<ContextToken>`.
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// Sends the message under this `client_id` instead of a fresh one.
    ///
    /// A caller that may send the same message again (a bot replaying a
    /// delivery after a crash) derives the id from what it answers, so that
    /// a repeat carries the same id; the gateway is reported to drop a
    /// repeated `client_id`, though that is not confirmed. An empty id is
    /// refused with [`Error::is_invalid_argument`].
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Sends the message.
    pub async fn send(self) -> Result<SentMessage, Error> {
        self.client
            .send_text_as(
                &self.to,
                &self.text,
                self.context_token.as_ref(),
                self.client_id,
            )
            .await
    }
}
into_future!(SendTextRequest => SentMessage);

/// A pending [`WxLinkClient::send_text_chunked`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct SendTextChunkedRequest {
    client: WxLinkClient,
    to: String,
    text: String,
    context_token: Option<ContextToken>,
    max_chars: usize,
    pace: Option<Duration>,
}

impl SendTextChunkedRequest {
    /// The context token of the conversation.
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// The most characters per message (4 000 by default; must be > 0).
    pub fn max_chars(mut self, max_chars: usize) -> Self {
        self.max_chars = max_chars;
        self
    }

    /// Waits this long between two chunks. The official client does not
    /// pace, but bursts of three or more sends a second have been seen to
    /// trigger an hour-long `-2` throttle (docs/protocol.md, "Send limits"), so a pause of a
    /// second is a safe choice for long texts.
    pub fn pace(mut self, pause: Duration) -> Self {
        self.pace = Some(pause);
        self
    }

    /// Sends the chunks in order and returns how many were sent. When one
    /// fails after others went out, the error is [`Error::partially_sent`].
    pub async fn send(self) -> Result<usize, Error> {
        if self.max_chars == 0 {
            return Err(Error::invalid_argument("max_chars must be at least 1"));
        }
        if self.text.is_empty() {
            return Err(Error::empty_text());
        }
        let chunks = chunk_text(&self.text, self.max_chars);
        let mut sent = 0;
        for chunk in chunks {
            if let Some(pause) = self.pace.filter(|_| sent > 0) {
                tokio::time::sleep(pause).await;
            }
            let result = self
                .client
                .send_text_now(&self.to, chunk, self.context_token.as_ref())
                .await;
            match result {
                Ok(_) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(e) => {
                    return Err(Error::partial_send(sent, e));
                }
            }
        }
        Ok(sent)
    }
}
into_future!(SendTextChunkedRequest => usize);

/// A pending [`WxLinkClient::send_typing`] or [`WxLinkClient::cancel_typing`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct TypingRequest {
    client: WxLinkClient,
    user: String,
    context_token: Option<ContextToken>,
    ticket: Option<TypingTicket>,
    status: TypingStatus,
}

impl TypingRequest {
    /// The context token of the conversation, passed to `getconfig`.
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// Uses this typing ticket instead of asking `getconfig` for one.
    pub fn ticket(mut self, ticket: TypingTicket) -> Self {
        self.ticket = Some(ticket);
        self
    }

    /// Sends the typing status. Fails with [`Error::is_no_typing_ticket`] when
    /// the server has no ticket for this user.
    pub async fn send(self) -> Result<(), Error> {
        let client = &self.client;
        let cached = || {
            client
                .inner
                .tickets
                .lock()
                .ok()
                .and_then(|m| m.get(&self.user).cloned())
        };
        let ticket = match (self.ticket.clone(), self.status) {
            (Some(t), _) => Some(t),
            (None, TypingStatus::Cancel) => match cached() {
                Some(t) => Some(t),
                None => {
                    client
                        .get_config_now(&self.user, self.context_token.as_ref())
                        .await?
                        .typing_ticket
                }
            },
            (None, _) => {
                client
                    .get_config_now(&self.user, self.context_token.as_ref())
                    .await?
                    .typing_ticket
            }
        };
        let ticket = ticket
            .filter(|t| !t.is_empty())
            .ok_or_else(Error::no_typing_ticket)?;
        let request = SendTypingRequest {
            ilink_user_id: Some(self.user.clone()),
            typing_ticket: Some(ticket),
            status: Some(self.status),
            base_info: None,
        };
        client.inner.api.call::<SendTyping>(&request).await?;
        Ok(())
    }
}
into_future!(TypingRequest => ());

/// A pending [`WxLinkClient::get_config`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ConfigRequest {
    client: WxLinkClient,
    user: String,
    context_token: Option<ContextToken>,
}

impl ConfigRequest {
    /// The context token of the conversation (docs/protocol.md, "Typing tickets").
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<GetConfigResponse, Error> {
        self.client
            .get_config_now(&self.user, self.context_token.as_ref())
            .await
    }
}
into_future!(ConfigRequest => GetConfigResponse);

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn the_client_and_its_futures_can_cross_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<WxLinkClient>();
        let client = WxLinkClient::builder()
            .token(BotToken::new("t"))
            .build()
            .unwrap();
        is_send(&client.poll("").send());
        is_send(&client.send_text("u", "t").send());
        is_send(&client.notify_start());
        is_send(&client.download_media(&MessageItem::default()));
        let login = crate::login_with_qr(crate::LoginOptions::new(), crate::login::NoCallbacks);
        is_send(&login);
        is_send(&crate::LoginSession::start(crate::LoginOptions::new()));
    }

    #[allow(dead_code)]
    fn a_login_session_can_be_polled_from_any_task(session: &mut crate::LoginSession) {
        fn shareable<T: Send + Sync>() {}
        shareable::<crate::LoginSession>();
        is_send(&session.poll_once());
    }

    #[test]
    fn the_first_poll_waits_the_official_35_seconds_plus_the_margin() {
        assert_eq!(FIRST_POLL_TIMEOUT, Duration::from_secs(40));
        let client = WxLinkClient::builder()
            .token(BotToken::new("t"))
            .build()
            .unwrap();
        assert_eq!(client.next_poll_timeout(), Some(FIRST_POLL_TIMEOUT));
        // A configured hold gets the same margin.
        let mut timeouts = Timeouts::default();
        timeouts.long_poll = Some(Duration::from_secs(20));
        let client = WxLinkClient::builder()
            .token(BotToken::new("t"))
            .timeouts(timeouts)
            .build()
            .unwrap();
        assert_eq!(
            client.next_poll_timeout(),
            Some(Duration::from_secs(20) + LONG_POLL_MARGIN)
        );
        let client = WxLinkClient::builder()
            .token(BotToken::new("t"))
            .build()
            .unwrap();
        assert_eq!(client.base_url(), wxlink_proto::DEFAULT_BASE_URL);
        assert_eq!(client.cdn_base_url(), wxlink_proto::DEFAULT_CDN_BASE_URL);
        let mut timeouts = Timeouts::default();
        timeouts.long_poll = None;
        let client = WxLinkClient::builder()
            .token(BotToken::new("t"))
            .timeouts(timeouts)
            .build()
            .unwrap();
        assert_eq!(client.next_poll_timeout(), None);
    }
}
