//! The bot endpoints, driven with plain HTTP requests.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{api, api_with, base_info, poll, send, sim, text_reply};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wxlink_sim::{AuthSeen, Fidelity, SendOkBody, Simulator, Throttle};

const SESSION_TIMEOUT: &str = r#"{"errcode":-14,"errmsg":"session timeout"}"#;

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_404() {
    let sim = sim().await;
    for path in [
        "/",
        "/ilink/bot/nothing",
        "/ilink/bot/getupdatesx",
        "/xgetupdates",
    ] {
        let r = send(
            Method::POST,
            &format!("{}{path}", sim.base_url()),
            &[],
            "{}",
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = common::get(&format!("{}/ilink/bot/getupdates", sim.base_url())).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The CDN answers POST to upload only; PUT is a 404, as hermes reports.
    let r = send(
        Method::PUT,
        &format!("{}/upload?encrypted_query_param=x", sim.cdn_base_url()),
        &[],
        "x",
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bot_endpoints_without_a_valid_token_answer_minus_14_with_http_200() {
    let sim = sim().await;
    for endpoint in [
        "getupdates",
        "sendmessage",
        "getconfig",
        "sendtyping",
        "getuploadurl",
        "msg/notifystart",
        "msg/notifystop",
    ] {
        for token in [None, Some("not-a-token")] {
            let r = api_with(&sim, endpoint, token, json!({"base_info": base_info()})).await;
            assert_eq!(r.status, StatusCode::OK, "{endpoint}");
            assert_eq!(r.body, SESSION_TIMEOUT, "{endpoint} {token:?}");
        }
    }
    let log = sim.request_log();
    assert_eq!(log.len(), 14);
    assert_eq!(log[0].auth, AuthSeen::Missing);
    assert_eq!(log[1].auth, AuthSeen::Rejected);
    assert!(sim.notify_calls().is_empty());
}

#[tokio::test]
async fn api_paths_work_under_a_base_path_prefix() {
    let sim = sim().await;
    let url = format!("{}/some/prefix/ilink/bot/getconfig", sim.base_url());
    let auth = format!("Bearer {}", sim.token().expose_secret());
    let r = send(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        json!({"ilink_user_id": sim.user_id()}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.json()["ret"], 0);
}

#[tokio::test]
async fn getupdates_holds_for_the_hold_time_then_answers_empty() {
    let sim = sim().await;
    let started = Instant::now();
    let body = poll(&sim, "").await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(180),
        "answered after {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    assert_eq!(body["ret"], 0);
    assert_eq!(body["msgs"], json!([]));
    assert_eq!(body["longpolling_timeout_ms"], 200);
    assert!(!body["get_updates_buf"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn getupdates_wakes_as_soon_as_a_message_arrives() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(10))
        .omit_ret_probability(0.0)
        .start()
        .await
        .unwrap();
    let poller = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let body = poll(&sim, "").await;
            (started.elapsed(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let injected = sim.inject_text(sim.user_id(), "hello");
    let (waited, body) = poller.await.unwrap();
    assert!(waited < Duration::from_secs(3), "woke after {waited:?}");
    assert_eq!(body["msgs"][0]["message_id"], injected.message_id);
    assert_eq!(
        body["msgs"][0]["item_list"][0]["text_item"]["text"],
        "hello"
    );
}

#[tokio::test]
async fn inbound_messages_look_like_the_real_servers() {
    let sim = sim().await;
    let a = sim.inject_text(sim.user_id(), "one");
    let b = sim.inject_text("o9cq80other@im.wechat", "two");
    let r = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    // The first id is above 2^53 and must survive as an exact integer.
    assert!(a.message_id > 1 << 53);
    let raw = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        raw.contains(&format!("\"message_id\":{}", a.message_id)),
        "{raw}"
    );
    let body = r.json();
    let msgs = body["msgs"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["message_id"].as_u64(), Some(a.message_id));
    assert_eq!(msgs[1]["message_id"].as_u64(), Some(b.message_id));
    assert!(msgs[1]["seq"].as_i64() > msgs[0]["seq"].as_i64());
    for m in msgs {
        assert_eq!(m["message_type"], 1);
        assert_eq!(m["message_state"], 2);
        assert_eq!(m["to_user_id"], sim.bot_id());
        assert!(m["create_time_ms"].as_i64().unwrap() > 1_700_000_000_000);
    }
    assert_eq!(msgs[0]["from_user_id"], sim.user_id());
    assert_eq!(msgs[1]["from_user_id"], "o9cq80other@im.wechat");
    let (t0, t1) = (
        msgs[0]["context_token"].as_str().unwrap(),
        msgs[1]["context_token"].as_str().unwrap(),
    );
    assert_ne!(t0, t1);
    assert_eq!(t0, a.context_token.expose_secret());
    assert!(sim.bot_id().ends_with("@im.bot") && sim.bot_id().len() == 19);
    assert!(sim.user_id().ends_with("@im.wechat"));
}

#[tokio::test]
async fn cursors_advance_on_delivery_and_an_old_cursor_never_replays() {
    let sim = sim().await;
    sim.inject_text(sim.user_id(), "first");
    sim.inject_text(sim.user_id(), "second");
    let first = poll(&sim, "").await;
    assert_eq!(first["msgs"].as_array().unwrap().len(), 2);
    let c1 = first["get_updates_buf"].as_str().unwrap().to_owned();

    sim.inject_text(sim.user_id(), "third");
    // Re-sending the empty (older) cursor returns only the newer message.
    let again = poll(&sim, "").await;
    let texts: Vec<_> = again["msgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item_list"][0]["text_item"]["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("third")]);
    let c2 = again["get_updates_buf"].as_str().unwrap().to_owned();
    assert_ne!(c1, c2);

    // And the cursor of the first batch brings nothing back.
    let stale = poll(&sim, &c1).await;
    assert_eq!(stale["msgs"], json!([]));
    assert_eq!(stale["get_updates_buf"], c2.as_str());
}

#[tokio::test]
async fn ret_and_empty_msgs_can_be_left_out_of_a_success() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(50))
        .omit_ret_probability(1.0)
        .start()
        .await
        .unwrap();
    let body = poll(&sim, "").await;
    let obj = body.as_object().unwrap();
    assert!(!obj.contains_key("ret"), "{body}");
    assert!(!obj.contains_key("msgs"), "{body}");
    assert!(obj.contains_key("get_updates_buf"));
    assert_eq!(body["longpolling_timeout_ms"], 50);
}

#[tokio::test]
async fn requests_without_content_length_base_info_or_app_headers_are_accepted() {
    let sim = sim().await;
    sim.inject_text(sim.user_id(), "chunked");
    let addr = sim.base_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"get_updates_buf":""}"#;
    let req = format!(
        "POST /ilink/bot/getupdates HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         iLink-App-Id: \r\niLink-App-ClientVersion: 0\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        sim.token().expose_secret(),
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#"{"text":"chunked"}"#), "{out}");
    let log = sim.request_log();
    assert_eq!(log[0].header("ilink-app-id"), Some(""));
    assert_eq!(log[0].header("content-length"), None);
}

#[tokio::test]
async fn sendmessage_accepts_a_well_formed_reply_and_records_it() {
    let sim = sim().await;
    let inbound = sim.inject_text(sim.user_id(), "hi");
    let token = inbound.context_token.expose_secret().to_owned();
    let r = api(
        &sim,
        "sendmessage",
        text_reply(&sim.user_id(), "hello back", Some(&token)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "{}");
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text(), Some("hello back"));
    assert_eq!(sent[0].to_user_id(), sim.user_id());
    assert_eq!(sent[0].bot_id, sim.bot_id());
    assert!(sent[0].delivered);
    assert_eq!(
        sent[0].msg.context_token.as_ref().unwrap().expose_secret(),
        token
    );
}

#[tokio::test]
async fn sendmessage_success_body_can_carry_ret_zero() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .send_ok_body(SendOkBody::RetZero)
        .start()
        .await
        .unwrap();
    let r = api(&sim, "sendmessage", text_reply(&sim.user_id(), "x", None)).await;
    assert_eq!(r.json(), json!({"ret": 0}));

    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .send_ok_body(SendOkBody::WithMessageId)
        .start()
        .await
        .unwrap();
    let r = api(&sim, "sendmessage", text_reply(&sim.user_id(), "x", None)).await;
    let body = r.json();
    assert_eq!(body["ret"], 0);
    assert!(body["message_id"].as_u64().unwrap() > 1 << 53, "{body}");
}

#[tokio::test]
async fn sendmessage_refuses_malformed_replies_with_invalid_arguments() {
    let sim = sim().await;
    let user = sim.user_id();
    let good = text_reply(&user, "ok", None);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v["msg"].as_object_mut().unwrap().remove("to_user_id");
    cases.push(("no to_user_id", v));
    let mut v = good.clone();
    v["msg"]["message_type"] = json!(1);
    cases.push(("message_type 1", v));
    let mut v = good.clone();
    v["msg"]["message_state"] = json!(1);
    cases.push(("message_state 1 (streaming)", v));
    let mut v = good.clone();
    v["msg"]["item_list"] = json!([
        {"type": 1, "text_item": {"text": "a"}},
        {"type": 1, "text_item": {"text": "b"}}
    ]);
    cases.push(("two items", v));
    let mut v = good.clone();
    v["msg"].as_object_mut().unwrap().remove("item_list");
    cases.push(("no item_list (official empty-text quirk)", v));
    let mut v = good.clone();
    v["msg"]["item_list"][0]["text_item"]["text"] = json!("");
    cases.push(("empty text", v));
    let mut v = good.clone();
    v["msg"]["item_list"] = json!([{"type": 2, "image_item": {"media": {
        "encrypt_query_param": "never-uploaded", "aes_key": "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY=",
        "encrypt_type": 1}}}]);
    cases.push(("image never uploaded", v));
    cases.push(("no msg", json!({"base_info": base_info()})));
    for (what, body) in cases {
        let r = api(&sim, "sendmessage", body).await;
        assert_eq!(
            r.json(),
            json!({"ret": -2, "errmsg": "invalid arguments"}),
            "{what}"
        );
    }
    assert!(sim.sent_messages().is_empty());
    let notes: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter_map(|r| r.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("exactly one item")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn text_limit_switch_refuses_text_over_16384_bytes() {
    let sim = sim().await;
    let user = sim.user_id();
    // Off by default: a long text goes through.
    let long = "字".repeat(6000); // 18 000 bytes
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, &long, None))
            .await
            .body,
        "{}"
    );
    sim.set_fidelity(Fidelity::default().with_max_text_bytes(16_384));
    let r = api(&sim, "sendmessage", text_reply(&user, &long, None)).await;
    assert_eq!(r.json()["ret"], -2);
    let exact = "a".repeat(16_384);
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, &exact, None))
            .await
            .body,
        "{}"
    );
    assert_eq!(sim.sent_messages().len(), 2);
}

#[tokio::test]
async fn reply_limit_switch_allows_ten_replies_per_inbound_message() {
    let sim = sim().await;
    let user = sim.user_id();
    sim.set_fidelity(Fidelity::default().with_replies_per_inbound(10));
    sim.inject_text(&user, "tell me ten things");
    for i in 0..10 {
        let r = api(
            &sim,
            "sendmessage",
            text_reply(&user, &format!("{i}"), None),
        )
        .await;
        assert_eq!(r.body, "{}", "reply {i}");
    }
    let r = api(&sim, "sendmessage", text_reply(&user, "eleventh", None)).await;
    assert_eq!(r.json()["ret"], -2);
    // A new message from the user opens a new allowance.
    sim.inject_text(&user, "more");
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, "ok", None))
            .await
            .body,
        "{}"
    );
}

