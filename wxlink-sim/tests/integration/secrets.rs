//! Secret audit of what the simulator records: the records a test reads
//! keep context tokens and typing tickets in their redacting types, CDN
//! credentials (filekeys, upload and download parameters, AES keys) show
//! only their length in `Debug`, and the request log never holds the
//! `Authorization` header.

#![allow(clippy::unwrap_used)]

use crate::common;

use base64::Engine as _;
use common::{api, base_info, send, sim, text_reply};
use http::Method;
use md5::{Digest as _, Md5};
use serde_json::json;
use wxlink_sim::{Fault, KeyEncoding, MediaKind, Simulator};

const CTX: &str = "CTX-MARKER-SIM-4411";
const TICKET: &str = "TICKET-MARKER-SIM-9e";

#[tokio::test]
async fn records_and_request_log_never_show_secrets() {
    let sim = sim().await;
    let user = sim.user_id();
    let token = sim.token().expose_secret().to_owned();
    let reply = api(&sim, "sendmessage", text_reply(&user, "hi", Some(CTX))).await;
    assert_eq!(reply.status, 200);
    let reply = api(
        &sim,
        "sendtyping",
        serde_json::json!({"ilink_user_id": user, "typing_ticket": TICKET, "status": 1, "base_info": base_info()}),
    )
    .await;
    assert_eq!(reply.status, 200);

    assert_eq!(sim.sent_messages().len(), 1);
    let shown = format!(
        "{:?} {:?} {:?}",
        sim.sent_messages(),
        sim.typing_calls(),
        sim.request_log()
    );
    for secret in [token.as_str(), CTX, TICKET] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    sim.shutdown().await;
}

const KEY_HEX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const FILEKEY: &str = "f11e0000deadbeef5ec12e7f11e0beef";

/// Uploads `plaintext` through getuploadurl and the CDN as the official
/// client does; returns the upload and download parameters.
async fn upload(sim: &Simulator, plaintext: &[u8]) -> (String, String) {
    let body = json!({
        "filekey": FILEKEY,
        "media_type": 1,
        "to_user_id": sim.user_id(),
        "rawsize": plaintext.len(),
        "rawfilemd5": hex::encode(Md5::digest(plaintext)),
        "filesize": wxlink_media::ciphertext_len(plaintext.len() as u64),
        "no_need_thumb": true,
        "aeskey": KEY_HEX,
        "base_info": base_info(),
    });
    let slot = api(sim, "getuploadurl", body).await.json();
    let upload_param = slot["upload_param"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/upload?encrypted_query_param={}&filekey={FILEKEY}",
        sim.cdn_base_url(),
        wxlink_proto::url::encode_uri_component(&upload_param)
    );
    let key = wxlink_media::AesKey::from_hex(KEY_HEX).unwrap();
    let r = send(
        Method::POST,
        &url,
        &[("content-type", "application/octet-stream")],
        wxlink_media::crypto::encrypt(&key, plaintext),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let download = r.header("x-encrypted-param").unwrap().to_owned();
    (upload_param, download)
}

#[tokio::test]
async fn cdn_credentials_show_only_their_length_in_debug() {
    let sim = Simulator::builder()
        .hold(std::time::Duration::from_millis(200))
        .inbound_full_url(true)
        .start()
        .await
        .unwrap();
    let user = sim.user_id();
    let (upload_param, download) = upload(&sim, b"a picture, say").await;

    // A reply carrying the uploaded image, its key and download parameter.
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(KEY_HEX);
    let reply = json!({"msg": {
        "from_user_id": "", "to_user_id": user, "client_id": "secrets-1",
        "message_type": 2, "message_state": 2, "context_token": CTX,
        "item_list": [{"type": 2, "image_item": {"media": {
            "encrypt_query_param": download, "aes_key": key_b64, "encrypt_type": 1}}}],
    }});
    let r = api(&sim, "sendmessage", reply).await;
    assert_eq!(r.body, "{}", "the reply was accepted");
    // The CDN download of it, and a media message from the user.
    let dl = format!(
        "{}/download?encrypted_query_param={}",
        sim.cdn_base_url(),
        wxlink_proto::url::encode_uri_component(&download)
    );
    assert_eq!(common::get(&dl).await.status, 200);
    let injected = sim
        .inject_media(
            &user,
            MediaKind::Image,
            b"inbound picture",
            KeyEncoding::Base64Raw,
        )
        .unwrap();
    let inbound_media = injected.message.item_list[0]
        .image_item
        .as_ref()
        .unwrap()
        .media
        .clone()
        .unwrap();
    let inbound_param = inbound_media.encrypt_query_param.clone().unwrap();
    let inbound_url = inbound_media.full_url.clone().unwrap();
    let inbound_key = inbound_media.aes_key.clone().unwrap();
    // A staged business answer that carries a ticket.
    sim.inject_fault(
        "getconfig",
        Fault::Json(format!(r#"{{"ret":0,"typing_ticket":"{TICKET}"}}"#)),
        1,
    )
    .unwrap();
    api(&sim, "getconfig", json!({"ilink_user_id": user})).await;

    let uploads = sim.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].download_param.as_deref(),
        Some(download.as_str())
    );
    let shown = format!(
        "{:?} {:#?} {:?} {:?} {:?} {:#?}",
        uploads,
        uploads,
        sim.request_log(),
        sim.sent_messages(),
        injected,
        sim.request_log(),
    );
    let secrets = [
        FILEKEY,
        KEY_HEX,
        key_b64.as_str(),
        upload_param.as_str(),
        download.as_str(),
        inbound_param.as_str(),
        inbound_url.as_str(),
        inbound_key.expose_secret(),
        CTX,
        TICKET,
    ];
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} in {shown}");
        // Nor in the form it has in a query string.
        let encoded = wxlink_proto::url::encode_uri_component(secret);
        assert!(!shown.contains(&encoded), "{encoded} in {shown}");
    }
    // What is printed instead still tells a reader the values were there.
    let upload_dbg = format!("{:?}", uploads[0]);
    assert!(
        upload_dbg.contains(&format!("filekey: <redacted, {} bytes>", FILEKEY.len())),
        "{upload_dbg}"
    );
    assert!(
        upload_dbg.contains(&format!(
            "download_param: Some(<redacted, {} bytes>)",
            download.len()
        )),
        "{upload_dbg}"
    );
    assert!(
        upload_dbg.contains(r#"stored: Some("memory")"#),
        "{upload_dbg}"
    );
    let cdn_request = sim
        .request_log()
        .into_iter()
        .find(|r| r.endpoint == Some("cdn_upload"))
        .unwrap();
    assert!(cdn_request.query.as_deref().unwrap().contains(FILEKEY));
    let request_dbg = format!("{cdn_request:?}");
    assert!(
        request_dbg.contains(&format!("filekey=<redacted, {} bytes>", FILEKEY.len())),
        "{request_dbg}"
    );
    assert!(
        request_dbg.contains("encrypted_query_param=<redacted, "),
        "{request_dbg}"
    );
    sim.shutdown().await;
}
