//! The HTTP client the agent backends share: the workspace's own transport
//! (hyper with rustls, pooled), erased once, with JSON helpers.

use std::fmt;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use tower::ServiceExt as _;
use wxlink_transport::{Body, BoxError, BoxHttpService, HttpsTransport};

use crate::error::{Error, Kind};
use crate::secret::Secret;

/// The most of an agent's answer the bridge reads (4 MiB).
pub(crate) const MAX_ANSWER_BYTES: u64 = 4 << 20;

/// An HTTP client for agent backends: any `tower::Service` over
/// `http::Request<wxlink_transport::Body>`, by default the workspace's
/// [`HttpsTransport`] with the proxy taken from the environment.
///
/// ```
/// use wxlink_bridge::HttpClient;
///
/// let client = HttpClient::new();
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct HttpClient {
    service: BoxHttpService,
}

impl HttpClient {
    /// The default transport.
    pub fn new() -> Self {
        Self::from_service(HttpsTransport::new())
    }

    /// Any service: a transport with other options, or a test double.
    pub fn from_service<S>(service: S) -> Self
    where
        S: tower::Service<Request<Body>, Response = Response<Body>, Error = BoxError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            service: BoxHttpService::new(service),
        }
    }

    /// POSTs a JSON body with an optional bearer token and returns the
    /// response head and streaming body; a failure to connect or send is a
    /// transport error ([`Error::is_transport`]).
    pub(crate) async fn post_json(
        &self,
        url: &str,
        bearer: Option<&Secret>,
        accept: Option<&'static str>,
        body: Vec<u8>,
    ) -> Result<Response<Body>, Error> {
        let mut builder = Request::post(url).header(CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            builder = builder.header(http::header::ACCEPT, accept);
        }
        if let Some(token) = bearer {
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
                .map_err(|_| {
                    Error::new(
                        Kind::Config,
                        "the bearer token holds characters a header cannot",
                    )
                })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let request = builder
            .body(Body::from(body))
            .map_err(|err| Error::with_source(Kind::Config, "the agent URL is not valid", err))?;
        self.service
            .clone()
            .oneshot(request)
            .await
            .map_err(|err| Error::with_source(Kind::Transport, "cannot reach the agent", err))
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// Reads a whole answer body within [`MAX_ANSWER_BYTES`].
pub(crate) async fn read_body(body: Body) -> Result<Bytes, Error> {
    body.collect_limited(MAX_ANSWER_BYTES).await.map_err(|err| {
        if err.is_body_too_large() {
            Error::unreadable(format!(
                "the agent's answer is larger than {MAX_ANSWER_BYTES} bytes"
            ))
        } else {
            Error::with_source(Kind::Transport, "the agent's answer broke off", err)
        }
    })
}

/// A non-success answer as an error, with a short, printable excerpt of
/// its body (never more than 200 characters), with `scrub` removed should
/// the server echo it.
pub(crate) async fn status_error(response: Response<Body>, scrub: Option<&Secret>) -> Error {
    let status = response.status().as_u16();
    let body = read_body(response.into_body()).await.unwrap_or_default();
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if let Some(secret) = scrub.filter(|s| !s.expose_secret().is_empty()) {
        text = text.replace(secret.expose_secret(), "** redacted **");
    }
    let excerpt: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    Error::status_code(status, format!("agent answered HTTP {status}: {excerpt}"))
}
