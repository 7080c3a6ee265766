//! The HTTP side: two loopback listeners (the main one, plain HTTP, and
//! the redirect host, TLS unless configured off), one task per connection
//! serving HTTP/1.1 and HTTP/2 (h2c on plain connections), routing, fault
//! injection, authentication and the request log.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::body::SimBody;
use crate::fault::Fault;
use crate::http::{
    Answer, Call, Dropped, RequestBody, SESSION_EXPIRED, SESSION_EXPIRED_RET, cdn_error, drain,
    json_response, read_body, status, wait_shutdown,
};
use crate::records::{AuthSeen, RequestRecord};
use crate::state::Shared;

/// How long a shutdown waits for open connections to finish.
const DRAIN: Duration = Duration::from_secs(2);

/// How long a client may take over its TLS handshake before the connection
/// is dropped, so a silent client cannot hold a task forever.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The endpoints the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    GetBotQrcode,
    GetQrcodeStatus,
    GetUpdates,
    SendMessage,
    GetConfig,
    SendTyping,
    GetUploadUrl,
    NotifyStart,
    NotifyStop,
    CdnUpload,
    CdnDownload,
}

impl Route {
    /// The endpoint's name, as used for faults and in the request log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetBotQrcode => "get_bot_qrcode",
            Self::GetQrcodeStatus => "get_qrcode_status",
            Self::GetUpdates => "getupdates",
            Self::SendMessage => "sendmessage",
            Self::GetConfig => "getconfig",
            Self::SendTyping => "sendtyping",
            Self::GetUploadUrl => "getuploadurl",
            Self::NotifyStart => "notifystart",
            Self::NotifyStop => "notifystop",
            Self::CdnUpload => "cdn_upload",
            Self::CdnDownload => "cdn_download",
        }
    }

    /// Whether the endpoint needs `Authorization: Bearer <token>`.
    fn needs_auth(self) -> bool {
        !matches!(
            self,
            Self::GetBotQrcode | Self::GetQrcodeStatus | Self::CdnUpload | Self::CdnDownload
        )
    }

    fn is_cdn(self) -> bool {
        matches!(self, Self::CdnUpload | Self::CdnDownload)
    }

    /// Routes a request by method and path. The path may carry any prefix
    /// before `ilink/bot/…` (the API base URL may carry a path, see
    /// `docs/protocol.md`, Endpoints), and any prefix before the CDN's
    /// `upload` and `download`.
    fn find(method: &Method, path: &str) -> Option<Self> {
        const API: &[(&str, Route)] = &[
            ("ilink/bot/get_bot_qrcode", Route::GetBotQrcode),
            ("ilink/bot/get_qrcode_status", Route::GetQrcodeStatus),
            ("ilink/bot/getupdates", Route::GetUpdates),
            ("ilink/bot/sendmessage", Route::SendMessage),
            ("ilink/bot/getconfig", Route::GetConfig),
            ("ilink/bot/sendtyping", Route::SendTyping),
            ("ilink/bot/getuploadurl", Route::GetUploadUrl),
            ("ilink/bot/msg/notifystart", Route::NotifyStart),
            ("ilink/bot/msg/notifystop", Route::NotifyStop),
            ("upload", Route::CdnUpload),
            ("download", Route::CdnDownload),
        ];
        let route = API
            .iter()
            .find(|(suffix, _)| {
                path.strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('/'))
            })
            .map(|(_, r)| *r)?;
        let ok = match route {
            Self::GetBotQrcode => method == Method::GET || method == Method::POST,
            Self::GetQrcodeStatus | Self::CdnDownload => method == Method::GET,
            _ => method == Method::POST,
        };
        ok.then_some(route)
    }
}

/// Starts serving `listener` until shutdown, over TLS when `tls` is given;
/// returns the accept task.
pub(crate) fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    redirect: bool,
    tls: Option<TlsAcceptor>,
) -> tokio::task::JoinHandle<()> {
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors or a similar transient
                        // error: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    match &tls {
                        None => {
                            conns.spawn(connection(shared.clone(), stream, redirect));
                        }
                        Some(acceptor) => {
                            conns.spawn(tls_connection(
                                shared.clone(),
                                acceptor.clone(),
                                stream,
                                redirect,
                            ));
                        }
                    }
                }
                _ = wait_shutdown(&mut shutdown) => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        let drained =
            tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            conns.abort_all();
        }
    })
}

/// Completes the TLS handshake on `stream`, then serves it like a plain
/// connection. A client that does not speak TLS (a plain HTTP request, for
/// one) fails the handshake and is disconnected without an HTTP answer.
async fn tls_connection(
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    redirect: bool,
) {
    let mut shutdown = shared.shutdown.clone();
    let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "tls handshake failed on the redirect listener");
                return;
            }
            Err(_) => return,
        },
        _ = wait_shutdown(&mut shutdown) => return,
    };
    connection(shared, stream, redirect).await;
}

