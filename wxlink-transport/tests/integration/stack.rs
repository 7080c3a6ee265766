//! Bringing your own transport, the layers on their own, the CDN service
//! and the proxy support.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Reply, TestServer};
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceBuilder, ServiceExt};
use wxlink_proto::{
    Auth, BotToken, GetConfig, GetConfigRequest, RetrySafety, SendMessage, SendMessageRequest,
    TimeoutClass,
};
use wxlink_transport::layers::{
    BodyLimitLayer, IlinkHeaderValues, IlinkHeadersLayer, RetryLayer, TimeoutLayer, TraceLayer,
};
use wxlink_transport::{
    ApiClient, ApiConfig, Body, BoxError, CallMeta, Error, HttpsTransport, Proxy, RetryPolicy,
    Timeouts, TransportOptions,
};

fn json(body: &'static str) -> Response<Body> {
    Response::new(Body::from(body))
}

#[tokio::test]
async fn a_service_fn_answering_from_memory_replaces_the_whole_transport() {
    let seen: Arc<Mutex<Vec<Request<Bytes>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let memory = tower::service_fn(move |req: Request<Body>| {
        let log = Arc::clone(&log);
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect_limited(1 << 20).await?;
            let reply = match parts.uri.path() {
                "/api/ilink/bot/getconfig" => json(r#"{"ret":0,"typing_ticket":"from-memory"}"#),
                _ => json(r#"{"errcode":-14}"#),
            };
            log.lock().unwrap().push(Request::from_parts(parts, body));
            Ok::<_, BoxError>(reply)
        }
    });
    let config = ApiConfig::default()
        .base_url("https://ilink.example/api")
        .token(Some(BotToken::new("secret-token")));
    let client = ApiClient::with_service(config, memory);

    let req = GetConfigRequest {
        ilink_user_id: Some("alice@im.wechat".into()),
        ..Default::default()
    };
    let resp = client.call::<GetConfig>(&req).await.unwrap();
    assert_eq!(
        resp.typing_ticket.as_ref().map(|t| t.expose_secret()),
        Some("from-memory")
    );
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_session_expired());

    let seen = seen.lock().unwrap();
    let first = &seen[0];
    assert_eq!(
        first.uri().to_string(),
        "https://ilink.example/api/ilink/bot/getconfig"
    );
    assert_eq!(first.headers()["authorization"], "Bearer secret-token");
    assert_eq!(
        first.extensions().get::<CallMeta>().unwrap().timeout_class,
        TimeoutClass::Config
    );
    let body: serde_json::Value = serde_json::from_slice(first.body()).unwrap();
    assert_eq!(body["ilink_user_id"], "alice@im.wechat");
    assert!(body["base_info"]["bot_agent"].is_string());
}

#[tokio::test]
async fn a_memory_transport_error_that_means_refused_is_retried_as_a_connect_failure() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let refusing = tower::service_fn(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<Response<Body>, BoxError>(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))
        }
    });
    let config = ApiConfig::default().retry(
        RetryPolicy::default()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(1))
            .with_max_attempts(4),
    );
    let err = ApiClient::with_service(config, refusing)
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_connect());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// A request as the client's stack would build it.
fn request(meta: CallMeta, body: Body) -> Request<Body> {
    let mut req = Request::post("http://test.invalid/ilink/bot/x")
        .body(body)
        .unwrap();
    req.extensions_mut().insert(meta);
    req
}

