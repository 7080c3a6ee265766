//! The default transport: hyper-util's pooled client over hyper-rustls.
//!
//! [`HttpsTransport`] speaks `http://` and `https://`, negotiates HTTP/2 or
//! HTTP/1.1 by ALPN on TLS connections (plain `http://` uses HTTP/1.1), keeps
//! connections alive in a pool shared by every clone, and can go through an
//! HTTP proxy ([`Proxy`]), by default the one the environment names
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
//!
//! TLS uses rustls with the `ring` crypto provider and the Mozilla root
//! certificates compiled in from `webpki-roots`: both build from source with
//! only a C compiler, need no system OpenSSL or CMake, and need no system
//! certificate store at run time, so the crate builds and works on a fresh
//! machine or a minimal container image.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Scheme;
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower::Service;

use crate::body::Body;
use crate::error::{BoxError, Error};

/// Settings of the default transport.
///
/// [`TransportOptions::default`] takes the proxy from the environment
/// ([`Proxy::from_env`]), like curl; set [`proxy`](Self::proxy) to `None`
/// to connect directly whatever the environment says.
///
/// ```
/// use std::time::Duration;
/// use wxlink_transport::{HttpsTransport, TransportOptions};
///
/// let mut options = TransportOptions::default();
/// options.connect_timeout = Some(Duration::from_secs(5));
/// let transport = HttpsTransport::with_options(options);
/// # drop(transport);
///
/// // Ignore HTTPS_PROXY and friends.
/// let direct = HttpsTransport::with_options(TransportOptions::default().proxy(None));
/// # drop(direct);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportOptions {
    /// An HTTP proxy for outgoing connections; `None` connects directly.
    ///
    /// The default is [`Proxy::from_env`]: the proxy the environment
    /// variables name, or `None` when they name none.
    pub proxy: Option<Proxy>,
    /// How long an idle pooled connection is kept (default 90 s).
    pub pool_idle_timeout: Option<Duration>,
    /// How many idle connections are kept per host (default 64).
    pub pool_max_idle_per_host: usize,
    /// How long establishing a TCP connection may take (default 10 s).
    /// A connect that runs out of time is a connect error: the request was
    /// never sent.
    pub connect_timeout: Option<Duration>,
    /// TCP keep-alive probe interval on open connections (default 60 s).
    pub tcp_keepalive: Option<Duration>,
    /// HTTP/2 PING interval on idle connections (default none).
    pub http2_keep_alive_interval: Option<Duration>,
    /// Certificates (DER) trusted in addition to the Mozilla roots: the CA
    /// of a TLS-inspecting corporate proxy, or a private test server.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Speak HTTP/2 with prior knowledge ("h2c") to plain `http://` servers
    /// (default off: plain `http://` uses HTTP/1.1).
    ///
    /// Only for servers known to accept it, such as the WxLink simulator:
    /// then every call to one host, long polls included, shares a single
    /// connection instead of holding one connection (and its buffers) each.
    /// `https://` servers are unaffected (they negotiate HTTP/2 by ALPN),
    /// and so are `http://` requests sent through a forward proxy.
    pub http2_prior_knowledge: bool,
    /// A fixed size, in bytes, for the read buffer of each HTTP/1.1
    /// connection (default `None`: hyper's adaptive buffer, which takes
    /// 8 KiB per connection and grows for large bodies).
    ///
    /// Over HTTP/1.1 every held long poll keeps a connection of its own, so
    /// a process polling many accounts saves the difference per account. A
    /// response's status line and headers must fit in the buffer (a larger
    /// head fails the call); bodies are read in pieces of this size. Sizes
    /// below 1 KiB are raised to 1 KiB.
    pub http1_read_buffer: Option<usize>,
}

