//! Every example body of the protocol notes (copied to `tests/fixtures/`)
//! decodes into its type, re-encodes to the same JSON, and decodes again to
//! an equal value; plus the specific behaviours the notes call out.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wxlink_proto::*;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).unwrap()
}

fn decode<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Drops empty arrays: the types leave empty lists out when encoding, which
/// the wire treats the same as an empty list.
fn without_empty_arrays(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, v)| (k, without_empty_arrays(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_empty_arrays).collect()),
        other => other,
    }
}

/// Decode, encode, decode again: equal values, and the encoded JSON is the
/// fixture itself (so no field was lost or invented).
fn round_trip<T>(name: &str, text: &str)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let first: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let encoded = serde_json::to_string(&first).unwrap();
    let second: T = serde_json::from_str(&encoded).unwrap();
    assert_eq!(first, second, "{name}: second decode differs");
    let original: Value = serde_json::from_str(text).unwrap();
    let reencoded: Value = serde_json::from_str(&encoded).unwrap();
    assert_eq!(
        without_empty_arrays(original),
        reencoded,
        "{name}: re-encoded JSON differs from the fixture"
    );
}

/// The typed round trip for one fixture, chosen by its file name, or `None`
/// for the files that are not iLink JSON bodies.
fn check_fixture(name: &str, text: &str) -> Option<()> {
    let (endpoint, rest) = name.split_once('.')?;
    let direction = rest.split('.').next()?;
    match (endpoint, direction) {
        ("get_bot_qrcode", "req") => round_trip::<GetBotQrcodeRequest>(name, text),
        ("get_bot_qrcode", "resp") => round_trip::<GetBotQrcodeResponse>(name, text),
        ("get_qrcode_status", "resp") => round_trip::<GetQrcodeStatusResponse>(name, text),
        ("getupdates", "req") => round_trip::<GetUpdatesRequest>(name, text),
        ("getupdates", "resp") => round_trip::<GetUpdatesResponse>(name, text),
        ("sendmessage", "req") => round_trip::<SendMessageRequest>(name, text),
        ("sendmessage", "resp") => round_trip::<SendMessageResponse>(name, text),
        ("getconfig", "req") => round_trip::<GetConfigRequest>(name, text),
        ("getconfig", "resp") => round_trip::<GetConfigResponse>(name, text),
        ("sendtyping", "req") => round_trip::<SendTypingRequest>(name, text),
        ("sendtyping", "resp") => round_trip::<SendTypingResponse>(name, text),
        ("getuploadurl", "req") => round_trip::<GetUploadUrlRequest>(name, text),
        ("getuploadurl", "resp") => round_trip::<GetUploadUrlResponse>(name, text),
        ("notifystart", "req") => round_trip::<NotifyStartRequest>(name, text),
        ("notifystart", "resp") => round_trip::<NotifyStartResponse>(name, text),
        ("notifystop", "req") => round_trip::<NotifyStopRequest>(name, text),
        ("notifystop", "resp") => round_trip::<NotifyStopResponse>(name, text),
        // An error body can come back from any endpoint; check it against
        // the two shapes that matter most.
        ("error", _) => {
            round_trip::<GetUpdatesResponse>(name, text);
            round_trip::<SendMessageResponse>(name, text);
        }
        _ => return None,
    }
    Some(())
}

#[test]
fn every_fixture_body_round_trips() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    for name in entries {
        let text = read(&name);
        if name.starts_with("cdn.") || name.starts_with("media.") {
            // CDN status records and crypto vectors are not iLink bodies;
            // they are still valid JSON.
            serde_json::from_str::<Value>(&text).unwrap();
            continue;
        }
        assert!(
            check_fixture(&name, &text).is_some(),
            "{name}: no type is mapped for this fixture"
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} fixtures checked");
}

