//! The server limits of the newest field reports, each a fidelity switch
//! that is off by default, and quoted messages by id.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{api, api_with, text_reply};
use serde_json::{Value, json};
use wxlink_sim::{Fidelity, InboundMessage, PartialQuote, Simulator, Throttle};

async fn sim_with(fidelity: Fidelity) -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(200))
        .omit_ret_probability(0.0)
        .accounts(2)
        .fidelity(fidelity)
        .start()
        .await
        .unwrap()
}

fn reply(sim: &Simulator, text: &str) -> Value {
    text_reply(&sim.user_id(), text, None)
}

#[tokio::test]
async fn the_burst_throttle_is_bot_wide_and_every_attempt_extends_it() {
    let throttle = Throttle::new(2, Duration::from_millis(300)).extending(true);
    let sim = sim_with(Fidelity::default().with_burst_throttle(throttle)).await;
    sim.add_user("o9cq80other@im.wechat");
    assert_eq!(api(&sim, "sendmessage", reply(&sim, "1")).await.body, "{}");
    assert_eq!(api(&sim, "sendmessage", reply(&sim, "2")).await.body, "{}");
    // The third within a second trips it, for any user of this bot.
    let third = api(
        &sim,
        "sendmessage",
        text_reply("o9cq80other@im.wechat", "3", None),
    )
    .await;
    assert_eq!(third.json(), json!({"ret": -2, "errmsg": "prepare failed"}));
    // Another bot is not affected.
    let other = &sim.accounts()[1];
    let t = other.token().expose_secret().to_owned();
    let r = api_with(
        &sim,
        "sendmessage",
        Some(&t),
        text_reply(other.user_id(), "x", None),
    )
    .await;
    assert_eq!(r.body, "{}");
    // Attempts every 200 ms keep the 300 ms penalty going well past it.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = api(&sim, "sendmessage", reply(&sim, "retry")).await;
        assert_eq!(r.json()["ret"], -2);
    }
    // Left alone for longer than the penalty, the bot sends again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "later")).await.body,
        "{}"
    );
    // Without `extending`, attempts do not prolong it.
    let sim = sim_with(
        Fidelity::default().with_burst_throttle(Throttle::new(1, Duration::from_millis(300))),
    )
    .await;
    api(&sim, "sendmessage", reply(&sim, "1")).await;
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "2")).await.json()["ret"],
        -2
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "3")).await.json()["ret"],
        -2
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(api(&sim, "sendmessage", reply(&sim, "4")).await.body, "{}");
}

#[tokio::test]
async fn pushes_outside_the_window_are_refused_and_replies_within_it_budgeted() {
    let fidelity = Fidelity::default()
        .with_push_window(Duration::from_secs(24 * 3600))
        .with_replies_per_inbound(10);
    let sim = sim_with(fidelity).await;
    // No inbound message yet: a push.
    let r = api(&sim, "sendmessage", reply(&sim, "push")).await;
    assert_eq!(r.json(), json!({"ret": -2}));
    sim.inject_text(sim.user_id(), "hello");
    for n in 0..10 {
        let r = api(&sim, "sendmessage", reply(&sim, &format!("reply {n}"))).await;
        assert_eq!(r.body, "{}", "reply {n}");
    }
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "11th")).await.json()["ret"],
        -2
    );
    // A day later the window has closed.
    sim.inject_text(sim.user_id(), "again");
    sim.advance_clock(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "late")).await.json()["ret"],
        -2
    );
    assert_eq!(sim.sent_messages().len(), 10);
}

#[tokio::test]
async fn text_over_the_character_limit_is_refused_with_minus_2() {
    let sim = sim_with(Fidelity::default().with_max_text_chars(5_000)).await;
    // 5 000 characters of three bytes each pass: the limit counts characters.
    let ok = "字".repeat(5_000);
    assert_eq!(api(&sim, "sendmessage", reply(&sim, &ok)).await.body, "{}");
    let long = "a".repeat(5_001);
    let r = api(&sim, "sendmessage", reply(&sim, &long)).await;
    assert_eq!(r.json(), json!({"ret": -2, "errmsg": "prepare failed"}));
    assert_eq!(sim.sent_messages().len(), 1);
    assert_eq!(
        sim.request_log().last().unwrap().note.as_deref(),
        Some("text over the character limit")
    );
}

#[tokio::test]
async fn outbound_voice_is_accepted_with_an_id_and_recorded_as_not_shown() {
    let sim = sim_with(Fidelity::default().with_voice_not_shown(true)).await;
    // A voice message needs uploaded media: upload a tiny one.
    let key = "00112233445566778899aabbccddeeff";
    let plain = b"silk";
    let md5 = {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(plain))
    };
    let slot = api(
        &sim,
        "getuploadurl",
        json!({"filekey": "v", "media_type": 4, "to_user_id": sim.user_id(), "rawsize": 4,
               "rawfilemd5": md5, "filesize": 16, "no_need_thumb": true, "aeskey": key}),
    )
    .await
    .json();
    let url = format!(
        "{}/upload?encrypted_query_param={}&filekey=v",
        sim.cdn_base_url(),
        slot["upload_param"].as_str().unwrap()
    );
    let cipher =
        wxlink_media::crypto::encrypt(&wxlink_media::AesKey::from_hex(key).unwrap(), plain);
    let up = common::send(http::Method::POST, &url, &[], cipher)
        .await
        .unwrap();
    let param = up.header("x-encrypted-param").unwrap().to_owned();
    let aes_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(key)
    };
    let voice = json!({"msg": {
        "from_user_id": "", "to_user_id": sim.user_id(), "client_id": "voice-1",
        "message_type": 2, "message_state": 2,
        "item_list": [{"type": 3, "voice_item": {
            "media": {"encrypt_query_param": param, "aes_key": aes_b64, "encrypt_type": 1},
            "encode_type": 6, "playtime": 1000}}]}});
    let r = api(&sim, "sendmessage", voice).await.json();
    assert_eq!(r["ret"], 0);
    assert!(r["message_id"].as_u64().is_some(), "{r}");
    let sent = sim.sent_messages();
    assert!(!sent[0].delivered);
    assert_eq!(sent[0].not_shown, Some("voice is not shown"));
    // Text is still shown.
    api(&sim, "sendmessage", reply(&sim, "text")).await;
    assert!(sim.sent_messages()[1].delivered);
}

