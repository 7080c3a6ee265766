//! CDN parameter audit: the opaque CDN parameters and URLs (download
//! parameters, upload parameters, file keys, ready-made CDN URLs) stay plain
//! `String`s for the crates that use them, but anyone holding one can read or
//! write the CDN object, so `Debug` (which users print in logs) shows only
//! their length. Every other field still prints as `#[derive(Debug)]` would.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use wxlink_proto::*;

/// The JSON keys the schema marks `redact`.
const CDN_KEYS: [&str; 9] = [
    "encrypt_query_param",
    "full_url",
    "filekey",
    "upload_param",
    "thumb_upload_param",
    "upload_full_url",
    "url",
    "cdn_url",
    "thumb_url",
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap()
}

/// Every non-empty string found under one of `CDN_KEYS`, at any depth.
fn cdn_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if CDN_KEYS.contains(&k.as_str()) && !s.is_empty() => {
                        out.push(s.clone());
                    }
                    other => cdn_values(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| cdn_values(v, out)),
        _ => {}
    }
}

/// Compact and pretty `Debug` of `T` decoded from `value`, when it decodes.
fn debug_both<T: DeserializeOwned + Debug>(value: &Value) -> Option<[String; 2]> {
    serde_json::from_value::<T>(value.clone())
        .ok()
        .map(|v| [format!("{v:?}"), format!("{v:#?}")])
}

fn assert_hidden(outputs: &[String], params: &[String], what: &str) {
    assert!(!params.is_empty(), "{what}: no CDN parameter to look for");
    for out in outputs {
        for p in params {
            assert!(!out.contains(p.as_str()), "{what}: {p} shows in {out}");
        }
    }
}

#[test]
fn inbound_download_params_are_redacted_and_the_rest_still_shows() {
    let value = fixture("getupdates.resp.file-and-video.json");
    let mut params = Vec::new();
    cdn_values(&value, &mut params);
    // Two media parameters, a thumbnail parameter and a full URL.
    assert_eq!(params.len(), 4, "{params:?}");
    let resp: GetUpdatesResponse = serde_json::from_value(value).unwrap();
    let outputs = [format!("{resp:?}"), format!("{resp:#?}")];
    assert_hidden(&outputs, &params, "file-and-video");
    for out in &outputs {
        for shown in [
            "7423198823477152100",
            "7423198823477152101",
            "季度报告.pdf",
            "4032af8d61035123906e58e067140cc5",
            "1048592",
            "Packed",
            "CgQIARAAEhYKFEVYQU1QTEUtY3Vyc29yLTAwMDA0",
        ] {
            assert!(out.contains(shown), "{shown} missing from {out}");
        }
        // The length of each parameter is shown in place of its value.
        for p in &params {
            let marker = format!("<redacted, {} bytes>", p.len());
            assert!(out.contains(&marker), "{marker} missing from {out}");
        }
    }
    // The file message has no full URL: shown as absent, not as redacted.
    let file_media = format!("{:?}", resp.msgs[0].item_list[0].file_item);
    assert!(file_media.contains("full_url: None"), "{file_media}");
    // The pretty form keeps derive's layout around the redacted value.
    assert!(
        outputs[1].contains("encrypt_query_param: Some(\n"),
        "{}",
        outputs[1]
    );
}

#[test]
fn image_voice_and_quoted_media_params_are_redacted() {
    for (name, shown) in [
        ("getupdates.resp.text-and-image.json", "183264"),
        (
            "getupdates.resp.voice-with-text.json",
            "明天上午十点提醒我开周会",
        ),
        ("getupdates.resp.quoted-ref-msg.json", "98320"),
    ] {
        let value = fixture(name);
        let mut params = Vec::new();
        cdn_values(&value, &mut params);
        let outputs = debug_both::<GetUpdatesResponse>(&value).unwrap();
        assert_hidden(&outputs, &params, name);
        for out in &outputs {
            assert!(out.contains(shown), "{name}: {shown} missing from {out}");
            assert!(out.contains("<redacted, "), "{name}: {out}");
        }
    }
}

