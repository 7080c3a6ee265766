//! Fuzzing every endpoint's response decoder through `ApiClient`: arbitrary
//! bytes, arbitrary JSON and mutated fixture bodies always give a value or a
//! typed `Error`, never a panic, and a decode error never shows a secret
//! (`context_token`, `bot_token`, `typing_ticket`, AES keys, CDN
//! parameters) that was in the body.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Map, Value};
use wxlink_proto::{
    BotToken, Endpoint, GetBotQrcode, GetConfig, GetQrcodeStatus, GetUpdates, GetUploadUrl,
    NotifyStart, NotifyStop, SendMessage, SendTyping,
};
use wxlink_transport::{ApiClient, ApiConfig, Body, BoxError, Error, RetryPolicy};

/// The shared wire fixtures: scrubbed example bodies of every endpoint.
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wxlink-proto/tests/fixtures"
);

/// Field names whose values are secrets and must never be shown.
const SECRET_FIELDS: [&str; 8] = [
    "context_token",
    "bot_token",
    "typing_ticket",
    "aes_key",
    "aeskey",
    "encrypt_query_param",
    "upload_param",
    "thumb_upload_param",
];

/// A client whose transport answers every request with the current body.
struct Harness {
    rt: tokio::runtime::Runtime,
    client: ApiClient<
        tower::util::BoxCloneService<http::Request<Body>, http::Response<Body>, BoxError>,
    >,
    body: Arc<Mutex<(u16, Bytes)>>,
}

impl Harness {
    fn new() -> Self {
        let body = Arc::new(Mutex::new((200u16, Bytes::new())));
        let shared = Arc::clone(&body);
        let service = tower::service_fn(move |_req: http::Request<Body>| {
            let (status, bytes) = shared.lock().unwrap().clone();
            async move {
                let resp = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(bytes))
                    .unwrap();
                Ok::<_, BoxError>(resp)
            }
        });
        let config = ApiConfig::default()
            .base_url("http://127.0.0.1:9/")
            .token(Some(BotToken::new("fuzz-bot-token")))
            .retry(RetryPolicy::none());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = ApiClient::with_service(config, tower::util::BoxCloneService::new(service));
        Self { rt, client, body }
    }

    /// Answers every endpoint with `bytes` under `status` and returns the
    /// errors (values are dropped: reaching them without a panic is the
    /// point).
    fn all_endpoints(&self, status: u16, bytes: &[u8]) -> Vec<Error> {
        *self.body.lock().unwrap() = (status, Bytes::copy_from_slice(bytes));
        let mut errors = Vec::new();
        self.rt.block_on(async {
            macro_rules! call {
                ($($e:ty),*) => {$(
                    if let Err(err) = self
                        .client
                        .call::<$e>(&<$e as Endpoint>::Request::default())
                        .await
                    {
                        errors.push(err);
                    }
                )*};
            }
            call!(
                GetBotQrcode,
                GetQrcodeStatus,
                GetUpdates,
                SendMessage,
                GetConfig,
                SendTyping,
                GetUploadUrl,
                NotifyStart,
                NotifyStop
            );
        });
        errors
    }
}

thread_local! {
    static HARNESS: Harness = Harness::new();
}

/// Every response fixture as JSON, with each secret field given a distinct
/// marker value.
fn fixtures() -> &'static [Value] {
    static CELL: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let mut out = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(FIXTURES)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.contains(".resp") || n.starts_with("error.")
            })
            .collect();
        names.sort();
        for path in names {
            let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let mut n = 0;
            mark_secrets(&mut value, &mut n);
            out.push(value);
        }
        assert!(out.len() >= 20, "fixtures found: {}", out.len());
        out
    })
}

fn marker(n: usize) -> String {
    format!("MRK{n:03}zq7SECRETvalue")
}

fn mark_secrets(value: &mut Value, n: &mut usize) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) && v.is_string() {
                    *v = Value::String(marker(*n));
                    *n += 1;
                } else {
                    mark_secrets(v, n);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mark_secrets(v, n)),
        _ => {}
    }
}

/// The (field, secret value) pairs a body carries.
fn secrets_in(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    // A value a mutation made short (or empty) could match
                    // unrelated text by chance, so only real-looking secrets
                    // count.
                    Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) && s.len() >= 8 => {
                        out.push((k.clone(), s.clone()));
                    }
                    _ => secrets_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secrets_in(v, out)),
        _ => {}
    }
}

