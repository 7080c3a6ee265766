//! The HTTP transport of WxLink: a tower stack on hyper and rustls with
//! iLink headers, timeouts, retries and typed errors, plus
//! [`ApiClient<S>`](ApiClient) that calls any iLink endpoint over any
//! `tower::Service`.
//!
//! # Calling the API
//!
//! [`ApiClient`] takes an endpoint descriptor from `wxlink-proto` and its
//! request, and returns the decoded response or an [`Error`]:
//!
//! ```no_run
//! use wxlink_proto::{BotToken, GetUpdates, GetUpdatesRequest};
//! use wxlink_transport::{ApiClient, ApiConfig};
//!
//! # async fn run() -> Result<(), wxlink_transport::Error> {
//! let client = ApiClient::new(ApiConfig::default().token(Some(BotToken::new("…"))));
//! match client.call::<GetUpdates>(&GetUpdatesRequest::default()).await {
//!     Ok(updates) => println!("{} messages", updates.msgs.len()),
//!     // A long poll that ran out of time is an empty poll, not a failure.
//!     Err(err) if err.is_long_poll_timeout() => {}
//!     Err(err) if err.is_session_expired() => println!("log in again"),
//!     Err(err) => return Err(err),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # The stack
//!
//! Every API call goes through these layers, outermost first. Each is a
//! public [`tower::Layer`] in [`layers`], usable on its own, and each reads
//! the call's [`CallMeta`] (endpoint name, timeout class, retry safety,
//! auth, per-call timeout) from the request extensions.
//!
//! 1. [`TraceLayer`](layers::TraceLayer): one `wxlink.call` span per call
//!    with endpoint, method, URL without its query, status, attempts and
//!    latency. No header, body or query is ever recorded.
//! 2. [`IlinkHeadersLayer`](layers::IlinkHeadersLayer): the headers of
//!    docs/protocol.md, "Request headers": on `POST`, `Content-Type`,
//!    `AuthorizationType`, a fresh `X-WECHAT-UIN`, `Authorization`
//!    (authenticated calls only, marked sensitive); on every request
//!    `iLink-App-Id`, `iLink-App-ClientVersion` and `SKRouteTag` when
//!    configured. `Content-Length` is left to hyper.
//! 3. [`RetryLayer`](layers::RetryLayer) with a [`RetryPolicy`]: tower's
//!    retry middleware with a retry budget, exponential backoff with
//!    jitter, a cap on attempts and a total deadline. A call marked
//!    `RetrySafety::Always` is retried after connect failures, timeouts
//!    (not a long poll's: that is an empty poll), lost connections and
//!    502/503/504/524; one marked `RetrySafety::BeforeSend` (`sendmessage`,
//!    `getupdates`) only when the request certainly never left, so a message
//!    is never sent twice. One-shot bodies are never retried. Each repeated
//!    attempt gets a fresh `X-WECHAT-UIN`, since every request carries a new
//!    one (docs/protocol.md, "Request headers").
//! 4. [`TimeoutLayer`](layers::TimeoutLayer) with [`Timeouts`]: one deadline
//!    per attempt by class (docs/protocol.md, "Timeouts and retries": long poll
//!    35 s, API 15 s, config 10 s, CDN none), covering the response head and
//!    body; a per-call timeout overrides it.
//! 5. [`BodyLimitLayer`](layers::BodyLimitLayer): responses larger than the
//!    limit fail with [`Error::is_body_too_large`].
//! 6. The transport `S`: [`HttpsTransport`] by default.
//!
//! CDN transfers use [`ApiClient::cdn_service`]: the same connection pool
//! with tracing and the CDN timeout only, and a streaming [`Body`] both
//! ways.
//!
//! # Bringing your own transport
//!
//! `S` is any `Service<http::Request<Body>, Response = http::Response<Body>,
//! Error = BoxError> + Clone + Send`. A `tower::service_fn` answering from
//! memory is enough for tests:
//!
//! ```
//! use wxlink_proto::{GetConfig, GetConfigRequest};
//! use wxlink_transport::{ApiClient, ApiConfig, Body, BoxError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wxlink_transport::Error> {
//! let memory = tower::service_fn(|_req: http::Request<Body>| async {
//!     let body = Body::from(r#"{"ret":0,"typing_ticket":"t1"}"#);
//!     Ok::<_, BoxError>(http::Response::new(body))
//! });
//! let client = ApiClient::with_service(ApiConfig::default(), memory);
//! let config = client.call::<GetConfig>(&GetConfigRequest::default()).await?;
//! assert!(config.typing_ticket.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! # Composing your own stack
//!
//! Middleware of your own goes between the standard layers and the
//! transport by wrapping the transport; the layers also compose by hand
//! for raw requests:
//!
//! ```no_run
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//! use wxlink_transport::layers::{
//!     BodyLimitLayer, IlinkHeaderValues, IlinkHeadersLayer, RetryLayer, TimeoutLayer, TraceLayer,
//! };
//! use wxlink_transport::{
//!     ApiClient, ApiConfig, Body, BoxError, HttpsTransport, RetryPolicy, Timeouts,
//!     TransportOptions,
//! };
//!
//! # async fn run() -> Result<(), BoxError> {
//! // One pooled transport (the proxy comes from HTTPS_PROXY / NO_PROXY,
//! // as by default).
//! let https = HttpsTransport::with_options(TransportOptions::from_env());
//!
//! // Your middleware under the standard layers: at most 64 requests in
//! // flight.
//! let limited = ServiceBuilder::new()
//!     .concurrency_limit(64)
//!     .service(https.clone());
//! let client = ApiClient::with_service(ApiConfig::default(), limited);
//! # drop(client);
//!
//! // Or the layers by hand, in the standard order, for a raw request.
//! let mut timeouts = Timeouts::default();
//! timeouts.api = Some(Duration::from_secs(5));
//! let stack = ServiceBuilder::new()
//!     .layer(TraceLayer::new())
//!     .layer(IlinkHeadersLayer::new(IlinkHeaderValues::new("bot", "2.4.3")?))
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .layer(TimeoutLayer::new(timeouts))
//!     .layer(BodyLimitLayer::new(1 << 20))
//!     .service(https);
//! let request = http::Request::post("https://ilinkai.weixin.qq.com/ilink/bot/msg/notifystart")
//!     .body(Body::from(r#"{"base_info":{}}"#))?;
//! let response = stack.oneshot(request).await?;
//! let bytes = response.into_body().collect_limited(1 << 20).await?;
//! # drop(bytes);
//! # Ok(())
//! # }
//! ```
//!
//! # TLS
//!
//! [`HttpsTransport`] uses rustls with the `ring` crypto provider and the
//! Mozilla root certificates compiled in from `webpki-roots`. Both build
//! from source with nothing but a C compiler (no OpenSSL, CMake or NASM),
//! and no system certificate store is read at run time, so the crate builds
//! and connects on a fresh machine or a minimal container image. The price
//! is that a private CA installed in the system store is not trusted by
//! default: add it with
//! [`TransportOptions::extra_root_certificates`] (for example the CA of a
//! TLS-inspecting corporate proxy), or bring your own transport. HTTP/2 and HTTP/1.1 are negotiated by ALPN
//! on TLS connections; plain `http://` (the simulator, local proxies) uses
//! HTTP/1.1.
//!
//! # Proxies
//!
//! The default transport ([`HttpsTransport::new`], and so
//! [`ApiClient::new`] and everything built on it) honours the proxy
//! environment variables, as curl does: `HTTP_PROXY` for `http://` targets,
//! `HTTPS_PROXY` for `https://` targets, `ALL_PROXY` for either when its
//! own variable is unset, and `NO_PROXY` for hosts reached directly
//! (domains with their subdomains, IP addresses, CIDR ranges, `*`). Each is
//! also read in lower case; the upper-case name wins when both are set.
//! Loopback destinations (`localhost`, `127.0.0.0/8`, `::1`) never go
//! through an environment proxy, so a local simulator keeps working behind
//! a corporate proxy. Only `http://` proxies are supported (a variable
//! naming an `https://` or SOCKS proxy is ignored with a warning);
//! `https://` targets go through a `CONNECT` tunnel, `http://` targets are
//! forwarded, and credentials in the proxy URL are sent as
//! `Proxy-Authorization`. [`Proxy::from_lookup`] has the full rules.
//!
//! To connect directly whatever the environment says, or to name a proxy
//! in code:
//!
//! ```
//! use wxlink_transport::{ApiClient, ApiConfig, HttpsTransport, Proxy, TransportOptions};
//!
//! let direct = HttpsTransport::with_options(TransportOptions::default().proxy(None));
//! let client = ApiClient::with_service(ApiConfig::default(), direct);
//! # drop(client);
//!
//! let proxy = Proxy::all_except("http://proxy.corp:3128", ".corp")?;
//! let proxied = HttpsTransport::with_options(TransportOptions::default().proxy(Some(proxy)));
//! # drop(proxied);
//! # Ok::<(), wxlink_transport::Error>(())
//! ```
//!
//! # Features
//!
//! This crate has no optional features.

mod body;
mod client;
mod error;
pub mod layers;
mod meta;
mod redact;
mod transport;

pub(crate) use wxlink_proto as proto;

pub use body::{Body, DataStream};
pub use client::{
    ApiClient, ApiConfig, ApiStack, CallOptions, CdnService, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{BoxError, Error};
pub use layers::{RetryPolicy, Timeouts};
pub use meta::CallMeta;
pub use redact::redact_secrets;
pub use transport::{HttpsTransport, Proxy, TransportFuture, TransportOptions};

/// The type-erased transport boundary: what a facade stores so that its
/// own type has no transport parameter.
pub type BoxHttpService =
    tower::util::BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;
