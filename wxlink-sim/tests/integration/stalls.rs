//! The faults of a slow or unfriendly network and gateway: bodies that
//! stall after the headers, uploads the server stops reading or resets,
//! 429/503 with `Retry-After`, answers lost after the call took effect and
//! messages delivered twice. Each is checked with a plain hyper client.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{api, base_info, send};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use wxlink_media::AesKey;
use wxlink_sim::{Fault, KeyEncoding, MediaKind, Simulator};

const KEY: &str = "00112233445566778899aabbccddeeff";

/// A getuploadurl slot for `plaintext`; returns the upload URL.
async fn upload_url(sim: &Simulator, plaintext: &[u8]) -> String {
    let rawsize = plaintext.len() as u64;
    let slot = api(
        sim,
        "getuploadurl",
        json!({"filekey": "fk", "media_type": 3, "to_user_id": sim.user_id(),
               "rawsize": rawsize, "rawfilemd5": hex::encode(Md5::digest(plaintext)),
               "filesize": wxlink_media::ciphertext_len(rawsize), "no_need_thumb": true,
               "aeskey": KEY, "base_info": base_info()}),
    )
    .await
    .json();
    format!(
        "{}/upload?encrypted_query_param={}&filekey=fk",
        sim.cdn_base_url(),
        slot["upload_param"].as_str().unwrap()
    )
}

fn encrypt(plaintext: &[u8]) -> Vec<u8> {
    wxlink_media::crypto::encrypt(&AesKey::from_hex(KEY).unwrap(), plaintext)
}

/// Sends `req` and returns when its headers arrived and when its body
/// ended, measured from `started`, with the body.
async fn timed(req: Request<Full<Bytes>>) -> (StatusCode, Duration, Duration, Bytes) {
    let started = Instant::now();
    let resp = common::client().request(req).await.unwrap();
    let headers_at = started.elapsed();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers_at, started.elapsed(), body)
}

fn post(url: &str, token: Option<&str>, body: Value) -> Request<Full<Bytes>> {
    let mut req = Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

#[tokio::test]
async fn a_stalled_api_body_sends_the_headers_at_once_and_the_body_late() {
    let sim = common::sim().await;
    sim.inject_fault("getconfig", Fault::StallBody(Duration::from_secs(2)), 1)
        .unwrap();
    let url = format!("{}/ilink/bot/getconfig", sim.base_url());
    let token = sim.token();
    let req = post(
        &url,
        Some(token.expose_secret()),
        json!({"ilink_user_id": sim.user_id()}),
    );
    let (status, headers_at, body_at, body) = timed(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers_at < Duration::from_secs(1), "{headers_at:?}");
    assert!(body_at >= Duration::from_millis(1990), "{body_at:?}");
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["ret"], 0);
    assert!(value["typing_ticket"].is_string());
    // A client whose read timeout is shorter than the stall gets no body.
    sim.inject_fault("getconfig", Fault::StallBody(Duration::from_secs(5)), 1)
        .unwrap();
    let req = post(
        &url,
        Some(token.expose_secret()),
        json!({"ilink_user_id": sim.user_id()}),
    );
    let resp = common::client().request(req).await.unwrap();
    let read = tokio::time::timeout(Duration::from_millis(300), resp.into_body().collect()).await;
    assert!(read.is_err(), "the body arrived during the stall");
}

#[tokio::test]
async fn a_stalled_cdn_download_holds_the_ciphertext_back() {
    let sim = common::sim().await;
    let msg = sim
        .inject_media(
            sim.user_id(),
            MediaKind::File,
            b"stalled download",
            KeyEncoding::Base64Hex,
        )
        .unwrap();
    let param = msg.message.item_list[0]
        .file_item
        .as_ref()
        .and_then(|f| f.media.as_ref())
        .and_then(|m| m.encrypt_query_param.clone())
        .unwrap();
    sim.inject_fault("cdn_download", Fault::StallBody(Duration::from_secs(2)), 1)
        .unwrap();
    let url = format!(
        "{}/download?encrypted_query_param={}",
        sim.cdn_base_url(),
        wxlink_proto::url::encode_uri_component(&param)
    );
    let req = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
    let (status, headers_at, body_at, body) = timed(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers_at < Duration::from_secs(1), "{headers_at:?}");
    assert!(body_at >= Duration::from_millis(1990), "{body_at:?}");
    assert_eq!(body.len(), 32, "the whole ciphertext after the stall");
}

