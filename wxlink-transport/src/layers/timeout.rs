//! Per-class timeouts: [`TimeoutLayer`] and the [`Timeouts`] table.
//!
//! The deadline of an attempt covers the response head and the reading of
//! the response body: a server that sends headers and then stalls fails the
//! same way as one that never answers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::meta::CallMeta;
use crate::proto::TimeoutClass;

/// The client-side timeout of each [`TimeoutClass`]; `None` means no
/// timeout.
///
/// The defaults follow docs/protocol.md, "Timeouts and retries": long poll
/// 35 s, API calls 15 s, configuration calls 10 s, CDN transfers none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// `getupdates` and `get_qrcode_status`.
    pub long_poll: Option<Duration>,
    /// `sendmessage`, `getuploadurl`, `get_bot_qrcode`.
    pub api: Option<Duration>,
    /// `getconfig`, `sendtyping`, the notify calls.
    pub config: Option<Duration>,
    /// CDN upload and download.
    pub cdn: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            long_poll: TimeoutClass::LongPoll.default_timeout(),
            api: TimeoutClass::Api.default_timeout(),
            config: TimeoutClass::Config.default_timeout(),
            cdn: TimeoutClass::Cdn.default_timeout(),
        }
    }
}

impl Timeouts {
    /// The same timeout for every class.
    pub const fn uniform(timeout: Option<Duration>) -> Self {
        Self {
            long_poll: timeout,
            api: timeout,
            config: timeout,
            cdn: timeout,
        }
    }

    /// The timeout of `class`.
    pub fn for_class(&self, class: TimeoutClass) -> Option<Duration> {
        match class {
            TimeoutClass::LongPoll => self.long_poll,
            TimeoutClass::Api => self.api,
            TimeoutClass::Config => self.config,
            TimeoutClass::Cdn => self.cdn,
            #[allow(unreachable_patterns)]
            _ => self.api,
        }
    }

    /// The timeout of a call: its own override, else its class's.
    pub fn for_call(&self, meta: &CallMeta) -> Option<Duration> {
        meta.timeout.or_else(|| self.for_class(meta.timeout_class))
    }
}

/// Applies [`Timeouts`] to each request by its [`CallMeta`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeoutLayer {
    timeouts: Timeouts,
}

impl TimeoutLayer {
    /// A layer with the given table.
    pub const fn new(timeouts: Timeouts) -> Self {
        Self { timeouts }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeouts: self.timeouts,
        }
    }
}

/// The service of [`TimeoutLayer`]. A request that runs out of time fails
/// with [`Error::is_timeout`] carrying its class.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeouts: Timeouts,
}

impl<S> Timeout<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S, timeouts: Timeouts) -> Self {
        Self { inner, timeouts }
    }
}

impl<S> Service<Request<Body>> for Timeout<S>
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
        // A limit too far to represent as an instant (`Duration::MAX`) is
        // no limit, rather than a panic.
        let limit = self.timeouts.for_call(&meta).and_then(|after| {
            Some(Limit {
                class: meta.timeout_class,
                after,
                deadline: Instant::now().checked_add(after)?,
            })
        });
        ResponseFuture {
            inner: self.inner.call(req),
            // One timer per call: the same `Sleep` later guards the body.
            sleep: limit.map(|l| Box::pin(tokio::time::sleep_until(l.deadline))),
            limit,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limit {
    class: TimeoutClass,
    after: Duration,
    deadline: Instant,
}

impl Limit {
    fn error(self) -> Error {
        Error::timeout(self.class, self.after)
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Timeout`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        sleep: Option<Pin<Box<Sleep>>>,
        limit: Option<Limit>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("limit", &self.limit)
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
        if let Poll::Ready(result) = this.inner.poll(cx) {
            let resp = match result {
                Ok(resp) => resp,
                Err(err) => return Poll::Ready(Err(err)),
            };
            return Poll::Ready(Ok(match (this.sleep.take(), *this.limit) {
                // The body must arrive before the same deadline.
                (Some(sleep), Some(limit)) => resp.map(|inner| {
                    Body::from_http_body(TimeoutBody {
                        inner,
                        sleep,
                        limit,
                    })
                }),
                _ => resp,
            }));
        }
        if let (Some(sleep), Some(limit)) = (this.sleep.as_mut(), *this.limit)
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(Box::new(limit.error())));
        }
        Poll::Pending
    }
}

/// A response body that fails once the call's deadline has passed.
struct TimeoutBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    limit: Limit,
}

impl http_body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(this.limit.error()))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}