#[tokio::test(start_paused = true)]
async fn retry_layer_alone_backs_off_exponentially() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let flaky = tower::service_fn(move |_req: Request<Body>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut resp = json("{}");
            if n < 3 {
                *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, BoxError>(resp)
        }
    });
    let policy = RetryPolicy::default()
        .with_max_attempts(5)
        .with_backoff(Duration::from_secs(1), Duration::from_secs(3))
        .with_jitter(0.0)
        .with_total_deadline(None);
    let svc = RetryLayer::new(policy).layer(flaky);
    let meta = CallMeta::new("getconfig", TimeoutClass::Config, RetrySafety::Always);
    let started = tokio::time::Instant::now();
    let resp = svc.oneshot(request(meta, Body::from("{}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    // 1 s + 2 s + 3 s (capped), in paused time.
    assert_eq!(started.elapsed(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn retry_layer_alone_renews_the_wechat_uin_and_adds_none() {
    // Records each attempt's X-WECHAT-UIN and fails the first two.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let flaky = tower::service_fn(move |req: Request<Body>| {
        let mut all = record.lock().unwrap();
        all.push(
            req.headers()
                .get("x-wechat-uin")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        let n = all.len();
        async move {
            let mut resp = json("{}");
            if n % 3 != 0 {
                *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, BoxError>(resp)
        }
    });
    let svc = RetryLayer::new(RetryPolicy::default().with_jitter(0.0)).layer(flaky);
    let meta = CallMeta::new("getconfig", TimeoutClass::Config, RetrySafety::Always);

    let mut with_uin = request(meta, Body::from("{}"));
    with_uin
        .headers_mut()
        .insert("x-wechat-uin", http::HeaderValue::from_static("MA=="));
    let resp = svc.clone().oneshot(with_uin).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let uins: Vec<String> = seen.lock().unwrap().drain(..).map(Option::unwrap).collect();
    assert_eq!(uins.len(), 3);
    assert_eq!(uins[0], "MA==", "the first attempt is sent as given");
    assert!(
        uins[1] != uins[0] && uins[2] != uins[0] && uins[1] != uins[2],
        "{uins:?}"
    );

    // A request without the header (not an iLink call) is repeated as is.
    svc.oneshot(request(meta, Body::from("{}"))).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [None, None, None]);
}

#[tokio::test(start_paused = true)]
async fn retry_layer_never_retries_a_one_shot_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let refusing = tower::service_fn(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<Response<Body>, BoxError>(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))
        }
    });
    let svc = RetryLayer::new(RetryPolicy::default()).layer(refusing);
    let meta = CallMeta::new("cdn", TimeoutClass::Cdn, RetrySafety::Always);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]);
    let err = svc
        .oneshot(request(meta, Body::from_stream(stream)))
        .await
        .unwrap_err();
    assert!(Error::from_box(err).is_connect());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_alone_covers_a_stalled_response_body() {
    // The head arrives at once; the body never does.
    let stalling = tower::service_fn(|_req: Request<Body>| async {
        let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        Ok::<_, BoxError>(Response::new(Body::from_stream(never)))
    });
    let svc = TimeoutLayer::new(Timeouts::default()).layer(stalling);
    let meta = CallMeta::new("sendmessage", TimeoutClass::Api, RetrySafety::BeforeSend);
    let resp = svc.oneshot(request(meta, Body::empty())).await.unwrap();
    let started = tokio::time::Instant::now();
    let err = resp.into_body().collect_limited(1024).await.unwrap_err();
    assert_eq!(err.timeout_class(), Some(TimeoutClass::Api));
    assert_eq!(started.elapsed(), Duration::from_secs(15));
}

#[tokio::test]
async fn body_limit_layer_alone_rejects_by_size_hint_and_by_count() {
    let big = tower::service_fn(|req: Request<Body>| async move {
        let body = if req.uri().path() == "/known" {
            Body::from(vec![0u8; 100])
        } else {
            let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&[1; 20])));
            Body::from_stream(futures_util::stream::iter(chunks))
        };
        Ok::<_, BoxError>(Response::new(body))
    });
    let svc = BodyLimitLayer::new(50).layer(big);
    let err = svc
        .clone()
        .oneshot(Request::get("http://x/known").body(Body::empty()).unwrap())
        .await
        .unwrap_err();
    assert!(Error::from_box(err).is_body_too_large());
    let resp = svc
        .oneshot(Request::get("http://x/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut stream = resp.into_body().into_data_stream();
    let mut got = 0;
    let err = loop {
        match stream.next().await.unwrap() {
            Ok(chunk) => got += chunk.len(),
            Err(err) => break err,
        }
    };
    assert_eq!(got, 40);
    assert!(Error::from_box(err).is_body_too_large());
}

#[tokio::test]
async fn headers_layer_alone_marks_authorization_sensitive_and_skips_it_on_get() {
    let values = IlinkHeaderValues::new("bot", "2.4.3")
        .unwrap()
        .with_token(Some(&BotToken::new("  padded-token  ")))
        .unwrap();
    let echo = tower::service_fn(|req: Request<Body>| async move {
        let mut resp = Response::new(Body::empty());
        *resp.headers_mut() = req.headers().clone();
        Ok::<_, BoxError>(resp)
    });
    let svc = IlinkHeadersLayer::new(values).layer(echo);
    let meta = CallMeta::new("sendmessage", TimeoutClass::Api, RetrySafety::BeforeSend);
    let resp = svc
        .clone()
        .oneshot(request(meta, Body::empty()))
        .await
        .unwrap();
    let auth = &resp.headers()["authorization"];
    assert_eq!(auth, "Bearer padded-token");
    assert!(auth.is_sensitive());
    assert!(!format!("{:?}", resp.headers()).contains("padded-token"));

    let login = meta.with_auth(Auth::None);
    let resp = svc
        .clone()
        .oneshot(request(login, Body::empty()))
        .await
        .unwrap();
    assert!(resp.headers().get("authorization").is_none());

    let mut get = Request::get("http://x/").body(Body::empty()).unwrap();
    get.extensions_mut().insert(meta);
    let resp = svc.oneshot(get).await.unwrap();
    assert!(resp.headers().get("authorization").is_none());
    assert!(resp.headers().get("content-type").is_none());
    assert_eq!(resp.headers()["ilink-app-clientversion"], "132099");
}

#[tokio::test]
async fn a_custom_stack_composes_from_the_public_layers() {
    let server = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    let values = IlinkHeaderValues::new("bot", "2.4.3").unwrap();
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new())
        .layer(IlinkHeadersLayer::new(values))
        .layer(RetryLayer::new(RetryPolicy::none()))
        .layer(TimeoutLayer::new(Timeouts::default()))
        .layer(BodyLimitLayer::new(1 << 20))
        .service(HttpsTransport::new());
    let req = Request::post(format!("{}/ilink/bot/msg/notifystart", server.url()))
        .body(Body::from("{}"))
        .unwrap();
    let resp = stack.oneshot(req).await.unwrap();
    assert_eq!(
        resp.into_body().collect_limited(64).await.unwrap(),
        r#"{"ret":0}"#
    );
    assert_eq!(
        server.requests()[0].header("ilink-app-id"),
        Some("bot"),
        "the headers layer ran"
    );
}