/// The smallest [`TransportOptions::http1_read_buffer`] used: a response
/// head must fit in the buffer, and real ones run to a few hundred bytes.
pub(crate) const MIN_HTTP1_READ_BUFFER: usize = 1024;

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            proxy: Proxy::from_env(),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 64,
            connect_timeout: Some(Duration::from_secs(10)),
            tcp_keepalive: Some(Duration::from_secs(60)),
            http2_keep_alive_interval: None,
            extra_root_certificates: Vec::new(),
            http2_prior_knowledge: false,
            http1_read_buffer: None,
        }
    }
}

impl TransportOptions {
    /// The defaults, with the proxy taken from the environment
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` and their
    /// lower-case forms; see [`Proxy::from_env`]). The same as
    /// [`TransportOptions::default`], for code that wants to say so.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// Sets the proxy; `None` connects directly, ignoring the environment.
    #[must_use]
    pub fn proxy(mut self, proxy: Option<Proxy>) -> Self {
        self.proxy = proxy;
        self
    }
}

/// Destinations an environment proxy never applies to: the loopback
/// interface is this machine's, and a proxy elsewhere cannot reach it.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// An HTTP proxy setting.
///
/// Plain `http://` targets are sent to the proxy as absolute-form requests
/// (a forward proxy); `https://` targets go through a `CONNECT` tunnel, so
/// TLS runs end to end. Credentials in the proxy URL
/// (`http://user:pass@proxy:3128`) are sent as `Proxy-Authorization: Basic`.
///
/// Not supported: a proxy reached over TLS (`https://` proxy URL), SOCKS
/// proxies, and system proxy settings other than environment variables.
#[derive(Clone)]
pub struct Proxy {
    matcher: Arc<Matcher>,
    shown: String,
}

impl Proxy {
    /// Sends every request through the proxy at `url` (`http://host:port`).
    pub fn all(url: &str) -> Result<Self, Error> {
        Self::build(url, "")
    }

    /// Sends every request through the proxy at `url`, except to the hosts
    /// in `no_proxy` (comma-separated, `NO_PROXY` syntax: domains match
    /// their subdomains, IP addresses and CIDR ranges, `*` for all).
    pub fn all_except(url: &str, no_proxy: &str) -> Result<Self, Error> {
        Self::build(url, no_proxy)
    }

    fn build(url: &str, no_proxy: &str) -> Result<Self, Error> {
        let (url, shown) = validate_proxy_url(url)?;
        let matcher = Matcher::builder().all(url).no(no_proxy.to_owned()).build();
        Ok(Self {
            matcher: Arc::new(matcher),
            shown,
        })
    }

