//! The OpenAI-compatible agent against a fake endpoint on 127.0.0.1,
//! checking what the endpoint received and what the agent answered.

use base64::Engine as _;
use serde_json::{Value, json};
use wxlink_bridge::{
    Agent, HistoryLimits, MediaKind, OpenAiAgent, OpenAiConfig, Secret, Turn, TurnMedia,
};

use crate::fake::{Answer, FakeServer, completion_events, completion_json};

fn agent(server: &FakeServer, stream: bool) -> OpenAiAgent {
    OpenAiAgent::new(
        OpenAiConfig::new(format!("{}/v1", server.url()), "test-model")
            .api_key(Secret::new("sk-test-key-123"))
            .system_prompt("You are terse.")
            .stream(stream),
    )
}

fn turn(n: u64, text: &str) -> Turn {
    Turn::new("bot-1@im.bot", "alice@im.wechat", n, text)
}

fn contents(request: &Value) -> Vec<(String, Value)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].clone()))
        .collect()
}

#[tokio::test]
async fn a_streamed_answer_is_joined_and_the_request_carries_model_prompt_and_key() {
    let answer = "Here is a long answer, streamed in pieces: 你好 👋.";
    let server = FakeServer::start(move |_, _| Answer::Sse(completion_events(answer, 7))).await;
    let reply = agent(&server, true)
        .respond(&turn(1, "hello"))
        .await
        .unwrap();
    assert_eq!(reply.text.as_deref(), Some(answer));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].headers["authorization"].to_str().unwrap(),
        "Bearer sk-test-key-123"
    );
    let body = requests[0].json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(
        contents(&body),
        vec![
            ("system".to_owned(), json!("You are terse.")),
            ("user".to_owned(), json!("hello")),
        ]
    );
}

#[tokio::test]
async fn a_plain_json_answer_is_read_and_history_goes_into_the_next_request() {
    let server =
        FakeServer::start(|_, n| Answer::Json(200, completion_json(&format!("answer {n}")))).await;
    let agent = agent(&server, false);
    assert_eq!(
        agent
            .respond(&turn(1, "first"))
            .await
            .unwrap()
            .text
            .as_deref(),
        Some("answer 0")
    );
    assert_eq!(
        agent
            .respond(&turn(2, "second"))
            .await
            .unwrap()
            .text
            .as_deref(),
        Some("answer 1")
    );
    // Another user's conversation is separate.
    let bob = Turn::new("bot-1@im.bot", "bob@im.wechat", 3, "hi");
    agent.respond(&bob).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].json()["stream"], false);
    assert_eq!(
        contents(&requests[1].json()),
        vec![
            ("system".to_owned(), json!("You are terse.")),
            ("user".to_owned(), json!("first")),
            ("assistant".to_owned(), json!("answer 0")),
            ("user".to_owned(), json!("second")),
        ]
    );
    assert_eq!(contents(&requests[2].json()).len(), 2, "bob starts fresh");
}

#[tokio::test]
async fn history_is_bounded_by_turns_and_characters_and_reset_clears_it() {
    let server =
        FakeServer::start(|_, n| Answer::Json(200, completion_json(&format!("a{n}")))).await;
    let agent = OpenAiAgent::new(
        OpenAiConfig::new(server.url(), "m")
            .stream(false)
            .history(HistoryLimits::new(2, 1_000)),
    );
    for n in 0..4 {
        agent.respond(&turn(n, &format!("q{n}"))).await.unwrap();
    }
    let last = server.requests().pop().unwrap().json();
    let texts: Vec<Value> = contents(&last).into_iter().map(|(_, c)| c).collect();
    // No system prompt configured; two turns of history, then the new one.
    assert_eq!(
        texts,
        [
            json!("q1"),
            json!("a1"),
            json!("q2"),
            json!("a2"),
            json!("q3")
        ]
    );

    // A character bound smaller than one turn keeps nothing.
    let tight = OpenAiAgent::new(
        OpenAiConfig::new(server.url(), "m")
            .stream(false)
            .history(HistoryLimits::new(10, 3)),
    );
    tight.respond(&turn(10, "longer than three")).await.unwrap();
    tight.respond(&turn(11, "next")).await.unwrap();
    assert_eq!(contents(&server.requests().pop().unwrap().json()).len(), 1);

    agent
        .reset("bot-1@im.bot", "alice@im.wechat")
        .await
        .unwrap();
    agent.respond(&turn(9, "after reset")).await.unwrap();
    let after = server.requests().pop().unwrap().json();
    assert_eq!(
        contents(&after),
        vec![("user".to_owned(), json!("after reset"))]
    );
}

