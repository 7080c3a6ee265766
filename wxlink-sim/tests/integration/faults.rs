//! Every injected fault, as a plain HTTP client sees it.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{api, base_info, send, text_reply};
use http::{Method, StatusCode};
use serde_json::json;
use wxlink_proto::{ApiResponse as _, GetUpdatesResponse, StatusKind};
use wxlink_sim::Fault;

#[tokio::test]
async fn http_status_faults_hit_the_next_n_calls_only() {
    let sim = common::sim().await;
    sim.inject_fault(
        "getconfig",
        Fault::HttpStatus(503, "upstream busy".into()),
        2,
    )
    .unwrap();
    let body = json!({"ilink_user_id": sim.user_id()});
    for _ in 0..2 {
        let r = api(&sim, "getconfig", body.clone()).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.body, "upstream busy");
    }
    assert_eq!(api(&sim, "getconfig", body).await.json()["ret"], 0);
    // Other endpoints were never affected.
    let notes: Vec<_> = sim
        .request_log()
        .iter()
        .map(|r| (r.endpoint, r.status))
        .collect();
    assert_eq!(
        notes,
        vec![
            (Some("getconfig"), 503),
            (Some("getconfig"), 503),
            (Some("getconfig"), 200)
        ]
    );
}

#[tokio::test]
async fn a_delay_fault_answers_normally_but_late() {
    let sim = common::sim().await;
    sim.inject_fault("sendmessage", Fault::Delay(Duration::from_millis(300)), 1)
        .unwrap();
    let started = Instant::now();
    let r = api(
        &sim,
        "sendmessage",
        text_reply(&sim.user_id(), "slow", None),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert_eq!(r.body, "{}");
    assert_eq!(sim.sent_messages().len(), 1);
}

#[tokio::test]
async fn a_delayed_524_imitates_the_cloudflare_gateway() {
    let sim = common::sim().await;
    let fault = Fault::HttpStatus(524, "origin timeout".into()).after(Duration::from_millis(200));
    sim.inject_fault("getupdates", fault, 1).unwrap();
    sim.inject_text(sim.user_id(), "kept for the next poll");
    let started = Instant::now();
    let r = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(r.status.as_u16(), 524);
    // The failed poll consumed nothing.
    assert_eq!(
        common::poll(&sim, "").await["msgs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_dropped_connection_gives_no_response_and_the_send_does_not_happen() {
    let sim = common::sim().await;
    sim.inject_fault("sendmessage", Fault::DropConnection, 1)
        .unwrap();
    let url = format!("{}/ilink/bot/sendmessage", sim.base_url());
    let auth = format!("Bearer {}", sim.token().expose_secret());
    let err = send(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        text_reply(&sim.user_id(), "lost", None).to_string(),
    )
    .await
    .err()
    .unwrap();
    assert!(err.contains("request failed"), "{err}");
    assert!(sim.sent_messages().is_empty());
    let log = sim.request_log();
    assert_eq!(log[0].status, 0);
    assert!(log[0].body_size > 0, "the request was read before the drop");
}

#[tokio::test]
async fn a_truncated_body_cuts_the_answer_after_the_call_took_effect() {
    let sim = common::sim().await;
    sim.inject_fault("getupdates", Fault::TruncatedBody, 1)
        .unwrap();
    sim.inject_text(sim.user_id(), "delivered into the void");
    let url = format!("{}/ilink/bot/getupdates", sim.base_url());
    let auth = format!("Bearer {}", sim.token().expose_secret());
    let err = send(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        r#"{"get_updates_buf":""}"#,
    )
    .await
    .err()
    .unwrap();
    assert!(err.contains("body failed"), "{err}");
    // At most once: the message left the queue with the cut answer.
    assert_eq!(sim.pending_messages(), 0);
}

#[tokio::test]
async fn invalid_json_is_a_200_that_does_not_parse() {
    let sim = common::sim().await;
    sim.inject_fault("getupdates", Fault::InvalidJson, 1)
        .unwrap();
    let r = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
}

#[tokio::test]
async fn session_expired_fault_answers_minus_14_once() {
    let sim = common::sim().await;
    sim.inject_fault("sendtyping", Fault::SessionExpired, 1)
        .unwrap();
    let r = api(
        &sim,
        "sendtyping",
        json!({"ilink_user_id": sim.user_id(), "base_info": base_info()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"errcode": -14, "errmsg": "session timeout"})
    );
    // The token itself is still fine.
    let r = api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()})).await;
    assert_eq!(r.json()["ret"], 0);
}

