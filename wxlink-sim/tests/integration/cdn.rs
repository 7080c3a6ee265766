//! The simulated CDN: upload checks, storage modes and downloads, plus the
//! media checks of `sendmessage`.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::{api, base_info, send};
use http::{Method, StatusCode};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wxlink_media::AesKey;
use wxlink_sim::{CdnStorage, KeyEncoding, MediaKind, Simulator, UploadUrlMode};

const KEY: &str = "00112233445566778899aabbccddeeff";
const FILEKEY: &str = "6e1f0d9c8b7a65544332211000ffeedd";

fn key() -> AesKey {
    AesKey::from_hex(KEY).unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Asks for an upload slot declaring `plaintext` (or the given md5) and
/// returns the getuploadurl answer.
async fn slot(sim: &Simulator, plaintext: &[u8], md5: Option<&str>, media_type: i64) -> Value {
    let rawsize = plaintext.len() as u64;
    let body = json!({
        "filekey": FILEKEY,
        "media_type": media_type,
        "to_user_id": sim.user_id(),
        "rawsize": rawsize,
        "rawfilemd5": md5.map(str::to_owned).unwrap_or_else(|| md5_hex(plaintext)),
        "filesize": wxlink_media::ciphertext_len(rawsize),
        "no_need_thumb": true,
        "aeskey": KEY,
        "base_info": base_info(),
    });
    api(sim, "getuploadurl", body).await.json()
}

fn upload_url(sim: &Simulator, param: &str) -> String {
    format!(
        "{}/upload?encrypted_query_param={}&filekey={FILEKEY}",
        sim.cdn_base_url(),
        percent_encoding::utf8_percent_encode(param, percent_encoding::NON_ALPHANUMERIC)
    )
}

async fn post_cdn(url: &str, body: Vec<u8>) -> common::Reply {
    send(
        Method::POST,
        url,
        &[("content-type", "application/octet-stream")],
        body,
    )
    .await
    .unwrap()
}

/// Uploads `plaintext` the way the official client does and returns the
/// download parameter.
async fn upload_ok(sim: &Simulator, plaintext: &[u8]) -> String {
    let param = slot(sim, plaintext, None, 1).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_cdn(
        &upload_url(sim, &param),
        wxlink_media::crypto::encrypt(&key(), plaintext),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{:?}",
        r.header("x-error-message")
    );
    r.header("x-encrypted-param").unwrap().to_owned()
}

async fn download(sim: &Simulator, param: &str) -> common::Reply {
    let url = format!(
        "{}/download?encrypted_query_param={}",
        sim.cdn_base_url(),
        percent_encoding::utf8_percent_encode(param, percent_encoding::NON_ALPHANUMERIC)
    );
    common::get(&url).await
}

fn image_reply(user: &str, param: &str, aes_key: &str) -> Value {
    json!({"msg": {
        "from_user_id": "", "to_user_id": user, "client_id": "t:1",
        "message_type": 2, "message_state": 2,
        "item_list": [{"type": 2, "image_item": {"media": {
            "encrypt_query_param": param, "aes_key": aes_key, "encrypt_type": 1}, "mid_size": 16}}]
    }, "base_info": base_info()})
}

#[tokio::test]
async fn an_upload_that_checks_out_gets_a_download_param_and_downloads_as_ciphertext() {
    let sim = common::sim().await;
    let plaintext = b"hello ilink";
    let download_param = upload_ok(&sim, plaintext).await;
    let r = download(&sim, &download_param).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    // The protocol notes' published test vector for this key and text.
    assert_eq!(hex::encode(&r.body), "b7b86f6a7e5ca4c39d8da094d17d2f95");
    let uploads = sim.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].download_param.as_deref(),
        Some(download_param.as_str())
    );
    assert_eq!(uploads[0].stored, Some("memory"));
    assert_eq!(
        (uploads[0].rawsize, uploads[0].filesize, uploads[0].received),
        (11, 16, 16)
    );
    // CDN requests carry no auth and are logged as such.
    let log = sim.request_log();
    assert!(
        log.iter()
            .any(|r| r.endpoint == Some("cdn_upload") && r.status == 200)
    );
}

#[tokio::test]
async fn a_wrong_md5_is_refused_with_400_and_x_error_message() {
    let sim = common::sim().await;
    let plaintext = b"the real content";
    let param = slot(&sim, plaintext, Some(&md5_hex(b"something else")), 3).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_cdn(
        &upload_url(&sim, &param),
        wxlink_media::crypto::encrypt(&key(), plaintext),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("x-error-message"), Some("md5 mismatch"));
    assert!(r.header("x-encrypted-param").is_none());
    assert_eq!(sim.uploads()[0].error.as_deref(), Some("md5 mismatch"));
}