#[tokio::test]
async fn burst_throttle_answers_prepare_failed_for_the_cool_down() {
    let sim = sim().await;
    let user = sim.user_id();
    sim.set_fidelity(
        Fidelity::default().with_burst_throttle(Throttle::new(2, Duration::from_millis(400))),
    );
    for i in 0..2 {
        assert_eq!(
            api(
                &sim,
                "sendmessage",
                text_reply(&user, &format!("{i}"), None)
            )
            .await
            .body,
            "{}"
        );
    }
    let r = api(
        &sim,
        "sendmessage",
        text_reply(&user, "third in a second", None),
    )
    .await;
    assert_eq!(r.json(), json!({"ret": -2, "errmsg": "prepare failed"}));
    let r = api(
        &sim,
        "sendmessage",
        text_reply(&user, "still cooling", None),
    )
    .await;
    assert_eq!(r.json(), json!({"ret": -2, "errmsg": "prepare failed"}));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, "after", None))
            .await
            .body,
        "{}"
    );
    assert_eq!(sim.sent_messages().len(), 3);
}

#[tokio::test]
async fn reply_window_switch_drops_late_replies_silently() {
    let sim = sim().await;
    let user = sim.user_id();
    sim.set_fidelity(Fidelity::default().with_reply_window(Duration::from_secs(24 * 3600)));
    sim.inject_text(&user, "hello");
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, "in time", None))
            .await
            .body,
        "{}"
    );
    sim.advance_clock(Duration::from_secs(25 * 3600));
    // The bot is told it worked ...
    assert_eq!(
        api(&sim, "sendmessage", text_reply(&user, "too late", None))
            .await
            .body,
        "{}"
    );
    // ... but the message is marked undelivered.
    let sent = sim.sent_messages();
    assert!(sent[0].delivered);
    assert!(!sent[1].delivered);
    // A user who never wrote cannot be reached at all.
    sim.add_user("o9cq80stranger@im.wechat");
    api(
        &sim,
        "sendmessage",
        text_reply("o9cq80stranger@im.wechat", "hi", None),
    )
    .await;
    assert!(!sim.sent_messages()[2].delivered);
    // A new user message reopens the window.
    sim.inject_text(&user, "back");
    api(&sim, "sendmessage", text_reply(&user, "welcome back", None)).await;
    assert!(sim.sent_messages()[3].delivered);
}

