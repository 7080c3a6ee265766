//! Helpers shared by the test modules.

use std::time::Duration;

use serde_json::Value;
use tower::ServiceExt as _;
use wxlink_transport::{Body, HttpsTransport, TransportOptions};

/// Polls `check` every 20 ms until it is true or `within` passes.
pub async fn eventually<F>(within: Duration, what: &str, check: F)
where
    F: Fn() -> bool,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// POSTs JSON to a loopback URL, with a bearer token when given.
pub async fn post_json(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http::Request::post(url).header("content-type", "application/json");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(Body::from(body.to_string())).unwrap();
    let transport = HttpsTransport::with_options(TransportOptions::default().proxy(None));
    let resp = transport.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_limited(1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
