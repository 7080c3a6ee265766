//! The bottom layer every handler builds on: response helpers, the
//! request body type, the call and answer types passed between the router
//! and the handlers, query parsing and the shutdown wait. It uses no other
//! module of the simulator but [`body`](crate::body).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use tokio::sync::watch;

use crate::body::SimBody;

pub(crate) use wxlink_proto::url::encode_uri_component as encode_component;

/// The `-14` session-expired body, with no `ret`, as observed.
pub(crate) const SESSION_EXPIRED: &str = r#"{"errcode":-14,"errmsg":"session timeout"}"#;

/// The `-14` session-expired body in its other observed form, with `ret`
/// beside `errcode` (fixture `error.session-expired.ret-form.json`).
pub(crate) const SESSION_EXPIRED_RET: &str =
    r#"{"ret":-14,"errcode":-14,"errmsg":"session timeout"}"#;

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

/// A 4xx or 5xx answer carrying `x-error-message`, as the real CDN does.
pub(crate) fn cdn_error(code: StatusCode, message: &str) -> Response<SimBody> {
    let mut resp = status(code, message);
    if let Ok(v) = HeaderValue::from_str(message) {
        resp.headers_mut().insert("x-error-message", v);
    }
    resp
}

/// Why a handler produced no response: the connection is closed instead.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub(crate) struct Dropped;

/// What a handler gets about its request.
pub(crate) struct Call {
    pub(crate) query: Option<String>,
    pub(crate) body: Bytes,
    /// The account whose valid bearer token the request carried.
    pub(crate) account: Option<u32>,
    pub(crate) redirect: bool,
    /// An injected fault will keep the answer from the client (a cut body
    /// or a dropped connection): what the handler hands out is lost.
    pub(crate) answer_lost: bool,
    /// An injected fault asks for every delivered message to be queued
    /// again after each of these delays.
    pub(crate) redeliver: Vec<std::time::Duration>,
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

/// A request body: the connection's own, possibly behind a prefix the
/// router already read (to stall or cut an upload part way).
pub(crate) struct RequestBody {
    prefix: VecDeque<Bytes>,
    rest: Incoming,
}

impl RequestBody {
    /// The connection's body, nothing read yet.
    pub(crate) fn new(rest: Incoming) -> Self {
        Self {
            prefix: VecDeque::new(),
            rest,
        }
    }

    /// Reads from the connection until at least `n` bytes are buffered or
    /// the body ends; returns how many bytes are buffered.
    pub(crate) async fn buffer(&mut self, n: u64) -> u64 {
        let mut have: u64 = self.prefix.iter().map(|b| b.len() as u64).sum();
        while have < n {
            let Some(Ok(frame)) = self.rest.frame().await else {
                break;
            };
            if let Ok(data) = frame.into_data() {
                have += data.len() as u64;
                self.prefix.push_back(data);
            }
        }
        have
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(data) = this.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.prefix.iter().map(|b| b.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(buffered));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint
    }
}

/// Reads a whole body up to `limit` bytes; on overflow returns the bytes
/// read so far as the error.
pub(crate) async fn read_body<B>(mut body: B, limit: usize) -> Result<Bytes, u64>
where
    B: Body<Data = Bytes> + Unpin,
{
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

/// Reads and discards the rest of a body, returning its size.
pub(crate) async fn drain<B>(body: &mut B) -> u64
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut n = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
        }
    }
    n
}

/// The value of query parameter `name`, percent-decoded. A `+` stays a
/// `+`: clients encode with `encodeURIComponent`, not as HTML forms, and a
/// base64 parameter may hold a literal `+`.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_through_component_encoding() {
        let raw = "a+b/c=d&e f";
        let q = format!("x=1&encrypted_query_param={}", encode_component(raw));
        assert_eq!(
            query_param(Some(&q), "encrypted_query_param").as_deref(),
            Some(raw)
        );
        assert_eq!(query_param(Some(&q), "missing"), None);
    }
}
