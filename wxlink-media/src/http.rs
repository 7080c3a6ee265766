//! The HTTP plumbing shared by upload, download and URL fetches.
//!
//! Media transfers go through any tower service from `http::Request<Body>`
//! to `http::Response<Body>` (see [`HttpService`]); CDN requests carry no
//! iLink headers and are marked with the transport's CDN call metadata.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::Body as _;
use tower::{Service, ServiceExt};
use wxlink_proto::url::encode_uri_component as encode_component;
use wxlink_transport::{Body, BoxError};

/// Any HTTP service media transfers can use: a cloneable tower service from
/// `http::Request<Body>` to `http::Response<Body>`, such as the transport's
/// `HttpsTransport` or an `ApiClient`'s CDN service.
///
/// It is implemented for every suitable `tower::Service`; there is nothing
/// to implement by hand.
pub trait HttpService: Clone + Send + Sync + 'static {
    /// Sends one request and returns the response head with a streaming body.
    fn send(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Body>, BoxError>> + Send;
}

impl<S> HttpService for S
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    fn send(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Body>, BoxError>> + Send {
        let svc = self.clone();
        async move { svc.oneshot(request).await.map_err(Into::into) }
    }
}

/// The CDN base without trailing slashes, so that joining never yields `//`.
pub(crate) fn cdn_base(base: &str) -> &str {
    base.trim().trim_end_matches('/')
}

/// `<cdn base>/upload?encrypted_query_param=<param>&filekey=<filekey>`.
pub fn cdn_upload_url(cdn_base_url: &str, upload_param: &str, filekey: &str) -> String {
    format!(
        "{}/upload?encrypted_query_param={}&filekey={}",
        cdn_base(cdn_base_url),
        encode_component(upload_param),
        encode_component(filekey)
    )
}

/// `<cdn base>/download?encrypted_query_param=<param>`.
pub fn cdn_download_url(cdn_base_url: &str, encrypt_query_param: &str) -> String {
    format!(
        "{}/download?encrypted_query_param={}",
        cdn_base(cdn_base_url),
        encode_component(encrypt_query_param)
    )
}

/// Reads at most `limit` bytes of a body (for error messages); the rest is
/// dropped unread.
pub(crate) async fn read_prefix(body: Body, limit: usize) -> Bytes {
    let mut body = body;
    let mut buf = BytesMut::new();
    while buf.len() < limit {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = limit - buf.len();
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    buf.freeze()
}

/// [`read_prefix`] within `idle`: a body that stalls yields what arrived
/// before the limit (an error message needs no more).
pub(crate) async fn read_prefix_within(body: Body, idle: Option<std::time::Duration>) -> Bytes {
    match idle {
        Some(idle) => tokio::time::timeout(idle, read_prefix(body, 4096))
            .await
            .unwrap_or_default(),
        None => read_prefix(body, 4096).await,
    }
}

/// A short, printable excerpt of a response body for an error message,
/// with the values of secret-looking fields (CDN parameters, file keys, AES
/// keys, tokens) replaced by [`wxlink_transport::redact_secrets`].
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = wxlink_transport::redact_secrets(text.trim());
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// The `Content-Length` of a response, when present and valid.
pub(crate) fn content_length<B>(resp: &Response<B>) -> Option<u64> {
    resp.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_like_the_official_client() {
        assert_eq!(
            cdn_upload_url("https://cdn.example/c2c/", "a+b/c=", "00ff"),
            "https://cdn.example/c2c/upload?encrypted_query_param=a%2Bb%2Fc%3D&filekey=00ff"
        );
        assert_eq!(
            cdn_download_url("https://cdn.example/c2c", "x y~!*'()-_."),
            "https://cdn.example/c2c/download?encrypted_query_param=x%20y~!*'()-_."
        );
    }

    #[test]
    fn excerpts_are_short() {
        let long = "x".repeat(500);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), 201);
        assert_eq!(excerpt(b"  bad filekey \n"), "bad filekey");
        for body in [
            r#"{"errmsg":"bad","encrypted_query_param":"EQP-SECRET","filekey":	"FK-SECRET"}"#,
            "upload_param=UP-SECRET&x=1",
            "aes_key: [\"AES-SECRET\"]",
            r#"{"x_auth_token":"TOK-SECRET\"still"}"#,
        ] {
            let out = excerpt(body.as_bytes());
            assert!(!out.contains("SECRET"), "{body} -> {out}");
        }
        assert_eq!(
            excerpt(b"x=1&filekey=abc&y=2"),
            "x=1&filekey=<redacted>&y=2"
        );
    }
}
