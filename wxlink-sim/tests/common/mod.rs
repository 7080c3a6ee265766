//! A tiny HTTP client for the simulator's tests: plain hyper requests, not
//! our SDK, so the simulator is checked against the wire format itself.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use wxlink_sim::Simulator;

/// A simulator with a short hold, no `ret` omission and a fixed seed.
pub async fn sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(200))
        .omit_ret_probability(0.0)
        .start()
        .await
        .unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A client for `http://` and `https://` URLs that trusts only `root` (a
/// DER certificate, such as [`Simulator::tls_root_der`]), offering HTTP/1.1
/// by ALPN.
pub fn tls_client(root: &[u8]) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends a request and reads the whole answer.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, String> {
    send_trusting(None, method, url, headers, body).await
}

/// Sends a request over a plain client, or over a TLS-capable one trusting
/// `root` when given, and reads the whole answer.
pub async fn send_trusting(
    root: Option<&[u8]>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, String> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).unwrap();
    let sent = async {
        match root {
            None => client().request(req).await,
            Some(root) => tls_client(root).request(req).await,
        }
    };
    let resp = tokio::time::timeout(Duration::from_secs(20), sent)
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| format!("request failed: {e:?}"))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body failed: {e:?}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// The headers official client 2.4.3 sends on an authenticated POST.
fn official_headers(token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_owned()),
        ("authorizationtype", "ilink_bot_token".to_owned()),
        ("x-wechat-uin", "MzE0MTU5MjY1Mw==".to_owned()),
        ("ilink-app-id", "bot".to_owned()),
        ("ilink-app-clientversion", "132099".to_owned()),
    ];
    if let Some(t) = token {
        h.push(("authorization", format!("Bearer {t}")));
    }
    h
}

/// POSTs `body` to `<base>/ilink/bot/<endpoint>` as the official client does.
pub async fn api(sim: &Simulator, endpoint: &str, body: Value) -> Reply {
    let token = sim.token();
    api_with(sim, endpoint, Some(token.expose_secret()), body).await
}

pub async fn api_with(sim: &Simulator, endpoint: &str, token: Option<&str>, body: Value) -> Reply {
    let url = format!("{}/ilink/bot/{endpoint}", sim.base_url());
    let headers = official_headers(token);
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(
        Method::POST,
        &url,
        &refs,
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .unwrap()
}

pub async fn get(url: &str) -> Reply {
    send(Method::GET, url, &[("ilink-app-id", "bot")], Bytes::new())
        .await
        .unwrap()
}

/// A GET of `url` (`http://` or `https://`) trusting the simulator's TLS
/// root.
pub async fn get_trusting(sim: &Simulator, url: &str) -> Reply {
    send_trusting(
        Some(sim.tls_root_der()),
        Method::GET,
        url,
        &[("ilink-app-id", "bot")],
        Bytes::new(),
    )
    .await
    .unwrap()
}

pub fn base_info() -> Value {
    serde_json::json!({"channel_version": "2.4.3", "bot_agent": "SimTest/1.0"})
}

/// A well-formed text reply to `user`.
pub fn text_reply(user: &str, text: &str, context_token: Option<&str>) -> Value {
    let mut msg = serde_json::json!({
        "from_user_id": "",
        "to_user_id": user,
        "client_id": format!("sim-test:{}", rand_suffix()),
        "message_type": 2,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
    });
    if let Some(t) = context_token {
        msg["context_token"] = Value::from(t);
    }
    serde_json::json!({"msg": msg, "base_info": base_info()})
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One getupdates call with `cursor`.
pub async fn poll(sim: &Simulator, cursor: &str) -> Value {
    let r = api(
        sim,
        "getupdates",
        serde_json::json!({"get_updates_buf": cursor, "base_info": base_info()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

/// Starts the `wxlink-sim` binary with `args` and returns the process
/// (killed when dropped) and the JSON object of its first line.
pub async fn start_binary(args: &[&str]) -> (tokio::process::Child, Value) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlink-sim"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}
