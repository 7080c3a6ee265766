//! The facade's one handle on the transport: an `ApiClient` over the boxed
//! HTTP service, plus the settings it was built from.
//!
//! The transport type is erased here, once, into [`BoxHttpService`], so
//! that neither
//! [`WxLinkClient`](crate::WxLinkClient) nor its futures carry a type
//! parameter.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use wxlink_proto::{BotToken, Endpoint};
use wxlink_transport::{ApiClient, ApiConfig, BoxError, CallOptions, RetryPolicy, Timeouts};

use crate::Error;

/// The erased HTTP service every client holds: any transport, boxed once.
pub use wxlink_transport::BoxHttpService;

/// How much longer than the server is expected to hold a long poll the client
/// waits before giving up on it (docs/protocol.md, "Long polling").
///
/// The server answers an idle poll after its hold, with a batch of whatever
/// arrived at that moment. A client timer that fires at the same instant drops
/// that answer, and the batch is lost: the server counts it as delivered and
/// never sends it again (docs/protocol.md, "Cursor"). The margin lets the
/// server's answer win. It is added to every hold the client knows of: the
/// server's `longpolling_timeout_ms`, the configured
/// [`Timeouts::long_poll`](wxlink_transport::Timeouts::long_poll) (35 s by
/// default) before the server has sent one.
pub const LONG_POLL_MARGIN: Duration = Duration::from_secs(5);

/// The client-side limit of the first long poll by default, before the server
/// has suggested a hold: the official 35 s (docs/protocol.md, "Timeouts and
/// retries") plus [`LONG_POLL_MARGIN`], so 40 s. Both
/// [`WxLinkClient::poll`](crate::WxLinkClient::poll) and the runtime's update
/// stream start with it. QR login's status polls use it too.
pub const FIRST_POLL_TIMEOUT: Duration =
    Duration::from_millis(wxlink_proto::consts::LONG_POLL_TIMEOUT_MS)
        .saturating_add(LONG_POLL_MARGIN);

/// Everything a [`ClientBuilder`](crate::ClientBuilder) collects.
#[derive(Clone, Default)]
pub(crate) struct ApiSettings {
    pub(crate) base_url: Option<String>,
    pub(crate) token: Option<BotToken>,
    pub(crate) cdn_base_url: Option<String>,
    pub(crate) transport: Option<BoxHttpService>,
    pub(crate) timeouts: Option<Timeouts>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) bot_agent: Option<String>,
    pub(crate) route_tag: Option<String>,
    pub(crate) channel_version: Option<String>,
    pub(crate) cdn_timeouts: Option<wxlink_media::TransferTimeouts>,
    pub(crate) fetch: Option<wxlink_media::FetchOptions>,
    pub(crate) allow_insecure_http: bool,
}

/// Whether `host` (as an URI shows it; IPv6 in brackets) is this machine's
/// loopback interface, where plain HTTP never leaves the machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of `url` when it is plain `http://` off this machine, where a
/// bot token would travel readable by anyone on the path; `None` for
/// `https://` and for loopback.
pub(crate) fn plain_http_host(url: &str) -> Option<String> {
    let uri: http::Uri = url.trim().parse().ok()?;
    if !uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    {
        return None;
    }
    let host = uri.host().unwrap_or_default();
    (!is_loopback_host(host)).then(|| host.to_owned())
}

/// Boxes any suitable service into the transport's erased service type.
pub(crate) fn boxed<S>(service: S) -> BoxHttpService
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
    use tower::ServiceExt;
    BoxHttpService::new(service.map_err(Into::<BoxError>::into))
}

/// An `ApiClient` over the erased service, with the URLs it uses.
#[derive(Clone)]
pub(crate) struct Api {
    client: ApiClient<BoxHttpService>,
    /// The raw (boxed) service, for CDN transfers.
    service: BoxHttpService,
    base_url: String,
    cdn_base_url: String,
    long_poll: Option<Duration>,
    cdn_timeout: Option<Duration>,
    cdn_timeouts: wxlink_media::TransferTimeouts,
    fetch: wxlink_media::FetchOptions,
    allow_insecure_http: bool,
}