/// A protocol fixture, read as JSON.
fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../wxlink-proto/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// How the SDK reads a `getupdates` answer: decoded into the proto type and
/// classified by its `ret`/`errcode` status.
fn status_kind(body: &[u8]) -> StatusKind {
    serde_json::from_slice::<GetUpdatesResponse>(body)
        .unwrap()
        .status()
        .kind()
}

#[tokio::test]
async fn session_expired_ret_fault_answers_the_ret_form_of_the_fixture() {
    let sim = common::sim().await;
    sim.inject_fault("getupdates", Fault::SessionExpiredRet, 1)
        .unwrap();
    sim.inject_fault("getupdates", Fault::SessionExpired, 1)
        .unwrap();
    let ret_form = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(ret_form.status, StatusCode::OK);
    assert_eq!(ret_form.header("content-type"), Some("application/json"));
    assert_eq!(
        ret_form.json(),
        fixture("error.session-expired.ret-form.json")
    );
    let usual = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(usual.json(), fixture("error.session-expired.json"));
    // Both forms read as session expiry the way the SDK classifies a
    // response, while a normal poll afterwards does not.
    assert_eq!(status_kind(&ret_form.body), StatusKind::SessionExpired);
    assert_eq!(status_kind(&usual.body), StatusKind::SessionExpired);
    let normal = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(status_kind(&normal.body), StatusKind::Ok);
    // The fault did not touch the session: the token still works.
    assert_eq!(
        api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()}))
            .await
            .json()["ret"],
        0
    );
}

#[tokio::test]
async fn a_json_fault_answers_any_business_error() {
    let sim = common::sim().await;
    let body = r#"{"ret":-2,"errmsg":"unknown error"}"#;
    sim.inject_fault("sendmessage", Fault::Json(body.into()), 1)
        .unwrap();
    let r = api(&sim, "sendmessage", text_reply(&sim.user_id(), "x", None)).await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (StatusCode::OK, body.as_bytes())
    );
    assert!(sim.sent_messages().is_empty(), "the send did not happen");
}

