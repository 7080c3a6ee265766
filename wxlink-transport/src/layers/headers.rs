//! The iLink request headers: [`IlinkHeadersLayer`] (docs/protocol.md, "Request
//! headers").

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request};
use tower::{Layer, Service};

use crate::body::Body;
use crate::error::Error;
use crate::meta::CallMeta;
use crate::proto::{self, Auth, BotToken};

/// `AuthorizationType: ilink_bot_token`, on every POST.
pub const AUTHORIZATION_TYPE: HeaderName = HeaderName::from_static("authorizationtype");
/// `X-WECHAT-UIN`: a fresh random value per request, on every POST.
///
/// [`RetryLayer`](crate::layers::RetryLayer) replaces it on each repeated
/// attempt, so every attempt carries its own value even though this layer
/// runs once per call, above the retries.
pub const X_WECHAT_UIN: HeaderName = HeaderName::from_static("x-wechat-uin");
/// `iLink-App-Id`, on every request.
pub const ILINK_APP_ID: HeaderName = HeaderName::from_static("ilink-app-id");
/// `iLink-App-ClientVersion`, on every request.
pub const ILINK_APP_CLIENT_VERSION: HeaderName = HeaderName::from_static("ilink-app-clientversion");
/// `SKRouteTag`, on every request when configured.
pub const SK_ROUTE_TAG: HeaderName = HeaderName::from_static("skroutetag");

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const ILINK_BOT_TOKEN: HeaderValue = HeaderValue::from_static("ilink_bot_token");

/// The header values of one account, computed once and shared by clones.
///
/// ```
/// use wxlink_transport::layers::IlinkHeaderValues;
///
/// let headers = IlinkHeaderValues::new("bot", "2.4.3")?.with_route_tag(Some("1001"))?;
/// # drop(headers);
/// # Ok::<(), wxlink_transport::Error>(())
/// ```
#[derive(Clone)]
pub struct IlinkHeaderValues {
    inner: Arc<Values>,
}

#[derive(Clone)]
struct Values {
    app_id: HeaderValue,
    client_version: HeaderValue,
    route_tag: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
    /// The complete header maps of a request that has no headers yet, built
    /// once (see [`Templates`]).
    templates: Templates,
}

/// Ready-made header maps, one per kind of request, so that the common
/// case (a request with no headers of its own, as `ApiClient` builds them)
/// costs one map clone and one insert (the fresh UIN) instead of building
/// and hashing every header again.
#[derive(Clone, Default)]
struct Templates {
    /// A `POST` carrying the token.
    post_auth: http::HeaderMap,
    /// A `POST` without the token.
    post: http::HeaderMap,
    /// Any other method.
    other: http::HeaderMap,
}

impl Values {
    /// Rebuilds the templates from the current values.
    fn rebuild(&mut self) {
        let mut templates = Templates::default();
        self.write(&mut templates.post_auth, true, true);
        self.write(&mut templates.post, true, false);
        self.write(&mut templates.other, false, false);
        self.templates = templates;
    }

    /// Writes the headers of a request into `headers`; `post` says whether
    /// it is a `POST` and `bearer` whether it carries the token. The UIN is
    /// a placeholder, replaced per request.
    fn write(&self, headers: &mut http::HeaderMap, post: bool, bearer: bool) {
        headers.reserve(if post { 7 } else { 3 });
        if post {
            headers.insert(CONTENT_TYPE, JSON);
            headers.insert(AUTHORIZATION_TYPE, ILINK_BOT_TOKEN);
            headers.insert(X_WECHAT_UIN, HeaderValue::from_static("MA=="));
        }
        headers.insert(ILINK_APP_ID, self.app_id.clone());
        headers.insert(ILINK_APP_CLIENT_VERSION, self.client_version.clone());
        if let Some(tag) = &self.route_tag {
            headers.insert(SK_ROUTE_TAG, tag.clone());
        }
        match (&self.authorization, post && bearer) {
            (Some(value), true) => {
                headers.insert(AUTHORIZATION, value.clone());
            }
            _ => {
                headers.remove(AUTHORIZATION);
            }
        }
    }
}

impl IlinkHeaderValues {
    /// Headers for app id `app_id` (`"bot"` for the official plugin) and a
    /// client version string such as `"2.4.3"`, sent encoded (`132099`;
    /// docs/protocol.md, "Request headers"). No token, no route tag.
    pub fn new(app_id: &str, client_version: &str) -> Result<Self, Error> {
        let encoded = proto::encode_client_version(client_version);
        let mut values = Values {
            app_id: header_value(app_id)?,
            client_version: HeaderValue::from(encoded),
            route_tag: None,
            authorization: None,
            templates: Templates::default(),
        };
        values.rebuild();
        Ok(Self {
            inner: Arc::new(values),
        })
    }

    /// Values that are never sent: a stand-in while a client reports why
    /// its own values could not be built.
    pub(crate) fn placeholder() -> Self {
        Self {
            inner: Arc::new(Values {
                app_id: HeaderValue::from_static(""),
                client_version: HeaderValue::from_static("0"),
                route_tag: None,
                authorization: None,
                templates: Templates::default(),
            }),
        }
    }

