//! The bridge on the bot runtime against `wxlink-sim`: what the agent
//! received and what the user got.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use wxlink_bot::backoff::BackoffPolicy;
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, EventKind, Host};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{
    Agent, CommandAgent, CommandConfig, CommandMode, EngineOptions, OpenAiAgent, OpenAiConfig,
    Secret, SendEndpoint, WebhookAgent, WebhookConfig,
};
use wxlink_client::WxLinkClient;
use wxlink_media::{KeyEncoding, MediaKind};
use wxlink_sim::{SentMessage, Simulator};

use crate::fake::{Answer, FakeServer, completion_events, completion_json};

pub const WAIT: Duration = Duration::from_secs(15);

pub async fn sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(200))
        .start()
        .await
        .unwrap()
}

pub fn fast() -> AccountOptions {
    AccountOptions::default()
        .pace(Duration::from_millis(5))
        .retry_delay(Duration::from_millis(50))
        .lease_ttl(Duration::from_secs(2))
        .typing_keepalive(Duration::from_millis(100))
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
}

pub fn account(sim: &Simulator) -> AccountConfig {
    AccountConfig::new(
        AccountId::new(sim.bot_id()).unwrap(),
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .cdn_base_url(sim.cdn_base_url())
            .token(sim.token()),
    )
}

pub fn engine_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.agent_timeout = Duration::from_secs(5);
    o.failure_notice = Some("one moment".into());
    o.give_up_notice = Some("sorry, no answer".into());
    o
}

pub struct Running {
    pub bridge: Bridge,
    pub _dir: tempfile::TempDir,
}

pub async fn start(
    sim: &Simulator,
    agent: Arc<dyn Agent>,
    options: EngineOptions,
    account_options: AccountOptions,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder(MemoryStore::new()).build();
    let bridge = Bridge::new(
        host,
        agent,
        BridgeOptions::new(options, dir.path().join("in")),
    );
    bridge
        .add_account(account(sim), account_options)
        .await
        .unwrap();
    Running { bridge, _dir: dir }
}

fn texts(sent: &[SentMessage]) -> Vec<String> {
    sent.iter()
        .filter_map(|m| m.text().map(str::to_owned))
        .collect()
}

fn balanced(chunk: &str) -> bool {
    chunk.lines().filter(|l| l.starts_with("```")).count() % 2 == 0
}

fn long_markdown() -> String {
    let code: String = (0..150)
        .map(|i| format!("    let value_{i:03} = compute({i});\n"))
        .collect();
    format!(
        "# Plan\n\n{}\n\n```rust\nfn main() {{\n{code}}}\n```\n\nDone.",
        "Some words of explanation. ".repeat(60)
    )
}

