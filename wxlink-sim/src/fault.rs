//! Faults injected into the next calls of an endpoint.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Names of every endpoint a fault can target: the iLink API calls (named as
/// in `wxlink_proto::ENDPOINTS`) and the two CDN calls.
pub const FAULT_TARGETS: &[&str] = &[
    "get_bot_qrcode",
    "get_qrcode_status",
    "getupdates",
    "sendmessage",
    "getconfig",
    "sendtyping",
    "getuploadurl",
    "notifystart",
    "notifystop",
    "cdn_upload",
    "cdn_download",
];

/// Something that goes wrong with one call, injected with
/// [`Simulator::inject_fault`](crate::Simulator::inject_fault).
///
/// | Fault | What the client sees | Does the call take effect? |
/// |---|---|---|
/// | `HttpStatus(code, body)` | that status and body (on the CDN also `x-error-message: body`) | no |
/// | `Delay(d)` | the normal answer, `d` later | yes |
/// | `Delayed(d, fault)` | `fault`, `d` later (e.g. a 524 after 17 s) | as `fault` |
/// | `DropConnection` | the connection closes after the request is read, with no response | no |
/// | `TruncatedBody` | a 200 whose body stops half way (the declared length is not reached) | yes |
/// | `InvalidJson` | a 200 whose body is not JSON | no |
/// | `SessionExpired` | HTTP 200 `{"errcode":-14,"errmsg":"session timeout"}` | no |
/// | `SessionExpiredRet` | HTTP 200 `{"ret":-14,"errcode":-14,"errmsg":"session timeout"}` | no |
/// | `Json(body)` | HTTP 200 with this JSON body (e.g. `{"ret":-2,"errmsg":"unknown error"}`) | no |
/// | `StallBody(d)` | the status line and headers at once, then no body byte for `d`, then the body | yes |
/// | `StallUpload { after, stall }` | the server reads `after` bytes of the request body, then stops reading for `stall`, then goes on | as without the fault |
/// | `ResetUpload { after }` | the server reads `after` bytes of the request body, then resets the connection | no |
/// | `RetryAfter(code, d)` | that status (429, 503, …) with `Retry-After: <d in whole seconds>` | no |
/// | `LoseResponse` | the call is handled, then the connection closes with no response; a `getupdates` batch is lost for good | yes |
/// | `Duplicate(delays)` | the normal answer; on `getupdates` each delivered message is queued again after each delay | yes |
///
/// `StallUpload` and `ResetUpload` are meant for `cdn_upload`, where the
/// body is large, but work on any endpoint. A body shorter than `after`
/// is read whole first.
///
/// The real server has been seen to report session expiry both without
/// `ret` (the usual form, [`Fault::SessionExpired`]) and with `ret = -14`
/// beside `errcode` ([`Fault::SessionExpiredRet`]); a client should treat
/// both as expiry (`docs/protocol.md`, Conventions: `errcode` non-zero is
/// a failure, whether or not `ret` is present).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status and body text.
    HttpStatus(u16, String),
    /// Wait this long, then handle the call normally.
    Delay(Duration),
    /// Wait this long, then apply the inner fault.
    Delayed(Duration, Box<Fault>),
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Handle the call, then cut the response body short.
    TruncatedBody,
    /// Answer HTTP 200 with a body that is not valid JSON.
    InvalidJson,
    /// Answer the `-14` session-expired error in its usual form, with
    /// `errcode` and no `ret`: `{"errcode":-14,"errmsg":"session timeout"}`.
    SessionExpired,
    /// Answer the `-14` session-expired error in its other observed form,
    /// with `ret` as well: `{"ret":-14,"errcode":-14,"errmsg":"session
    /// timeout"}`.
    SessionExpiredRet,
    /// Answer HTTP 200 with this body as `application/json`, sent as given
    /// (it need not be valid JSON, though [`Fault::InvalidJson`] is the
    /// plainer way to test that). Any business error can be staged this way.
    Json(String),
    /// Handle the call and send the status line and headers, then hold the
    /// body back for this long before sending it: a server that stalls
    /// mid-answer. A client without a read timeout waits the whole time.
    StallBody(Duration),
    /// Read the first `after` bytes of the request body, then stop reading
    /// for `stall` (the client's writes back up once the socket buffers
    /// fill), then read the rest and answer as usual.
    StallUpload {
        /// Request body bytes read before the stall.
        after: u64,
        /// How long the server stops reading.
        stall: Duration,
    },
    /// Read the first `after` bytes of the request body, then reset the
    /// connection: the client sees its write or its read fail.
    ResetUpload {
        /// Request body bytes read before the reset.
        after: u64,
    },
    /// Answer this HTTP status (429 or 503, typically) with a
    /// `Retry-After` header giving the delay in whole seconds (rounded up).
    RetryAfter(u16, Duration),
    /// Handle the call, then close the connection without answering: the
    /// call takes effect but the client never learns. On `getupdates` the
    /// server has already taken the batch off the queue, so those messages
    /// are lost (the simulator's [ground truth](crate::Simulator) counts
    /// them as lost by the server, not by the client).
    LoseResponse,
    /// Answer normally; on `getupdates` every delivered message is queued
    /// again (same id, sequence number and context token) after each of
    /// these delays, as the at-least-once delivery of the real server does.
    /// See [`Fault::duplicate`] for the reported pattern.
    Duplicate(Vec<Duration>),
}