#[tokio::test]
async fn the_control_api_injects_both_session_expired_forms_and_json() {
    let sim = common::sim().await;
    let fault = |body: serde_json::Value| {
        let url = format!("{}/_sim/fault", sim.base_url());
        async move {
            let r = send(Method::POST, &url, &[], body.to_string())
                .await
                .unwrap();
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    };
    fault(json!({"endpoint": "getconfig", "kind": "session_expired_ret"})).await;
    fault(json!({"endpoint": "getconfig", "kind": "session_expired"})).await;
    fault(json!({"endpoint": "getconfig", "kind": "json", "body": {"ret": -2, "errmsg": "rate limited"}})).await;
    fault(json!({"endpoint": "getconfig", "kind": "json", "body": "{\"ret\":-3}"})).await;
    let config = json!({"ilink_user_id": sim.user_id()});
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(api(&sim, "getconfig", config.clone()).await.json());
    }
    let last = answers.pop().unwrap();
    assert_eq!(last["ret"], 0, "the faults are used up");
    assert_eq!(
        answers,
        [
            fixture("error.session-expired.ret-form.json"),
            fixture("error.session-expired.json"),
            json!({"ret": -2, "errmsg": "rate limited"}),
            json!({"ret": -3}),
        ]
    );
    // A json fault without a body is refused.
    let r = send(
        Method::POST,
        &format!("{}/_sim/fault", sim.base_url()),
        &[],
        json!({"endpoint": "getconfig", "kind": "json"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn login_endpoints_can_fail_too() {
    let sim = common::sim().await;
    sim.inject_fault(
        "get_qrcode_status",
        Fault::HttpStatus(524, String::new()),
        1,
    )
    .unwrap();
    sim.inject_fault("get_bot_qrcode", Fault::DropConnection, 1)
        .unwrap();
    let url = format!("{}/ilink/bot/get_bot_qrcode?bot_type=3", sim.base_url());
    assert!(send(Method::GET, &url, &[], "").await.is_err());
    let q = common::get(&url).await.json()["qrcode"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_url = format!("{}/ilink/bot/get_qrcode_status?qrcode={q}", sim.base_url());
    assert_eq!(common::get(&status_url).await.status.as_u16(), 524);
    assert_eq!(common::get(&status_url).await.json()["status"], "wait");
}

#[tokio::test]
async fn cdn_faults_carry_x_error_message_and_let_a_retry_succeed() {
    let sim = common::sim().await;
    let key = wxlink_media::AesKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let plaintext = b"retry me";
    let md5 = {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(plaintext))
    };
    let slot = api(
        &sim,
        "getuploadurl",
        json!({"filekey": "ab", "media_type": 3, "to_user_id": sim.user_id(), "rawsize": 8,
               "rawfilemd5": md5, "filesize": 16, "no_need_thumb": true,
               "aeskey": "00112233445566778899aabbccddeeff"}),
    )
    .await
    .json();
    let url = format!(
        "{}/upload?encrypted_query_param={}&filekey=ab",
        sim.cdn_base_url(),
        slot["upload_param"].as_str().unwrap()
    );
    sim.inject_fault("cdn_upload", Fault::HttpStatus(500, "busy".into()), 1)
        .unwrap();
    sim.inject_fault("cdn_upload", Fault::HttpStatus(413, "too big".into()), 1)
        .unwrap();
    let body = wxlink_media::crypto::encrypt(&key, plaintext);
    let r = send(Method::POST, &url, &[], body.clone()).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.header("x-error-message")),
        (500, Some("busy"))
    );
    let r = send(Method::POST, &url, &[], body.clone()).await.unwrap();
    assert_eq!(
        (r.status.as_u16(), r.header("x-error-message")),
        (413, Some("too big"))
    );
    let r = send(Method::POST, &url, &[], body).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let param = r.header("x-encrypted-param").unwrap().to_owned();
    sim.inject_fault(
        "cdn_download",
        Fault::HttpStatus(502, "bad gateway".into()),
        1,
    )
    .unwrap();
    let dl = format!(
        "{}/download?encrypted_query_param={param}",
        sim.cdn_base_url()
    );
    assert_eq!(common::get(&dl).await.status.as_u16(), 502);
    assert_eq!(common::get(&dl).await.body.len(), 16);
}

#[tokio::test]
async fn unknown_fault_targets_are_an_error() {
    let sim = common::sim().await;
    let err = sim
        .inject_fault("sendmesage", Fault::InvalidJson, 1)
        .unwrap_err();
    assert!(err.is_unknown_endpoint());
    assert_eq!(err.name(), Some("sendmesage"));
}

#[tokio::test]
async fn faults_work_over_h2c_too() {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    let sim = common::sim().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = || {
        http::Request::post(format!("{}/ilink/bot/getconfig", sim.base_url()))
            .header(
                "authorization",
                format!("Bearer {}", sim.token().expose_secret()),
            )
            .body(Full::new(Bytes::from(
                json!({"ilink_user_id": sim.user_id()}).to_string(),
            )))
            .unwrap()
    };
    sim.inject_fault("getconfig", Fault::DropConnection, 1)
        .unwrap();
    sim.inject_fault("getconfig", Fault::TruncatedBody, 1)
        .unwrap();
    assert!(client.request(request()).await.is_err());
    let resp = client.request(request()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.into_body().collect().await.is_err());
    let resp = client.request(request()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["ret"],
        0
    );
}
