//! The JSON control API under `/_sim/` and the standalone binary.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::{api, get, send, text_reply};
use http::{Method, StatusCode};
use serde_json::{Value, json};

async fn control(base: &str, path: &str, body: Value) -> common::Reply {
    send(
        Method::POST,
        &format!("{base}/_sim/{path}"),
        &[],
        body.to_string(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn control_endpoints_drive_the_simulator() {
    let sim = common::sim().await;
    let base = sim.base_url();

    let info = get(&format!("{base}/_sim/info")).await.json();
    assert_eq!(info["base_url"], base);
    assert_eq!(info["cdn_base_url"], sim.cdn_base_url());
    assert_eq!(info["token"], sim.token().expose_secret());
    assert_eq!(info["user_id"], sim.user_id());

    let injected = control(&base, "inject/text", json!({"text": "from json"}))
        .await
        .json();
    let polled = common::poll(&sim, "").await;
    assert_eq!(polled["msgs"][0]["message_id"], injected["message_id"]);
    assert_eq!(
        polled["msgs"][0]["context_token"],
        injected["context_token"]
    );

    let msg = json!({"from_user_id": "o9cq80json@im.wechat", "item_list": [
        {"type": 1, "text_item": {"text": "quoted reply"},
         "ref_msg": {"title": "t", "message_item": {"type": 1, "text_item": {"text": "original"}}}}]});
    control(&base, "inject/message", msg).await.json();
    let media = json!({"kind": "voice", "data_base64": base64::engine::general_purpose::STANDARD.encode(b"silk"),
                       "transcript": "你好"});
    control(&base, "inject/media", media).await.json();
    let polled = common::poll(&sim, "").await;
    assert_eq!(
        polled["msgs"][0]["item_list"][0]["ref_msg"]["message_item"]["text_item"]["text"],
        "original"
    );
    assert_eq!(
        polled["msgs"][1]["item_list"][0]["voice_item"]["text"],
        "你好"
    );

    api(
        &sim,
        "sendmessage",
        text_reply(&sim.user_id(), "reply", None),
    )
    .await;
    let sent = get(&format!("{base}/_sim/sent")).await.json();
    assert_eq!(sent[0]["msg"]["item_list"][0]["text_item"]["text"], "reply");
    assert_eq!(sent[0]["delivered"], true);
    let requests = get(&format!("{base}/_sim/requests")).await.json();
    assert!(
        requests
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["endpoint"] != Value::Null)
    );

    let r = control(
        &base,
        "fault",
        json!({"endpoint": "getconfig", "kind": "http_status", "status": 502, "body": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api(&sim, "getconfig", json!({"ilink_user_id": "u"}))
            .await
            .status
            .as_u16(),
        502
    );

    control(&base, "fidelity", json!({"max_text_bytes": 3})).await;
    assert_eq!(
        api(
            &sim,
            "sendmessage",
            text_reply(&sim.user_id(), "four", None)
        )
        .await
        .json()["ret"],
        -2
    );

    control(&base, "login_script", json!({"path": "expired"})).await;
    let q = get(&format!("{base}/ilink/bot/get_bot_qrcode?bot_type=3"))
        .await
        .json();
    let status_url = format!(
        "{base}/ilink/bot/get_qrcode_status?qrcode={}",
        q["qrcode"].as_str().unwrap()
    );
    get(&status_url).await;
    assert_eq!(get(&status_url).await.json()["status"], "expired");

    control(&base, "expire", json!({})).await;
    assert_eq!(
        api(&sim, "getconfig", json!({"ilink_user_id": "u"}))
            .await
            .json()["errcode"],
        -14
    );
    control(&base, "reset", json!({})).await;
    assert_eq!(
        api(&sim, "getconfig", json!({"ilink_user_id": "u"}))
            .await
            .json()["ret"],
        0
    );
    assert_eq!(get(&format!("{base}/_sim/sent")).await.json(), json!([]));
}

#[tokio::test]
async fn control_can_wait_for_sent_messages() {
    let sim = common::sim().await;
    let base = sim.base_url();
    let waiter =
        tokio::spawn(async move { get(&format!("{base}/_sim/sent?min=1&timeout_ms=3000")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    api(
        &sim,
        "sendmessage",
        text_reply(&sim.user_id(), "awaited", None),
    )
    .await;
    let r = waiter.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()[0]["msg"]["item_list"][0]["text_item"]["text"],
        "awaited"
    );
    let r = get(&format!(
        "{}/_sim/typing?min=1&timeout_ms=50",
        sim.base_url()
    ))
    .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn control_errors_are_400_and_unknown_paths_404() {
    let sim = common::sim().await;
    let base = sim.base_url();
    let r = control(
        &base,
        "fault",
        json!({"endpoint": "nope", "kind": "invalid_json"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = control(&base, "inject/text", json!({"no_text": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = control(&base, "what", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Control calls never show up in the request log.
    assert!(sim.request_log().is_empty());
}

#[tokio::test]
async fn the_binary_prints_its_addresses_and_serves() {
    let (mut child, info) = common::start_binary(&["--hold-ms", "100", "--seed", "7"]).await;
    let base = info["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(info["cdn_base_url"], format!("{base}/c2c"));
    let token = info["token"].as_str().unwrap();
    let url = format!("{base}/ilink/bot/getupdates");
    let r = send(
        Method::POST,
        &url,
        &[("authorization", &format!("Bearer {token}"))],
        r#"{"get_updates_buf":""}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.json()["longpolling_timeout_ms"], 100);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test]
async fn the_binary_rejects_bad_arguments() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlink-sim"))
        .args(["--port", "notanumber"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}