#[tokio::test]
async fn cdn_service_streams_both_ways_without_ilink_headers() {
    let server = TestServer::start(|_, req| {
        if req.method == http::Method::POST {
            Reply::ok("")
        } else {
            Reply::Chunked(100_000)
        }
    })
    .await;
    let client = ApiClient::new(ApiConfig::default().token(Some(BotToken::new("tok"))));
    let cdn = client.cdn_service();

    let chunks = (0..8).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8; 4096])));
    let upload = Request::post(format!("{}/c2c/upload?filekey=k", server.url()))
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let resp = cdn.clone().oneshot(upload).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = &server.requests()[0];
    assert_eq!(seen.body.len(), 8 * 4096);
    assert_eq!(seen.body[4096], 1);
    assert!(seen.header("ilink-app-id").is_none());
    assert!(seen.header("authorization").is_none());
    assert!(seen.header("x-wechat-uin").is_none());

    let download = Request::get(format!(
        "{}/c2c/download?encrypted_query_param=p",
        server.url()
    ))
    .body(Body::empty())
    .unwrap();
    let resp = cdn.oneshot(download).await.unwrap();
    let mut stream = resp.into_body().into_data_stream();
    let (mut total, mut largest) = (0, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        largest = largest.max(chunk.len());
    }
    assert_eq!(total, 100_000);
    assert!(largest < 100_000, "the body arrived in pieces");
}

#[tokio::test]
async fn http_targets_go_to_the_forward_proxy_in_absolute_form_with_credentials() {
    let proxy = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    let mut options = TransportOptions::default();
    options.proxy = Some(Proxy::all(&format!("http://user:pw@{}", proxy.addr)).unwrap());
    let transport = HttpsTransport::with_options(options);
    let config = ApiConfig::default().base_url("http://ilink.invalid");
    let client = ApiClient::with_service(config, transport);
    client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    let seen = &proxy.requests()[0];
    assert_eq!(
        seen.uri.to_string(),
        "http://ilink.invalid/ilink/bot/sendmessage"
    );
    assert_eq!(
        seen.header("proxy-authorization"),
        Some("Basic dXNlcjpwdw==")
    );
}

#[tokio::test]
async fn https_targets_open_a_connect_tunnel_through_the_proxy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let head = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8(buf).unwrap()
    });
    let mut options = TransportOptions::default();
    options.proxy = Some(Proxy::all(&format!("http://user:pw@{addr}")).unwrap());
    let client = ApiClient::with_service(
        ApiConfig::default()
            .base_url("https://ilink.invalid")
            .retry(RetryPolicy::none()),
        HttpsTransport::with_options(options),
    );
    let err = client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.may_have_been_sent());
    let head = tokio::time::timeout(Duration::from_secs(5), head)
        .await
        .unwrap()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.starts_with("connect ilink.invalid:443 http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("proxy-authorization: basic dxnlcjpwdw=="),
        "{head}"
    );
}

