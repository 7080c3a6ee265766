//! The webhook agent against a fake receiver on 127.0.0.1, answering inline
//! or later through the send endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tower::ServiceExt as _;
use wxlink_bridge::{
    Agent, BoxFuture, DeferredReply, Error, ReplyMedia, ReplySink, Secret, SendEndpoint, Turn,
    WebhookAgent, WebhookConfig,
};
use wxlink_transport::{Body, HttpsTransport, TransportOptions};

use crate::fake::{Answer, FakeServer};

fn turn() -> Turn {
    Turn::new(
        "bot-1@im.bot",
        "alice@im.wechat",
        9_007_199_254_740_993,
        "ping",
    )
    .quote("before")
}

#[tokio::test]
async fn a_receiver_answering_inline_gets_the_turn_as_json_with_its_token() {
    let server = FakeServer::start(|_, _| {
        Answer::Json(
            200,
            json!({"text": "pong", "media": [{"url": "https://example.com/a.png"}]}),
        )
    })
    .await;
    let agent = WebhookAgent::new(
        WebhookConfig::new(format!("{}/hook", server.url())).token(Secret::new("hook-token")),
    );
    let reply = agent.respond(&turn()).await.unwrap();
    assert_eq!(reply.text.as_deref(), Some("pong"));
    assert_eq!(
        reply.media,
        vec![ReplyMedia::Url("https://example.com/a.png".into())]
    );
    assert!(!reply.deferred);

    let got = &server.requests()[0];
    assert_eq!(got.path, "/hook");
    assert_eq!(got.headers["authorization"], "Bearer hook-token");
    let body = got.json();
    assert_eq!(body["account"], "bot-1@im.bot");
    assert_eq!(body["user"], "alice@im.wechat");
    assert_eq!(body["message_id"], "9007199254740993");
    assert_eq!(body["text"], "ping");
    assert_eq!(body["quote"], "before");
}

#[tokio::test]
async fn accepted_no_content_and_failures_are_told_apart() {
    let server = FakeServer::start(|_, n| match n {
        0 => Answer::Raw(202, "text/plain", Vec::new()),
        1 => Answer::Json(200, json!({"deferred": true})),
        2 => Answer::Json(500, json!({"error": "boom"})),
        3 => Answer::Raw(200, "text/html", b"<html/>".to_vec()),
        _ => Answer::Json(200, json!({"text": ""})),
    })
    .await;
    let agent = WebhookAgent::new(WebhookConfig::new(server.url()));
    assert!(agent.respond(&turn()).await.unwrap().deferred);
    assert!(agent.respond(&turn()).await.unwrap().deferred);
    assert_eq!(
        agent.respond(&turn()).await.unwrap_err().status(),
        Some(500)
    );
    assert!(agent.respond(&turn()).await.unwrap_err().is_unreadable());
    assert!(agent.respond(&turn()).await.unwrap_err().is_unreadable());
}

#[derive(Default)]
struct Collect(Mutex<Vec<DeferredReply>>);

impl ReplySink for Collect {
    fn deliver(&self, reply: DeferredReply) -> BoxFuture<'_, Result<(), Error>> {
        self.0.lock().unwrap().push(reply);
        Box::pin(async { Ok(()) })
    }
}

async fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http::Request::post(url).header("content-type", "application/json");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(Body::from(body.to_string())).unwrap();
    let transport = HttpsTransport::with_options(TransportOptions::default().proxy(None));
    let resp = transport.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_limited(1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_receiver_answering_later_goes_through_the_send_endpoint_with_the_token() {
    let sink = Arc::new(Collect::default());
    let token = "send-token-0123456789";
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let endpoint = SendEndpoint::serve(addr, Secret::new(token), sink.clone())
        .await
        .unwrap();

    // The receiver takes the turn, says 202, and answers later.
    let server = FakeServer::start(|_, _| Answer::Raw(202, "text/plain", Vec::new())).await;
    let agent = WebhookAgent::new(WebhookConfig::new(server.url()));
    assert!(agent.respond(&turn()).await.unwrap().deferred);
    let got = server.requests()[0].json();

    let (status, body) = post(
        &endpoint.url(),
        Some(token),
        json!({"account": got["account"], "user": got["user"], "message_id": got["message_id"],
               "text": "later answer", "media": ["/srv/out/report.pdf"]}),
    )
    .await;
    assert_eq!((status, body), (200, json!({"ok": true})));
    let delivered = sink.0.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].account, "bot-1@im.bot");
    assert_eq!(delivered[0].user, "alice@im.wechat");
    assert_eq!(delivered[0].message_id, Some(9_007_199_254_740_993));
    assert_eq!(delivered[0].reply.text.as_deref(), Some("later answer"));
    assert_eq!(
        delivered[0].reply.media,
        vec![ReplyMedia::Path("/srv/out/report.pdf".into())]
    );
}

#[tokio::test]
async fn the_send_endpoint_refuses_wrong_tokens_bad_bodies_and_non_loopback_binds() {
    let sink = Arc::new(Collect::default());
    let token = "send-token-0123456789";
    let endpoint = SendEndpoint::serve(
        "127.0.0.1:0".parse().unwrap(),
        Secret::new(token),
        sink.clone(),
    )
    .await
    .unwrap();
    let ok_body = json!({"account": "a", "user": "u", "text": "t"});
    assert_eq!(post(&endpoint.url(), None, ok_body.clone()).await.0, 401);
    assert_eq!(
        post(
            &endpoint.url(),
            Some("send-token-0123456788"),
            ok_body.clone()
        )
        .await
        .0,
        401
    );
    assert_eq!(
        post(&endpoint.url(), Some(token), json!({"user": "u"}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(
            &endpoint.url(),
            Some(token),
            json!({"account": "a", "user": "u"})
        )
        .await
        .0,
        400
    );
    assert!(sink.0.lock().unwrap().is_empty(), "nothing was delivered");

    let err = SendEndpoint::serve(
        "0.0.0.0:0".parse().unwrap(),
        Secret::new(token),
        sink.clone(),
    )
    .await
    .unwrap_err();
    assert!(err.is_config(), "{err:?}");
    let err = SendEndpoint::serve("127.0.0.1:0".parse().unwrap(), Secret::new("short"), sink)
        .await
        .unwrap_err();
    assert!(err.is_config());
}

#[tokio::test]
async fn healthz_and_metrics_are_served_on_loopback() {
    use wxlink_bridge::{Health, Metrics, serve_ops};
    let metrics = Arc::new(Metrics::new());
    metrics.set_throttled_accounts(2);
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let h = healthy.clone();
    let server = serve_ops(
        "127.0.0.1:0".parse().unwrap(),
        metrics,
        Arc::new(move || {
            let mut report = Health::default();
            report.accounts = 3;
            report.throttled = 2;
            report.stopping = !h.load(std::sync::atomic::Ordering::Relaxed);
            report
        }),
    )
    .await
    .unwrap();
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", server.local_addr());
        async move {
            let req = http::Request::get(url).body(Body::empty()).unwrap();
            let transport = HttpsTransport::with_options(TransportOptions::default().proxy(None));
            let resp = transport.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect_limited(1 << 20).await.unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, body) = get("/healthz").await;
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["accounts"], 3);
    assert_eq!(report["throttled"], 2);
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("wxlink_bridge_throttled_accounts 2"),
        "{body}"
    );
    healthy.store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(get("/healthz").await.0, 503);
    assert_eq!(get("/nope").await.0, 404);
}