    /// The proxy configured in the process environment, if any; see
    /// [`Proxy::from_lookup`] for the rules. This is what
    /// [`TransportOptions::default`] and so [`HttpsTransport::new`] use.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxy that environment variables name, read through `lookup`
    /// (a variable's value, or `None` when it is unset), or `None` when
    /// they name no usable proxy. [`Proxy::from_env`] passes the process
    /// environment; tests and applications with their own configuration
    /// pass anything else, without touching the process environment.
    ///
    /// The rules are curl's, with the upper-case name read first:
    ///
    /// - `HTTP_PROXY` / `http_proxy` for `http://` targets, `HTTPS_PROXY` /
    ///   `https_proxy` for `https://` targets, `ALL_PROXY` / `all_proxy` for
    ///   whichever of the two is not set. A value without a scheme means
    ///   `http://`; credentials in it are sent as `Proxy-Authorization`.
    /// - `NO_PROXY` / `no_proxy`: comma-separated hosts reached directly. A
    ///   domain matches itself and its subdomains (`example.com` and
    ///   `.example.com` both match `api.example.com`), an IP address or CIDR
    ///   range matches addresses, and `*` matches everything.
    /// - Loopback destinations (`localhost`, `127.0.0.0/8`, `::1`) are
    ///   always reached directly, as Go's HTTP client does: a proxy on
    ///   another machine cannot reach this machine's loopback interface, so
    ///   a local simulator keeps working behind a corporate proxy. Use
    ///   [`Proxy::all`] to send loopback traffic through a proxy.
    /// - Blank values count as unset. A value that is not an `http://`
    ///   proxy (an `https://` or SOCKS proxy, which are not supported, or
    ///   an unparsable URL) is ignored with a warning that names the
    ///   variable but not its value.
    /// - When `REQUEST_METHOD` is set (the process runs as a CGI script),
    ///   upper-case `HTTP_PROXY` is ignored: a CGI server fills it from the
    ///   request's `Proxy` header ("httpoxy"). Lower-case `http_proxy` is
    ///   still read.
    ///
    /// ```
    /// use wxlink_transport::Proxy;
    ///
    /// let vars = [("https_proxy", "proxy.corp:3128"), ("NO_PROXY", ".internal")];
    /// let lookup = |name: &str| {
    ///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    /// };
    /// let proxy = Proxy::from_lookup(lookup).expect("a proxy is set");
    /// assert!(proxy.applies_to(&"https://ilinkai.weixin.qq.com/".parse()?));
    /// assert!(!proxy.applies_to(&"https://api.internal/".parse()?));
    /// assert!(!proxy.applies_to(&"http://127.0.0.1:8080/".parse()?));
    /// # Ok::<(), http::uri::InvalidUri>(())
    /// ```
    pub fn from_lookup<F>(lookup: F) -> Option<Self>
    where
        F: Fn(&str) -> Option<String>,
    {
        let cgi = lookup("REQUEST_METHOD").is_some();
        let http_names: &[&str] = if cgi {
            &["http_proxy"]
        } else {
            &["HTTP_PROXY", "http_proxy"]
        };
        let all = env_proxy(&lookup, &["ALL_PROXY", "all_proxy"]);
        let http = env_proxy(&lookup, http_names).or_else(|| all.clone());
        let https = env_proxy(&lookup, &["HTTPS_PROXY", "https_proxy"]).or(all);
        if http.is_none() && https.is_none() {
            return None;
        }
        let no_proxy = first_set(&lookup, &["NO_PROXY", "no_proxy"])
            .map(|(_, v)| v)
            .unwrap_or_default();
        let mut builder = Matcher::builder().no(format!("{no_proxy},{LOOPBACK}"));
        if let Some((url, _)) = &http {
            builder = builder.http(url.clone());
        }
        if let Some((url, _)) = &https {
            builder = builder.https(url.clone());
        }
        let shown = match (http, https) {
            (Some((_, h)), Some((_, s))) if h == s => h,
            (Some((_, h)), Some((_, s))) => format!("http: {h}, https: {s}"),
            (Some((_, h)), None) => format!("http: {h}"),
            (None, Some((_, s))) => format!("https: {s}"),
            (None, None) => return None,
        };
        Some(Self {
            matcher: Arc::new(builder.build()),
            shown,
        })
    }

    /// Whether a request to `uri` goes through this proxy, rather than
    /// straight to its host (a `NO_PROXY` match, a loopback host under an
    /// environment proxy, or a scheme the proxy does not serve).
    pub fn applies_to(&self, uri: &Uri) -> bool {
        self.intercept(uri).is_some()
    }

    /// The proxy for `uri`, with its `Proxy-Authorization` value, or `None`
    /// when `uri` is reached directly.
    fn intercept(&self, uri: &Uri) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        self.matcher.intercept(uri)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only scheme, host and port: the URL may carry credentials.
        f.debug_tuple("Proxy").field(&self.shown).finish()
    }
}