#[tokio::test]
async fn a_stalled_upload_gets_no_answer_until_the_server_reads_again() {
    let sim = common::sim().await;
    let plaintext = vec![7u8; 256 * 1024];
    let url = upload_url(&sim, &plaintext).await;
    let body = encrypt(&plaintext);
    // An impatient client gives up during the stall.
    sim.inject_fault(
        "cdn_upload",
        Fault::StallUpload {
            after: 64 * 1024,
            stall: Duration::from_secs(3),
        },
        1,
    )
    .unwrap();
    let started = Instant::now();
    let sent = tokio::time::timeout(
        Duration::from_millis(400),
        send(Method::POST, &url, &[], body.clone()),
    )
    .await;
    assert!(sent.is_err(), "answered during the stall");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A patient one gets the normal answer once the stall is over.
    sim.inject_fault(
        "cdn_upload",
        Fault::StallUpload {
            after: 64 * 1024,
            stall: Duration::from_millis(500),
        },
        1,
    )
    .unwrap();
    let started = Instant::now();
    let r = send(Method::POST, &url, &[], body).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(490));
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{:?}",
        r.header("x-error-message")
    );
    assert!(r.header("x-encrypted-param").is_some());
}

#[tokio::test]
async fn a_reset_upload_cuts_the_connection_after_k_bytes_and_stores_nothing() {
    let sim = common::sim().await;
    let plaintext = vec![3u8; 1024 * 1024];
    let url = upload_url(&sim, &plaintext).await;
    let body = encrypt(&plaintext);
    sim.inject_fault("cdn_upload", Fault::ResetUpload { after: 100_000 }, 1)
        .unwrap();
    let r = send(Method::POST, &url, &[], body.clone()).await;
    assert!(
        r.is_err(),
        "a reset upload got an answer: {:?}",
        r.map(|r| r.status)
    );
    let log = sim
        .wait_for_requests("cdn_upload", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(log[0].status, 0);
    assert!(
        (100_000..body.len() as u64).contains(&log[0].body_size),
        "read {} bytes",
        log[0].body_size
    );
    assert!(sim.uploads().is_empty(), "nothing reached the checks");
    // The slot still works for a retry.
    let r = send(Method::POST, &url, &[], body).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.uploads().len(), 1);
}