    /// Sets the bot token sent as `Authorization: Bearer <token>` on
    /// authenticated POSTs. The token is trimmed; a blank token counts as
    /// none. The header value is marked sensitive.
    pub fn with_token(mut self, token: Option<&BotToken>) -> Result<Self, Error> {
        let authorization = match token.map(|t| t.expose_secret().trim()) {
            Some(t) if !t.is_empty() => {
                let mut value = HeaderValue::try_from(format!("Bearer {t}")).map_err(|_| {
                    // The value is not shown: it holds the token.
                    Error::invalid_request("the bot token is not a valid header value")
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => None,
        };
        let values = Arc::make_mut(&mut self.inner);
        values.authorization = authorization;
        values.rebuild();
        Ok(self)
    }

    /// Sets the `SKRouteTag` value sent on every request, or none.
    pub fn with_route_tag(mut self, tag: Option<&str>) -> Result<Self, Error> {
        let tag = match tag.map(str::trim) {
            Some(t) if !t.is_empty() => Some(header_value(t)?),
            _ => None,
        };
        let values = Arc::make_mut(&mut self.inner);
        values.route_tag = tag;
        values.rebuild();
        Ok(self)
    }

    /// Whether a token is set.
    pub fn has_token(&self) -> bool {
        self.inner.authorization.is_some()
    }

    /// Adds the headers to `req`: on `POST`, `Content-Type`,
    /// `AuthorizationType`, a fresh `X-WECHAT-UIN`, the app headers, the
    /// route tag and, when the call is authenticated and a token is set,
    /// `Authorization`; on any other method only the app headers and the
    /// route tag. `Content-Length` is left to the HTTP client.
    pub fn apply<B>(&self, req: &mut Request<B>) {
        let auth = req
            .extensions()
            .get::<CallMeta>()
            .map_or(Auth::Bearer, |m| m.auth);
        let post = req.method() == Method::POST;
        let values = &*self.inner;
        let headers = req.headers_mut();
        if headers.is_empty() {
            let template = match (post, auth == Auth::Bearer) {
                (true, true) => &values.templates.post_auth,
                (true, false) => &values.templates.post,
                (false, _) => &values.templates.other,
            };
            *headers = template.clone();
        } else {
            values.write(headers, post, auth == Auth::Bearer);
        }
        if post {
            headers.insert(X_WECHAT_UIN, fresh_uin());
        }
    }
}

impl fmt::Debug for IlinkHeaderValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IlinkHeaderValues")
            .field("app_id", &self.inner.app_id)
            .field("client_version", &self.inner.client_version)
            .field("route_tag", &self.inner.route_tag)
            .field("token", &self.has_token().then_some("** redacted **"))
            .finish()
    }
}

fn header_value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text).map_err(Error::invalid_request)
}

/// A fresh `X-WECHAT-UIN` (docs/protocol.md, "Request headers"): a random `u32`
/// in decimal, base64-encoded.
///
/// This runs on every POST, so it is written into stack buffers and copied
/// once into the header value, instead of going through two `String`s
/// (`wxlink_proto::random_wechat_uin` builds the same text).
pub(crate) fn fresh_uin() -> HeaderValue {
    encode_uin(rand::random::<u32>())
}

/// `value` in decimal, base64-encoded (standard alphabet, padded), as a
/// header value.
fn encode_uin(value: u32) -> HeaderValue {
    use base64::Engine as _;
    use std::io::Write as _;
    // At most 10 decimal digits, which encode to 16 base64 characters.
    let mut digits = [0u8; 10];
    let mut cursor = std::io::Cursor::new(&mut digits[..]);
    let _ = write!(cursor, "{value}");
    let text_len = usize::try_from(cursor.position()).unwrap_or(0);
    let mut out = [0u8; 16];
    let len = base64::engine::general_purpose::STANDARD
        .encode_slice(&digits[..text_len], &mut out)
        .unwrap_or(0);
    // Base64 output is always a valid header value; the fallback is never
    // taken.
    HeaderValue::from_bytes(&out[..len]).unwrap_or(HeaderValue::from_static("MA=="))
}

/// Adds the iLink headers ([`IlinkHeaderValues`]) to every request.
#[derive(Debug, Clone)]
pub struct IlinkHeadersLayer {
    headers: IlinkHeaderValues,
}

impl IlinkHeadersLayer {
    /// A layer adding `headers`.
    pub const fn new(headers: IlinkHeaderValues) -> Self {
        Self { headers }
    }
}

impl<S> Layer<S> for IlinkHeadersLayer {
    type Service = IlinkHeaders<S>;

    fn layer(&self, inner: S) -> IlinkHeaders<S> {
        IlinkHeaders {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// The service of [`IlinkHeadersLayer`].
#[derive(Debug, Clone)]
pub struct IlinkHeaders<S> {
    inner: S,
    headers: IlinkHeaderValues,
}

impl<S> IlinkHeaders<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S, headers: IlinkHeaderValues) -> Self {
        Self { inner, headers }
    }
}

impl<S> Service<Request<Body>> for IlinkHeaders<S>
where
    S: Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> S::Future {
        self.headers.apply(&mut req);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uin_matches_the_protocol_encoding() {
        for value in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            999_999,
            1_000_000,
            3_141_592_653,
            u32::MAX,
        ] {
            assert_eq!(
                encode_uin(value).to_str().unwrap(),
                proto::wechat_uin(value),
                "{value}"
            );
        }
    }
}