/// The first of `names` that is set and not blank, with its trimmed value.
fn first_set<'n, F>(lookup: &F, names: &[&'n str]) -> Option<(&'n str, String)>
where
    F: Fn(&str) -> Option<String>,
{
    names.iter().find_map(|name| {
        lookup(name)
            .map(|v| (*name, v.trim().to_owned()))
            .filter(|(_, v)| !v.is_empty())
    })
}

/// The proxy URL (with scheme) and its display form from the first of
/// `names` that is set and not blank, or `None` when none is set or the
/// value is not a supported proxy.
fn env_proxy<F>(lookup: &F, names: &[&str]) -> Option<(String, String)>
where
    F: Fn(&str) -> Option<String>,
{
    let (name, value) = first_set(lookup, names)?;
    match validate_proxy_url(&value) {
        Ok(valid) => Some(valid),
        Err(_) => {
            // The value may hold credentials; only the name is logged.
            tracing::warn!(variable = name, "ignoring an unsupported proxy setting");
            None
        }
    }
}

/// Checks that `url` is an `http://` proxy URL (a missing scheme means
/// `http://`) and returns it with its scheme, and without credentials for
/// display.
fn validate_proxy_url(url: &str) -> Result<(String, String), Error> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e: http::uri::InvalidUri| Error::invalid_url(e))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(Error::invalid_request("only http:// proxies are supported"));
    }
    let Some(authority) = uri.authority() else {
        return Err(Error::invalid_url("proxy url has no host"));
    };
    let host = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    let shown = format!("http://{host}");
    Ok((with_scheme, shown))
}

/// The default transport: a pooled hyper client over rustls.
///
/// Cloning is cheap and every clone shares one connection pool, so build one
/// per process (or per proxy setting) and clone it. As a
/// `Service<Request<Body>>` it answers with the response head and a
/// streaming [`Body`]; its errors are [`Error`]s boxed as
/// [`BoxError`](crate::BoxError): a connect error ([`Error::is_connect`])
/// when the request never left, one that [may have been
/// sent](Error::may_have_been_sent) when the connection failed after that.
///
/// ```no_run
/// use tower::ServiceExt;
/// use wxlink_transport::{Body, HttpsTransport};
///
/// # async fn run() -> Result<(), wxlink_transport::BoxError> {
/// let transport = HttpsTransport::new();
/// let request = http::Request::get("https://example.com/").body(Body::empty())?;
/// let response = transport.oneshot(request).await?;
/// let bytes = response.into_body().collect_limited(1 << 20).await?;
/// # drop(bytes);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpsTransport {
    /// Behind one reference count: a hyper-util client is several hundred
    /// bytes inline, and every account's client stack keeps clones of the
    /// transport, so a host with thousands of accounts would otherwise
    /// hold thousands of copies.
    inner: Arc<Clients>,
}

/// What every clone of an [`HttpsTransport`] shares.
struct Clients {
    client: Client<HttpsConnector<ProxyConnector>, Body>,
    /// The HTTP/2-only client for direct `http://` requests, when
    /// [`TransportOptions::http2_prior_knowledge`] is set.
    h2c: Option<Client<HttpsConnector<ProxyConnector>, Body>>,
    proxy: Option<Proxy>,
}

impl HttpsTransport {
    /// A transport with the default [`TransportOptions`]: the proxy comes
    /// from the environment ([`Proxy::from_env`]: `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, also lower-case), or there is
    /// none. To connect directly whatever the environment says, use
    /// `HttpsTransport::with_options(TransportOptions::default().proxy(None))`.
    pub fn new() -> Self {
        Self::with_options(TransportOptions::default())
    }

    /// A transport with the given options. An extra root certificate that
    /// does not parse is skipped with a warning; use
    /// [`HttpsTransport::try_with_options`] to fail instead.
    pub fn with_options(options: TransportOptions) -> Self {
        Self::build(options, false).unwrap_or_else(|_| Self::new())
    }

    /// A transport with the given options, failing with
    /// [`Error::is_invalid_request`] when an extra root certificate does not
    /// parse.
    pub fn try_with_options(options: TransportOptions) -> Result<Self, Error> {
        Self::build(options, true)
    }