#[test]
fn upload_params_and_upload_urls_are_redacted() {
    for name in [
        "getuploadurl.resp.upload-param.json",
        "getuploadurl.resp.with-thumb.json",
        "getuploadurl.resp.full-url.json",
    ] {
        let value = fixture(name);
        let mut params = Vec::new();
        cdn_values(&value, &mut params);
        let resp: GetUploadUrlResponse = serde_json::from_value(value).unwrap();
        let outputs = [format!("{resp:?}"), format!("{resp:#?}")];
        assert_hidden(&outputs, &params, name);
        // The file key inside the full URL is not shown either.
        for out in &outputs {
            assert!(!out.contains("6e1f0d9c8b7a6554"), "{name}: {out}");
            assert!(out.contains("ret: None"), "{name}: {out}");
        }
    }
    let resp: GetUploadUrlResponse =
        serde_json::from_value(fixture("getuploadurl.resp.upload-param.json")).unwrap();
    assert_eq!(
        format!("{resp:?}"),
        "GetUploadUrlResponse { ret: None, errcode: None, errmsg: None, \
         upload_param: Some(<redacted, 46 bytes>), thumb_upload_param: None, \
         upload_full_url: None }"
    );
    // The field itself is untouched: other crates read the plain string.
    assert_eq!(
        resp.upload_param.as_deref(),
        Some("EXAMPLEuplY2RuLXVwbG9hZC1wYXJhbS1pbWFnZS0wMDAx")
    );
}

#[test]
fn the_upload_request_hides_its_file_key_but_not_its_sizes() {
    let value = fixture("getuploadurl.req.image.json");
    let mut params = Vec::new();
    cdn_values(&value, &mut params);
    assert_eq!(params, ["6e1f0d9c8b7a65544332211000ffeedd"]);
    let outputs = debug_both::<GetUploadUrlRequest>(&value).unwrap();
    assert_hidden(&outputs, &params, "getuploadurl.req");
    for out in &outputs {
        for shown in [
            "48000",
            "48016",
            "0cc175b9c0f1b6a831c399e269772661",
            "o9cq80EXAMPLEuserAlice01@im.wechat",
            "<redacted, 32 bytes>",
        ] {
            assert!(out.contains(shown), "{shown} missing from {out}");
        }
    }
}

#[test]
fn an_outbound_image_hides_its_download_param() {
    let value = fixture("sendmessage.req.image.json");
    let mut params = Vec::new();
    cdn_values(&value, &mut params);
    let outputs = debug_both::<SendMessageRequest>(&value).unwrap();
    assert_hidden(&outputs, &params, "sendmessage.req.image");
    for out in &outputs {
        assert!(out.contains("48016"), "{out}");
        assert!(
            out.contains("openclaw-weixin:1767253010555-0b1c2d3e"),
            "{out}"
        );
    }
}

#[test]
fn empty_and_absent_params_are_shown_as_such() {
    let media = CdnMedia {
        encrypt_query_param: Some(String::new()),
        encrypt_type: Some(EncryptType::Packed),
        ..CdnMedia::default()
    };
    assert_eq!(
        format!("{media:?}"),
        "CdnMedia { encrypt_query_param: Some(\"\"), aes_key: None, \
         encrypt_type: Some(Packed), full_url: None }"
    );
    let media = CdnMedia {
        encrypt_query_param: Some("abcde".to_owned()),
        full_url: Some("https://cdn.example/download?p=abcde".to_owned()),
        ..CdnMedia::default()
    };
    let out = format!("{media:?}");
    assert_eq!(
        out,
        "CdnMedia { encrypt_query_param: Some(<redacted, 5 bytes>), aes_key: None, \
         encrypt_type: None, full_url: Some(<redacted, 36 bytes>) }"
    );
}

/// Every fixture, decoded as every type it fits: no CDN parameter of the
/// body shows in `Debug`, so a type that forgets a `redact` mark (or a new
/// fixture with a new place for one) fails here.
#[test]
fn no_decoded_fixture_shows_a_cdn_parameter() {
    let mut paths: Vec<_> = std::fs::read_dir(fixture_path(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut checked = 0;
    for path in paths {
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut params = Vec::new();
        cdn_values(&value, &mut params);
        if params.is_empty() {
            continue;
        }
        let outputs = [
            debug_both::<GetUpdatesResponse>(&value),
            debug_both::<GetUploadUrlResponse>(&value),
            debug_both::<GetUploadUrlRequest>(&value),
            debug_both::<SendMessageRequest>(&value),
            debug_both::<WeixinMessage>(&value),
        ];
        for out in outputs.into_iter().flatten() {
            assert_hidden(&out, &params, &path.display().to_string());
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} decodes checked");
}