#[test]
fn message_id_above_2_pow_53_is_exact() {
    let resp: GetUpdatesResponse = decode("getupdates.resp.text-and-image.json");
    assert_eq!(resp.msgs[0].message_id, Some(7_423_198_823_477_151_811));
    assert_eq!(resp.msgs[1].message_id, Some(7_423_198_823_477_151_812));
    let encoded = serde_json::to_string(&resp).unwrap();
    assert!(
        encoded.contains("\"message_id\":7423198823477151811"),
        "{encoded}"
    );

    let from_string: WeixinMessage =
        serde_json::from_str(r#"{"message_id":"7423198823477151811"}"#).unwrap();
    assert_eq!(from_string.message_id, Some(7_423_198_823_477_151_811));
    // Written back as a number, the form the server uses.
    assert_eq!(
        serde_json::to_string(&from_string).unwrap(),
        r#"{"message_id":7423198823477151811}"#
    );
    let send: SendMessageResponse =
        serde_json::from_str(r#"{"message_id":"18446744073709551615"}"#).unwrap();
    assert_eq!(send.message_id, Some(u64::MAX));
}

#[test]
fn a_body_without_ret_is_success() {
    let resp: GetUpdatesResponse = decode("getupdates.resp.empty-no-ret.json");
    assert_eq!(resp.ret, None);
    assert!(resp.status().is_success());
    assert_eq!(resp.status().kind(), StatusKind::Ok);
    let ok: SendMessageResponse = decode("sendmessage.resp.ok.json");
    assert!(ok.status().is_success());
    let ok0: SendMessageResponse = decode("sendmessage.resp.ok-ret0.json");
    assert!(ok0.status().is_success());
}

#[test]
fn minus_14_in_either_form_is_session_expired() {
    for name in [
        "error.session-expired.json",
        "error.session-expired.ret-form.json",
    ] {
        let resp: GetUpdatesResponse = decode(name);
        let status = resp.status();
        assert!(!status.is_success(), "{name}");
        assert!(status.is_session_expired(), "{name}");
        assert_eq!(status.kind(), StatusKind::SessionExpired, "{name}");
        assert_eq!(status.code(), -14, "{name}");
        assert_eq!(status.message(), Some("session timeout"));
    }
}

#[test]
fn minus_2_prepare_failed_is_rejected() {
    let resp: SendMessageResponse = decode("sendmessage.resp.rejected.json");
    let status = resp.status();
    assert!(!status.is_success());
    assert_eq!(status.kind(), StatusKind::Rejected);
    assert_eq!(status.rejection(), Some(RejectReason::PrepareFailed));
    let cfg: GetConfigResponse = decode("getconfig.resp.missing-user.json");
    assert_eq!(cfg.status().kind(), StatusKind::Rejected);
    assert_eq!(cfg.status().rejection(), Some(RejectReason::Unspecified));
}

#[test]
fn unknown_item_type_and_unknown_fields_are_tolerated() {
    let body = r#"{
        "ret": 0,
        "brand_new_top_level": {"nested": [1, 2, 3]},
        "msgs": [{
            "message_id": 1,
            "message_type": 7,
            "message_state": 42,
            "room_id": "speculative",
            "item_list": [
                { "type": 99, "sticker_item": { "id": "x" }, "msg_id": "m1" },
                { "type": 1, "text_item": { "text": "hi", "lang": "en" } }
            ]
        }]
    }"#;
    let resp: GetUpdatesResponse = serde_json::from_str(body).unwrap();
    let msg = &resp.msgs[0];
    assert_eq!(msg.message_type, Some(MessageType::Unknown(7)));
    assert_eq!(msg.message_state, Some(MessageState::Unknown(42)));
    assert_eq!(
        msg.item_list[0].item_type,
        Some(MessageItemType::Unknown(99))
    );
    assert_eq!(msg.item_list[0].msg_id.as_deref(), Some("m1"));
    assert_eq!(msg.item_list[1].item_type, Some(MessageItemType::Text));
    // The unknown values survive a round trip; unknown fields are dropped.
    let again = serde_json::to_value(&resp).unwrap();
    assert_eq!(again["msgs"][0]["item_list"][0]["type"], 99);
    assert_eq!(again["msgs"][0]["message_type"], 7);
    assert!(again.get("brand_new_top_level").is_none());
}

#[test]
fn every_qr_status_fixture_decodes_to_its_variant() {
    let cases = [
        ("wait", QrStatus::Wait),
        ("scaned", QrStatus::Scaned),
        ("scaned_but_redirect", QrStatus::ScanedButRedirect),
        ("need_verifycode", QrStatus::NeedVerifycode),
        ("verify_code_blocked", QrStatus::VerifyCodeBlocked),
        ("expired", QrStatus::Expired),
        ("binded_redirect", QrStatus::BindedRedirect),
        ("confirmed", QrStatus::Confirmed),
    ];
    for (file, want) in cases {
        let resp: GetQrcodeStatusResponse = decode(&format!("get_qrcode_status.resp.{file}.json"));
        assert_eq!(resp.status.as_ref(), Some(&want), "{file}");
        assert_eq!(want.as_str(), file);
    }
    let confirmed: GetQrcodeStatusResponse = decode("get_qrcode_status.resp.confirmed.json");
    assert_eq!(
        confirmed.ilink_bot_id.as_deref(),
        Some("3c9e51a7d2f0@im.bot")
    );
    assert!(
        confirmed
            .bot_token
            .unwrap()
            .expose_secret()
            .starts_with("EXAMPLE-bot-token")
    );
    let redirect: GetQrcodeStatusResponse =
        decode("get_qrcode_status.resp.scaned_but_redirect.json");
    assert_eq!(
        redirect.redirect_host.as_deref(),
        Some("ilinkai-idc2.example.net")
    );
}

#[test]
fn unknown_qr_status_string_is_kept() {
    let resp: GetQrcodeStatusResponse =
        serde_json::from_str(r#"{"status":"scaned_twice"}"#).unwrap();
    assert_eq!(resp.status, Some(QrStatus::Unknown("scaned_twice".into())));
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        r#"{"status":"scaned_twice"}"#
    );
}

#[test]
fn get_updates_buf_is_always_sent() {
    let req = GetUpdatesRequest::default();
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"get_updates_buf":""}"#
    );
    let first: GetUpdatesRequest = decode("getupdates.req.first.json");
    assert_eq!(first.get_updates_buf, "");
    let resume: GetUpdatesRequest = decode("getupdates.req.resume.json");
    assert!(!resume.get_updates_buf.is_empty());
}