    fn build(options: TransportOptions, strict: bool) -> Result<Self, Error> {
        let mut http = HttpConnector::new();
        // TLS is layered on top by hyper-rustls, which needs the inner
        // connector to accept `https://` URIs.
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(options.connect_timeout);
        http.set_keepalive(options.tcp_keepalive);

        let proxy_connector = ProxyConnector {
            http,
            proxy: options.proxy.clone(),
        };
        let tls = tls_config(&options.extra_root_certificates, strict)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(proxy_connector);

        let client_for = |http2_only: bool| {
            let mut builder = Client::builder(TokioExecutor::new());
            builder
                .pool_idle_timeout(options.pool_idle_timeout)
                .pool_max_idle_per_host(options.pool_max_idle_per_host)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .http2_only(http2_only);
            if let Some(interval) = options.http2_keep_alive_interval {
                builder.http2_keep_alive_interval(interval);
            }
            if let Some(size) = options.http1_read_buffer {
                builder.http1_read_buf_exact_size(size.max(MIN_HTTP1_READ_BUFFER));
            }
            builder.build(connector.clone())
        };
        Ok(Self {
            inner: Arc::new(Clients {
                client: client_for(false),
                h2c: options.http2_prior_knowledge.then(|| client_for(true)),
                proxy: options.proxy,
            }),
        })
    }
}

impl Default for HttpsTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsTransport")
            .field("proxy", &self.inner.proxy)
            .finish_non_exhaustive()
    }
}

/// The rustls client configuration: `ring` provider, safe default protocol
/// versions, Mozilla roots from `webpki-roots` plus `extra` roots;
/// hyper-rustls adds ALPN.
fn tls_config(extra: &[Vec<u8>], strict: bool) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra {
        let cert = rustls::pki_types::CertificateDer::from(der.clone());
        if let Err(err) = roots.add(cert) {
            if strict {
                return Err(Error::invalid_request(err));
            }
            tracing::warn!("skipping an extra root certificate that does not parse");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // A constant fact about the bundled provider, not input we read.
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Service<Request<Body>> for HttpsTransport {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = TransportFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The pooled client has no back-pressure of its own.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> TransportFuture {
        let clients = &*self.inner;
        // A forward proxy reads its credentials from each request.
        let proxy_auth = clients
            .proxy
            .as_ref()
            .filter(|_| req.uri().scheme() == Some(&Scheme::HTTP))
            .and_then(|proxy| proxy.intercept(req.uri()))
            .and_then(|intercept| intercept.basic_auth().cloned());
        if let Some(mut auth) = proxy_auth {
            auth.set_sensitive(true);
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth);
        }
        let client = match &clients.h2c {
            Some(h2c)
                if req.uri().scheme() == Some(&Scheme::HTTP)
                    && clients
                        .proxy
                        .as_ref()
                        .is_none_or(|p| p.intercept(req.uri()).is_none()) =>
            {
                h2c
            }
            _ => &clients.client,
        };
        TransportFuture {
            inner: client.request(req),
        }
    }
}

/// The response future of [`HttpsTransport`].
pub struct TransportFuture {
    inner: hyper_util::client::legacy::ResponseFuture,
}

impl fmt::Debug for TransportFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportFuture").finish_non_exhaustive()
    }
}

impl Future for TransportFuture {
    type Output = Result<Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(resp)) => Poll::Ready(Ok(resp.map(Body::from_incoming))),
            Poll::Ready(Err(err)) => Poll::Ready(Err(Box::new(map_client_error(err)))),
        }
    }
}

fn map_client_error(err: hyper_util::client::legacy::Error) -> Error {
    if err.is_connect() {
        Error::connect(err)
    } else {
        Error::transport(err, true)
    }
}

