//! Measures what the WxLink stack costs on top of a bare keep-alive POST:
//! `ApiClient::call::<SendMessage>` against a plain hyper client sending the
//! same JSON to the same local server, 1 and 32 requests in flight.
//!
//! Run with `cargo run -p wxlink-transport --release --example call_overhead`.
//! It first prints the client-side CPU cost of one call with the network
//! replaced by memory. Environment knobs: `NO_RETRY=1` and `NO_TIMEOUT=1`
//! take the retry and timeout layers out of the client's stack,
//! `BARE_HEADERS=1` makes the bare POST carry the same iLink headers, and
//! `IN_MEMORY_ONLY=1` stops after the in-memory figure (for profiling).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wxlink_proto::{
    BotToken, ContextToken, MessageItem, MessageItemType, MessageState, MessageType, SendMessage,
    SendMessageRequest, TextItem, WeixinMessage,
};
use wxlink_transport::{ApiClient, ApiConfig};

const REQUESTS: usize = 20_000;

async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            br#"{"ret":0}"#,
                        ))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn request() -> SendMessageRequest {
    SendMessageRequest {
        msg: Some(WeixinMessage {
            from_user_id: Some(String::new()),
            to_user_id: Some("o9cq80EXAMPLEuserAlice01@im.wechat".into()),
            client_id: Some("wxlink:bench".into()),
            message_type: Some(MessageType::Bot),
            message_state: Some(MessageState::Finish),
            item_list: vec![MessageItem {
                item_type: Some(MessageItemType::Text),
                text_item: Some(TextItem {
                    text: Some("好的，已为你设置明天 10:00 的周会提醒。".into()),
                }),
                ..Default::default()
            }],
            context_token: Some(ContextToken::new(
                "AARzJWAFAAABAAAAAABEXAMPLEctx1mQe7o0q2S4u6w8y0A2C4E6G8I0K2M4O6Q8S0U2W4Y6==",
            )),
            ..Default::default()
        }),
        base_info: None,
    }
}

async fn run<F, Fut>(concurrency: usize, f: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS / concurrency {
                f().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let base = server().await;
    let body = {
        // The exact bytes ApiClient sends, so both sides carry the same load.
        let mut v = serde_json::to_value(request()).unwrap();
        v["base_info"] = serde_json::json!({"channel_version":"0.1.0","bot_agent":"WxLink/0.1.0"});
        Bytes::from(serde_json::to_vec(&v).unwrap())
    };
    let bare: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut config = ApiConfig::default()
        .base_url(base.clone())
        .token(Some(BotToken::new("bench-token")));
    if std::env::var_os("NO_RETRY").is_some() {
        config = config.retry(wxlink_transport::RetryPolicy::none());
    }
    if std::env::var_os("NO_TIMEOUT").is_some() {
        config = config.timeouts(wxlink_transport::Timeouts::uniform(None));
    }
    let client = ApiClient::new(config.clone());

    // Client-side CPU per call, with the network replaced by memory.
    let memory = tower::service_fn(|_req: http::Request<wxlink_transport::Body>| async {
        Ok::<_, wxlink_transport::BoxError>(http::Response::new(wxlink_transport::Body::from(
            r#"{"ret":0}"#,
        )))
    });
    let in_memory = ApiClient::with_service(config, memory);
    let req = request();
    for _ in 0..10_000 {
        in_memory.call::<SendMessage>(&req).await.unwrap();
    }
    let started = Instant::now();
    let rounds = if std::env::var_os("IN_MEMORY_ONLY").is_some() {
        2_000_000
    } else {
        100_000
    };
    for _ in 0..rounds {
        in_memory.call::<SendMessage>(&req).await.unwrap();
    }
    let per_call = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..100_000 {
        std::hint::black_box(serde_json::to_vec(&req).unwrap());
    }
    let serialise = started.elapsed() / 100_000;
    println!("in memory: {per_call:?} per call, of which {serialise:?} is serialising the request");
    if std::env::var_os("IN_MEMORY_ONLY").is_some() {
        return;
    }
    let url: http::Uri = format!("{base}/ilink/bot/sendmessage").parse().unwrap();

    for concurrency in [1, 32] {
        let mut bare_best = Duration::MAX;
        let mut ours_best = Duration::MAX;
        for _round in 0..3 {
            let (b, u, bd) = (bare.clone(), url.clone(), body.clone());
            let t = run(concurrency, move || {
                let mut builder =
                    http::Request::post(u.clone()).header("content-type", "application/json");
                if std::env::var_os("BARE_HEADERS").is_some() {
                    builder = builder
                        .header("authorizationtype", "ilink_bot_token")
                        .header("x-wechat-uin", "MzE0MTU5MjY1Mw==")
                        .header("ilink-app-id", "bot")
                        .header("ilink-app-clientversion", "256")
                        .header("authorization", "Bearer bench-token");
                }
                let req = builder.body(Full::new(bd.clone())).unwrap();
                let fut = b.request(req);
                async move {
                    let resp = fut.await.unwrap();
                    let _ = resp.into_body().collect().await.unwrap();
                }
            })
            .await;
            bare_best = bare_best.min(t);
            let c = client.clone();
            let req = Arc::new(request());
            let t = run(concurrency, move || {
                let c = c.clone();
                let req = Arc::clone(&req);
                async move {
                    c.call::<SendMessage>(&req).await.unwrap();
                }
            })
            .await;
            ours_best = ours_best.min(t);
        }
        let rate = |d: Duration| REQUESTS as f64 / d.as_secs_f64();
        println!(
            "{concurrency:>2} in flight: bare POST {:>8.0} req/s, ApiClient sendmessage {:>8.0} req/s, ratio {:.2}",
            rate(bare_best),
            rate(ours_best),
            rate(ours_best) / rate(bare_best)
        );
    }
}
