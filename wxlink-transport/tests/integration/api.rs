//! `ApiClient` over the default transport against a scripted server on
//! 127.0.0.1: headers, URL joining, base_info, status mapping, timeouts,
//! retries, the body limit.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Reply, TestServer, refused_port};
use http::StatusCode;
use tower::ServiceExt;
use wxlink_proto::{
    BotToken, GetBotQrcode, GetBotQrcodeRequest, GetConfig, GetConfigRequest, GetQrcodeStatus,
    GetQrcodeStatusRequest, GetUpdates, GetUpdatesRequest, SendMessage, SendMessageRequest,
    TimeoutClass,
};
use wxlink_transport::{
    ApiClient, ApiConfig, Body, CallOptions, HttpsTransport, RetryPolicy, Timeouts,
};

const TOKEN: &str = "tok-SECRET-1234567890";

fn config(server: &TestServer) -> ApiConfig {
    ApiConfig::default()
        .base_url(server.url())
        .token(Some(BotToken::new(TOKEN)))
        .channel_version("2.4.3")
        .bot_agent("MyBot/1.2.0 (region=cn)")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_jitter(0.0)
}

fn decode_uin(value: &str) -> u32 {
    let decimal = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    let decimal = String::from_utf8(decimal).unwrap();
    assert!(decimal.bytes().all(|b| b.is_ascii_digit()), "{decimal}");
    decimal.parse().unwrap()
}

