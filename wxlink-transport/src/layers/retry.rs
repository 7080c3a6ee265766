//! Retries with exponential backoff and jitter: [`RetryLayer`] and
//! [`RetryPolicy`].
//!
//! What is retried depends on the call's [`RetrySafety`] (from its
//! [`CallMeta`]):
//!
//! - [`RetrySafety::Always`]: connect failures, timeouts (except a long
//!   poll's, which is an empty poll rather than a failure), connections lost
//!   midway, and HTTP 502, 503, 504 and 524.
//! - [`RetrySafety::BeforeSend`]: only failures where the request certainly
//!   never left (connection refused, DNS, TLS, proxy). A `sendmessage` that
//!   may have reached the server is never sent again (docs/protocol.md, "Timeouts and retries").
//!
//! A request whose body is a one-shot stream is never retried, and no new
//! attempt starts once the policy's total deadline would be passed.
//!
//! Each repeated attempt is the same request (method, URL, headers, body)
//! with one exception: an `X-WECHAT-UIN` header is replaced by a fresh
//! random value, because docs/protocol.md, "Request headers" asks for a new one on every request
//! and [`IlinkHeadersLayer`](crate::layers::IlinkHeadersLayer), above this
//! layer, runs only once per call. A request without the header is
//! repeated unchanged, so the layer works on any request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Extensions, HeaderMap, Method, Request, Response, Uri, Version};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::body::Body;
use crate::error::{BoxError, Failure, classify, is_retryable_status};
use crate::layers::headers::{X_WECHAT_UIN, fresh_uin};
use crate::meta::CallMeta;
use crate::proto::{RetrySafety, TimeoutClass};

/// How often and how fast to retry.
///
/// The delay before attempt `n + 1` is `initial_backoff * 2^(n - 1)`, capped
/// at `max_backoff`, then shortened by a random fraction of up to `jitter`
/// (0.0 keeps the exact delay, 1.0 is "full jitter").
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The delay before the second attempt.
    pub initial_backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
    /// The largest fraction (0.0 to 1.0) randomly taken off each delay.
    pub jitter: f64,
    /// No attempt starts later than this after the first one began.
    pub total_deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms then 400 ms apart (minus up to half as
    /// jitter), within 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            jitter: 0.5,
            total_deadline: Some(Duration::from_secs(60)),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            jitter: 0.0,
            total_deadline: None,
        }
    }

    /// Sets the number of attempts in total.
    #[must_use]
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the first and the longest backoff.
    #[must_use]
    pub const fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the jitter fraction (clamped to 0.0..=1.0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Sets the total deadline.
    #[must_use]
    pub const fn with_total_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 {
            return base;
        }
        let cut = jitter * rand::random::<f64>();
        base.mul_f64(1.0 - cut)
    }

    /// Whether an attempt of the call described by `meta` that ended in
    /// `result` may be retried.
    fn should_retry(&self, meta: &CallMeta, result: &Result<Response<Body>, BoxError>) -> bool {
        let always = meta.retry == RetrySafety::Always;
        match result {
            Ok(resp) => always && is_retryable_status(resp.status()),
            Err(err) => match classify(err.as_ref()) {
                Failure::NotSent => true,
                // A long poll that runs out of time is an empty poll, an
                // answer in itself; repeating it would only delay it.
                Failure::Timeout => always && meta.timeout_class != TimeoutClass::LongPoll,
                Failure::MaybeSent => always,
            },
        }
    }
}

/// Retries requests as a [`RetryPolicy`] allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// A layer with the given policy.
    pub const fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy,
        }
    }
}

/// The service of [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S> Retry<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

impl<S> Service<Request<Body>> for Retry<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let policy = self.policy;
        let backup = if policy.max_attempts > 1 {
            Backup::of(&req)
        } else {
            None
        };
        let Some(backup) = backup else {
            // Nothing to retry with: call straight through.
            return ResponseFuture {
                kind: Kind::Direct {
                    fut: self.inner.call(req),
                },
            };
        };
        // Use the service that was polled ready for the first attempt and
        // keep a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        let mut inner = inner;
        let fut = inner.call(req);
        // The first attempt is polled in place; only a call that is
        // actually retried moves into a boxed retry loop, so a call that
        // succeeds first time costs no allocation here.
        ResponseFuture {
            kind: Kind::First {
                fut,
                state: Some(RetryState {
                    inner,
                    policy,
                    backup,
                    started,
                }),
            },
        }
    }
}

/// What a retry needs, kept while the first attempt runs.
struct RetryState<S> {
    inner: S,
    policy: RetryPolicy,
    backup: Backup,
    started: Instant,
}

/// The parts of a request needed to send it again.
///
/// Cheaper than a cloned `http::Request`: when the extensions hold nothing
/// but the [`CallMeta`] (every call of `ApiClient`), only that `Copy` value
/// is kept instead of cloning the extension map, and the request itself is
/// only rebuilt when an attempt is actually repeated.
struct Backup {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    meta: CallMeta,
    /// The full extensions when they hold more than the [`CallMeta`].
    extensions: Option<Extensions>,
    body: Body,
}