#[tokio::test]
async fn a_streamed_openai_answer_reaches_the_user_in_fenced_chunks_between_typing_and_cancel() {
    let answer = long_markdown();
    let a2 = answer.clone();
    let fake = FakeServer::start(move |_, _| Answer::Sse(completion_events(&a2, 40))).await;
    let agent = OpenAiAgent::new(
        OpenAiConfig::new(format!("{}/v1", fake.url()), "gpt-test")
            .api_key(Secret::new("sk-sim-test"))
            .system_prompt("You are the test bot."),
    );
    let sim = sim().await;
    let _run = start(&sim, Arc::new(agent), engine_options(), fast()).await;
    let user = sim.user_id();
    sim.inject_text(&user, "plan my day");

    let expected = wxlink_bridge::chunk_markdown(&answer, 2000);
    let sent = sim.wait_for_sent(expected.len(), WAIT).await.unwrap();
    let got = texts(&sent);
    assert_eq!(got, expected);
    assert!(got.len() >= 3);
    for chunk in &got {
        assert!(chunk.chars().count() <= 2000);
        assert!(balanced(chunk), "{chunk}");
    }
    // Removing the fence lines the bridge added gives the answer back.
    let spans = wxlink_bridge::markdown::chunk_markdown_spans(&answer, 2000);
    let joined: String = spans.iter().map(|s| &answer[s.body.clone()]).collect();
    assert_eq!(joined, answer);

    // Typing before the first message, cancelled after the last.
    let typing = sim.wait_for_typing(2, WAIT).await.unwrap();
    let first_sent = sent.first().unwrap().at;
    let last_sent = sent.last().unwrap().at;
    assert!(
        typing.iter().any(|c| c.status == 1 && c.at <= first_sent),
        "{typing:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let typing = sim.typing_calls();
    let cancel = typing
        .iter()
        .rposition(|c| c.status == 2)
        .expect("a cancel");
    assert!(typing[cancel].at >= last_sent);
    assert!(
        typing[cancel + 1..].iter().all(|c| c.status != 1),
        "no typing after the cancel"
    );

    // What the model received.
    let request = fake.requests()[0].json();
    assert_eq!(request["model"], "gpt-test");
    assert_eq!(request["stream"], true);
    assert_eq!(
        request["messages"][0],
        json!({"role": "system", "content": "You are the test bot."})
    );
    assert_eq!(
        request["messages"][1],
        json!({"role": "user", "content": "plan my day"})
    );
    assert_eq!(
        fake.requests()[0].headers["authorization"],
        "Bearer sk-sim-test"
    );
}

#[tokio::test]
async fn history_and_an_image_reach_a_plain_json_model() {
    let fake =
        FakeServer::start(|_, n| Answer::Json(200, completion_json(&format!("answer {n}")))).await;
    let agent = OpenAiAgent::new(
        OpenAiConfig::new(fake.url(), "vision")
            .stream(false)
            .images(true),
    );
    let sim = sim().await;
    let _run = start(&sim, Arc::new(agent), engine_options(), fast()).await;
    let user = sim.user_id();

    sim.inject_text(&user, "first question");
    sim.wait_for_sent(1, WAIT).await.unwrap();
    let png = b"\x89PNG\r\n\x1a\n-- a tiny test picture --".to_vec();
    sim.inject_media(&user, MediaKind::Image, &png, KeyEncoding::Base64Hex)
        .unwrap();
    let sent = sim.wait_for_sent(2, WAIT).await.unwrap();
    assert_eq!(texts(&sent), ["answer 0", "answer 1"]);

    let second = fake.requests()[1].json();
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        json!({"role": "user", "content": "first question"})
    );
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": "answer 0"})
    );
    let parts = messages[2]["content"].as_array().unwrap();
    let url = parts.iter().find(|p| p["type"] == "image_url").unwrap()["image_url"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, data) = url.split_once(";base64,").unwrap();
    assert!(head.starts_with("data:image/"), "{head}");
    // The bridge downloaded and decrypted the picture from the CDN.
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        png
    );
}

#[tokio::test]
async fn http_500_gives_a_notice_retries_and_a_dead_letter() {
    let fake =
        FakeServer::start(|_, _| Answer::Json(500, json!({"error": {"message": "down"}}))).await;
    let agent = OpenAiAgent::new(OpenAiConfig::new(fake.url(), "m").stream(false));
    let sim = sim().await;
    let run = start(
        &sim,
        Arc::new(agent),
        engine_options(),
        fast().max_attempts(3),
    )
    .await;
    let mut events = run.bridge.host().events();
    let user = sim.user_id();
    sim.inject_text(&user, "hello?");

    let dead = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(event) = events.recv().await
                && let EventKind::DeadLettered {
                    attempts, error, ..
                } = event.kind
            {
                return (attempts, error);
            }
        }
    })
    .await
    .expect("a dead letter");
    assert_eq!(dead.0, 3);
    assert!(dead.1.contains("500"), "{}", dead.1);
    assert_eq!(fake.requests().len(), 3, "one agent call per attempt");
    sim.wait_for_sent(2, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The notice once (a retried delivery does not repeat it), then the give-up notice.
    assert_eq!(
        texts(&sim.sent_messages()),
        ["one moment", "sorry, no answer"]
    );
    assert_eq!(run.bridge.engine().metrics().dead_letters(), 1);
}

#[tokio::test]
async fn garbage_and_timeouts_are_failures_too() {
    let fake = FakeServer::start(|_, n| match n {
        0 => Answer::Raw(200, "application/json", b"{not json".to_vec()),
        _ => Answer::Json(200, completion_json("recovered")),
    })
    .await;
    let agent = OpenAiAgent::new(OpenAiConfig::new(fake.url(), "m").stream(false));
    let sim = sim().await;
    let _run = start(&sim, Arc::new(agent), engine_options(), fast()).await;
    sim.inject_text(sim.user_id(), "x");
    sim.wait_for_sent(2, WAIT).await.unwrap();
    assert_eq!(texts(&sim.sent_messages()), ["one moment", "recovered"]);

    // A command that never answers in time.
    let slow = CommandAgent::new(
        CommandConfig::new("python3").args(["-c", "import time\ntime.sleep(30)"]),
    );
    let mut options = engine_options();
    options.agent_timeout = Duration::from_millis(300);
    let sim2 = self::sim().await;
    let run = start(&sim2, Arc::new(slow), options, fast().max_attempts(2)).await;
    let mut events = run.bridge.host().events();
    sim2.inject_text(sim2.user_id(), "slow");
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(e) = events.recv().await
                && let EventKind::DeadLettered { error, .. } = e.kind
            {
                assert!(error.contains("no answer within 300 ms"), "{error}");
                return;
            }
        }
    })
    .await
    .expect("a dead letter");
    sim2.wait_for_sent(2, WAIT).await.unwrap();
    assert_eq!(
        texts(&sim2.sent_messages()),
        ["one moment", "sorry, no answer"]
    );
}