/// Connects directly, through a `CONNECT` tunnel (https targets behind a
/// proxy) or to a forward proxy (http targets behind a proxy).
#[derive(Clone)]
struct ProxyConnector {
    http: HttpConnector,
    proxy: Option<Proxy>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> ConnectFuture {
        let intercept = self.proxy.as_ref().and_then(|p| p.intercept(&dst));
        let mut http = self.http.clone();
        match intercept {
            None => Box::pin(async move {
                let io = http.call(dst).await?;
                Ok(ProxyStream { io, forward: false })
            }),
            Some(intercept) if dst.scheme() == Some(&Scheme::HTTPS) => {
                let mut tunnel = Tunnel::new(intercept.uri().clone(), http);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move {
                    let io = tunnel.call(dst).await?;
                    Ok(ProxyStream { io, forward: false })
                })
            }
            Some(intercept) => {
                let proxy_uri = intercept.uri().clone();
                Box::pin(async move {
                    let io = http.call(proxy_uri).await?;
                    Ok(ProxyStream { io, forward: true })
                })
            }
        }
    }
}

/// A TCP stream that remembers whether it leads to a forward proxy, so hyper
/// writes absolute-form request targets on it.
struct ProxyStream {
    io: TokioIo<tokio::net::TcpStream>,
    forward: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forward)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_debug_hides_credentials() {
        let proxy = Proxy::all("http://user:hunter2@proxy.example:3128").unwrap();
        let shown = format!("{proxy:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("proxy.example:3128"), "{shown}");
    }

    #[test]
    fn tls_and_socks_proxies_are_rejected() {
        assert!(Proxy::all("https://proxy.example:443").is_err());
        assert!(Proxy::all("socks5://proxy.example:1080").is_err());
        assert!(Proxy::all("proxy.example:3128").is_ok());
    }

    #[test]
    fn transport_is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<HttpsTransport>();
    }

    /// A loopback server that answers each request with the HTTP version it
    /// arrived in and counts the connections it accepted. It speaks
    /// HTTP/1.1 and h2c (prior knowledge), like the simulator.
    async fn version_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            // Held briefly so that concurrent requests
                            // overlap.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let text = format!("{:?}", req.version());
                            Ok::<_, std::convert::Infallible>(Response::new(Body::from(text)))
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}/"), accepted)
    }

    async fn versions(transport: &HttpsTransport, url: &str, n: usize) -> Vec<String> {
        use tower::ServiceExt;
        let calls = (0..n).map(|_| {
            let t = transport.clone();
            let req = Request::post(url).body(Body::from("{}")).unwrap();
            async move {
                let resp = t.oneshot(req).await.unwrap();
                let body = resp.into_body().collect_limited(1024).await.unwrap();
                String::from_utf8(body.to_vec()).unwrap()
            }
        });
        futures_util::future::join_all(calls).await
    }

    #[tokio::test]
    async fn a_small_fixed_read_buffer_still_reads_large_bodies_whole() {
        use tower::ServiceExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body: String = (0..20_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let served = body.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                            let served = served.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(Response::new(Body::from(served)))
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        // Below the floor: raised to 1 KiB.
        let transport = HttpsTransport::with_options(TransportOptions {
            http1_read_buffer: Some(16),
            ..TransportOptions::default().proxy(None)
        });
        for _ in 0..2 {
            let req = Request::get(format!("http://{addr}/"))
                .body(Body::empty())
                .unwrap();
            let resp = transport.clone().oneshot(req).await.unwrap();
            let got = resp.into_body().collect_limited(1 << 20).await.unwrap();
            assert_eq!(got, body.as_bytes());
        }
    }

    #[tokio::test]
    async fn plain_http_uses_http1_unless_h2c_is_asked_for() {
        use std::sync::atomic::Ordering;
        let (url, accepted) = version_server().await;
        let default = HttpsTransport::new();
        let seen = versions(&default, &url, 4).await;
        assert!(seen.iter().all(|v| v == "HTTP/1.1"), "{seen:?}");
        // Four overlapping HTTP/1.1 requests need four connections.
        assert_eq!(accepted.swap(0, Ordering::SeqCst), 4);

        let h2c = HttpsTransport::with_options(TransportOptions {
            http2_prior_knowledge: true,
            ..TransportOptions::default()
        });
        let seen = versions(&h2c, &url, 4).await;
        assert!(seen.iter().all(|v| v == "HTTP/2.0"), "{seen:?}");
        // With h2c they share one connection.
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