#[tokio::test]
async fn a_wrong_size_is_refused_with_or_without_content_length() {
    let sim = common::sim().await;
    let plaintext = vec![7u8; 100];
    let param = slot(&sim, &plaintext, None, 3).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut long = wxlink_media::crypto::encrypt(&key(), &plaintext);
    long.extend_from_slice(&[0u8; 16]);
    let r = post_cdn(&upload_url(&sim, &param), long.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("x-error-message"), Some("file size mismatch"));

    // Far too long: the client still reads the 400, not a reset.
    let r = post_cdn(&upload_url(&sim, &param), vec![0u8; 8 << 20]).await;
    assert_eq!(r.header("x-error-message"), Some("file size mismatch"));

    let short = long[..long.len() - 32].to_vec();
    let r = post_cdn(&upload_url(&sim, &param), short).await;
    assert_eq!(r.header("x-error-message"), Some("file size mismatch"));

    // Chunked, so only the streaming count can notice.
    let addr = sim.base_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let path = upload_url(&sim, &param)
        .split_once(addr.as_str())
        .unwrap()
        .1
        .to_owned();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        long.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&long).await.unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("x-error-message: file size mismatch"), "{out}");
}

#[tokio::test]
async fn a_wrong_key_is_refused_as_a_decrypt_failure() {
    let sim = common::sim().await;
    let plaintext = b"encrypted with another key".repeat(10);
    let param = slot(&sim, &plaintext, None, 1).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = AesKey::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
    let r = post_cdn(
        &upload_url(&sim, &param),
        wxlink_media::crypto::encrypt(&other, &plaintext),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.header("x-error-message"),
        Some("decrypt failed: wrong aes key or bad padding")
    );
}

#[tokio::test]
async fn a_plaintext_size_that_differs_from_rawsize_is_refused() {
    let sim = common::sim().await;
    // 20 and 17 bytes both pad to 32, so only the plaintext size differs.
    let declared = vec![1u8; 17];
    let actual = vec![1u8; 20];
    let param = slot(&sim, &declared, Some(&md5_hex(&actual)), 3).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_cdn(
        &upload_url(&sim, &param),
        wxlink_media::crypto::encrypt(&key(), &actual),
    )
    .await;
    assert_eq!(r.header("x-error-message"), Some("raw size mismatch"));
}

#[tokio::test]
async fn unknown_params_are_refused_on_upload_and_download() {
    let sim = common::sim().await;
    let r = post_cdn(&upload_url(&sim, "made-up"), vec![0u8; 16]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.header("x-error-message"),
        Some("invalid encrypted_query_param")
    );
    let r = download(&sim, "made-up").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A filekey other than the one declared is refused too.
    let param = slot(&sim, b"x", None, 3).await["upload_param"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = upload_url(&sim, &param).replace(FILEKEY, "00000000000000000000000000000000");
    let r = post_cdn(&url, wxlink_media::crypto::encrypt(&key(), b"x")).await;
    assert_eq!(r.header("x-error-message"), Some("filekey mismatch"));
}

#[tokio::test]
async fn full_url_mode_returns_a_working_upload_url() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .upload_url_mode(UploadUrlMode::FullUrl)
        .start()
        .await
        .unwrap();
    let answer = slot(&sim, b"full url", None, 3).await;
    assert!(answer.get("upload_param").is_none());
    let url = answer["upload_full_url"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "{}/upload?encrypted_query_param=",
        sim.cdn_base_url()
    )));
    assert!(url.ends_with(&format!("&filekey={FILEKEY}")));
    let r = post_cdn(url, wxlink_media::crypto::encrypt(&key(), b"full url")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn uploads_beyond_the_memory_bound_spill_to_disk_and_still_download() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .cdn_storage(CdnStorage::Spill { memory_limit: 1024 })
        .start()
        .await
        .unwrap();
    let small = upload_ok(&sim, &[1u8; 100]).await;
    let big_plain: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let big = upload_ok(&sim, &big_plain).await;
    let stored: Vec<_> = sim.uploads().iter().map(|u| u.stored).collect();
    assert_eq!(stored, vec![Some("memory"), Some("disk")]);
    let dir = sim.spill_dir().unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let r = download(&sim, &big).await;
    assert_eq!(
        wxlink_media::crypto::decrypt(&key(), &r.body).unwrap(),
        big_plain
    );
    assert_eq!(download(&sim, &small).await.body.len(), 112);
    // A truncated download of a spilled file stops half way.
    sim.inject_fault("cdn_download", wxlink_sim::Fault::TruncatedBody, 1)
        .unwrap();
    let url = format!(
        "{}/download?encrypted_query_param={big}",
        sim.cdn_base_url()
    );
    let err = send(Method::GET, &url, &[], "").await.err().unwrap();
    assert!(err.contains("body failed"), "{err}");
    assert_eq!(
        download(&sim, &big).await.body.len(),
        big_plain.len() / 16 * 16 + 16
    );
    // Reset forgets stored media and deletes spilled files.
    sim.reset();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test]