#[tokio::test]
async fn retry_after_faults_answer_429_and_503_with_the_header() {
    let sim = common::sim().await;
    sim.inject_fault(
        "getupdates",
        Fault::too_many_requests(Duration::from_secs(2)),
        1,
    )
    .unwrap();
    sim.inject_fault(
        "sendmessage",
        Fault::unavailable(Duration::from_millis(1500)),
        1,
    )
    .unwrap();
    sim.inject_text(sim.user_id(), "kept");
    let r = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("2"));
    let r = api(
        &sim,
        "sendmessage",
        common::text_reply(&sim.user_id(), "x", None),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("2"), "1.5 s rounds up");
    assert!(sim.sent_messages().is_empty());
    // Nothing was consumed: the next poll has the message.
    assert_eq!(
        common::poll(&sim, "").await["msgs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The CDN adds x-error-message as it does for every refusal.
    sim.inject_fault("cdn_upload", Fault::too_many_requests(Duration::ZERO), 1)
        .unwrap();
    let url = upload_url(&sim, b"abc").await;
    let r = send(Method::POST, &url, &[], encrypt(b"abc"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("0"));
    assert_eq!(r.header("x-error-message"), Some("Too Many Requests"));
}

#[tokio::test]
async fn a_lost_response_takes_effect_but_never_answers() {
    let sim = common::sim().await;
    sim.inject_fault("sendmessage", Fault::LoseResponse, 1)
        .unwrap();
    let r = send(
        Method::POST,
        &format!("{}/ilink/bot/sendmessage", sim.base_url()),
        &[
            ("content-type", "application/json"),
            (
                "authorization",
                &format!("Bearer {}", sim.token().expose_secret()),
            ),
        ],
        common::text_reply(&sim.user_id(), "sent but unanswered", None).to_string(),
    )
    .await;
    assert!(r.is_err(), "a lost response arrived");
    assert_eq!(sim.sent_messages()[0].text(), Some("sent but unanswered"));

    // On getupdates the batch is gone for good.
    sim.inject_text(sim.user_id(), "lost");
    sim.inject_fault("getupdates", Fault::LoseResponse, 1)
        .unwrap();
    let r = send(
        Method::POST,
        &format!("{}/ilink/bot/getupdates", sim.base_url()),
        &[(
            "authorization",
            &format!("Bearer {}", sim.token().expose_secret()),
        )],
        json!({"get_updates_buf": ""}).to_string(),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(sim.pending_messages(), 0);
    let next = common::poll(&sim, "").await;
    assert!(next["msgs"].as_array().is_none_or(Vec::is_empty), "{next}");
}

#[tokio::test]
async fn a_duplicate_fault_delivers_each_message_again_after_each_delay() {
    let sim = common::sim().await;
    let first = sim.inject_text(sim.user_id(), "twice and thrice");
    sim.inject_fault(
        "getupdates",
        Fault::Duplicate(vec![Duration::from_millis(150), Duration::from_millis(400)]),
        1,
    )
    .unwrap();
    let ids = |v: &Value| -> Vec<u64> {
        v["msgs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["message_id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&common::poll(&sim, "").await), [first.message_id]);
    let started = Instant::now();
    // The default hold (200 ms) is longer than the first delay: the next
    // poll is answered by the re-delivery.
    let again = common::poll(&sim, "").await;
    assert_eq!(ids(&again), [first.message_id]);
    assert_eq!(again["msgs"][0]["seq"], first.seq);
    assert_eq!(
        again["msgs"][0]["context_token"],
        first.context_token.expose_secret()
    );
    let mut third = Vec::new();
    while third.is_empty() && started.elapsed() < Duration::from_secs(3) {
        third = ids(&common::poll(&sim, "").await);
    }
    assert_eq!(third, [first.message_id]);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn the_control_api_injects_the_network_faults() {
    let sim = common::sim().await;
    let control = |body: Value| {
        let url = format!("{}/_sim/fault", sim.base_url());
        async move {
            send(Method::POST, &url, &[], body.to_string())
                .await
                .unwrap()
        }
    };
    let r = control(json!({"endpoint": "getconfig", "kind": "stall_body", "stall_ms": 300})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let started = Instant::now();
    assert_eq!(
        api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()}))
            .await
            .json()["ret"],
        0
    );
    assert!(started.elapsed() >= Duration::from_millis(290));

    control(
        json!({"endpoint": "getconfig", "kind": "retry_after", "status": 429, "retry_after_s": 7}),
    )
    .await;
    let r = api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()})).await;
    assert_eq!(
        (r.status.as_u16(), r.header("retry-after")),
        (429, Some("7"))
    );

    control(json!({"endpoint": "cdn_upload", "kind": "reset_upload", "after_bytes": 16})).await;
    let url = upload_url(&sim, &[1u8; 4096]).await;
    assert!(
        send(Method::POST, &url, &[], encrypt(&[1u8; 4096]))
            .await
            .is_err()
    );

    control(json!({"endpoint": "cdn_upload", "kind": "stall_upload", "after_bytes": 0, "stall_ms": 300}))
        .await;
    let started = Instant::now();
    let r = send(Method::POST, &url, &[], encrypt(&[1u8; 4096]))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(290));

    control(json!({"endpoint": "sendmessage", "kind": "lose_response"})).await;
    let lost = send(
        Method::POST,
        &format!("{}/ilink/bot/sendmessage", sim.base_url()),
        &[(
            "authorization",
            &format!("Bearer {}", sim.token().expose_secret()),
        )],
        common::text_reply(&sim.user_id(), "x", None).to_string(),
    )
    .await;
    assert!(lost.is_err());
    assert_eq!(sim.sent_messages().len(), 1);

    control(json!({"endpoint": "getupdates", "kind": "duplicate", "delays_ms": [50]})).await;
    let m = sim.inject_text(sim.user_id(), "dup");
    assert_eq!(
        common::poll(&sim, "").await["msgs"][0]["message_id"],
        m.message_id
    );
    assert_eq!(
        common::poll(&sim, "").await["msgs"][0]["message_id"],
        m.message_id
    );

    let r = control(json!({"endpoint": "getconfig", "kind": "stall_body"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&r.body).contains("stall_ms"));
}