#[tokio::test]
async fn getconfig_requires_ilink_user_id_and_always_carries_ret_zero() {
    let sim = sim().await;
    let r = api(&sim, "getconfig", json!({"base_info": base_info()})).await;
    assert_eq!(
        r.json(),
        json!({"ret": -2, "errmsg": "ilink_user_id required"})
    );
    let r = api(
        &sim,
        "getconfig",
        json!({"ilink_user_id": sim.user_id(), "context_token": "x"}),
    )
    .await;
    let body = r.json();
    assert_eq!(body["ret"], 0);
    let ticket = body["typing_ticket"].as_str().unwrap();
    use base64::Engine as _;
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(ticket)
            .is_ok()
    );
    // The same user gets the same ticket again.
    let again = api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()}))
        .await
        .json();
    assert_eq!(again["typing_ticket"], ticket);
}

#[tokio::test]
async fn sendtyping_checks_the_ticket_and_status_and_records_calls() {
    let sim = sim().await;
    let user = sim.user_id();
    let ticket = api(&sim, "getconfig", json!({"ilink_user_id": user}))
        .await
        .json()["typing_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    for status in [1, 2] {
        let r = api(
            &sim,
            "sendtyping",
            json!({"ilink_user_id": user, "typing_ticket": ticket, "status": status, "base_info": base_info()}),
        )
        .await;
        assert_eq!(r.json(), json!({"ret": 0}));
    }
    let r = api(
        &sim,
        "sendtyping",
        json!({"ilink_user_id": user, "typing_ticket": "forged", "status": 1}),
    )
    .await;
    assert_eq!(r.json()["ret"], -2);
    let r = api(
        &sim,
        "sendtyping",
        json!({"ilink_user_id": user, "typing_ticket": ticket, "status": 3}),
    )
    .await;
    assert_eq!(r.json()["ret"], -2);
    let calls = sim
        .wait_for_typing(2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].status, calls[1].status), (1, 2));
    assert_eq!(calls[0].ilink_user_id, user);
}