#[tokio::test]
async fn a_proxy_given_without_a_scheme_is_used_as_http() {
    let proxy = TestServer::always(Reply::ok("{}")).await;
    let mut options = TransportOptions::default();
    options.proxy = Some(Proxy::all(&proxy.addr.to_string()).unwrap());
    let client = ApiClient::with_service(
        ApiConfig::default().base_url("http://ilink.invalid"),
        HttpsTransport::with_options(options),
    );
    client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap();
    assert_eq!(
        proxy.requests()[0].uri.to_string(),
        "http://ilink.invalid/ilink/bot/getconfig"
    );
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_connect_error() {
    let port = common::refused_port().await;
    let mut options = TransportOptions::default();
    options.proxy = Some(Proxy::all(&format!("http://127.0.0.1:{port}")).unwrap());
    let client = ApiClient::with_service(
        // A target that would answer if it were reached directly.
        ApiConfig::default()
            .base_url(TestServer::always(Reply::ok("{}")).await.url())
            .retry(RetryPolicy::none()),
        HttpsTransport::with_options(options),
    );
    let err = client
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn hosts_listed_as_no_proxy_are_reached_directly() {
    let server = TestServer::always(Reply::ok("{}")).await;
    let mut options = TransportOptions::default();
    options.proxy = Some(Proxy::all_except("http://proxy.invalid:3128", "127.0.0.1").unwrap());
    let client = ApiClient::with_service(
        ApiConfig::default().base_url(server.url()),
        HttpsTransport::with_options(options),
    );
    client
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    assert_eq!(server.requests()[0].uri.path(), "/ilink/bot/sendmessage");
}

#[tokio::test]
async fn calls_over_a_boxed_transport_can_be_spawned() {
    fn check<T: Clone + Send + Sync + 'static>(_: &T) {}
    let memory = tower::service_fn(|req: Request<Body>| async move {
        let body = if req.uri().path().starts_with("/c2c") {
            "cdn bytes"
        } else {
            r#"{"ret":0}"#
        };
        Ok::<_, BoxError>(json(body))
    });
    let boxed: wxlink_transport::BoxHttpService = tower::util::BoxCloneSyncService::new(memory);
    let client = ApiClient::with_service(ApiConfig::default(), boxed);
    check(&client);
    check(&ApiClient::new(ApiConfig::default()));
    // `tokio::spawn` needs the futures to be `Send`; this is how the facade
    // uses a type-erased transport.
    let api = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call::<SendMessage>(&SendMessageRequest::default())
                .await
        }
    });
    api.await.unwrap().unwrap();
    let cdn = tokio::spawn({
        let cdn = client.cdn_service();
        async move {
            let req = Request::get("https://cdn.example/c2c/download?x=1")
                .body(Body::empty())
                .unwrap();
            let resp = cdn.oneshot(req).await?;
            resp.into_body()
                .collect_limited(64)
                .await
                .map_err(BoxError::from)
        }
    });
    assert_eq!(cdn.await.unwrap().unwrap(), "cdn bytes");
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_timeout_comes_back_at_once_without_retries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let silent = tower::service_fn(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            futures_util::future::pending::<()>().await;
            Ok::<Response<Body>, BoxError>(json("{}"))
        }
    });
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default()))
        .layer(TimeoutLayer::new(Timeouts::default()))
        .service(silent);
    // `get_qrcode_status`: a long poll that is safe to repeat.
    let meta = CallMeta::new(
        "get_qrcode_status",
        TimeoutClass::LongPoll,
        RetrySafety::Always,
    );
    let started = tokio::time::Instant::now();
    let err = svc.oneshot(request(meta, Body::empty())).await.unwrap_err();
    assert!(Error::from_box(err).is_long_poll_timeout());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(35));
}

#[tokio::test(start_paused = true)]
async fn an_api_timeout_of_a_repeatable_call_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let slow_once = tower::service_fn(move |_req: Request<Body>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                futures_util::future::pending::<()>().await;
            }
            Ok::<Response<Body>, BoxError>(json("{}"))
        }
    });
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::default().with_jitter(0.0)))
        .layer(TimeoutLayer::new(Timeouts::default()))
        .service(slow_once);
    let meta = CallMeta::new("getconfig", TimeoutClass::Config, RetrySafety::Always);
    let started = tokio::time::Instant::now();
    let resp = svc.oneshot(request(meta, Body::from("{}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The 10 s config timeout, then the 200 ms backoff.
    assert_eq!(started.elapsed(), Duration::from_millis(10_200));
}
