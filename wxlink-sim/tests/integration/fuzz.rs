//! Arbitrary and mutated requests to every simulator endpoint over HTTP:
//! the simulator always answers. A panicking handler task would show as a
//! dropped connection, which fails these tests.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use proptest::prelude::*;
use serde_json::Value;
use wxlink_sim::Simulator;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../wxlink-proto/tests/fixtures"
);

const API: [&str; 9] = [
    "get_bot_qrcode",
    "get_qrcode_status",
    "getupdates",
    "sendmessage",
    "getconfig",
    "sendtyping",
    "getuploadurl",
    "notifystart",
    "notifystop",
];

/// Control paths; `/_sim/fault` is left out because a fault it installs may
/// legitimately drop later connections.
const CONTROL: [&str; 17] = [
    "/_sim/info",
    "/_sim/qr",
    "/_sim/inject/text",
    "/_sim/inject/message",
    "/_sim/inject/media",
    "/_sim/sent",
    "/_sim/typing",
    "/_sim/notify",
    "/_sim/uploads",
    "/_sim/requests",
    "/_sim/expire",
    "/_sim/reset",
    "/_sim/login_script",
    "/_sim/login_advance",
    "/_sim/fidelity",
    "/_sim/clock",
    "/_sim/users",
];

struct World {
    rt: tokio::runtime::Runtime,
    sim: Simulator,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(Simulator::builder().hold(Duration::from_millis(5)).start());
        World {
            rt,
            sim: sim.unwrap(),
        }
    })
}

fn request_fixtures() -> &'static [Value] {
    static F: OnceLock<Vec<Value>> = OnceLock::new();
    F.get_or_init(|| {
        let mut out: Vec<Value> = std::fs::read_dir(FIXTURES)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".req"))
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect();
        out.push(serde_json::json!({"from_user": "u@im.wechat", "text": "hi", "context_token": "c"}));
        out.push(serde_json::json!({"kind": "file", "data_base64": "aGVsbG8=", "key_encoding": "hex", "file_name": "a.txt"}));
        out.push(serde_json::json!({"path": "confirm", "code": "123", "max_attempts": 3, "step_delay_ms": 1}));
        out.push(serde_json::json!({"path": "verify_code", "code": "123", "manual": true}));
        out.push(serde_json::json!({"max_text_bytes": 10, "replies_per_inbound": 1, "burst_max_per_second": 2, "reply_window_ms": 5}));
        out.push(serde_json::json!({"advance_ms": 1000}));
        out.push(serde_json::json!({"user_id": "v@im.wechat"}));
        out
    })
}

#[derive(Debug, Clone)]
enum Target {
    Api(usize),
    Control(usize),
    CdnUpload(String),
    CdnDownload(String),
    Junk(String),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0..API.len()).prop_map(Target::Api),
        3 => (0..CONTROL.len()).prop_map(Target::Control),
        1 => "[ -~]{0,30}".prop_map(Target::CdnUpload),
        1 => "[ -~]{0,30}".prop_map(Target::CdnDownload),
        1 => "/[a-z_/%.]{0,20}".prop_map(Target::Junk),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec((any::<usize>(), mutation()), 0..4)
        )
            .prop_map(|(i, muts)| {
                let all = request_fixtures();
                let mut v = all[i.index(all.len())].clone();
                for (pick, m) in muts {
                    mutate(&mut v, pick, &m);
                }
                serde_json::to_vec(&v).unwrap()
            }),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(i, cut)| {
            let all = request_fixtures();
            let mut b = serde_json::to_vec(&all[i.index(all.len())]).unwrap();
            b.truncate(cut.index(b.len() + 1));
            b
        }),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Set(Value),
    Nest(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Delete),
        any::<i64>().prop_map(|n| Mutation::Set(n.into())),
        any::<u64>().prop_map(|n| Mutation::Set(n.into())),
        Just(Mutation::Set(Value::from(u64::MAX))),
        Just(Mutation::Set(Value::from(i64::MIN))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Mutation::Set(f.into())),
        ".{0,24}".prop_map(|s| Mutation::Set(s.into())),
        Just(Mutation::Set(Value::Null)),
        Just(Mutation::Set(Value::Bool(true))),
        Just(Mutation::Set(serde_json::json!([]))),
        Just(Mutation::Set(serde_json::json!({}))),
        (1usize..300).prop_map(Mutation::Nest),
    ]
}