impl Fault {
    /// A fault that waits `delay` and then applies `self`.
    pub fn after(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }

    /// HTTP 429 with `Retry-After`.
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Self::RetryAfter(429, retry_after)
    }

    /// HTTP 503 with `Retry-After`.
    pub fn unavailable(retry_after: Duration) -> Self {
        Self::RetryAfter(503, retry_after)
    }

    /// The duplicate delivery reported for the real server: each message
    /// again about 1 s later, and once more 40 minutes later (re-deliveries
    /// 30 to 50 minutes late were seen after long-running turns).
    pub fn duplicate() -> Self {
        Self::Duplicate(vec![Duration::from_secs(1), Duration::from_secs(40 * 60)])
    }

    /// A short name of the kind of fault, as the control API spells it
    /// (`http_status`, `stall_body`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HttpStatus(..) => "http_status",
            Self::Delay(_) => "delay",
            Self::Delayed(_, inner) => inner.kind(),
            Self::DropConnection => "drop_connection",
            Self::TruncatedBody => "truncated_body",
            Self::InvalidJson => "invalid_json",
            Self::SessionExpired => "session_expired",
            Self::SessionExpiredRet => "session_expired_ret",
            Self::Json(_) => "json",
            Self::StallBody(_) => "stall_body",
            Self::StallUpload { .. } => "stall_upload",
            Self::ResetUpload { .. } => "reset_upload",
            Self::RetryAfter(..) => "retry_after",
            Self::LoseResponse => "lose_response",
            Self::Duplicate(_) => "duplicate",
        }
    }
}

/// Pending faults per endpoint, consumed in order.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: HashMap<String, VecDeque<(Fault, u32)>>,
}

impl FaultQueue {
    /// Queues `fault` for the next `times` calls of `endpoint`.
    pub(crate) fn push(&mut self, endpoint: &str, fault: Fault, times: u32) {
        if times == 0 {
            return;
        }
        self.pending
            .entry(endpoint.to_owned())
            .or_default()
            .push_back((fault, times));
    }

    /// Takes the fault for one call of `endpoint`, if any is queued.
    pub(crate) fn take(&mut self, endpoint: &str) -> Option<Fault> {
        let queue = self.pending.get_mut(endpoint)?;
        let (fault, left) = queue.front_mut()?;
        let out = fault.clone();
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(out)
    }

    /// Removes every queued fault.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_in_order_and_counted() {
        let mut q = FaultQueue::default();
        q.push("sendmessage", Fault::InvalidJson, 2);
        q.push("sendmessage", Fault::DropConnection, 1);
        assert_eq!(q.take("getupdates"), None);
        assert_eq!(q.take("sendmessage"), Some(Fault::InvalidJson));
        assert_eq!(q.take("sendmessage"), Some(Fault::InvalidJson));
        assert_eq!(q.take("sendmessage"), Some(Fault::DropConnection));
        assert_eq!(q.take("sendmessage"), None);
    }
}
