//! The JSON control API under `/_sim/`, for the standalone server and for
//! clients written in other languages. Each endpoint mirrors a
//! [`Simulator`] method:
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /_sim/info` | — | `{base_url, cdn_base_url, redirect_host, redirect_base_url, redirect_tls, tls_root_der_base64, token, bot_id, user_id}` (`tls_root_der_base64`: the CA certificate, standard base64 of its DER, a client trusts to reach the redirect listener over TLS) |
//! | `POST /_sim/inject/text` | `{from_user?, text, context_token?}` | the injected message |
//! | `POST /_sim/inject/message` | a `WeixinMessage` (`from_user_id` optional) | the injected message |
//! | `POST /_sim/inject/media` | `{from_user?, kind: image\|voice\|file\|video, data_base64, key_encoding?: hex\|base64_raw\|base64_hex, file_name?, transcript?}` | the injected message |
//! | `GET /_sim/sent`, `/_sim/typing`, `/_sim/notify`, `/_sim/uploads`, `/_sim/requests` | — | the records kept (the newest `record_limit`, or `request_log_limit` for requests), oldest first |
//! | `GET /_sim/sent?min=N&timeout_ms=T` (also `typing`, `uploads`) | — | waits until at least N records were added in all (dropped ones count) and answers those kept; 408 `{"error":…}` after T ms (default 5 000) |
//! | `GET /_sim/counts` | — | `{sent, typing, notify, uploads, requests: {total, kept}, requests_by_endpoint: {name: total}}`, all-time since the start or last reset |
//! | `POST /_sim/fault` | `{endpoint, kind: http_status\|delay\|drop_connection\|truncated_body\|invalid_json\|session_expired\|session_expired_ret\|json, status?, body?, delay_ms?, times?}` (`body` is the text of `http_status` and the JSON of `json`, a string or any JSON value) | `{}` |
//! | `POST /_sim/expire`, `POST /_sim/reset` | — | `{}` |
//! | `POST /_sim/login_script` | `{path: confirm\|redirect\|verify_code\|expired\|binded_redirect, code?, max_attempts?, user_id?, step_delay_ms?, manual?}` | `{}` |
//! | `POST /_sim/login_advance` | — | `{}` once the user of the newest QR login in progress took a step (a held status poll answers at once); 400 when none is in progress |
//! | `POST /_sim/fidelity` | `{max_text_bytes?, replies_per_inbound?, burst_max_per_second?, burst_cooldown_ms?, reply_window_ms?, single_binding_per_user?}` | `{}` |
//! | `POST /_sim/clock` | `{advance_ms}` | `{}` |
//! | `POST /_sim/users` | `{user_id}` | `{}` |
//!
//! Errors answer HTTP 400 with `{"error": "<reason>"}`; unknown paths 404.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use wxlink_media::{KeyEncoding, MediaKind};
use wxlink_proto::WeixinMessage;

use crate::Simulator;
use crate::body::SimBody;
use crate::config::{Fidelity, Throttle};
use crate::fault::Fault;
use crate::inbound::InboundMessage;
use crate::login::LoginScript;
use crate::server::{json, json_response, read_body, status};
use crate::state::Shared;

fn bad(reason: impl Into<String>) -> Response<SimBody> {
    let mut resp = json(&serde_json::json!({ "error": reason.into() }));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

#[derive(Deserialize)]
struct TextIn {
    from_user: Option<String>,
    text: String,
    context_token: Option<String>,
}

#[derive(Deserialize)]
struct MediaIn {
    from_user: Option<String>,
    kind: String,
    data_base64: String,
    key_encoding: Option<String>,
    file_name: Option<String>,
    transcript: Option<String>,
}

#[derive(Deserialize)]
struct FaultIn {
    endpoint: String,
    kind: String,
    status: Option<u16>,
    /// A string is used as it is; any other JSON value as its JSON text.
    body: Option<serde_json::Value>,
    delay_ms: Option<u64>,
    times: Option<u32>,
}

impl FaultIn {
    /// The body as text: a JSON string unquoted, anything else serialized.
    fn body_text(&self) -> Option<String> {
        self.body.as_ref().map(|b| match b {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct ScriptIn {
    path: String,
    code: Option<String>,
    max_attempts: Option<u32>,
    user_id: Option<String>,
    step_delay_ms: Option<u64>,
    #[serde(default)]
    manual: bool,
}

#[derive(Deserialize, Default)]
struct FidelityIn {
    max_text_bytes: Option<usize>,
    replies_per_inbound: Option<u32>,
    burst_max_per_second: Option<u32>,
    burst_cooldown_ms: Option<u64>,
    reply_window_ms: Option<u64>,
    #[serde(default)]
    single_binding_per_user: bool,
}

#[derive(Deserialize)]
struct ClockIn {
    advance_ms: u64,
}

#[derive(Deserialize)]
struct UserIn {
    user_id: String,
}

/// Answers one control request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<SimBody> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match read_body(req.into_body(), shared.config.max_json_body.max(64 << 20)).await {
        Ok(b) => b,
        Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE, "control body too large"),
    };
    let sim = Simulator::view(shared);
    if method == Method::GET
        && let Some(min) = crate::cdn::query_param(query.as_deref(), "min")
    {
        return wait_for(&sim, &path, &min, query.as_deref()).await;
    }
    let result = route(&sim, &method, &path, &body);
    result.unwrap_or_else(bad)
}

/// `GET /_sim/{sent,typing,uploads}?min=N&timeout_ms=T`.
async fn wait_for(
    sim: &Simulator,
    path: &str,
    min: &str,
    query: Option<&str>,
) -> Response<SimBody> {
    let Ok(n) = min.parse::<usize>() else {
        return bad("min must be a number");
    };
    let ms = crate::cdn::query_param(query, "timeout_ms")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(5_000);
    let timeout = Duration::from_millis(ms);
    let result = match path {
        "/_sim/sent" => sim.wait_for_sent(n, timeout).await.map(|v| json(&v)),
        "/_sim/typing" => sim.wait_for_typing(n, timeout).await.map(|v| json(&v)),
        "/_sim/uploads" => sim.wait_for_uploads(n, timeout).await.map(|v| json(&v)),
        _ => return status(StatusCode::NOT_FOUND, "unknown control endpoint"),
    };
    result.unwrap_or_else(|e| {
        let mut resp = bad(e.to_string());
        *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
        resp
    })
}

fn route(
    sim: &Simulator,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Response<SimBody>, String> {
    let ok = || json_response("{}");
    let get = method == Method::GET;
    let post = method == Method::POST;
    Ok(match path {
        "/_sim/info" if get => json(&serde_json::json!({
            "base_url": sim.base_url(),
            "cdn_base_url": sim.cdn_base_url(),
            "redirect_host": sim.redirect_host(),
            "redirect_base_url": sim.redirect_base_url(),
            "redirect_tls": sim.config().redirect_tls,
            "tls_root_der_base64": base64::engine::general_purpose::STANDARD.encode(sim.tls_root_der()),
            "token": sim.token().expose_secret(),
            "bot_id": sim.bot_id(),
            "user_id": sim.user_id(),
        })),
        "/_sim/qr" if get => status(
            StatusCode::OK,
            "simulated QR code: drive the login with /_sim/login_script",
        ),
        "/_sim/inject/text" if post => {
            let input: TextIn = parse(body)?;
            let from = input.from_user.unwrap_or_else(|| sim.user_id());
            let mut msg = InboundMessage::text(from, input.text);
            if let Some(t) = input.context_token {
                msg = msg.context_token(t);
            }
            json(&sim.inject_message(msg))
        }
        "/_sim/inject/message" if post => {
            let msg: WeixinMessage = parse(body)?;
            json(&sim.inject_message(msg))
        }
        "/_sim/inject/media" if post => {
            let input: MediaIn = parse(body)?;
            let kind = match input.kind.as_str() {
                "image" => MediaKind::Image,
                "voice" => MediaKind::Voice,
                "file" => MediaKind::File,
                "video" => MediaKind::Video,
                other => return Err(format!("unknown media kind {other}")),
            };
            let encoding = match input.key_encoding.as_deref() {
                Some("hex") => KeyEncoding::Hex,
                Some("base64_raw") => KeyEncoding::Base64Raw,
                Some("base64_hex") => KeyEncoding::Base64Hex,
                None if kind == MediaKind::Image => KeyEncoding::Base64Raw,
                None => KeyEncoding::Base64Hex,
                Some(other) => return Err(format!("unknown key encoding {other}")),
            };
            let data = base64::engine::general_purpose::STANDARD
                .decode(input.data_base64.as_bytes())
                .map_err(|_| "data_base64 is not base64".to_owned())?;
            let mut item = sim
                .media_item(kind, &data, encoding)
                .map_err(|e| e.to_string())?;
            if let (Some(name), Some(file)) = (input.file_name, item.file_item.as_mut()) {
                file.file_name = Some(name);
            }
            if let (Some(text), Some(voice)) = (input.transcript, item.voice_item.as_mut()) {
                voice.text = Some(text);
            }
            let from = input.from_user.unwrap_or_else(|| sim.user_id());
            json(&sim.inject_message(InboundMessage::new(from).item(item)))
        }
        "/_sim/sent" if get => json(&sim.sent_messages()),
        "/_sim/typing" if get => json(&sim.typing_calls()),
        "/_sim/notify" if get => json(&sim.notify_calls()),
        "/_sim/uploads" if get => json(&sim.uploads()),
        "/_sim/requests" if get => json(&sim.request_log()),
        "/_sim/counts" if get => json(&sim.record_counts()),
        "/_sim/fault" if post => {
            let input: FaultIn = parse(body)?;
            let mut fault = match input.kind.as_str() {
                "http_status" => Fault::HttpStatus(
                    input.status.unwrap_or(503),
                    input.body_text().unwrap_or_default(),
                ),
                "delay" => Fault::Delay(Duration::from_millis(input.delay_ms.unwrap_or(0))),
                "drop_connection" => Fault::DropConnection,
                "truncated_body" => Fault::TruncatedBody,
                "invalid_json" => Fault::InvalidJson,
                "session_expired" => Fault::SessionExpired,
                "session_expired_ret" => Fault::SessionExpiredRet,
                "json" => match input.body_text() {
                    Some(body) => Fault::Json(body),
                    None => return Err("a json fault needs a body".to_owned()),
                },
                other => return Err(format!("unknown fault kind {other}")),
            };
            if let (Some(ms), false) = (input.delay_ms, input.kind == "delay") {
                fault = fault.after(Duration::from_millis(ms));
            }
            sim.inject_fault(&input.endpoint, fault, input.times.unwrap_or(1))
                .map_err(|e| e.to_string())?;
            ok()
        }
        "/_sim/expire" if post => {
            sim.expire_session();
            ok()
        }
        "/_sim/reset" if post => {
            sim.reset();
            ok()
        }
        "/_sim/login_script" if post => {
            let input: ScriptIn = parse(body)?;
            let mut script = match input.path.as_str() {
                "confirm" => LoginScript::confirm(),
                "redirect" | "scaned_but_redirect" => LoginScript::redirect(),
                "verify_code" | "need_verifycode" => LoginScript::verify_code(
                    input.code.unwrap_or_else(|| "123456".into()),
                    input.max_attempts.unwrap_or(3),
                ),
                "expired" => LoginScript::expired(),
                "binded_redirect" => LoginScript::binded_redirect(),
                other => return Err(format!("unknown login path {other}")),
            };
            if let Some(user) = input.user_id {
                script = script.user(user);
            }
            if let Some(ms) = input.step_delay_ms {
                script = script.step_delay(Duration::from_millis(ms));
            }
            if input.manual {
                script = script.manual();
            }
            sim.script_login(script);
            ok()
        }
        "/_sim/login_advance" if post => {
            if !sim.advance_login() {
                return Err("no QR login in progress".to_owned());
            }
            ok()
        }
        "/_sim/fidelity" if post => {
            let input: FidelityIn = parse(body)?;
            let fidelity = Fidelity {
                max_text_bytes: input.max_text_bytes,
                replies_per_inbound: input.replies_per_inbound,
                burst_throttle: input.burst_max_per_second.map(|n| {
                    Throttle::new(
                        n,
                        Duration::from_millis(input.burst_cooldown_ms.unwrap_or(3_600_000)),
                    )
                }),
                reply_window: input.reply_window_ms.map(Duration::from_millis),
                single_binding_per_user: input.single_binding_per_user,
            };
            sim.set_fidelity(fidelity);
            ok()
        }
        "/_sim/clock" if post => {
            let input: ClockIn = parse(body)?;
            sim.advance_clock(Duration::from_millis(input.advance_ms));
            ok()
        }
        "/_sim/users" if post => {
            let input: UserIn = parse(body)?;
            sim.add_user(input.user_id);
            ok()
        }
        _ => status(StatusCode::NOT_FOUND, "unknown control endpoint"),
    })
}
