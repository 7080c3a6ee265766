//! The JSON control API under `/_sim/`, for the standalone server and for
//! clients written in other languages. Each endpoint mirrors a
//! [`Simulator`] method:
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /_sim/info` | — | `{base_url, cdn_base_url, redirect_host, redirect_base_url, redirect_tls, tls_root_der_base64, token, bot_id, user_id}` (`tls_root_der_base64`: the CA certificate, standard base64 of its DER, a client trusts to reach the redirect listener over TLS) |
//! | `POST /_sim/inject/text` | `{from_user?, text, context_token?, quote?: {svr_id, partial?: {text, start, end}}}` | the injected message |
//! | `POST /_sim/inject/message` | a `WeixinMessage` (`from_user_id` optional; fields the protocol types do not model are delivered as given) | the injected message |
//! | `POST /_sim/inject/media` | `{from_user?, kind: image\|voice\|file\|video, data_base64, key_encoding?: hex\|base64_raw\|base64_hex, file_name?, transcript?}` | the injected message |
//! | `GET /_sim/sent`, `/_sim/typing`, `/_sim/notify`, `/_sim/uploads`, `/_sim/requests` | — | the records kept (the newest `record_limit`, or `request_log_limit` for requests), oldest first |
//! | `GET /_sim/sent?min=N&timeout_ms=T` (also `typing`, `uploads`) | — | waits until at least N records were added in all (dropped ones count) and answers those kept; 408 `{"error":…}` after T ms (default 5 000) |
//! | `GET /_sim/counts` | — | `{sent, typing, notify, uploads, requests: {total, kept}, requests_by_endpoint: {name: total}}`, all-time since the start or last reset |
//! | `POST /_sim/fault` | `{endpoint, kind, status?, body?, delay_ms?, times?, stall_ms?, after_bytes?, retry_after_s?, delays_ms?}`: see below | `{}` |
//! | `POST /_sim/expire`, `POST /_sim/reset` | — | `{}` (`expire?bot_id=` expires that account) |
//! | `GET /_sim/accounts` | — | `[{token, bot_id, user_id, valid}]`, in creation order |
//! | `POST /_sim/accounts` | `{count?}` | the accounts created |
//! | `GET /_sim/account?bot_id=…` | — | `{token, bot_id, user_id, valid, pending, polls, counts}` |
//! | `POST /_sim/accounts/expire?bot_id=…`, `/_sim/accounts/delete?bot_id=…` | — | `{}` |
//! | `GET /_sim/polls` (`?bot_id=…`) | — | `{concurrent_polls, in_flight, max_in_flight}`, of all accounts or one |
//! | `GET /_sim/truth?bot_id=…` | — | the account's ground truth `{messages: {id: {delivered, lost, copies}}}` |
//! | `POST /_sim/chaos` | `{seed, rules: [{endpoint?, probability, faults: [{kind, …}]}]}` (`{}` stops the chaos) | `{}` |
//! | `GET /_sim/chaos` | — | `{faults, log: [{request, endpoint, bot_id, kind, fault}]}` |
//! | `POST /_sim/login_script` | `{path: confirm\|redirect\|verify_code\|expired\|binded_redirect, code?, max_attempts?, user_id?, step_delay_ms?, manual?}` | `{}` |
//! | `POST /_sim/login_advance` | — | `{}` once the user of the newest QR login in progress took a step (a held status poll answers at once); 400 when none is in progress |
//! | `POST /_sim/fidelity` | `{max_text_bytes?, replies_per_inbound?, burst_max_per_second?, burst_cooldown_ms?, burst_extends?, reply_window_ms?, single_binding_per_user?, newer_poll_wins?, push_window_ms?, max_text_chars?, voice_not_shown?, reject_unknown_users?}` | `{}` |
//! | `POST /_sim/clock` | `{advance_ms}` | `{}` |
//! | `POST /_sim/users` | `{user_id}` | `{}` |
//!
//! Every endpoint that reads or injects for one account takes `?bot_id=…`
//! (the inject, record, count, `users` and `expire` endpoints, and `sent`
//! with `min`); without it they mean the default account for injection and
//! all accounts for records. An unknown `bot_id` answers 400.
//!
//! Errors answer HTTP 400 with `{"error": "<reason>"}`; unknown paths 404.
//!
//! The fault kinds of `POST /_sim/fault` and the fields each reads (any
//! kind but `delay` is applied `delay_ms` late when that is given):
//!
//! | `kind` | [`Fault`] | Fields |
//! |---|---|---|
//! | `http_status` | `HttpStatus` | `status` (503), `body` (its text) |
//! | `delay` | `Delay` | `delay_ms` |
//! | `drop_connection` | `DropConnection` | — |
//! | `truncated_body` | `TruncatedBody` | — |
//! | `invalid_json` | `InvalidJson` | — |
//! | `session_expired`, `session_expired_ret` | `SessionExpired`, `SessionExpiredRet` | — |
//! | `json` | `Json` | `body` (a string, or any JSON value sent as its text) |
//! | `stall_body` | `StallBody` | `stall_ms` |
//! | `stall_upload` | `StallUpload` | `after_bytes` (0), `stall_ms` |
//! | `reset_upload` | `ResetUpload` | `after_bytes` (0) |
//! | `retry_after` | `RetryAfter` | `status` (503), `retry_after_s` (1) |
//! | `lose_response` | `LoseResponse` | — |
//! | `duplicate` | `Duplicate` | `delays_ms` (1 000 and 2 400 000) |

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use wxlink_media::{KeyEncoding, MediaKind};
use wxlink_proto::WeixinMessage;

use crate::body::SimBody;
use crate::chaos::{Chaos, ChaosRule};
use crate::config::{Fidelity, Throttle};
use crate::fault::Fault;
use crate::http::{json, json_response, read_body, status};
use crate::inbound::{InboundMessage, PartialQuote};
use crate::qr::LoginScript;
use crate::sim::{Account, Simulator};
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
    quote: Option<QuoteIn>,
}

/// A quote by id: `{svr_id, partial?: {text, start, end}}`.
#[derive(Deserialize)]
struct QuoteIn {
    svr_id: u64,
    partial: Option<PartialIn>,
}

#[derive(Deserialize)]
struct PartialIn {
    text: String,
    start: u64,
    end: u64,
}

#[derive(Deserialize, Default)]
struct CreateIn {
    count: Option<usize>,
}

#[derive(Deserialize)]
struct ChaosIn {
    seed: Option<u64>,
    #[serde(default)]
    rules: Vec<ChaosRuleIn>,
}

#[derive(Deserialize)]
struct ChaosRuleIn {
    endpoint: Option<String>,
    probability: f64,
    faults: Vec<FaultIn>,
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
    endpoint: Option<String>,
    kind: String,
    status: Option<u16>,
    /// A string is used as it is; any other JSON value as its JSON text.
    body: Option<serde_json::Value>,
    delay_ms: Option<u64>,
    times: Option<u32>,
    stall_ms: Option<u64>,
    after_bytes: Option<u64>,
    retry_after_s: Option<u64>,
    delays_ms: Option<Vec<u64>>,
}

impl FaultIn {
    /// The fault this input describes.
    fn fault(&self) -> Result<Fault, String> {
        let mut fault = match self.kind.as_str() {
            "http_status" => Fault::HttpStatus(
                self.status.unwrap_or(503),
                self.body_text().unwrap_or_default(),
            ),
            "delay" => Fault::Delay(Duration::from_millis(self.delay_ms.unwrap_or(0))),
            "drop_connection" => Fault::DropConnection,
            "truncated_body" => Fault::TruncatedBody,
            "invalid_json" => Fault::InvalidJson,
            "session_expired" => Fault::SessionExpired,
            "session_expired_ret" => Fault::SessionExpiredRet,
            "json" => match self.body_text() {
                Some(body) => Fault::Json(body),
                None => return Err("a json fault needs a body".to_owned()),
            },
            "stall_body" => Fault::StallBody(Duration::from_millis(
                self.stall_ms.ok_or("a stall_body fault needs stall_ms")?,
            )),
            "stall_upload" => Fault::StallUpload {
                after: self.after_bytes.unwrap_or(0),
                stall: Duration::from_millis(
                    self.stall_ms.ok_or("a stall_upload fault needs stall_ms")?,
                ),
            },
            "reset_upload" => Fault::ResetUpload {
                after: self.after_bytes.unwrap_or(0),
            },
            "retry_after" => Fault::RetryAfter(
                self.status.unwrap_or(503),
                Duration::from_secs(self.retry_after_s.unwrap_or(1)),
            ),
            "lose_response" => Fault::LoseResponse,
            "duplicate" => match &self.delays_ms {
                Some(ms) => {
                    Fault::Duplicate(ms.iter().copied().map(Duration::from_millis).collect())
                }
                None => Fault::duplicate(),
            },
            other => return Err(format!("unknown fault kind {other}")),
        };
        if let (Some(ms), false) = (self.delay_ms, self.kind == "delay") {
            fault = fault.after(Duration::from_millis(ms));
        }
        Ok(fault)
    }

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
    #[serde(default)]
    burst_extends: bool,
    #[serde(default)]
    newer_poll_wins: bool,
    push_window_ms: Option<u64>,
    max_text_chars: Option<usize>,
    #[serde(default)]
    voice_not_shown: bool,
    #[serde(default)]
    reject_unknown_users: bool,
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
    let account = match crate::http::query_param(query.as_deref(), "bot_id") {
        None => None,
        Some(bot_id) => match sim.account(&bot_id) {
            Some(a) => Some(a),
            None => return bad(format!("unknown account {bot_id:?}")),
        },
    };
    if method == Method::GET
        && let Some(min) = crate::http::query_param(query.as_deref(), "min")
    {
        return wait_for(&sim, account.as_ref(), &path, &min, query.as_deref()).await;
    }
    let result = route(&sim, account.as_ref(), &method, &path, &body);
    result.unwrap_or_else(bad)
}

/// `GET /_sim/{sent,typing,uploads}?min=N&timeout_ms=T`.
async fn wait_for(
    sim: &Simulator,
    account: Option<&Account>,
    path: &str,
    min: &str,
    query: Option<&str>,
) -> Response<SimBody> {
    let Ok(n) = min.parse::<usize>() else {
        return bad("min must be a number");
    };
    let ms = crate::http::query_param(query, "timeout_ms")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(5_000);
    let timeout = Duration::from_millis(ms);
    let result = match (path, account) {
        ("/_sim/sent", Some(a)) => a.wait_for_sent(n, timeout).await.map(|v| json(&v)),
        (_, Some(_)) => return bad("only /_sim/sent waits for one account"),
        _ => match path {
            "/_sim/sent" => sim.wait_for_sent(n, timeout).await.map(|v| json(&v)),
            "/_sim/typing" => sim.wait_for_typing(n, timeout).await.map(|v| json(&v)),
            "/_sim/uploads" => sim.wait_for_uploads(n, timeout).await.map(|v| json(&v)),
            _ => return status(StatusCode::NOT_FOUND, "unknown control endpoint"),
        },
    };
    result.unwrap_or_else(|e| {
        let mut resp = bad(e.to_string());
        *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
        resp
    })
}

/// `{token, bot_id, user_id, valid}` of an account.
fn account_summary(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "token": a.token().expose_secret(),
        "bot_id": a.bot_id(),
        "user_id": a.user_id(),
        "valid": a.is_valid(),
    })
}

fn route(
    sim: &Simulator,
    account: Option<&Account>,
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
            let mut msg = InboundMessage::text(input.from_user.unwrap_or_default(), input.text);
            if let Some(t) = input.context_token {
                msg = msg.context_token(t);
            }
            if let Some(q) = input.quote {
                let partial = q
                    .partial
                    .map(|p| PartialQuote::new(&p.text, p.start, p.end));
                msg = msg.quote_by_id(q.svr_id, partial);
            }
            json(&inject(sim, account, msg)?)
        }
        "/_sim/inject/message" if post => {
            // The raw JSON goes out as given (fields the protocol types do
            // not model included), completed like any injected message.
            let raw: serde_json::Value = parse(body)?;
            let msg: WeixinMessage =
                serde_json::from_value(raw.clone()).map_err(|e| format!("invalid message: {e}"))?;
            json(&inject(
                sim,
                account,
                InboundMessage::from(msg).wire_patch(raw),
            )?)
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
            let from = input.from_user.unwrap_or_default();
            json(&inject(sim, account, InboundMessage::new(from).item(item))?)
        }
        "/_sim/sent" if get => match account {
            Some(a) => json(&a.sent_messages()),
            None => json(&sim.sent_messages()),
        },
        "/_sim/typing" if get => match account {
            Some(a) => json(&a.typing_calls()),
            None => json(&sim.typing_calls()),
        },
        "/_sim/notify" if get => match account {
            Some(a) => json(&a.notify_calls()),
            None => json(&sim.notify_calls()),
        },
        "/_sim/uploads" if get => match account {
            Some(a) => json(&a.uploads()),
            None => json(&sim.uploads()),
        },
        "/_sim/requests" if get => match account {
            Some(a) => json(&a.request_log()),
            None => json(&sim.request_log()),
        },
        "/_sim/counts" if get => match account {
            Some(a) => json(&a.record_counts()),
            None => json(&sim.record_counts()),
        },
        "/_sim/fault" if post => {
            let input: FaultIn = parse(body)?;
            let endpoint = input.endpoint.clone().ok_or("a fault needs an endpoint")?;
            sim.inject_fault(&endpoint, input.fault()?, input.times.unwrap_or(1))
                .map_err(|e| e.to_string())?;
            ok()
        }
        "/_sim/chaos" if post => {
            let input: ChaosIn = parse(body)?;
            let chaos = match input.seed {
                None if input.rules.is_empty() => None,
                seed => {
                    let mut chaos = Chaos::new(seed.unwrap_or(0));
                    for rule in input.rules {
                        chaos.rules.push(ChaosRule {
                            endpoint: rule.endpoint,
                            probability: rule.probability,
                            faults: rule
                                .faults
                                .iter()
                                .map(FaultIn::fault)
                                .collect::<Result<_, _>>()?,
                        });
                    }
                    Some(chaos)
                }
            };
            sim.set_chaos(chaos).map_err(|e| e.to_string())?;
            ok()
        }
        "/_sim/chaos" if get => json(&serde_json::json!({
            "faults": sim.chaos_faults(),
            "log": sim.chaos_log(),
        })),
        "/_sim/polls" if get => match account {
            Some(a) => json(&a.poll_counts()),
            None => json(&sim.poll_counts()),
        },
        "/_sim/accounts" if get => json(
            &sim.accounts()
                .iter()
                .map(account_summary)
                .collect::<Vec<_>>(),
        ),
        "/_sim/accounts" if post => {
            let input: CreateIn = parse(body)?;
            let created = sim.create_accounts(input.count.unwrap_or(1));
            json(&created.iter().map(account_summary).collect::<Vec<_>>())
        }
        "/_sim/account" if get => {
            let a = account.cloned().unwrap_or_else(|| sim.default_account());
            let mut v = account_summary(&a);
            v["pending"] = a.pending_messages().into();
            v["polls"] = serde_json::to_value(a.poll_counts()).unwrap_or_default();
            v["counts"] = serde_json::to_value(a.record_counts()).unwrap_or_default();
            json(&v)
        }
        "/_sim/accounts/expire" if post => {
            account
                .ok_or("bot_id is required")?
                .expire()
                .map_err(|e| e.to_string())?;
            ok()
        }
        "/_sim/accounts/delete" if post => {
            account
                .ok_or("bot_id is required")?
                .delete()
                .map_err(|e| e.to_string())?;
            ok()
        }
        "/_sim/truth" if get => {
            let a = account.cloned().unwrap_or_else(|| sim.default_account());
            json(&a.ground_truth())
        }
        "/_sim/expire" if post => {
            match account {
                Some(a) => a.expire().map_err(|e| e.to_string())?,
                None => sim.expire_session(),
            }
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
                    .extending(input.burst_extends)
                }),
                reply_window: input.reply_window_ms.map(Duration::from_millis),
                single_binding_per_user: input.single_binding_per_user,
                newer_poll_wins: input.newer_poll_wins,
                push_window: input.push_window_ms.map(Duration::from_millis),
                max_text_chars: input.max_text_chars,
                voice_not_shown: input.voice_not_shown,
                reject_unknown_users: input.reject_unknown_users,
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
            match account {
                Some(a) => a.add_user(input.user_id),
                None => sim.add_user(input.user_id),
            }
            ok()
        }
        _ => status(StatusCode::NOT_FOUND, "unknown control endpoint"),
    })
}

/// Injects into `account`, or into the default account; an empty sender
/// means the account's owner.
fn inject(
    sim: &Simulator,
    account: Option<&Account>,
    msg: InboundMessage,
) -> Result<crate::inbound::InjectedMessage, String> {
    match account {
        Some(a) => a.inject_message(msg).map_err(|e| e.to_string()),
        None => Ok(sim.inject_message(msg)),
    }
}