fn upload_request(user: &str, rawsize: u64, filesize: u64, aeskey: &str) -> Value {
    json!({
        "filekey": "6e1f0d9c8b7a65544332211000ffeedd",
        "media_type": 1,
        "to_user_id": user,
        "rawsize": rawsize,
        "rawfilemd5": "0cc175b9c0f1b6a831c399e269772661",
        "filesize": filesize,
        "no_need_thumb": true,
        "aeskey": aeskey,
        "base_info": base_info(),
    })
}

#[tokio::test]
async fn getuploadurl_checks_user_sizes_and_key() {
    let sim = sim().await;
    let user = sim.user_id();
    let key = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
    let r = api(
        &sim,
        "getuploadurl",
        upload_request("dummy@im.wechat", 48000, 48016, key),
    )
    .await;
    assert_eq!(r.json()["ret"], -1);
    let r = api(
        &sim,
        "getuploadurl",
        upload_request(&user, 48000, 48000, key),
    )
    .await;
    assert_eq!(r.json()["ret"], -2, "filesize without padding");
    let r = api(
        &sim,
        "getuploadurl",
        upload_request(&user, 48000, 48016, &key[..31]),
    )
    .await;
    assert_eq!(r.json()["ret"], -2, "31 hex characters");
    let r = api(
        &sim,
        "getuploadurl",
        upload_request(&user, 48000, 48016, "zz8b7c6d5e4f30211203f4e5d6c7b8a9"),
    )
    .await;
    assert_eq!(r.json()["ret"], -2, "not hex");
    let body = api(
        &sim,
        "getuploadurl",
        upload_request(&user, 48000, 48016, key),
    )
    .await
    .json();
    let obj = body.as_object().unwrap();
    assert!(!obj["upload_param"].as_str().unwrap().is_empty());
    assert!(!obj.contains_key("upload_full_url"));
    assert!(!obj.contains_key("thumb_upload_param"));
    // A multiple of 16 gets a whole block of padding.
    let r = api(&sim, "getuploadurl", upload_request(&user, 16, 32, key)).await;
    assert!(r.json()["upload_param"].is_string());
}

