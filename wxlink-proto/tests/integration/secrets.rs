//! Secret audit: every wire type that holds a bot token, context token,
//! typing ticket or AES key keeps it out of `Debug` (and the secret types
//! out of `Display`), including when decoded from a real body.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use wxlink_proto::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The fields whose wire type is one of the secret newtypes.
const SECRET_FIELDS: [&str; 6] = [
    "context_token",
    "bot_token",
    "typing_ticket",
    "aes_key",
    "aeskey",
    "local_token_list",
];

fn mark(value: &mut Value, n: &mut usize, markers: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) && v.is_string() {
                    let m = format!("SECRET-MARKER-{n:03}-q9");
                    *n += 1;
                    markers.push(m.clone());
                    *v = Value::String(m);
                } else {
                    mark(v, n, markers);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mark(v, n, markers)),
        _ => {}
    }
}

/// `Debug` of `T` decoded from `value`, when `value` decodes as `T`.
fn debug_as<T: serde::de::DeserializeOwned + std::fmt::Debug>(value: &Value) -> Option<String> {
    serde_json::from_value::<T>(value.clone())
        .ok()
        .map(|v| format!("{v:?}"))
}

#[test]
fn secret_newtypes_redact_debug_and_display() {
    let shown = [
        format!("{0:?} {0}", BotToken::new("SECRET-BOT")),
        format!("{0:?} {0}", ContextToken::new("SECRET-CTX")),
        format!("{0:?} {0}", TypingTicket::new("SECRET-TICKET")),
        format!("{0:?} {0}", AesKeyText::new("SECRET-AES")),
    ];
    for s in shown {
        assert!(!s.contains("SECRET"), "{s}");
        assert!(s.contains("redacted"), "{s}");
    }
}

#[test]
fn decoded_fixtures_never_show_a_secret_in_debug() {
    let mut checked = 0;
    let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut n = 0;
        let mut markers = Vec::new();
        mark(&mut value, &mut n, &mut markers);
        if markers.is_empty() {
            continue;
        }
        let outputs = [
            debug_as::<GetUpdatesResponse>(&value),
            debug_as::<GetQrcodeStatusResponse>(&value),
            debug_as::<GetConfigResponse>(&value),
            debug_as::<GetUploadUrlResponse>(&value),
            debug_as::<SendMessageRequest>(&value),
            debug_as::<SendTypingRequest>(&value),
            debug_as::<GetConfigRequest>(&value),
            debug_as::<GetUploadUrlRequest>(&value),
            debug_as::<GetBotQrcodeRequest>(&value),
            debug_as::<WeixinMessage>(&value),
        ];
        for out in outputs.into_iter().flatten() {
            for m in &markers {
                assert!(
                    !out.contains(m.as_str()),
                    "{}: {m} in {out}",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} decodes checked");
}

#[test]
fn local_token_lists_and_image_keys_are_redacted() {
    let req = GetBotQrcodeRequest {
        local_token_list: vec![BotToken::new("SECRET-OLD-1"), BotToken::new("SECRET-OLD-2")],
        ..GetBotQrcodeRequest::default()
    };
    let item: MessageItem = serde_json::from_str(
        r#"{"type":2,"image_item":{"aeskey":"SECRET-HEX","media":{"aes_key":"SECRET-B64"},
            "thumb_media":{"aes_key":"SECRET-THUMB"}}}"#,
    )
    .unwrap();
    for out in [format!("{req:?}"), format!("{item:?}")] {
        assert!(!out.contains("SECRET"), "{out}");
    }
}
