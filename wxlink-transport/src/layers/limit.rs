//! The response-size limit: [`BodyLimitLayer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use tower::{Layer, Service};

use crate::body::Body;
use crate::error::{BoxError, Error};

/// Fails responses whose body is larger than a limit.
///
/// A response whose `Content-Length` exceeds the limit fails at once with
/// [`Error::is_body_too_large`], before any of its body is read. A response
/// without a length is counted while it streams and fails as soon as it
/// passes the limit.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    limit: u64,
}

impl BodyLimitLayer {
    /// A layer allowing at most `limit` bytes per response body.
    pub const fn new(limit: u64) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    limit: u64,
}

impl<S> BodyLimit<S> {
    /// Wraps `inner`, allowing at most `limit` bytes per response body.
    pub const fn new(inner: S, limit: u64) -> Self {
        Self { inner, limit }
    }
}

impl<S> Service<Request<Body>> for BodyLimit<S>
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
        ResponseFuture {
            inner: self.inner.call(req),
            limit: self.limit,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`BodyLimit`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        limit: u64,
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
        let resp = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(resp)) => resp,
        };
        let limit = *this.limit;
        let hint = http_body::Body::size_hint(resp.body());
        if hint.lower() > limit {
            return Poll::Ready(Err(Box::new(Error::body_too_large(limit))));
        }
        // hyper never yields more than a declared length, so a body whose
        // exact size fits needs no counting.
        if hint.upper().is_some_and(|upper| upper <= limit) {
            return Poll::Ready(Ok(resp));
        }
        Poll::Ready(Ok(resp.map(|body| {
            Body::from_http_body(LimitedBody {
                inner: body,
                remaining: limit,
                limit,
            })
        })))
    }
}

/// A body that fails once more than `limit` bytes have passed.
struct LimitedBody {
    inner: Body,
    remaining: u64,
    limit: u64,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        return Poll::Ready(Some(Err(Box::new(Error::body_too_large(this.limit)))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}