/// Serves one connection, HTTP/1.1 or HTTP/2 (h2c when plain), until it
/// closes or the simulator shuts down.
async fn connection<S>(shared: Arc<Shared>, stream: S, redirect: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut shutdown = shared.shutdown.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { handle(shared, req, redirect).await }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = wait_shutdown(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    redirect: bool,
) -> Result<Response<SimBody>, Dropped> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_sim/") || path == "/_sim" {
        return Ok(crate::control::handle(shared, req).await);
    }
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let mut record = RequestRecord {
        at: SystemTime::now(),
        method: method.to_string(),
        http_version: format!("{:?}", req.version()),
        path: path.clone(),
        query: query.clone(),
        endpoint: None,
        headers: req
            .headers()
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION)
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        auth: AuthSeen::Missing,
        bot_id: None,
        body_size: 0,
        status: 0,
        note: None,
        redirect_listener: redirect,
    };
    let Some(route) = Route::find(&method, &path) else {
        let (_, mut body) = req.into_parts();
        record.body_size = drain(&mut body).await;
        record.status = 404;
        finish(&shared, record);
        return Ok(status(StatusCode::NOT_FOUND, "not found"));
    };
    record.endpoint = Some(route.name());

    // Bearer check, before anything else so the log knows.
    let token = bearer(req.headers());
    let authed = token
        .as_deref()
        .and_then(|t| shared.state().bot_for(t).map(|b| (b.id, b.bot_id.clone())));
    record.auth = match (&authed, req.headers().contains_key(header::AUTHORIZATION)) {
        (Some(_), _) => AuthSeen::Valid,
        (None, true) => AuthSeen::Rejected,
        _ => AuthSeen::Missing,
    };
    let account = authed.as_ref().map(|(id, _)| *id);
    record.bot_id = authed.map(|(_, bot)| bot);

    // Faults come first: they stand for what the network or a gateway in
    // front of the server does.
    let mut fault = {
        let mut st = shared.state();
        match st.faults.take(route.name()) {
            Some(f) => Some(f),
            None => st.chaos.draw(route.name(), record.bot_id.as_deref()),
        }
    };
    while let Some(f) = fault.take() {
        match f {
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                fault = Some(*inner);
            }
            other => {
                fault = Some(other);
                break;
            }
        }
    }
    // What the fault does after the handler ran, if anything.
    let mut after = After::default();
    let early = match fault {
        Some(Fault::TruncatedBody) => {
            after.truncate = true;
            None
        }
        Some(Fault::StallBody(d)) => {
            after.stall = Some(d);
            None
        }
        Some(Fault::LoseResponse) => {
            after.lose = true;
            None
        }
        Some(Fault::Duplicate(delays)) => {
            after.redeliver = delays;
            None
        }
        Some(f @ (Fault::StallUpload { .. } | Fault::ResetUpload { .. })) => {
            after.gate = Some(f);
            None
        }
        other => other,
    };
    if let Some(f) = early {
        let (_, mut body) = req.into_parts();
        record.body_size = drain(&mut body).await;
        // A JSON body is the test's own text and may stage a ticket or a
        // token, so the log names only its size.
        record.note = Some(match &f {
            Fault::Json(body) => format!("injected fault Json(<{} bytes>)", body.len()),
            other => format!("injected fault {other:?}"),
        });
        let resp = match f {
            Fault::HttpStatus(code, text) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                if route.is_cdn() {
                    cdn_error(code, &text)
                } else {
                    status(code, &text)
                }
            }
            Fault::RetryAfter(code, wait) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let text = code.canonical_reason().unwrap_or("unavailable");
                let mut resp = if route.is_cdn() {
                    cdn_error(code, text)
                } else {
                    status(code, text)
                };
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(wait)),
                );
                resp
            }
            Fault::InvalidJson => json_response(r#"{"ret":0,"msgs":[{"seq":1,"#),
            Fault::SessionExpired => json_response(SESSION_EXPIRED),
            Fault::SessionExpiredRet => json_response(SESSION_EXPIRED_RET),
            Fault::Json(body) => json_response(body),
            // Drop, and anything added later: close without an answer.
            _ => {
                finish(&shared, record);
                return Err(Dropped);
            }
        };
        record.status = resp.status().as_u16();
        finish(&shared, record);
        return Ok(resp);
    }

    let (parts, body) = req.into_parts();
    let mut body = RequestBody::new(body);
    match after.gate.take() {
        Some(Fault::ResetUpload { after: n }) => {
            record.body_size = body.buffer(n).await;
            record.note = Some(format!("injected fault ResetUpload after {n} bytes"));
            finish(&shared, record);
            return Err(Dropped);
        }
        Some(Fault::StallUpload { after: n, stall }) => {
            body.buffer(n).await;
            tokio::time::sleep(stall).await;
        }
        _ => {}
    }
    let answer = if route == Route::CdnUpload {
        let (answer, size) =
            crate::cdn::upload(&shared, query.as_deref(), &parts.headers, body).await;
        record.body_size = size;
        answer
    } else {
        let bytes = match read_body(body, shared.config.max_json_body).await {
            Ok(b) => b,
            Err(size) => {
                record.body_size = size;
                record.status = 413;
                finish(&shared, record);
                return Ok(status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                ));
            }
        };
        record.body_size = bytes.len() as u64;
        if route.needs_auth() && account.is_none() {
            Answer::refused(
                json_response(SESSION_EXPIRED),
                "missing or unknown bot token",
            )
        } else {
            let call = Call {
                query,
                body: bytes,
                account,
                redirect,
                answer_lost: after.truncate || after.lose,
                redeliver: std::mem::take(&mut after.redeliver),
            };
            dispatch(&shared, route, call).await
        }
    };
    record.note = answer.note;
    record.status = answer.response.status().as_u16();
    if after.lose {
        record.status = 0;
        let note = record
            .note
            .take()
            .map_or_else(String::new, |n| format!(" ({n})"));
        record.note = Some(format!("injected fault LoseResponse{note}"));
        finish(&shared, record);
        return Err(Dropped);
    }
    finish(&shared, record);
    let mut resp = answer.response;
    if after.truncate {
        resp = truncate_response(resp).await;
    }
    if let Some(stall) = after.stall {
        resp = resp.map(|body| body.stalled(stall));
    }
    Ok(resp)
}