#[tokio::test]
async fn a_webhook_answering_inline_and_one_answering_later() {
    let fake = FakeServer::start(|req, _| {
        let turn = req.json();
        if turn["text"] == "later" {
            Answer::Raw(202, "text/plain", Vec::new())
        } else {
            Answer::Json(
                200,
                json!({"text": format!("inline: {}", turn["text"].as_str().unwrap())}),
            )
        }
    })
    .await;
    let agent = WebhookAgent::new(WebhookConfig::new(format!("{}/turn", fake.url())));
    let sim = sim().await;
    let media = tempfile::tempdir().unwrap();
    std::fs::write(media.path().join("report.txt"), b"the report, done later").unwrap();
    let mut options = engine_options();
    options.media_dir = Some(media.path().to_path_buf());
    let run = start(&sim, Arc::new(agent), options, fast()).await;
    let token = "a-send-token-of-enough-length";
    let endpoint = SendEndpoint::serve(
        "127.0.0.1:0".parse().unwrap(),
        Secret::new(token),
        run.bridge.reply_sink(),
    )
    .await
    .unwrap();
    let user = sim.user_id();

    sim.inject_text(&user, "now");
    sim.wait_for_sent(1, WAIT).await.unwrap();
    assert_eq!(texts(&sim.sent_messages()), ["inline: now"]);

    sim.inject_text(&user, "later");
    crate::support::eventually(WAIT, "the webhook got the second turn", || {
        fake.requests().len() == 2
    })
    .await;
    let turn = fake.requests()[1].json();
    assert_eq!(turn["user"], user.as_str());
    // The receiver answers through the send endpoint.
    let body = json!({"account": turn["account"], "user": turn["user"], "message_id": turn["message_id"], "text": "answered later"});
    let (status, _) = crate::support::post_json(&endpoint.url(), Some(token), &body).await;
    assert_eq!(status, 200);
    sim.wait_for_sent(2, WAIT).await.unwrap();
    assert_eq!(
        texts(&sim.sent_messages()),
        ["inline: now", "answered later"]
    );
}

#[tokio::test]
async fn command_agents_per_turn_and_long_lived_answer_through_the_runtime() {
    let per_turn = CommandAgent::new(CommandConfig::new("python3").args([
        "-c",
        "import json,sys\nt=json.load(sys.stdin)\nprint(json.dumps({'text':'per-turn: '+t['text']}))",
    ]));
    let sim = sim().await;
    let _run = start(&sim, Arc::new(per_turn), engine_options(), fast()).await;
    sim.inject_text(sim.user_id(), "one");
    sim.wait_for_sent(1, WAIT).await.unwrap();
    assert_eq!(texts(&sim.sent_messages()), ["per-turn: one"]);

    let long = CommandAgent::new(
        CommandConfig::new("python3")
            .args([
                "-c",
                "import json,sys\nfor l in sys.stdin:\n t=json.loads(l)\n print(json.dumps({'id':t['id'],'text':'long-lived: '+t['text']}),flush=True)",
            ])
            .mode(CommandMode::LongLived),
    );
    let sim2 = self::sim().await;
    let _run2 = start(&sim2, Arc::new(long), engine_options(), fast()).await;
    sim2.inject_text(sim2.user_id(), "a");
    sim2.wait_for_sent(1, WAIT).await.unwrap();
    sim2.inject_text(sim2.user_id(), "b");
    sim2.wait_for_sent(2, WAIT).await.unwrap();
    assert_eq!(
        texts(&sim2.sent_messages()),
        ["long-lived: a", "long-lived: b"]
    );
}

#[tokio::test]
async fn typing_shows_before_even_an_instant_answer() {
    let agent = wxlink_bridge::FnAgent::new(|_t: wxlink_bridge::Turn| async {
        Ok::<_, wxlink_bridge::Error>(wxlink_bridge::Reply::text("instant"))
    });
    let sim = sim().await;
    let _run = start(&sim, Arc::new(agent), engine_options(), fast()).await;
    sim.inject_text(sim.user_id(), "quick");
    let sent = sim.wait_for_sent(1, WAIT).await.unwrap();
    let typing = sim.typing_calls();
    let first = typing.first().expect("a typing call");
    assert_eq!(first.status, 1);
    assert!(
        first.at <= sent[0].at,
        "typing {:?} after the reply {:?}",
        first.at,
        sent[0].at
    );
}