/// One JSON-level mutation, applied at the `pick`-th node.
#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    SwapToNumber(i64),
    SwapToString(String),
    SwapToBool,
    SwapToNull,
    SwapToArray,
    SwapToObject,
    Huge,
    HugeNegative,
    Float(f64),
    Nest(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Delete),
        any::<i64>().prop_map(Mutation::SwapToNumber),
        ".{0,20}".prop_map(Mutation::SwapToString),
        Just(Mutation::SwapToBool),
        Just(Mutation::SwapToNull),
        Just(Mutation::SwapToArray),
        Just(Mutation::SwapToObject),
        Just(Mutation::Huge),
        Just(Mutation::HugeNegative),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Mutation::Float),
        (1usize..200).prop_map(Mutation::Nest),
    ]
}

/// Applies `m` to the `pick`-th object field (depth first); returns false
/// when there are fewer fields.
fn apply(value: &mut Value, pick: &mut usize, m: &Mutation) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *pick == 0 {
                    match m {
                        Mutation::Delete => {
                            map.remove(&k);
                        }
                        other => {
                            let v = map.get_mut(&k).unwrap();
                            *v = replacement(v, other);
                        }
                    }
                    return true;
                }
                *pick -= 1;
                if apply(map.get_mut(&k).unwrap(), pick, m) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|v| apply(v, pick, m)),
        _ => false,
    }
}

fn replacement(old: &Value, m: &Mutation) -> Value {
    match m {
        Mutation::Delete => Value::Null,
        Mutation::SwapToNumber(n) => Value::from(*n),
        Mutation::SwapToString(s) => Value::String(s.clone()),
        Mutation::SwapToBool => Value::Bool(true),
        Mutation::SwapToNull => Value::Null,
        Mutation::SwapToArray => Value::Array(vec![old.clone(), old.clone()]),
        Mutation::SwapToObject => {
            let mut map = Map::new();
            map.insert("x".into(), old.clone());
            Value::Object(map)
        }
        Mutation::Huge => serde_json::from_str("340282366920938463463374607431768211456").unwrap(),
        Mutation::HugeNegative => Value::from(i64::MIN),
        Mutation::Float(f) => Value::from(*f),
        Mutation::Nest(depth) => {
            let mut v = old.clone();
            for _ in 0..*depth {
                v = Value::Array(vec![v]);
            }
            v
        }
    }
}

/// Checks that no error shows any of `secrets` in Display, Debug or excerpt.
fn assert_no_secret(errors: &[Error], secrets: &[(String, String)]) -> Result<(), TestCaseError> {
    for err in errors {
        let shown = format!("{err} | {err:?} | {:?}", err.excerpt());
        let mut source = std::error::Error::source(err);
        let mut chain = String::new();
        while let Some(s) = source {
            chain.push_str(&format!(" <- {s}"));
            source = s.source();
        }
        for (_, secret) in secrets {
            prop_assert!(
                !shown.contains(secret.as_str()) && !chain.contains(secret.as_str()),
                "secret {secret} shown in {shown}{chain}"
            );
        }
    }
    Ok(())
}