impl Backup {
    /// A backup of `req`, or `None` when its body is one-shot.
    fn of(req: &Request<Body>) -> Option<Self> {
        let body = req.body().try_clone()?;
        let own = req.extensions().get::<CallMeta>().copied();
        let extensions = match own {
            Some(_) if req.extensions().len() == 1 => None,
            None if req.extensions().is_empty() => None,
            _ => Some(req.extensions().clone()),
        };
        Some(Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            meta: own.unwrap_or_default(),
            extensions,
            body,
        })
    }

    /// Another copy, for an attempt after the next one, or `None` when the
    /// body cannot be copied.
    fn try_clone(&self) -> Option<Self> {
        Some(Self {
            method: self.method.clone(),
            uri: self.uri.clone(),
            version: self.version,
            headers: self.headers.clone(),
            meta: self.meta,
            extensions: self.extensions.clone(),
            body: self.body.try_clone()?,
        })
    }

    /// The request to send.
    fn into_request(self) -> Request<Body> {
        let mut req = Request::new(self.body);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        match self.extensions {
            Some(extensions) => *req.extensions_mut() = extensions,
            None => {
                req.extensions_mut().insert(self.meta);
            }
        }
        req
    }
}

/// Repeats a call whose first attempt ended in `result`, as the policy
/// allows, and returns the last attempt's outcome.
async fn retry_loop<S>(
    mut inner: S,
    policy: RetryPolicy,
    started: Instant,
    mut result: Result<Response<Body>, BoxError>,
    backup: Backup,
) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    let meta = backup.meta;
    let mut attempt: u32 = 1;
    let mut next = Some(backup);
    loop {
        let Some(copy) = next.take() else {
            return result;
        };
        if attempt >= policy.max_attempts || !policy.should_retry(&meta, &result) {
            return result;
        }
        let delay = policy.backoff(attempt);
        if policy
            .total_deadline
            .is_some_and(|total| started.elapsed() + delay >= total)
        {
            return result;
        }
        let reason = match &result {
            Ok(resp) => format!("http status {}", resp.status().as_u16()),
            Err(err) => match classify(err.as_ref()) {
                Failure::NotSent => "connect failure".to_owned(),
                Failure::Timeout => "timeout".to_owned(),
                Failure::MaybeSent => "connection lost".to_owned(),
            },
        };
        tracing::debug!(
            endpoint = meta.endpoint,
            attempt,
            delay_ms = delay.as_millis() as u64,
            reason = %reason,
            "retrying"
        );
        drop(result);
        tokio::time::sleep(delay).await;
        attempt += 1;
        tracing::Span::current().record("attempts", attempt);
        if attempt < policy.max_attempts {
            next = copy.try_clone();
        }
        let mut req = copy.into_request();
        // docs/protocol.md, "Request headers": every request carries its own X-WECHAT-UIN. The
        // headers layer sits above this one and runs once per call, so a
        // repeated attempt gets its fresh value here.
        if let Some(uin) = req.headers_mut().get_mut(X_WECHAT_UIN) {
            *uin = fresh_uin();
        }
        result = match inner.ready().await {
            Ok(svc) => svc.call(req).await,
            Err(err) => Err(err),
        };
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Retry`].
    pub struct ResponseFuture<S, F> {
        #[pin]
        kind: Kind<S, F>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<S, F> {
        Direct { #[pin] fut: F },
        First { #[pin] fut: F, state: Option<RetryState<S>> },
        Retrying { fut: BoxFuture },
    }
}

impl<S, F> fmt::Debug for ResponseFuture<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, F> Future for ResponseFuture<S, F>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
    F: Future<Output = Result<Response<Body>, BoxError>>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let retrying = match self.as_mut().project().kind.project() {
                KindProj::Direct { fut } => return fut.poll(cx),
                KindProj::Retrying { fut } => return fut.as_mut().poll(cx),
                KindProj::First { fut, state } => {
                    let result = std::task::ready!(fut.poll(cx));
                    let Some(state) = state.take() else {
                        return Poll::Ready(result);
                    };
                    if !state.policy.should_retry(&state.backup.meta, &result) {
                        return Poll::Ready(result);
                    }
                    Box::pin(retry_loop(
                        state.inner,
                        state.policy,
                        state.started,
                        result,
                        state.backup,
                    ))
                }
            };
            self.as_mut()
                .project()
                .kind
                .set(Kind::Retrying { fut: retrying });
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(350))
            .with_jitter(0.0);
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(350));
        assert_eq!(policy.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn only_gateway_statuses_are_retryable() {
        for code in [502, 503, 504, 524] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 400, 401, 404, 429, 500, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn jitter_only_shortens_the_delay() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
            .with_jitter(1.0);
        for _ in 0..100 {
            let d = policy.backoff(2);
            assert!(d <= Duration::from_millis(200), "{d:?}");
        }
    }
}
