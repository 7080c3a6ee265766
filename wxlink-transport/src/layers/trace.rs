//! Tracing: [`TraceLayer`] opens one span per call.
//!
//! The span is named `wxlink.call` and carries `endpoint`, `method`, `url`
//! (scheme, host and path only: the query, where CDN parameters and login
//! codes travel, is shown as `?<redacted>`), `status`, `attempts` (updated
//! by [`RetryLayer`](super::RetryLayer) below it) and `latency_ms` (time to
//! the response head). One event closes the call: `debug` on success,
//! `warn` on a non-2xx status or an error (`debug` for a long-poll timeout,
//! which is routine). No header and no body is ever recorded, so tokens,
//! keys and context tokens cannot appear.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::Span;

use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::meta::CallMeta;
use crate::redact::RedactedUri;

/// Opens a `wxlink.call` span around each request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer {
    _private: (),
}

impl TraceLayer {
    /// A new layer.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request<Body>> for Trace<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let meta = CallMeta::of(&req);
        let span = tracing::info_span!(
            "wxlink.call",
            endpoint = meta.endpoint,
            method = %req.method(),
            url = %RedactedUri(req.uri()),
            status = tracing::field::Empty,
            attempts = 1u32,
            latency_ms = tracing::field::Empty,
        );
        // Timed even when the span is filtered out: the closing event may
        // still be wanted (a `warn`-level filter hides `info` spans).
        let started = Instant::now();
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            span,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Trace`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Instant,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, BoxError>>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = ready!(this.inner.poll(cx));
        {
            let latency_ms = this.started.elapsed().as_millis() as u64;
            this.span.record("latency_ms", latency_ms);
            match &result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    this.span.record("status", status);
                    if resp.status().is_success() {
                        tracing::debug!(status, latency_ms, "call finished");
                    } else {
                        tracing::warn!(status, latency_ms, "call answered with an error status");
                    }
                }
                Err(err) => match err.downcast_ref::<Error>() {
                    // Our own errors display short fixed phrases, never a
                    // URL, header or body.
                    Some(own) if own.is_long_poll_timeout() => {
                        tracing::debug!(error = %own, latency_ms, "long poll timed out");
                    }
                    Some(own) => tracing::warn!(error = %own, latency_ms, "call failed"),
                    // A foreign error's text is not shown: it may quote the
                    // request.
                    None => tracing::warn!(error = "transport error", latency_ms, "call failed"),
                },
            }
        }
        Poll::Ready(result)
    }
}