fn mutate(v: &mut Value, pick: usize, m: &Mutation) {
    let mut paths = Vec::new();
    collect(v, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    let path = &paths[pick % paths.len()];
    let (last, parent) = path.split_last().unwrap();
    let mut node = &mut *v;
    for key in parent {
        node = &mut node[key.as_str()];
    }
    let Some(map) = node.as_object_mut() else {
        return;
    };
    match m {
        Mutation::Delete => {
            map.remove(last);
        }
        Mutation::Set(new) => {
            map.insert(last.clone(), new.clone());
        }
        Mutation::Nest(depth) => {
            let mut x = map.get(last).cloned().unwrap_or(Value::Null);
            for _ in 0..*depth {
                x = Value::Array(vec![x]);
            }
            map.insert(last.clone(), x);
        }
    }
}

/// Paths to every object field reachable through objects only.
fn collect(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            prefix.push(k.clone());
            out.push(prefix.clone());
            collect(child, prefix, out);
            prefix.pop();
        }
    }
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let value = prop_oneof![
        "[ -~]{0,24}".prop_map(String::into_bytes),
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..24),
    ];
    let name = prop::sample::select(vec![
        "content-type",
        "authorizationtype",
        "authorization",
        "x-wechat-uin",
        "ilink-app-id",
        "ilink-app-clientversion",
        "skroutetag",
        "content-length-x",
        "x-anything",
    ]);
    (
        prop::option::of(prop_oneof![Just(0u8), Just(1u8), Just(2u8)]),
        prop::collection::vec((name, value), 0..5),
    )
        .prop_map(|(auth, extra)| {
            let mut out: Vec<(String, Vec<u8>)> = vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("authorizationtype".into(), b"ilink_bot_token".to_vec()),
                ("x-wechat-uin".into(), b"MzE0MTU5MjY1Mw==".to_vec()),
                ("ilink-app-id".into(), b"bot".to_vec()),
                ("ilink-app-clientversion".into(), b"132099".to_vec()),
            ];
            match auth {
                Some(0) => out.push((
                    "authorization".into(),
                    format!("Bearer {}", world().sim.token().expose_secret()).into_bytes(),
                )),
                Some(1) => out.push(("authorization".into(), b"Bearer not-a-token".to_vec())),
                Some(_) => out.push(("authorization".into(), b"Basic \xff\xfe".to_vec())),
                None => {}
            }
            for (n, v) in extra {
                out.retain(|(k, _)| k != n);
                out.push((n.to_owned(), v));
            }
            out
        })
}

fn url_of(t: &Target, query: &str) -> (String, Vec<Method>) {
    let sim = &world().sim;
    match t {
        Target::Api(i) => (
            format!("{}/ilink/bot/{}{query}", sim.base_url(), API[*i]),
            vec![Method::POST, Method::GET],
        ),
        Target::Control(i) => (
            format!("{}{}", sim.base_url(), CONTROL[*i]),
            vec![Method::POST, Method::GET],
        ),
        Target::CdnUpload(p) => (
            format!(
                "{}/upload?encrypted_query_param={}&filekey={}",
                sim.cdn_base_url(),
                enc(p),
                enc(&p.chars().rev().collect::<String>())
            ),
            vec![Method::POST],
        ),
        Target::CdnDownload(p) => (
            format!(
                "{}/download?encrypted_query_param={}",
                sim.cdn_base_url(),
                enc(p)
            ),
            vec![Method::GET],
        ),
        Target::Junk(p) => (
            format!("{}{p}", sim.base_url()),
            vec![Method::POST, Method::GET, Method::PUT],
        ),
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(String, Vec<u8>)],
    body: Vec<u8>,
) -> Result<u16, String> {
    use http_body_util::{BodyExt as _, Full};
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            req = req.header(k.as_str(), v);
        }
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client().request(req))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let status = resp.status().as_u16();
    tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .map_err(|_| "body timeout".to_owned())?
        .map_err(|e| format!("body failed: {e:?}"))?;
    Ok(status)
}

fn client() -> &'static hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
> {
    static C: OnceLock<
        hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<Bytes>,
        >,
    > = OnceLock::new();
    C.get_or_init(common::client)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_request_gets_an_answer(
        t in target(),
        method_pick in any::<prop::sample::Index>(),
        hs in headers(),
        b in body(),
        query in prop_oneof![Just(String::new()), "\\?[a-z_]{1,10}=[a-zA-Z0-9_.=%&-]{0,12}"],
    ) {
        let w = world();
        let (url, methods) = url_of(&t, &query);
        let method = methods[method_pick.index(methods.len())].clone();
        let result = w.rt.block_on(send(method.clone(), &url, &hs, b.clone()));
        let status = result.map_err(|e| TestCaseError::fail(format!("{method} {url}: {e}; body {:?}", String::from_utf8_lossy(&b))))?;
        prop_assert!((200..600).contains(&status));
        // A server-side 500 would mean the handler failed where it should
        // have said what was wrong with the request.
        prop_assert!(status != 500, "{method} {url} -> 500; body {:?}", String::from_utf8_lossy(&b));
    }
}

/// Advancing the clock by absurd amounts is answered, and the simulator
/// keeps working (it used to overflow and panic in the handler).
#[test]
fn huge_clock_advances_are_answered() {
    let w = world();
    let url = format!("{}/_sim/clock", w.sim.base_url());
    for _ in 0..3 {
        let status =
            w.rt.block_on(send(
                Method::POST,
                &url,
                &[],
                format!(r#"{{"advance_ms":{}}}"#, u64::MAX).into_bytes(),
            ))
            .unwrap();
        assert_eq!(status, 200);
    }
    w.sim.advance_clock(Duration::MAX);
    let token = w.sim.token().expose_secret().to_owned();
    let hs = vec![
        ("content-type".to_owned(), b"application/json".to_vec()),
        (
            "authorization".to_owned(),
            format!("Bearer {token}").into_bytes(),
        ),
    ];
    let status =
        w.rt.block_on(send(
            Method::POST,
            &format!("{}/ilink/bot/getconfig", w.sim.base_url()),
            &hs,
            br#"{"ilink_user_id":"x@im.wechat","base_info":{}}"#.to_vec(),
        ))
        .unwrap();
    assert!((200..500).contains(&status), "{status}");
    w.sim.reset();
}
