//! The retry layer's budget, shared between services, and bodies opened
//! again for a repeated attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceExt};
use wxlink_proto::{RetrySafety, TimeoutClass};
use wxlink_transport::layers::{ReplayBody, RetryLayer};
use wxlink_transport::{Body, BoxError, CallMeta, RetryPolicy};

/// A service that answers 503 to everything and counts the attempts.
fn unavailable(
    calls: &Arc<AtomicUsize>,
) -> impl tower::Service<Request<Body>, Response = Response<Body>, Error = BoxError, Future = impl Send>
+ Clone
+ Send
+ 'static {
    let counter = Arc::clone(calls);
    tower::service_fn(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            let mut resp = Response::new(Body::from("{}"));
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, BoxError>(resp)
        }
    })
}

fn getconfig(body: Body) -> Request<Body> {
    let mut req = Request::post("http://test.invalid/ilink/bot/getconfig")
        .body(body)
        .unwrap();
    req.extensions_mut().insert(CallMeta::new(
        "getconfig",
        TimeoutClass::Config,
        RetrySafety::Always,
    ));
    req
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_stops_retries_and_the_error_comes_at_once() {
    let policy = RetryPolicy::default()
        .with_backoff(Duration::from_secs(1), Duration::from_secs(1))
        .with_jitter(0.0);

    // With budget to spare, a 503 is tried three times, a second apart.
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = RetryLayer::new(policy.clone()).layer(unavailable(&calls));
    let started = tokio::time::Instant::now();
    let resp = svc.oneshot(getconfig(Body::from("{}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(2));

    // A budget with nothing in it: the first answer is the caller's, at
    // once.
    let empty = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = RetryLayer::new(policy.with_budget(empty)).layer(unavailable(&calls));
    let started = tokio::time::Instant::now();
    let resp = svc.oneshot(getconfig(Body::from("{}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn services_built_from_one_policy_spend_one_budget() {
    // Room for exactly one retry in the window (one per second for one
    // second, nothing earned by calls), and no backoff, so no time passes
    // and nothing is refilled.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(1), 1, 0.0));
    let policy = RetryPolicy::default()
        .with_backoff(Duration::ZERO, Duration::ZERO)
        .with_budget(Arc::clone(&budget));

    let api_calls = Arc::new(AtomicUsize::new(0));
    let api = RetryLayer::new(policy.clone()).layer(unavailable(&api_calls));
    let other_calls = Arc::new(AtomicUsize::new(0));
    let other = RetryLayer::new(policy).layer(unavailable(&other_calls));

    api.oneshot(getconfig(Body::from("{}"))).await.unwrap();
    assert_eq!(api_calls.load(Ordering::SeqCst), 2, "one retry, then spent");
    other.oneshot(getconfig(Body::from("{}"))).await.unwrap();
    assert_eq!(
        other_calls.load(Ordering::SeqCst),
        1,
        "the other service finds the budget spent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_with_a_replay_is_opened_again_only_for_a_retry() {
    let opened = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&opened);
    let replay = ReplayBody::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
        let chunks = [Ok::<_, std::io::Error>(Bytes::from_static(b"payload"))];
        Some(Body::from_stream(futures_util::stream::iter(chunks)))
    });
    let streamed = || {
        let chunks = [Ok::<_, std::io::Error>(Bytes::from_static(b"payload"))];
        let mut req = getconfig(Body::from_stream(futures_util::stream::iter(chunks)));
        req.extensions_mut().insert(replay.clone());
        req
    };
    // Fails twice, then answers; records every body it received.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let flaky = tower::service_fn(move |req: Request<Body>| {
        let record = Arc::clone(&record);
        async move {
            let body = req.into_body().collect_limited(1024).await?;
            let mut all = record.lock().unwrap();
            all.push(body);
            let mut resp = Response::new(Body::from("{}"));
            if all.len() % 3 != 0 {
                *resp.status_mut() = StatusCode::BAD_GATEWAY;
            }
            Ok::<_, BoxError>(resp)
        }
    });
    let svc = RetryLayer::new(RetryPolicy::default()).layer(flaky);

    let resp = svc.clone().oneshot(streamed()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), ["payload", "payload", "payload"]);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        2,
        "once per repeated attempt"
    );

    // A replay that cannot open the body again ends the call with the last
    // answer.
    let mut req = streamed();
    req.extensions_mut().insert(ReplayBody::new(|| None));
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(seen.lock().unwrap().len(), 4);
}