#[test]
fn unset_fields_are_left_out() {
    let msg = WeixinMessage {
        to_user_id: Some("u@im.wechat".into()),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&msg).unwrap(),
        r#"{"to_user_id":"u@im.wechat"}"#
    );
    assert_eq!(
        serde_json::to_string(&NotifyStartRequest::default()).unwrap(),
        "{}"
    );
}

#[test]
fn nested_items_decode_with_their_content() {
    let resp: GetUpdatesResponse = decode("getupdates.resp.quoted-ref-msg.json");
    let quoted = resp.msgs[0].item_list[0].ref_msg.as_ref().unwrap();
    assert_eq!(quoted.title.as_deref(), Some("部署步骤"));
    let inner = quoted.message_item.as_ref().unwrap();
    assert_eq!(inner.item_type, Some(MessageItemType::Text));
    let image_ref = resp.msgs[1].item_list[0].ref_msg.as_ref().unwrap();
    let image = image_ref
        .message_item
        .as_ref()
        .unwrap()
        .image_item
        .as_ref()
        .unwrap();
    assert_eq!(image.mid_size, Some(98_320));

    let voice: GetUpdatesResponse = decode("getupdates.resp.voice-with-text.json");
    let v = voice.msgs[0].item_list[0].voice_item.as_ref().unwrap();
    assert_eq!(v.encode_type, Some(VoiceEncodeType::Silk));
    assert_eq!(v.playtime, Some(3240));

    let files: GetUpdatesResponse = decode("getupdates.resp.file-and-video.json");
    let f = files.msgs[0].item_list[0].file_item.as_ref().unwrap();
    assert_eq!(f.len.as_deref(), Some("245760"));
    let video = files.msgs[1].item_list[0].video_item.as_ref().unwrap();
    assert_eq!(
        video.media.as_ref().unwrap().encrypt_type,
        Some(EncryptType::Packed)
    );
}

#[test]
fn debug_of_decoded_bodies_shows_no_secret() {
    let text = read("getupdates.resp.text-and-image.json");
    let resp: GetUpdatesResponse = serde_json::from_str(&text).unwrap();
    let debug = format!("{resp:?} {resp:#?}");
    for msg in &resp.msgs {
        let token = msg.context_token.as_ref().unwrap().expose_secret();
        assert!(!debug.contains(token), "context token leaked");
    }
    let image = resp.msgs[1].item_list[0].image_item.as_ref().unwrap();
    let aeskey = image.aeskey.as_ref().unwrap().expose_secret();
    let media_key = image
        .media
        .as_ref()
        .unwrap()
        .aes_key
        .as_ref()
        .unwrap()
        .expose_secret();
    assert!(!debug.contains(aeskey), "image aeskey leaked");
    assert!(!debug.contains(media_key), "media aes_key leaked");
    // The rest of the message is still there to debug with.
    assert!(debug.contains("7423198823477151811"));

    let confirmed: GetQrcodeStatusResponse = decode("get_qrcode_status.resp.confirmed.json");
    let token = confirmed
        .bot_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(!format!("{confirmed:?}").contains(&token));
    let qr: GetBotQrcodeRequest = decode("get_bot_qrcode.req.json");
    assert!(!format!("{qr:?}").contains("EXAMPLE-bot-token"));
    let cfg: GetConfigResponse = decode("getconfig.resp.json");
    let ticket = cfg
        .typing_ticket
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert!(!format!("{cfg:?}").contains(&ticket));
    let up: GetUploadUrlRequest = decode("getuploadurl.req.image.json");
    assert!(!format!("{up:?}").contains("9a8b7c6d5e4f30211203f4e5d6c7b8a9"));
}

#[test]
fn crypto_vector_file_examples_hold() {
    let v: Value = serde_json::from_str(&read("media.crypto-vectors.json")).unwrap();
    let uin = &v["x_wechat_uin_example"];
    let n = u32::try_from(uin["uint32"].as_u64().unwrap()).unwrap();
    assert_eq!(n.to_string(), uin["decimal_string"].as_str().unwrap());
    assert_eq!(wechat_uin(n), uin["header_value"].as_str().unwrap());
    let versions = v["client_version_examples"].as_object().unwrap();
    assert_eq!(versions.len(), 5);
    for (version, want) in versions {
        assert_eq!(
            u64::from(encode_client_version(version)),
            want.as_u64().unwrap(),
            "{version}"
        );
    }
}