fn header_names(req: &common::Recorded) -> Vec<String> {
    let mut names: Vec<String> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn post_carries_the_exact_ilink_header_set_with_a_fresh_uin() {
    let server = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    let client = ApiClient::new(config(&server).route_tag(Some("1001".into())));
    let req = SendMessageRequest::default();
    client.call::<SendMessage>(&req).await.unwrap();
    client.call::<SendMessage>(&req).await.unwrap();

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(first.method, http::Method::POST);
    assert_eq!(first.uri.path(), "/ilink/bot/sendmessage");
    assert_eq!(
        header_names(first),
        [
            "authorization",
            "authorizationtype",
            "content-length",
            "content-type",
            "host",
            "ilink-app-clientversion",
            "ilink-app-id",
            "skroutetag",
            "x-wechat-uin",
        ]
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("authorizationtype"), Some("ilink_bot_token"));
    assert_eq!(
        first.header("authorization"),
        Some("Bearer tok-SECRET-1234567890")
    );
    assert_eq!(first.header("ilink-app-id"), Some("bot"));
    assert_eq!(first.header("ilink-app-clientversion"), Some("132099"));
    assert_eq!(first.header("skroutetag"), Some("1001"));
    // The length hyper computed, not one set by hand.
    assert_eq!(
        first.header("content-length").unwrap(),
        first.body.len().to_string()
    );
    let uins: Vec<u32> = seen
        .iter()
        .map(|r| decode_uin(r.header("x-wechat-uin").unwrap()))
        .collect();
    assert_ne!(uins[0], uins[1], "X-WECHAT-UIN must be fresh per request");

    let body = first.json();
    assert_eq!(body["base_info"]["channel_version"], "2.4.3");
    assert_eq!(body["base_info"]["bot_agent"], "MyBot/1.2.0 (region=cn)");
}

#[tokio::test]
async fn get_carries_only_the_common_headers_and_an_encoded_query() {
    let server = TestServer::always(Reply::ok(r#"{"status":"wait"}"#)).await;
    let client = ApiClient::new(config(&server));
    let req = GetQrcodeStatusRequest {
        qrcode: Some("qr code/1".to_owned()),
        verify_code: None,
    };
    client.call::<GetQrcodeStatus>(&req).await.unwrap();

    let seen = &server.requests()[0];
    assert_eq!(seen.method, http::Method::GET);
    assert_eq!(
        seen.uri.to_string(),
        "/ilink/bot/get_qrcode_status?qrcode=qr%20code%2F1"
    );
    assert_eq!(
        header_names(seen),
        ["host", "ilink-app-clientversion", "ilink-app-id"]
    );
    assert!(seen.body.is_empty());
}

#[tokio::test]
async fn unauthenticated_post_has_no_authorization_and_no_base_info() {
    let server = TestServer::always(Reply::ok(r#"{"qrcode":"q"}"#)).await;
    let client = ApiClient::new(config(&server));
    let req = GetBotQrcodeRequest {
        local_token_list: vec![BotToken::new("older-token")],
        ..Default::default()
    };
    client.call::<GetBotQrcode>(&req).await.unwrap();

    let seen = &server.requests()[0];
    assert_eq!(seen.uri.to_string(), "/ilink/bot/get_bot_qrcode?bot_type=3");
    assert!(seen.header("authorization").is_none());
    assert_eq!(seen.header("authorizationtype"), Some("ilink_bot_token"));
    assert!(seen.header("x-wechat-uin").is_some());
    assert_eq!(
        seen.json(),
        serde_json::json!({"local_token_list": ["older-token"]})
    );
}

#[tokio::test]
async fn base_url_prefix_is_kept_and_can_change_per_call() {
    let server = TestServer::always(Reply::ok("{}")).await;
    let client = ApiClient::new(config(&server).base_url(format!("{}/prefix", server.url())));
    client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    let moved = client.with_base_url(format!("{}/other/", server.url()));
    moved
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    client
        .call_with::<SendMessage>(
            &SendMessageRequest::default(),
            CallOptions::default().base_url(format!("{}/third", server.url())),
        )
        .await
        .unwrap();
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.uri.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/prefix/ilink/bot/sendmessage",
            "/other/ilink/bot/sendmessage",
            "/third/ilink/bot/sendmessage"
        ]
    );
}

#[tokio::test]
async fn with_token_none_drops_authorization() {
    let server = TestServer::always(Reply::ok("{}")).await;
    let client = ApiClient::new(config(&server)).with_token(None);
    client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    assert!(server.requests()[0].header("authorization").is_none());
}

#[tokio::test]
async fn invalid_base_url_fails_before_sending() {
    let client = ApiClient::new(ApiConfig::default().base_url("ftp://nowhere"));
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_invalid_url(), "{err:?}");
    assert!(!err.may_have_been_sent());
}

#[tokio::test]
async fn session_expired_body_with_errcode_only_is_a_typed_error() {
    let server =
        TestServer::always(Reply::ok(r#"{"errcode":-14,"errmsg":"session timeout"}"#)).await;
    let client = ApiClient::new(config(&server));
    let err = client
        .call::<GetUpdates>(&GetUpdatesRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    let status = err.api_status().unwrap();
    assert_eq!(status.errcode, Some(-14));
    assert_eq!(status.ret, None);
    assert_eq!(err.to_string(), "api error -14");
}

#[tokio::test]
async fn rejected_send_is_an_api_error_not_session_expiry() {
    let server = TestServer::always(Reply::ok(r#"{"ret":-2,"errmsg":"prepare failed"}"#)).await;
    let client = ApiClient::new(config(&server));
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.api_status().unwrap().code(), -2);
    assert!(!err.is_session_expired());
}

#[tokio::test]
async fn invalid_json_is_a_decode_error_with_a_redacted_excerpt() {
    let server = TestServer::always(Reply::ok(
        r#"{"ret":0,"typing_ticket":"TICKET-SECRET","context_token":"CTX-SECRET", oops"#,
    ))
    .await;
    let client = ApiClient::new(config(&server));
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    let excerpt = err.excerpt().unwrap();
    assert!(
        excerpt.starts_with(r#"{"ret":0,"typing_ticket":"<redacted>""#),
        "{excerpt}"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.starts_with("invalid json at line 1 column"),
        "{source}"
    );
    for shown in [
        excerpt.to_owned(),
        format!("{err:?}"),
        err.to_string(),
        source,
    ] {
        assert!(!shown.contains("TICKET-SECRET"), "{shown}");
        assert!(!shown.contains("CTX-SECRET"), "{shown}");
    }
}

#[tokio::test]
async fn a_wrongly_typed_secret_is_not_quoted_by_the_decode_error() {
    // A number where a string belongs: serde_json's own message would
    // quote it ("invalid type: integer `987654321`").
    let server = TestServer::always(Reply::ok(r#"{"ret":0,"typing_ticket":987654321}"#)).await;
    let client = ApiClient::new(config(&server));
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.starts_with("unexpected json shape"), "{source}");
    assert!(!format!("{err:?} {source}").contains("987654321"));
}

#[tokio::test]
async fn http_500_with_html_is_an_http_status_error() {
    let html = "<html><body><h1>500 Internal Server Error</h1></body></html>";
    let server = TestServer::always(Reply::Raw(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/html",
        html.into(),
    ))
    .await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(err.excerpt(), Some(html));
    assert_eq!(err.to_string(), "http status 500 Internal Server Error");
    // 500 is not one of the statuses worth retrying.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn response_over_the_limit_fails_by_content_length_and_by_stream() {
    let big = format!(r#"{{"ret":0,"errmsg":"{}"}}"#, "x".repeat(4096));
    let server = TestServer::start(move |i, _| {
        if i == 0 {
            Reply::ok(&big)
        } else {
            Reply::Chunked(4096)
        }
    })
    .await;
    let client = ApiClient::new(config(&server).max_response_bytes(1024));
    for _ in 0..2 {
        let err = client
            .call::<SendMessage>(&SendMessageRequest::default())
            .await
            .unwrap_err();
        assert!(err.is_body_too_large(), "{err:?}");
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn each_timeout_class_fires_with_its_own_limit() {
    let server = TestServer::always(Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::ok("{}")),
    ))
    .await;
    let mut timeouts = Timeouts::default();
    timeouts.long_poll = Some(Duration::from_millis(30));
    timeouts.api = Some(Duration::from_millis(40));
    timeouts.config = Some(Duration::from_millis(50));
    timeouts.cdn = Some(Duration::from_millis(60));
    let client = ApiClient::new(
        config(&server)
            .timeouts(timeouts)
            .retry(RetryPolicy::none()),
    );

    let started = Instant::now();
    let err = client
        .call::<GetUpdates>(&GetUpdatesRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_long_poll_timeout(), "{err:?}");
    assert_eq!(err.to_string(), "long-poll timeout after 30 ms");
    assert!(started.elapsed() < Duration::from_secs(2));

    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.timeout_class(), Some(TimeoutClass::Api));
    assert!(!err.is_long_poll_timeout());
    assert!(err.may_have_been_sent());

    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.timeout_class(), Some(TimeoutClass::Config));
    assert_eq!(err.to_string(), "config timeout after 50 ms");

    let cdn = client.cdn_service();
    let req = http::Request::get(format!(
        "{}/c2c/download?encrypted_query_param=x",
        server.url()
    ))
    .body(Body::empty())
    .unwrap();
    let err = wxlink_transport::Error::from_box(cdn.oneshot(req).await.unwrap_err());
    assert_eq!(err.timeout_class(), Some(TimeoutClass::Cdn));
    assert_eq!(err.to_string(), "cdn timeout after 60 ms");

    // A per-call timeout overrides the class default.
    let err = client
        .call_with::<GetUpdates>(
            &GetUpdatesRequest::default(),
            CallOptions::default().timeout(Duration::from_millis(10)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "long-poll timeout after 10 ms");
}

#[tokio::test]
async fn retries_503_and_502_with_backoff_then_succeeds() {
    let server = TestServer::start(|i, _| match i {
        0 => Reply::status(503),
        1 => Reply::status(502),
        _ => Reply::ok(r#"{"ret":0,"typing_ticket":"t"}"#),
    })
    .await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    let started = Instant::now();
    let resp = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap();
    assert!(resp.typing_ticket.is_some());
    assert_eq!(server.requests().len(), 3);
    // 20 ms after the first failure, 40 ms after the second.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
    // Every attempt carried the same body.
    let bodies: Vec<_> = server.requests().iter().map(|r| r.body.clone()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn every_retried_attempt_carries_a_fresh_wechat_uin() {
    let server = TestServer::start(|i, _| match i {
        0 | 1 => Reply::status(503),
        _ => Reply::ok(r#"{"ret":0}"#),
    })
    .await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    // Each value is base64 of a decimal u32 (docs/protocol.md, "Request
    // headers"); decode_uin checks the shape.
    let uins: Vec<u32> = seen
        .iter()
        .map(|r| decode_uin(r.header("x-wechat-uin").unwrap()))
        .collect();
    assert!(
        uins[0] != uins[1] && uins[1] != uins[2] && uins[0] != uins[2],
        "an attempt re-sent an X-WECHAT-UIN: {uins:?}"
    );
    // The rest of the request is repeated as it was.
    for r in &seen[1..] {
        assert_eq!(r.body, seen[0].body);
        assert_eq!(r.header("authorization"), seen[0].header("authorization"));
    }
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_return_the_last_status() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = ApiClient::new(config(&server).retry(fast_retry().with_max_attempts(2)));
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn total_deadline_stops_retrying_early() {
    let server = TestServer::always(Reply::status(503)).await;
    let policy = fast_retry()
        .with_max_attempts(10)
        .with_backoff(Duration::from_millis(40), Duration::from_millis(40))
        .with_total_deadline(Some(Duration::from_millis(200)));
    let client = ApiClient::new(config(&server).retry(policy));
    client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    // Attempts start about 40 ms apart; none starts once 200 ms would be
    // passed, so far fewer than the 10 allowed are made.
    let attempts = server.requests().len();
    assert!((2..=5).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn sendmessage_is_not_retried_on_503() {
    let server = TestServer::always(Reply::status(503)).await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn sendmessage_dropped_after_its_body_was_read_is_sent_exactly_once() {
    let server = TestServer::always(Reply::Close).await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1, "sendmessage was sent again");
    assert!(!server.requests()[0].body.is_empty());
    assert!(!err.is_connect(), "{err:?}");
    assert!(err.may_have_been_sent(), "{err:?}");

    // The same failure on a call that is safe to repeat is retried.
    let server = TestServer::always(Reply::Close).await;
    let client = ApiClient::new(config(&server).retry(fast_retry()));
    client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn connect_refusal_is_retried_even_for_sendmessage() {
    let port = refused_port().await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let https = HttpsTransport::new();
    // Count what reaches the transport by wrapping it: the same way a user
    // adds their own middleware under the standard layers.
    let counting = tower::service_fn(move |req: http::Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        https.clone().oneshot(req)
    });
    let config = ApiConfig::default()
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry(fast_retry());
    let client = ApiClient::with_service(config, counting);
    let started = Instant::now();
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.may_have_been_sent());
    assert_eq!(err.to_string(), "connection failed");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn empty_success_body_reads_as_an_empty_object() {
    let server = TestServer::always(Reply::ok("")).await;
    let client = ApiClient::new(config(&server));
    let resp = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    assert_eq!(resp.ret, None);
}

#[tokio::test]
async fn connections_are_reused_across_calls_and_clones() {
    let server = TestServer::always(Reply::ok("{}")).await;
    let client = ApiClient::new(config(&server));
    let clone = client.clone();
    for c in [&client, &clone, &client] {
        c.call::<SendMessage>(&SendMessageRequest::default())
            .await
            .unwrap();
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_token_that_is_not_a_header_value_fails_without_showing_it() {
    let client = ApiClient::new(
        ApiConfig::default()
            .base_url("http://127.0.0.1:9")
            .token(Some(BotToken::new("bad\ntoken-SECRET"))),
    );
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    assert!(!err.may_have_been_sent());
    assert!(!format!("{err:?} {err}").contains("SECRET"));
    assert!(!format!("{client:?}").contains("SECRET"));
}