async fn digest_only_mode_verifies_uploads_but_keeps_no_content() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .cdn_storage(CdnStorage::DigestOnly)
        .start()
        .await
        .unwrap();
    let param = upload_ok(&sim, b"load test payload").await;
    assert_eq!(sim.uploads()[0].stored, Some("digest"));
    assert_eq!(download(&sim, &param).await.status, StatusCode::NOT_FOUND);
    // Sending it still works: the key is checked against the digest record.
    let aes = key().to_base64_hex();
    let r = api(
        &sim,
        "sendmessage",
        image_reply(&sim.user_id(), &param, &aes),
    )
    .await;
    assert_eq!(r.body, "{}");
}

#[tokio::test]
async fn sendmessage_media_must_name_an_upload_and_carry_its_key() {
    let sim = common::sim().await;
    let param = upload_ok(&sim, b"an image").await;
    let user = sim.user_id();
    // The official base64-of-hex key and the raw-byte form both decrypt it.
    for aes in [key().to_base64_hex(), key().to_base64_raw()] {
        let r = api(&sim, "sendmessage", image_reply(&user, &param, &aes)).await;
        assert_eq!(r.body, "{}");
    }
    let wrong = AesKey::from_hex("ffeeddccbbaa99887766554433221100")
        .unwrap()
        .to_base64_hex();
    let refused = [
        image_reply(&user, &param, &wrong),
        image_reply(&user, &param, KEY),
        image_reply(&user, "not-uploaded", &key().to_base64_hex()),
    ];
    for body in refused {
        let r = api(&sim, "sendmessage", body).await;
        assert_eq!(r.json(), json!({"ret": -2, "errmsg": "invalid arguments"}));
    }
    // Media uploaded for one user cannot be sent to another.
    sim.add_user("o9cq80someoneelse@im.wechat");
    let r = api(
        &sim,
        "sendmessage",
        image_reply(
            "o9cq80someoneelse@im.wechat",
            &param,
            &key().to_base64_hex(),
        ),
    )
    .await;
    assert_eq!(r.json()["ret"], -2);
    assert_eq!(sim.sent_messages().len(), 2);
    let notes: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter_map(|r| r.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("does not decrypt")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn file_and_video_replies_are_checked_the_same_way() {
    let sim = common::sim().await;
    let user = sim.user_id();
    let param = upload_ok(&sim, b"%PDF-1.4 ...").await;
    let media =
        json!({"encrypt_query_param": param, "aes_key": key().to_base64_hex(), "encrypt_type": 1});
    for item in [
        json!({"type": 4, "file_item": {"media": media, "file_name": "a.pdf", "len": "12"}}),
        json!({"type": 5, "video_item": {"media": media, "video_size": 16}}),
        json!({"type": 3, "voice_item": {"media": media, "encode_type": 6}}),
    ] {
        let body = json!({"msg": {"from_user_id": "", "to_user_id": user, "client_id": "c",
            "message_type": 2, "message_state": 2, "item_list": [item]}});
        assert_eq!(api(&sim, "sendmessage", body).await.body, "{}");
    }
    let body = json!({"msg": {"to_user_id": user, "message_type": 2, "message_state": 2,
        "item_list": [{"type": 4, "file_item": {"file_name": "no-media.pdf"}}]}});
    assert_eq!(api(&sim, "sendmessage", body).await.json()["ret"], -2);
}

#[tokio::test]
async fn injected_media_uses_the_inbound_key_encodings_and_downloads() {
    let sim = common::sim().await;
    let picture = b"\x89PNG\r\n\x1a\n not really a png".to_vec();
    let injected = sim
        .inject_media(
            sim.user_id(),
            MediaKind::Image,
            &picture,
            KeyEncoding::Base64Raw,
        )
        .unwrap();
    let image = injected.message.item_list[0].image_item.clone().unwrap();
    let hex_key = image.aeskey.unwrap().expose_secret().to_owned();
    let media = image.media.unwrap();
    let raw_b64 = media.aes_key.unwrap().expose_secret().to_owned();
    assert_eq!(hex_key.len(), 32);
    assert_eq!(raw_b64.len(), 24);
    let from_raw = base64::engine::general_purpose::STANDARD
        .decode(&raw_b64)
        .unwrap();
    assert_eq!(hex::encode(from_raw), hex_key);
    let r = download(&sim, media.encrypt_query_param.as_deref().unwrap()).await;
    let key = AesKey::from_hex(&hex_key).unwrap();
    assert_eq!(
        wxlink_media::crypto::decrypt(&key, &r.body).unwrap(),
        picture
    );

    let doc = b"file body".to_vec();
    let injected = sim
        .inject_media(sim.user_id(), MediaKind::File, &doc, KeyEncoding::Base64Hex)
        .unwrap();
    let file = injected.message.item_list[0].file_item.clone().unwrap();
    assert_eq!(file.len.as_deref(), Some("9"));
    let media = file.media.unwrap();
    let (key, enc) = AesKey::parse_inbound(media.aes_key.unwrap().expose_secret()).unwrap();
    assert_eq!(enc, KeyEncoding::Base64Hex);
    let r = download(&sim, media.encrypt_query_param.as_deref().unwrap()).await;
    assert_eq!(wxlink_media::crypto::decrypt(&key, &r.body).unwrap(), doc);

    assert!(
        sim.inject_media(sim.user_id(), MediaKind::File, &doc, KeyEncoding::Hex)
            .is_err()
    );
    let v = sim
        .inject_media(
            sim.user_id(),
            MediaKind::Video,
            b"mp4",
            KeyEncoding::Base64Hex,
        )
        .unwrap();
    assert!(
        v.message.item_list[0]
            .video_item
            .as_ref()
            .unwrap()
            .media
            .is_some()
    );
    let voice = sim
        .inject_media(
            sim.user_id(),
            MediaKind::Voice,
            b"\x02#!SILK_V3",
            KeyEncoding::Base64Hex,
        )
        .unwrap();
    assert!(
        voice.message.item_list[0]
            .voice_item
            .as_ref()
            .unwrap()
            .media
            .is_some()
    );

    // All of them come out of getupdates.
    let body = common::poll(&sim, "").await;
    let types: Vec<_> = body["msgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["item_list"][0]["type"].clone())
        .collect();
    assert_eq!(types, vec![json!(2), json!(4), json!(5), json!(3)]);
}

#[tokio::test]
async fn injected_media_can_carry_a_full_url_that_downloads() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .inbound_full_url(true)
        .start()
        .await
        .unwrap();
    let injected = sim
        .inject_media(
            sim.user_id(),
            MediaKind::Video,
            b"video bytes",
            KeyEncoding::Base64Hex,
        )
        .unwrap();
    let media = injected.message.item_list[0]
        .video_item
        .clone()
        .unwrap()
        .media
        .unwrap();
    let url = media.full_url.unwrap();
    assert!(url.starts_with(&format!("{}/download?", sim.cdn_base_url())));
    let (key, _) = AesKey::parse_inbound(media.aes_key.unwrap().expose_secret()).unwrap();
    let body = common::get(&url).await.body;
    assert_eq!(
        wxlink_media::crypto::decrypt(&key, &body).unwrap(),
        b"video bytes"
    );
}

#[tokio::test]
async fn quoted_messages_and_voice_transcripts_can_be_injected() {
    use wxlink_sim::{InboundMessage, quoting, text_item, voice_transcript_item};
    let sim = common::sim().await;
    let user = sim.user_id();
    // A text quoting an earlier text, with a title.
    let quote_text = quoting(
        text_item("这一步具体怎么做？"),
        Some("部署步骤"),
        text_item("第二步"),
    );
    // A text quoting an image the user sent before (media inside ref_msg).
    let image = sim
        .media_item(MediaKind::Image, b"old picture", KeyEncoding::Base64Raw)
        .unwrap();
    let quote_image = quoting(text_item("这张图呢"), None, image);
    sim.inject_message(InboundMessage::new(&user).item(quote_text));
    sim.inject_message(InboundMessage::new(&user).item(quote_image));
    sim.inject_message(InboundMessage::new(&user).item(voice_transcript_item("语音转文字")));
    let fixed = sim.inject_message(
        InboundMessage::text(&user, "with my own ids")
            .message_id(42)
            .context_token("ctx-fixed"),
    );
    assert_eq!(fixed.message_id, 42);

    let body = common::poll(&sim, "").await;
    let msgs = body["msgs"].as_array().unwrap();
    assert_eq!(msgs[0]["item_list"][0]["ref_msg"]["title"], "部署步骤");
    assert_eq!(
        msgs[0]["item_list"][0]["ref_msg"]["message_item"]["text_item"]["text"],
        "第二步"
    );
    let quoted = &msgs[1]["item_list"][0]["ref_msg"]["message_item"];
    assert_eq!(quoted["type"], 2);
    let param = quoted["image_item"]["media"]["encrypt_query_param"]
        .as_str()
        .unwrap();
    let hex_key = quoted["image_item"]["aeskey"].as_str().unwrap();
    let r = download(&sim, param).await;
    let key = AesKey::from_hex(hex_key).unwrap();
    assert_eq!(
        wxlink_media::crypto::decrypt(&key, &r.body).unwrap(),
        b"old picture"
    );
    assert_eq!(msgs[2]["item_list"][0]["type"], 3);
    assert_eq!(msgs[2]["item_list"][0]["voice_item"]["text"], "语音转文字");
    assert_eq!(msgs[3]["message_id"], 42);
    assert_eq!(msgs[3]["context_token"], "ctx-fixed");
}

#[tokio::test]
async fn the_cdn_forgets_its_oldest_objects_and_releases_what_they_held() {
    // Room in memory for two 100-byte uploads (112 bytes of ciphertext
    // each), and two objects kept at once.
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .cdn_storage(CdnStorage::Spill { memory_limit: 224 })
        .cdn_object_limit(2)
        .start()
        .await
        .unwrap();
    let mut params = Vec::new();
    for i in 0..5u8 {
        params.push(upload_ok(&sim, &[i; 100]).await);
    }
    // The third upload found memory full and spilled; storing it forgot
    // the first, whose memory the fourth and fifth could use again.
    let stored: Vec<_> = sim.uploads().iter().map(|u| u.stored).collect();
    assert_eq!(
        stored,
        [
            Some("memory"),
            Some("memory"),
            Some("disk"),
            Some("memory"),
            Some("memory")
        ]
    );
    // Storing the fifth forgot the spilled third and deleted its file.
    let dir = sim.spill_dir().unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    for old in &params[..3] {
        assert_eq!(download(&sim, old).await.status, StatusCode::NOT_FOUND);
    }
    let r = download(&sim, &params[4]).await;
    assert_eq!(
        wxlink_media::crypto::decrypt(&key(), &r.body).unwrap(),
        [4u8; 100]
    );
}

#[tokio::test]
async fn digest_only_uploads_and_upload_slots_are_bounded_too() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .cdn_storage(CdnStorage::DigestOnly)
        .cdn_object_limit(2)
        .start()
        .await
        .unwrap();
    let mut params = Vec::new();
    for i in 0..3u8 {
        params.push(upload_ok(&sim, &[i; 40]).await);
    }
    // A reply may name the newest uploads, not one the CDN forgot.
    let aes = key().to_base64_hex();
    let user = sim.user_id();
    let r = api(&sim, "sendmessage", image_reply(&user, &params[0], &aes)).await;
    assert_eq!(r.json()["ret"], -2);
    let r = api(&sim, "sendmessage", image_reply(&user, &params[2], &aes)).await;
    assert_eq!(r.body, "{}");

    // Of three slots issued, the oldest is forgotten.
    let plaintext = b"slot test";
    let mut slots = Vec::new();
    for _ in 0..3 {
        let answer = slot(&sim, plaintext, None, 1).await;
        slots.push(answer["upload_param"].as_str().unwrap().to_owned());
    }
    let ciphertext = wxlink_media::crypto::encrypt(&key(), plaintext);
    let r = post_cdn(&upload_url(&sim, &slots[0]), ciphertext.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.header("x-error-message"),
        Some("invalid encrypted_query_param")
    );
    let r = post_cdn(&upload_url(&sim, &slots[2]), ciphertext).await;
    assert_eq!(r.status, StatusCode::OK);
}