#[tokio::test]
async fn messages_sent_while_the_agent_works_are_answered_together_in_the_next_turn() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let turns: Arc<std::sync::Mutex<Vec<wxlink_bridge::Turn>>> = Arc::default();
    let (g, log) = (gate.clone(), turns.clone());
    let agent = wxlink_bridge::FnAgent::new(move |t: wxlink_bridge::Turn| {
        let (g, log) = (g.clone(), log.clone());
        async move {
            let first = {
                let mut log = log.lock().unwrap();
                log.push(t.clone());
                log.len() == 1
            };
            if first {
                g.acquire().await.unwrap().forget();
            }
            Ok::<_, wxlink_bridge::Error>(wxlink_bridge::Reply::text(format!("re: {}", t.text)))
        }
    });
    let sim = sim().await;
    let _run = start(&sim, Arc::new(agent), engine_options(), fast()).await;
    let user = sim.user_id();
    sim.inject_text(&user, "a");
    crate::support::eventually(WAIT, "the first turn is with the agent", || {
        !turns.lock().unwrap().is_empty()
    })
    .await;
    let b = sim.inject_text(&user, "b");
    let c = sim.inject_text(&user, "c");
    // Let the runtime journal both before the first turn ends.
    tokio::time::sleep(Duration::from_millis(600)).await;
    gate.add_permits(1);
    sim.wait_for_sent(2, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts(&sim.sent_messages()), ["re: a", "re: b\nc"]);
    let turns = turns.lock().unwrap().clone();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1].message_ids, [b.message_id, c.message_id]);
}

/// GETs a loopback URL with an optional bearer token: status and body.
async fn get_with(url: &str, token: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    use tower::ServiceExt as _;
    let mut req = http::Request::get(url);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(wxlink_transport::Body::empty()).unwrap();
    let transport = wxlink_transport::HttpsTransport::with_options(
        wxlink_transport::TransportOptions::default().proxy(None),
    );
    let resp = transport.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.into_body().collect_limited(1 << 20).await.unwrap();
    (status, content_type, body.to_vec())
}

#[tokio::test]
async fn inbound_media_is_served_at_a_loopback_url_with_a_bearer_token_while_the_turn_lasts() {
    const TOKEN: &str = "media-token-0123456789";
    let endpoint = Arc::new(
        wxlink_bridge::MediaEndpoint::serve("127.0.0.1:0".parse().unwrap(), Secret::new(TOKEN))
            .await
            .unwrap(),
    );
    // The agent fetches its turn's picture by URL, with and without the
    // token, and answers with what it saw.
    type Seen = (String, (u16, Option<String>, Vec<u8>), u16);
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let agent = wxlink_bridge::FnAgent::new(move |turn: wxlink_bridge::Turn| {
        let log = log.clone();
        async move {
            let media = turn.media.first().cloned();
            if let Some(url) = media.and_then(|m| m.url) {
                let with = get_with(&url, Some(TOKEN)).await;
                let (without, _, _) = get_with(&url, None).await;
                log.lock().unwrap().push((url, with, without));
            }
            Ok::<_, wxlink_bridge::Error>(wxlink_bridge::Reply::text("got it"))
        }
    });
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let bridge = Bridge::new(
        Host::builder(MemoryStore::new()).build(),
        Arc::new(agent),
        BridgeOptions::new(engine_options(), dir.path().join("in"))
            .media_endpoint(endpoint.clone()),
    );
    bridge.add_account(account(&sim), fast()).await.unwrap();

    let png = b"\x89PNG\r\n\x1a\n-- a picture for the webhook --".to_vec();
    sim.inject_media(
        sim.user_id(),
        MediaKind::Image,
        &png,
        KeyEncoding::Base64Hex,
    )
    .unwrap();
    sim.wait_for_sent(1, WAIT).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the turn had a media URL");
    let (url, (status, content_type, body), without) = &seen[0];
    assert!(
        url.starts_with(&format!("http://{}/media/", endpoint.local_addr())),
        "{url}"
    );
    assert_eq!(*status, 200);
    assert_eq!(content_type.as_deref(), Some("image/png"));
    assert_eq!(body, &png, "the decrypted picture");
    assert_eq!(*without, 401, "no token, no media");

    // Once the turn is settled the file is no longer served.
    let url = url.clone();
    let mut status = 0;
    for _ in 0..100 {
        status = get_with(&url, Some(TOKEN)).await.0;
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 404);
}
