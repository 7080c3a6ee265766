//! What the one facade error answers, case by case, as a caller sees it:
//! an expired session, a gateway error, a refused connection, a timeout and
//! a bad account file, each with the predicates a caller branches on, and
//! none showing the bot token.

use std::sync::Arc;
use std::time::Duration;

use wxlink_client::client::{RetryPolicy, Timeouts};
use wxlink_client::{AccountRecord, Error, WxLinkClient};
use wxlink_proto::BotToken;
use wxlink_transport::{Body, BoxError};

const TOKEN: &str = "BOT-TOKEN-MARKER-e77c";

/// What the fake transport does with every request.
#[derive(Clone, Copy)]
enum Answer {
    /// A 200 with this JSON body.
    Json(&'static str),
    /// An HTTP status with an empty body.
    Status(u16),
    /// The connection is refused before anything is written.
    Refused,
    /// No answer, ever.
    Hang,
}

/// A client whose transport gives `answer` to every request; nothing leaves
/// the process, and no retry hides the first failure.
fn client(answer: Answer) -> WxLinkClient {
    let service = tower::service_fn(move |_req: http::Request<Body>| async move {
        let (status, body) = match answer {
            Answer::Json(body) => (200, body),
            Answer::Status(status) => (status, ""),
            Answer::Refused => {
                let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                return Err::<http::Response<Body>, BoxError>(Box::new(refused));
            }
            Answer::Hang => std::future::pending().await,
        };
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap())
    });
    let mut timeouts = Timeouts::default();
    timeouts.api = Some(Duration::from_millis(200));
    WxLinkClient::builder()
        .token(BotToken::new(TOKEN))
        .base_url("http://127.0.0.1:9")
        .transport(service)
        .timeouts(timeouts)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Neither the error nor any error in its chain shows the token.
fn assert_no_token(err: &Error) {
    let mut shown = format!("{err} {err:?}");
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        shown.push_str(&format!(" {c} {c:?}"));
        cause = c.source();
    }
    assert!(!shown.contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn a_minus_14_is_session_expired_and_not_worth_retrying() {
    let body = r#"{"ret":-14,"errmsg":"session timeout"}"#;
    let err = client(Answer::Json(body))
        .send_text("u@im.wechat", "hi")
        .await
        .unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(err.api_status().map(|s| s.code()), Some(-14));
    assert!(err.is_api() && !err.is_retryable() && !err.is_timeout());
    assert!(err.may_have_been_sent());
    assert_eq!(err.to_string(), "api call failed");
    assert_no_token(&err);
}

#[tokio::test]
async fn a_gateway_503_is_retryable_and_keeps_its_status() {
    let err = client(Answer::Status(503)).poll("").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.is_session_expired() && err.api_status().is_none());
    let status = err.transport().and_then(|t| t.status());
    assert_eq!(status.map(|s| s.as_u16()), Some(503));
    assert_no_token(&err);
}

#[tokio::test]
async fn a_refused_connection_was_never_sent_and_is_retryable() {
    let err = client(Answer::Refused)
        .send_text("u@im.wechat", "hi")
        .await
        .unwrap_err();
    assert!(!err.may_have_been_sent(), "{err:?}");
    assert!(err.is_retryable() && !err.is_timeout());
    assert_no_token(&err);
}

#[tokio::test]
async fn a_send_past_its_timeout_is_a_timeout_that_may_have_arrived() {
    let started = std::time::Instant::now();
    let err = client(Answer::Hang)
        .send_text("u@im.wechat", "hi")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The message may be in flight: sending it again could deliver it twice.
    assert!(err.may_have_been_sent() && !err.is_retryable());
    assert!(!err.is_session_expired() && err.rejection().is_none());
    assert_no_token(&err);
}

#[tokio::test]
async fn empty_text_and_a_blank_token_are_refused_before_sending() {
    let err = client(Answer::Hang)
        .send_text("u@im.wechat", "")
        .await
        .unwrap_err();
    assert!(err.is_empty_text() && !err.may_have_been_sent() && !err.is_retryable());
    let err = WxLinkClient::builder()
        .token(BotToken::new("  "))
        .build()
        .unwrap_err();
    assert!(err.is_missing_token() && !err.is_api(), "{err:?}");
}

#[test]
fn account_file_failures_say_so_without_showing_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AccountRecord::load(dir.path().join("nope.json")).unwrap_err();
    assert!(missing.is_account_file() && !missing.is_account_file_invalid());
    assert!(!missing.may_have_been_sent() && !missing.is_api());
    let source = std::error::Error::source(&missing).and_then(|s| s.downcast_ref());
    let io: Option<&std::io::Error> = source;
    assert_eq!(
        io.map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, format!(r#"{{"token":"{TOKEN}","base_url":7}}"#)).unwrap();
    let invalid = AccountRecord::load(&bad).unwrap_err();
    assert!(invalid.is_account_file_invalid(), "{invalid:?}");
    assert_eq!(invalid.to_string(), "account file is not a valid record");
    assert_no_token(&invalid);
}

#[test]
fn errors_are_cheap_clones_that_cross_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Error>();
    assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<Arc<()>>());
}