#[tokio::test]
async fn getuploadurl_issues_a_thumbnail_param_only_when_asked() {
    let sim = sim().await;
    let mut req = upload_request(
        &sim.user_id(),
        48000,
        48016,
        "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
    );
    req["thumb_rawsize"] = json!(100);
    req["thumb_rawfilemd5"] = json!("0cc175b9c0f1b6a831c399e269772661");
    req["thumb_filesize"] = json!(112);
    let body = api(&sim, "getuploadurl", req.clone()).await.json();
    assert!(
        body.get("thumb_upload_param").is_none(),
        "no_need_thumb is true"
    );
    req["no_need_thumb"] = json!(false);
    let body = api(&sim, "getuploadurl", req).await.json();
    assert!(body["thumb_upload_param"].is_string());
    assert_ne!(body["thumb_upload_param"], body["upload_param"]);
}

#[tokio::test]
async fn notify_calls_answer_ret_zero_and_are_recorded() {
    let sim = sim().await;
    assert_eq!(
        api(&sim, "msg/notifystart", json!({"base_info": base_info()}))
            .await
            .json(),
        json!({"ret": 0})
    );
    assert_eq!(
        api(&sim, "msg/notifystop", json!({})).await.json(),
        json!({"ret": 0})
    );
    let calls = sim.notify_calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].start && !calls[1].start);
    assert_eq!(calls[0].bot_id, sim.bot_id());
}

#[tokio::test]
async fn request_log_keeps_headers_but_never_the_token() {
    let sim = sim().await;
    api(&sim, "getconfig", json!({"ilink_user_id": sim.user_id()})).await;
    let log = sim.request_log();
    let rec = &log[0];
    assert_eq!(rec.endpoint, Some("getconfig"));
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.auth, AuthSeen::Valid);
    assert_eq!(rec.status, 200);
    assert_eq!(rec.header("iLink-App-ClientVersion"), Some("132099"));
    assert!(rec.body_size > 10);
    assert!(rec.header("authorization").is_none());
    let dump = format!("{log:?}{}", serde_json::to_string(&log).unwrap());
    assert!(!dump.contains(sim.token().expose_secret()));
}

#[tokio::test]
async fn expire_session_then_reset() {
    let sim = sim().await;
    sim.inject_text(sim.user_id(), "queued");
    sim.expire_session();
    let r = api(&sim, "getupdates", json!({"get_updates_buf": ""})).await;
    assert_eq!(r.body, SESSION_TIMEOUT);
    sim.reset();
    assert!(sim.request_log().is_empty());
    assert_eq!(sim.pending_messages(), 0);
    let body = poll(&sim, "").await;
    assert_eq!(body["ret"], 0);
}

#[tokio::test]
async fn expiring_the_session_answers_a_held_poll_with_minus_14() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let poller = {
        let sim = sim.clone();
        tokio::spawn(async move { api(&sim, "getupdates", json!({"get_updates_buf": ""})).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.expire_session();
    let r = tokio::time::timeout(Duration::from_secs(3), poller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.body, SESSION_TIMEOUT);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    let sim = sim().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{}/ilink/bot/getconfig", sim.base_url()))
        .header(
            "authorization",
            format!("Bearer {}", sim.token().expose_secret()),
        )
        .body(Full::new(Bytes::from(
            json!({"ilink_user_id": sim.user_id()}).to_string(),
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["ret"], 0);
}

#[tokio::test]
async fn shutdown_answers_held_polls_and_stops_listening() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let poller = {
        let sim = sim.clone();
        tokio::spawn(async move { api(&sim, "getupdates", json!({"get_updates_buf": ""})).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = poller.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let addr = sim.base_url().trim_start_matches("http://").to_owned();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
