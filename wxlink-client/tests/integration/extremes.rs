//! Server hints and caller settings at the edges of their types neither
//! panic nor run away: a `longpolling_timeout_ms` anywhere in `i64`, a poll
//! timeout up to `Duration::MAX`, and QR-login deadlines and intervals up
//! to `Duration::MAX`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use wxlink_client::client::{LONG_POLL_MARGIN, MAX_SERVER_HOLD, MIN_SERVER_HOLD, server_hold};
use wxlink_client::{LoginOptions, LoginSession, WxLinkClient};
use wxlink_proto::BotToken;
use wxlink_transport::{Body, BoxError};

/// A transport that answers each path with a fixed body.
fn answering(
    getupdates: String,
) -> impl tower::Service<
    http::Request<Body>,
    Response = http::Response<Body>,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<http::Response<Body>, BoxError>> + Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: http::Request<Body>| {
        let path = req.uri().path().to_owned();
        let body = if path.ends_with("getupdates") {
            getupdates.clone()
        } else if path.ends_with("get_bot_qrcode") {
            r#"{"qrcode":"q1","qrcode_img_content":"https://example.invalid/q1"}"#.to_owned()
        } else if path.ends_with("get_qrcode_status") {
            r#"{"status":"wait"}"#.to_owned()
        } else {
            "{}".to_owned()
        };
        async move { Ok::<_, BoxError>(http::Response::new(Body::from(body))) }
    })
}

fn client(getupdates: String) -> WxLinkClient {
    WxLinkClient::builder()
        .token(BotToken::new("t"))
        .base_url("http://127.0.0.1:9")
        .transport(answering(getupdates))
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::MAX),
        Just(Duration::ZERO),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..10_000).prop_map(Duration::from_millis),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any server hint leaves the next poll's limit between the clamped
    /// hold plus the margin.
    #[test]
    fn any_longpolling_hint_is_clamped(ms in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), 0i64..100_000]) {
        let rt = runtime();
        let client = client(format!(r#"{{"ret":0,"msgs":[],"get_updates_buf":"c","longpolling_timeout_ms":{ms}}}"#));
        let before = client.next_poll_timeout();
        rt.block_on(client.poll("").send()).unwrap();
        let next = client.next_poll_timeout().unwrap();
        match server_hold(ms) {
            Some(hold) => {
                prop_assert!(hold >= MIN_SERVER_HOLD && hold <= MAX_SERVER_HOLD);
                prop_assert_eq!(next, hold + LONG_POLL_MARGIN);
            }
            None => prop_assert_eq!(Some(next), before),
        }
    }

    /// Any poll timeout, `Duration::MAX` included, is accepted.
    #[test]
    fn any_poll_timeout_is_accepted(timeout in any_duration()) {
        let rt = runtime();
        let client = client(r#"{"ret":0,"msgs":[],"get_updates_buf":"c"}"#.to_owned());
        let got = rt.block_on(client.poll("").timeout(timeout).send());
        // A zero timeout may fire before the answer; then it is an empty
        // poll, never a panic or an error.
        prop_assert!(got.is_ok(), "{:?}", got.err());
    }

    /// Any login deadline and poll interval start a session and poll it.
    #[test]
    fn any_login_deadline_and_interval_is_accepted(deadline in any_duration(), interval in any_duration()) {
        let rt = runtime();
        let options = LoginOptions::new()
            .base_url("http://127.0.0.1:9")
            .deadline(deadline)
            .poll_interval(interval)
            .client(WxLinkClient::builder().transport(answering(String::new())));
        rt.block_on(async {
            let mut session = LoginSession::start(options).await.unwrap();
            let state = session.poll_once().await.unwrap();
            assert!(!state.is_final() || deadline < Duration::from_secs(2), "{state:?}");
        });
    }
}