/// What an injected fault does once the handler has run.
#[derive(Default)]
struct After {
    /// Cut the response body half way.
    truncate: bool,
    /// Send the headers, then hold the body back this long.
    stall: Option<Duration>,
    /// Close the connection instead of answering.
    lose: bool,
    /// Queue delivered messages again after these delays.
    redeliver: Vec<Duration>,
    /// A `StallUpload` or `ResetUpload` applied before the handler runs.
    gate: Option<Fault>,
}

/// A `Retry-After` value: whole seconds, rounded up.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

async fn dispatch(shared: &Arc<Shared>, route: Route, call: Call) -> Answer {
    match route {
        Route::GetBotQrcode => crate::login::get_bot_qrcode(shared, call),
        Route::GetQrcodeStatus => crate::login::get_qrcode_status(shared, call).await,
        Route::GetUpdates => crate::api::getupdates(shared, call).await,
        Route::SendMessage => crate::api::sendmessage(shared, call),
        Route::GetConfig => crate::api::getconfig(shared, call),
        Route::SendTyping => crate::api::sendtyping(shared, call),
        Route::GetUploadUrl => crate::api::getuploadurl(shared, call),
        Route::NotifyStart => crate::api::notify(shared, call, true),
        Route::NotifyStop => crate::api::notify(shared, call, false),
        Route::CdnDownload => crate::cdn::download(shared, call.query.as_deref()).await,
        // Uploads stream their body and are handled before this point.
        Route::CdnUpload => Answer::ok(status(StatusCode::INTERNAL_SERVER_ERROR, "unreachable")),
    }
}

/// Adds the record to the log and wakes waiting test helpers.
fn finish(shared: &Shared, record: RequestRecord) {
    if let Some(note) = &record.note {
        tracing::debug!(
            endpoint = record.endpoint.unwrap_or("-"),
            status = record.status,
            note = note.as_str(),
            "simulator refused a call"
        );
    }
    let mut st = shared.state();
    let account = record.bot_id.as_deref().and_then(|b| st.id_of_bot(b));
    st.log_request(account, record);
    drop(st);
    shared.touch();
}

/// The bearer token of an `Authorization` header, trimmed.
fn bearer(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Keeps the status and headers of `resp` but sends only half of its body
/// while announcing the full length, so the client sees the connection end
/// early.
async fn truncate_response(resp: Response<SimBody>) -> Response<SimBody> {
    let (mut parts, body) = resp.into_parts();
    let (body, full_len) = body.cut_in_half().await;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full_len.max(2)));
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_endpoint_routes_to_its_own_name() {
        for info in wxlink_proto::ENDPOINTS {
            let method = match info.method {
                wxlink_proto::HttpMethod::Get => Method::GET,
                _ => Method::POST,
            };
            for prefix in ["/", "/base/path/"] {
                let route = Route::find(&method, &format!("{prefix}{}", info.path));
                assert_eq!(route.map(Route::name), Some(info.name), "{}", info.path);
            }
            assert!(crate::fault::FAULT_TARGETS.contains(&info.name));
            let needs_auth = info.auth == wxlink_proto::Auth::Bearer;
            assert_eq!(
                Route::find(&method, &format!("/{}", info.path)).map(Route::needs_auth),
                Some(needs_auth)
            );
        }
    }

    #[test]
    fn cdn_routes_accept_a_doubled_slash() {
        assert_eq!(
            Route::find(&Method::POST, "/c2c//upload"),
            Some(Route::CdnUpload)
        );
        assert_eq!(
            Route::find(&Method::GET, "/c2c/download"),
            Some(Route::CdnDownload)
        );
        assert_eq!(Route::find(&Method::PUT, "/c2c/upload"), None);
        assert_eq!(Route::find(&Method::POST, "/c2c/xupload"), None);
    }
}