#[tokio::test]
async fn images_go_as_data_url_content_parts_only_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.png");
    let png = b"\x89PNG\r\n\x1a\n fake image bytes";
    std::fs::write(&path, png).unwrap();
    let server = FakeServer::start(|_, _| Answer::Json(200, completion_json("a cat"))).await;
    let with_image = turn(1, "what is this?")
        .media(TurnMedia::new(MediaKind::Image, &path).content_type("image/png"))
        .media(TurnMedia::new(
            MediaKind::File,
            dir.path().join("notes.txt"),
        ));

    let on = OpenAiAgent::new(
        OpenAiConfig::new(server.url(), "vision")
            .stream(false)
            .images(true),
    );
    on.respond(&with_image).await.unwrap();
    let off = OpenAiAgent::new(OpenAiConfig::new(server.url(), "vision").stream(false));
    off.respond(&with_image).await.unwrap();

    let requests = server.requests();
    let parts = &contents(&requests[0].json())[0].1;
    let expected_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    assert_eq!(
        parts,
        &json!([
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": expected_url}},
        ])
    );
    assert_eq!(contents(&requests[1].json())[0].1, json!("what is this?"));
}

#[tokio::test]
async fn the_quoted_text_reaches_the_model_as_a_markdown_quote() {
    let server = FakeServer::start(|_, _| Answer::Json(200, completion_json("ok"))).await;
    let agent = agent(&server, false);
    agent
        .respond(&turn(1, "is this right?").quote("2 + 2 = 5\nsaid bob"))
        .await
        .unwrap();
    let body = server.requests()[0].json();
    assert_eq!(
        contents(&body)[1].1,
        json!("> 2 + 2 = 5\n> said bob\n\nis this right?")
    );
}

#[tokio::test]
async fn http_errors_and_garbage_are_typed_and_never_show_the_key() {
    let server = FakeServer::start(|_, n| match n {
        0 => Answer::Json(
            500,
            json!({"error": {"message": "bad key sk-test-key-123"}}),
        ),
        1 => Answer::Raw(200, "application/json", b"<html>oops</html>".to_vec()),
        2 => Answer::Sse(vec!["not json".into()]),
        _ => Answer::Json(200, completion_json("   ")),
    })
    .await;
    let agent = agent(&server, true);

    let err = agent.respond(&turn(1, "x")).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(
        !format!("{err} {err:?}").contains("sk-test-key-123"),
        "{err:?}"
    );
    assert!(
        agent
            .respond(&turn(2, "x"))
            .await
            .unwrap_err()
            .is_unreadable()
    );
    assert!(
        agent
            .respond(&turn(3, "x"))
            .await
            .unwrap_err()
            .is_unreadable()
    );
    assert!(
        agent
            .respond(&turn(4, "x"))
            .await
            .unwrap_err()
            .is_unreadable(),
        "empty answer"
    );
    assert!(!format!("{agent:?}").contains("sk-test-key-123"));
}

#[tokio::test]
async fn a_failed_turn_leaves_no_history_behind() {
    let server = FakeServer::start(|_, n| match n {
        0 => Answer::Json(500, json!({})),
        _ => Answer::Json(200, completion_json("ok")),
    })
    .await;
    let agent = agent(&server, false);
    agent.respond(&turn(1, "lost")).await.unwrap_err();
    agent.respond(&turn(2, "kept")).await.unwrap();
    let body = server.requests()[1].json();
    assert_eq!(
        contents(&body),
        vec![
            ("system".to_owned(), json!("You are terse.")),
            ("user".to_owned(), json!("kept")),
        ]
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    // Bind and drop a listener to get a loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let agent = OpenAiAgent::new(OpenAiConfig::new(
        format!("http://127.0.0.1:{port}/v1"),
        "m",
    ));
    let err = agent.respond(&turn(1, "x")).await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
}
