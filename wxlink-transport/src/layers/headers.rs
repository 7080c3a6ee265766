//! The iLink request headers: [`IlinkHeadersLayer`] (docs/protocol.md, "Request
//! headers").

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
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
    /// once and shared by every account with the same app headers (see
    /// [`Templates`]).
    templates: Arc<Templates>,
}

/// Ready-made header maps, one per kind of request, so that the common
/// case (a request with no headers of its own, as `ApiClient` builds them)
/// costs one map clone and one or two inserts (the fresh UIN, the token)
/// instead of building and hashing every header again.
///
/// They hold no token, so one set serves every account whose app id,
/// client version and route tag agree: a host running thousands of
/// accounts keeps one set, not one per account (each set is about 2 KiB).
#[derive(Default)]
struct Templates {
    /// The values the maps were built from.
    key: TemplateKey,
    /// A `POST`, without the token.
    post: http::HeaderMap,
    /// Any other method.
    other: http::HeaderMap,
}

/// What a set of [`Templates`] depends on.
#[derive(Default, PartialEq, Eq)]
struct TemplateKey {
    app_id: Vec<u8>,
    client_version: Vec<u8>,
    route_tag: Option<Vec<u8>>,
}

/// The template sets in use, so that accounts with equal app headers share
/// one. Entries whose last user is gone are dropped when a set is added.
static SHARED_TEMPLATES: Mutex<Vec<Weak<Templates>>> = Mutex::new(Vec::new());

impl Values {
    /// Points the templates at a set built from the current values, shared
    /// with every other user of equal values.
    fn rebuild(&mut self) {
        let key = TemplateKey {
            app_id: self.app_id.as_bytes().to_vec(),
            client_version: self.client_version.as_bytes().to_vec(),
            route_tag: self.route_tag.as_ref().map(|t| t.as_bytes().to_vec()),
        };
        if self.templates.key == key && !self.templates.post.is_empty() {
            return;
        }
        let Ok(mut shared) = SHARED_TEMPLATES.lock() else {
            // A poisoned registry only costs the sharing.
            self.templates = Arc::new(self.build(key));
            return;
        };
        if let Some(found) = shared
            .iter()
            .filter_map(Weak::upgrade)
            .find(|t| t.key == key)
        {
            self.templates = found;
            return;
        }
        shared.retain(|t| t.strong_count() > 0);
        let templates = Arc::new(self.build(key));
        shared.push(Arc::downgrade(&templates));
        self.templates = templates;
    }

    /// The templates of the current values, without the token.
    fn build(&self, key: TemplateKey) -> Templates {
        let mut templates = Templates {
            key,
            ..Templates::default()
        };
        self.write(&mut templates.post, true, false);
        self.write(&mut templates.other, false, false);
        templates
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
            templates: Arc::default(),
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
                templates: Arc::default(),
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
        // The templates hold no token: nothing to rebuild.
        Arc::make_mut(&mut self.inner).authorization = authorization;
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
            if post {
                *headers = values.templates.post.clone();
                if let (Some(value), Auth::Bearer) = (&values.authorization, auth) {
                    headers.insert(AUTHORIZATION, value.clone());
                }
            } else {
                *headers = values.templates.other.clone();
            }
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
    fn accounts_with_equal_app_headers_share_one_template_set() {
        let token = |t: &str| BotToken::new(t.to_owned());
        let a = IlinkHeaderValues::new("bot", "2.4.3")
            .and_then(|v| v.with_token(Some(&token("a:1"))))
            .unwrap();
        let b = IlinkHeaderValues::new("bot", "2.4.3")
            .and_then(|v| v.with_token(Some(&token("b:2"))))
            .unwrap();
        let tagged = IlinkHeaderValues::new("bot", "2.4.3")
            .and_then(|v| v.with_route_tag(Some("1001")))
            .unwrap();
        assert!(Arc::ptr_eq(&a.inner.templates, &b.inner.templates));
        assert!(!Arc::ptr_eq(&a.inner.templates, &tagged.inner.templates));

        // Each account still sends its own token, and only on POST.
        let mut post_a = Request::post("http://127.0.0.1/x").body(()).unwrap();
        a.apply(&mut post_a);
        let mut post_b = Request::post("http://127.0.0.1/x").body(()).unwrap();
        b.apply(&mut post_b);
        assert_eq!(post_a.headers()[AUTHORIZATION], "Bearer a:1");
        assert_eq!(post_b.headers()[AUTHORIZATION], "Bearer b:2");
        assert_eq!(post_a.headers()[ILINK_APP_ID], "bot");
        assert!(post_a.headers().contains_key(X_WECHAT_UIN));
        let mut get = Request::get("http://127.0.0.1/x").body(()).unwrap();
        a.apply(&mut get);
        assert!(!get.headers().contains_key(AUTHORIZATION));
        let mut tagged_get = Request::get("http://127.0.0.1/x").body(()).unwrap();
        tagged.apply(&mut tagged_get);
        assert_eq!(tagged_get.headers()[SK_ROUTE_TAG], "1001");
        assert!(!get.headers().contains_key(SK_ROUTE_TAG));
    }

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
