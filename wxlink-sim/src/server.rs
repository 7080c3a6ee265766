//! The HTTP side: two loopback listeners (the main one, plain HTTP, and
//! the redirect host, TLS unless configured off), one task per connection
//! serving HTTP/1.1 and HTTP/2 (h2c on plain connections), routing, fault
//! injection, authentication and the request log.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::body::SimBody;
use crate::fault::Fault;
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
    /// before `ilink/bot/…` (ILINK.md §1.3), and any prefix before the CDN's
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

/// Why a handler produced no response: the connection is closed instead.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub(crate) struct Dropped;

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

/// Resolves when the shutdown flag is set or its sender is gone.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
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

/// A JSON response with status 200.
pub(crate) fn json_response(body: impl Into<Bytes>) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serializes `value` as a 200 JSON response.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Response<SimBody> {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(body),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode response"),
    }
}

/// A plain-text response with `code`.
pub(crate) fn status(code: StatusCode, text: &str) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(text.to_owned()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The `-14` session-expired body, with no `ret`, as observed.
pub(crate) const SESSION_EXPIRED: &str = r#"{"errcode":-14,"errmsg":"session timeout"}"#;

/// The `-14` session-expired body in its other observed form, with `ret`
/// beside `errcode` (fixture `error.session-expired.ret-form.json`).
pub(crate) const SESSION_EXPIRED_RET: &str =
    r#"{"ret":-14,"errcode":-14,"errmsg":"session timeout"}"#;

/// What a handler gets about its request.
pub(crate) struct Call {
    pub(crate) query: Option<String>,
    pub(crate) body: Bytes,
    /// The bearer token of a valid session, for authenticated routes.
    pub(crate) token: Option<String>,
    pub(crate) redirect: bool,
}

/// A handler's answer plus the reason it refused, for the request log.
pub(crate) struct Answer {
    pub(crate) response: Response<SimBody>,
    pub(crate) note: Option<String>,
}

impl Answer {
    pub(crate) fn ok(response: Response<SimBody>) -> Self {
        Self {
            response,
            note: None,
        }
    }

    pub(crate) fn refused(response: Response<SimBody>, note: impl Into<String>) -> Self {
        Self {
            response,
            note: Some(note.into()),
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
        body_size: 0,
        status: 0,
        note: None,
        redirect_listener: redirect,
    };
    let Some(route) = Route::find(&method, &path) else {
        let (_, body) = req.into_parts();
        record.body_size = drain(body).await;
        record.status = 404;
        finish(&shared, record);
        return Ok(status(StatusCode::NOT_FOUND, "not found"));
    };
    record.endpoint = Some(route.name());

    // Bearer check, before anything else so the log knows.
    let token = bearer(req.headers());
    let valid_token = token
        .as_deref()
        .and_then(|t| shared.state().binding_for(t).map(|b| b.token.clone()));
    record.auth = match (
        &token,
        &valid_token,
        req.headers().contains_key(header::AUTHORIZATION),
    ) {
        (_, Some(_), _) => AuthSeen::Valid,
        (_, None, true) => AuthSeen::Rejected,
        _ => AuthSeen::Missing,
    };

    // Faults come first: they stand for what the network or a gateway in
    // front of the server does.
    let mut fault = shared.state().faults.take(route.name());
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
    let truncate = matches!(fault, Some(Fault::TruncatedBody));
    if let Some(f) = fault.filter(|f| !matches!(f, Fault::TruncatedBody)) {
        let (_, body) = req.into_parts();
        record.body_size = drain(body).await;
        // A JSON body is the test's own text and may stage a ticket or a
        // token, so the log names only its size.
        record.note = Some(match &f {
            Fault::Json(body) => format!("injected fault Json(<{} bytes>)", body.len()),
            other => format!("injected fault {other:?}"),
        });
        let resp = match f {
            Fault::HttpStatus(code, text) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut resp = status(code, &text);
                if route.is_cdn()
                    && let Ok(v) = HeaderValue::from_str(&text)
                {
                    resp.headers_mut().insert("x-error-message", v);
                }
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
        if route.needs_auth() && valid_token.is_none() {
            Answer::refused(
                json_response(SESSION_EXPIRED),
                "missing or unknown bot token",
            )
        } else {
            let call = Call {
                query,
                body: bytes,
                token: valid_token,
                redirect,
            };
            dispatch(&shared, route, call).await
        }
    };
    record.note = answer.note;
    record.status = answer.response.status().as_u16();
    finish(&shared, record);
    let mut resp = answer.response;
    if truncate {
        resp = truncate_response(resp).await;
    }
    Ok(resp)
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
    shared.state().log_request(record);
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

/// Reads a whole body up to `limit` bytes; on overflow returns the bytes
/// read so far as the error.
pub(crate) async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, u64> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err((out.len() + data.len()) as u64);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// Reads and discards a body, returning its size.
async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
        }
    }
    n
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