#[tokio::test]
async fn a_recipient_the_bot_does_not_know_gets_ret_minus_3() {
    let sim = sim_with(Fidelity::default().with_reject_unknown_users(true)).await;
    let user = sim.user_id();
    assert_eq!(
        api(&sim, "sendmessage", reply(&sim, "known")).await.body,
        "{}"
    );
    let expected = json!({"ret": -3, "errmsg": "invalid arguments"});
    // A case mismatch is another user.
    let upper = user.to_uppercase();
    let r = api(&sim, "sendmessage", text_reply(&upper, "x", None)).await;
    assert_eq!(r.json(), expected);
    // A wrapped id, as some hosts send it.
    let r = api(
        &sim,
        "sendmessage",
        text_reply(&format!("user:{user}"), "x", None),
    )
    .await;
    assert_eq!(r.json(), expected);
    // A user who wrote is known.
    sim.inject_text("o9cq80writer@im.wechat", "hi");
    let r = api(
        &sim,
        "sendmessage",
        text_reply("o9cq80writer@im.wechat", "x", None),
    )
    .await;
    assert_eq!(r.body, "{}");
    // Off by default.
    let lax = common::sim().await;
    let r = api(
        &lax,
        "sendmessage",
        text_reply("nobody@im.wechat", "x", None),
    )
    .await;
    assert_eq!(r.body, "{}");
}

#[tokio::test]
async fn a_quote_by_id_arrives_with_svr_id_partial_text_and_a_type_0_item() {
    let sim = common::sim().await;
    let quoted = sim.inject_text(sim.user_id(), "step two: run the migration");
    let big = u64::MAX - 7;
    sim.inject_message(
        InboundMessage::text(sim.user_id(), "how?")
            .quote_by_id(big, Some(PartialQuote::new("run the migration", 10, 27))),
    );
    let v = common::poll(&sim, "").await;
    assert_eq!(v["msgs"][0]["message_id"], quoted.message_id);
    let item = &v["msgs"][1]["item_list"][0];
    assert_eq!(item["text_item"]["text"], "how?");
    let r = &item["ref_msg"];
    assert_eq!(r["svr_id"].as_u64(), Some(big), "lossless above i64::MAX");
    assert_eq!(
        r["message_item"],
        json!({"type": 0, "msg_id": big.to_string()})
    );
    assert_eq!(r["partial_text"]["start"], 10);
    assert_eq!(r["partial_text"]["end"], 27);
    // The control API takes the same quote.
    let url = format!("{}/_sim/inject/text", sim.base_url());
    let body = json!({"text": "and this?", "quote": {"svr_id": 5, "partial": {"text": "x", "start": 0, "end": 1}}});
    common::send(http::Method::POST, &url, &[], body.to_string())
        .await
        .unwrap();
    // And raw messages keep fields the protocol types do not model.
    let url = format!("{}/_sim/inject/message", sim.base_url());
    let raw = json!({"item_list": [{"type": 1, "text_item": {"text": "t"}}], "run_id": "r-1"});
    common::send(http::Method::POST, &url, &[], raw.to_string())
        .await
        .unwrap();
    let v = common::poll(&sim, "").await;
    assert_eq!(v["msgs"][0]["item_list"][0]["ref_msg"]["svr_id"], 5);
    assert_eq!(
        v["msgs"][0]["item_list"][0]["ref_msg"]["partial_text"]["end"],
        1
    );
    assert_eq!(v["msgs"][1]["run_id"], "r-1");
}

#[tokio::test]
async fn the_field_report_preset_and_the_control_api_turn_the_switches_on() {
    let f = Fidelity::field_reports();
    assert!(f.newer_poll_wins && f.voice_not_shown && f.reject_unknown_users);
    assert_eq!(f.max_text_chars, Some(5_000));
    assert!(
        f.burst_throttle
            .is_some_and(|t| t.extend_on_attempt && t.max_per_second == 2)
    );
    assert_eq!(Fidelity::default(), {
        let sim = common::sim().await;
        sim.config().fidelity.clone()
    });
    let sim = common::sim().await;
    let url = format!("{}/_sim/fidelity", sim.base_url());
    let body = json!({"reject_unknown_users": true, "max_text_chars": 3});
    common::send(http::Method::POST, &url, &[], body.to_string())
        .await
        .unwrap();
    let r = api(
        &sim,
        "sendmessage",
        text_reply("stranger@im.wechat", "x", None),
    )
    .await;
    assert_eq!(r.json()["ret"], -3);
    let r = api(&sim, "sendmessage", reply(&sim, "four")).await;
    assert_eq!(r.json()["errmsg"], "prepare failed");
}