impl Api {
    /// Builds the API client for an account.
    pub(crate) fn new(settings: &ApiSettings) -> Result<Self, Error> {
        let base_url = settings
            .base_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| wxlink_proto::DEFAULT_BASE_URL.to_owned());
        if !settings.allow_insecure_http
            && let Some(host) = plain_http_host(&base_url)
        {
            return Err(Error::insecure_base_url(host));
        }
        let cdn_base_url = settings
            .cdn_base_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| wxlink_proto::DEFAULT_CDN_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let service = settings
            .transport
            .clone()
            .unwrap_or_else(|| boxed(wxlink_transport::HttpsTransport::new()));
        let timeouts = settings.timeouts.unwrap_or_default();
        let mut config = ApiConfig::default()
            .base_url(base_url.clone())
            .token(settings.token.clone())
            .route_tag(settings.route_tag.clone())
            .timeouts(timeouts)
            .retry(settings.retry.clone().unwrap_or_default());
        if let Some(a) = &settings.bot_agent {
            config = config.bot_agent(a.clone());
        }
        if let Some(v) = &settings.channel_version {
            config = config.channel_version(v.clone());
        }
        let long_poll = timeouts.long_poll;
        let cdn_timeout = timeouts.cdn;
        let client = ApiClient::with_service(config, service.clone());
        Ok(Self {
            client,
            service,
            base_url,
            cdn_base_url,
            long_poll,
            cdn_timeout,
            cdn_timeouts: settings.cdn_timeouts.unwrap_or_default(),
            fetch: settings.fetch.clone().unwrap_or_default(),
            allow_insecure_http: settings.allow_insecure_http,
        })
    }

    /// Builds the unauthenticated API client a QR login uses: the
    /// transport settings of `settings` (the defaults when `None`), without
    /// a token, at `base_url`.
    pub(crate) fn for_login(settings: Option<&ApiSettings>, base_url: &str) -> Result<Self, Error> {
        let mut settings = settings.cloned().unwrap_or_default();
        settings.token = None;
        settings.base_url = Some(base_url.to_owned());
        Self::new(&settings)
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn cdn_base_url(&self) -> &str {
        &self.cdn_base_url
    }

    /// The timeout of one CDN transfer (`Timeouts::cdn`; none by default).
    pub(crate) fn cdn_timeout(&self) -> Option<Duration> {
        self.cdn_timeout
    }

    /// The retry budget of the API calls, which CDN uploads draw on too.
    pub(crate) fn retry_budget(&self) -> std::sync::Arc<tower::retry::budget::TpsBudget> {
        std::sync::Arc::clone(self.client.config().retry.budget())
    }

    /// The idle and overall limits of every CDN transfer.
    pub(crate) fn cdn_timeouts(&self) -> wxlink_media::TransferTimeouts {
        self.cdn_timeouts
    }

    /// Whether plain `http://` to another host was explicitly allowed.
    pub(crate) fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// The limits and address policy of URL fetches.
    pub(crate) fn fetch_options(&self) -> &wxlink_media::FetchOptions {
        &self.fetch
    }

    /// The raw transport, for CDN transfers (no iLink headers).
    pub(crate) fn service(&self) -> &BoxHttpService {
        &self.service
    }

    /// The configured long-poll timeout (`None`: no client-side limit).
    pub(crate) fn default_long_poll(&self) -> Option<Duration> {
        self.long_poll
    }

    /// Calls `E` at the account's base URL.
    pub(crate) async fn call<E: Endpoint>(
        &self,
        request: &E::Request,
    ) -> Result<E::Response, Error> {
        self.call_with::<E>(request, CallOptions::default())
            .await
            .map_err(Error::from)
    }

    /// The transport call, boxed as a `Send` future here, where its
    /// lifetimes are concrete: proving `Send` for the transport's future
    /// later, inside the request builders' futures, trips a compiler
    /// limitation with higher-ranked lifetimes ("one type is more general
    /// than the other").
    #[allow(clippy::type_complexity)]
    fn call_with<'a, E: Endpoint>(
        &'a self,
        request: &'a E::Request,
        options: CallOptions,
    ) -> Pin<Box<dyn Future<Output = Result<E::Response, wxlink_transport::Error>> + Send + 'a>>
    {
        Box::pin(self.client.call_with::<E>(request, options))
    }

    /// Calls `E` with a timeout of its own; the transport error is returned
    /// as it is so that the caller can tell a long-poll timeout apart.
    pub(crate) async fn call_with_timeout<E: Endpoint>(
        &self,
        request: &E::Request,
        timeout: Option<Duration>,
    ) -> Result<E::Response, wxlink_transport::Error> {
        let mut options = CallOptions::default();
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        self.call_with::<E>(request, options).await
    }

    /// Calls `E` at another base URL (QR login), with an optional timeout.
    pub(crate) async fn call_at<E: Endpoint>(
        &self,
        request: &E::Request,
        base_url: &str,
        timeout: Option<Duration>,
    ) -> Result<E::Response, wxlink_transport::Error> {
        let mut options = CallOptions::default().base_url(base_url);
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        self.call_with::<E>(request, options).await
    }
}