fn check_typed(errors: &[Error]) -> Result<(), TestCaseError> {
    for err in errors {
        // A 200 answer with a bad body is a decode or an API error; it is
        // never mistaken for a transport failure.
        prop_assert!(
            err.is_decode()
                || err.api_status().is_some()
                || err.status().is_some()
                || err.is_body_too_large(),
            "unexpected error kind: {err:?}"
        );
        prop_assert!(!err.to_string().is_empty());
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let key = prop_oneof![
            Just("ret".to_owned()),
            Just("errcode".to_owned()),
            Just("msgs".to_owned()),
            Just("item_list".to_owned()),
            Just("message_id".to_owned()),
            Just("context_token".to_owned()),
            Just("typing_ticket".to_owned()),
            Just("status".to_owned()),
            Just("type".to_owned()),
            Just("get_updates_buf".to_owned()),
            Just("longpolling_timeout_ms".to_owned()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    /// Arbitrary bytes, including invalid UTF-8, under 200 and error
    /// statuses.
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), status in prop::sample::select(vec![200u16, 400, 404, 500, 502])) {
        HARNESS.with(|h| {
            let errors = h.all_endpoints(status, &bytes);
            if status == 200 { check_typed(&errors)?; } else {
                prop_assert_eq!(errors.len(), 9);
                for e in &errors { prop_assert_eq!(e.status().map(|s| s.as_u16()), Some(status)); }
            }
            Ok(())
        })?;
    }

    /// Arbitrary JSON documents, with protocol field names mixed in.
    #[test]
    fn arbitrary_json(value in json_value()) {
        HARNESS.with(|h| check_typed(&h.all_endpoints(200, &serde_json::to_vec(&value).unwrap())))?;
    }

    /// Fixture bodies with one or two field mutations, printed compact,
    /// pretty or with tabs and newlines around the colon, sometimes cut
    /// short or with an invalid UTF-8 byte spliced in.
    #[test]
    fn mutated_fixtures(
        which in any::<prop::sample::Index>(),
        muts in prop::collection::vec((any::<usize>(), mutation()), 0..3),
        layout in 0u8..3,
        cut in prop::option::of(any::<prop::sample::Index>()),
        bad_utf8 in prop::option::of((any::<prop::sample::Index>(), 0x80u8..=0xff)),
        status in prop::sample::select(vec![200u16, 200, 200, 500]),
    ) {
        let all = fixtures();
        let mut value = all[which.index(all.len())].clone();
        for (pick, m) in &muts {
            let mut count = 0;
            count_fields(&value, &mut count);
            if count > 0 {
                let mut p = pick % count;
                apply(&mut value, &mut p, m);
            }
        }
        let mut secrets = Vec::new();
        secrets_in(&value, &mut secrets);
        let mut bytes = match layout {
            0 => serde_json::to_vec(&value).unwrap(),
            1 => serde_json::to_vec_pretty(&value).unwrap(),
            _ => serde_json::to_string(&value).unwrap().replace("\":", "\"\t:\n\t").into_bytes(),
        };
        if let Some((at, byte)) = bad_utf8 {
            // A byte spliced into a secret's field name or value makes it
            // something else; every secret still under its own name must
            // stay hidden.
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            secrets.retain(|(key, value)| still_named(&text, key, value));
        }
        if let Some(cut) = cut {
            let at = cut.index(bytes.len() + 1);
            bytes.truncate(at);
        }
        HARNESS.with(|h| {
            let errors = h.all_endpoints(status, &bytes);
            if status == 200 { check_typed(&errors)?; }
            assert_no_secret(&errors, &secrets)
        })?;
    }
}

/// Whether `text` still holds `"key": "value"` (any whitespace around the
/// colon).
fn still_named(text: &str, key: &str, value: &str) -> bool {
    text.match_indices(&format!("\"{value}\"")).any(|(at, _)| {
        text[..at]
            .trim_end()
            .strip_suffix(':')
            .is_some_and(|b| b.trim_end().ends_with(&format!("\"{key}\"")))
    })
}

fn count_fields(value: &Value, n: &mut usize) {
    match value {
        Value::Object(map) => {
            for v in map.values() {
                *n += 1;
                count_fields(v, n);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| count_fields(v, n)),
        _ => {}
    }
}

/// The fixtures hold secrets for the mutation test to look for.
#[test]
fn fixtures_carry_marked_secrets() {
    let all = fixtures();
    let mut secrets = Vec::new();
    for v in all {
        secrets_in(v, &mut secrets);
    }
    assert!(secrets.len() >= 10, "{secrets:?}");
}

/// Nesting far deeper than serde_json's recursion limit is a decode error
/// for the endpoint that reads the field, not a stack overflow.
#[test]
fn very_deep_nesting_is_a_decode_error() {
    let mut body = String::from(r#"{"ret":0,"msgs":"#);
    body.push_str(&"[".repeat(100_000));
    body.push_str(&"]".repeat(100_000));
    body.push('}');
    HARNESS.with(|h| {
        // Only `getupdates` reads `msgs`; the others skip it as an unknown
        // field. Either way nothing overflows the stack.
        let errors = h.all_endpoints(200, body.as_bytes());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].is_decode(), "{errors:?}");
    });
}

/// A secret inside a cut-off body or behind a tab is still hidden.
#[test]
fn secrets_behind_whitespace_or_cut_off_are_hidden() {
    let secret = "ctx-SECRET-0123456789";
    for body in [
        format!(r#"{{"ret":0,"msgs":[{{"context_token":	"{secret}"}}],"get_updates_buf":7}}"#),
        format!(
            "{{\"ret\":0,\"msgs\":[{{\"context_token\"\n:\n\"{secret}\"}}],\"get_updates_buf\":7}}"
        ),
        format!(r#"{{"ret":0,"msgs":[{{"x":1,"context_token":"{secret}"#),
        format!(r#"{{"ret":"x","typing_ticket":"{secret}","bot_token":"{secret}"}}"#),
    ] {
        HARNESS.with(|h| {
            let errors = h.all_endpoints(200, body.as_bytes());
            assert!(!errors.is_empty(), "{body}");
            for err in &errors {
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(secret), "{body} -> {shown}");
            }
        });
    }
}
