//! The tracing output of failing calls never shows a token, a key or a
//! context token. The subscriber is set for this test's thread only, so
//! it sees only these calls.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Reply, TestServer};
use http::StatusCode;
use tower::ServiceExt;
use wxlink_proto::{
    BotToken, ContextToken, GetConfig, GetConfigRequest, GetUpdates, GetUpdatesRequest,
    SendMessage, SendMessageRequest, WeixinMessage,
};
use wxlink_transport::{ApiClient, ApiConfig, Body, RetryPolicy, Timeouts};

const BOT_TOKEN: &str = "BOTTOKEN-7f3a9c1e5b";
const CONTEXT_TOKEN: &str = "CTXTOKEN-AARzJWAFAAAB";
const AES_KEY: &str = "AESKEY-00112233445566778899aabbccddeeff";
const QUERY_PARAM: &str = "EQPARAM-Y2RuLWRvd25sb2Fk";

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn failing_calls_leave_no_secret_in_the_trace() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    // This binary runs other tests in parallel, without a subscriber. While
    // only one scoped dispatcher exists, tracing-core computes the cached
    // interest of a callsite first hit on another thread from that
    // thread's default alone ("never"), which would hide this test's spans
    // for good. A second, idle dispatcher, registered before ours, makes
    // every registration consult all live dispatchers, ours included.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);

    // The server echoes every secret back in its error pages and bodies.
    let echo =
        format!("<html>token {BOT_TOKEN} context_token={CONTEXT_TOKEN} aes_key={AES_KEY}</html>");
    let bad_json = format!(r#"{{"context_token":"{CONTEXT_TOKEN}","aes_key":"{AES_KEY}" oops"#);
    let server = TestServer::start(move |i, _| match i {
        0 => Reply::Raw(StatusCode::INTERNAL_SERVER_ERROR, "text/html", echo.clone()),
        1 => Reply::ok(&bad_json),
        2 => Reply::status(503),
        _ => Reply::Delay(Duration::from_secs(5), Box::new(Reply::ok("{}"))),
    })
    .await;
    let mut timeouts = Timeouts::default();
    timeouts.long_poll = Some(Duration::from_millis(20));
    timeouts.config = Some(Duration::from_millis(20));
    timeouts.cdn = Some(Duration::from_millis(20));
    let client = ApiClient::new(
        ApiConfig::default()
            .base_url(server.url())
            .token(Some(BotToken::new(BOT_TOKEN)))
            .timeouts(timeouts)
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_backoff(Duration::from_millis(5), Duration::from_millis(5)),
            ),
    );

    let send = SendMessageRequest {
        msg: Some(WeixinMessage {
            context_token: Some(ContextToken::new(CONTEXT_TOKEN)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = client.call::<SendMessage>(&send).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_decode());
    // A 503, retried once into a timeout.
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let err = client
        .call::<GetUpdates>(&GetUpdatesRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_long_poll_timeout(), "{err:?}");
    let cdn = client.cdn_service();
    let download = http::Request::get(format!(
        "{}/c2c/download?encrypted_query_param={QUERY_PARAM}",
        server.url()
    ))
    .body(Body::empty())
    .unwrap();
    cdn.oneshot(download).await.unwrap_err();

    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The trace did record the calls ...
    assert!(output.contains("endpoint=\"sendmessage\""), "{output}");
    assert!(output.contains("status=500"), "{output}");
    assert!(output.contains("endpoint=\"getupdates\""), "{output}");
    assert!(output.contains("retrying"), "{output}");
    assert!(output.contains("attempts=2"), "{output}");
    assert!(output.contains("long poll timed out"), "{output}");
    assert!(output.contains("cdn timeout after 20 ms"), "{output}");
    assert!(output.contains("/c2c/download?<redacted>"), "{output}");
    // ... and none of the secrets.
    for secret in [BOT_TOKEN, CONTEXT_TOKEN, AES_KEY, QUERY_PARAM, "Bearer"] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
}
