//! The streaming body used for requests and responses in both directions.
//!
//! [`Body`] is a small newtype over the three shapes a body takes in WxLink:
//! nothing, one buffer of bytes (JSON calls, small uploads; replayable, so a
//! retry can send it again) and a one-shot stream (a file uploaded to the CDN,
//! a response read from the network). The media crate streams CDN transfers
//! through it, so nothing here ever needs a whole payload in memory except
//! [`Body::collect_limited`], which reads up to a caller-chosen limit.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body as _, Frame, SizeHint};

use crate::error::{BoxError, Error};

/// A streaming HTTP body: `http_body::Body<Data = Bytes, Error = BoxError>`.
///
/// Bodies built from bytes ([`From<Bytes>`], [`From<Vec<u8>>`],
/// [`From<String>`], [`From<&'static str>`]) report their exact size, so the
/// HTTP client writes a correct `Content-Length` itself, and they can be
/// cloned with [`Body::try_clone`] for a retry. Bodies built from a stream
/// ([`Body::from_stream`]) or from another body ([`Body::from_http_body`]) are
/// one-shot: they are read once and never retried.
///
/// ```
/// use wxlink_transport::Body;
///
/// let body = Body::from(r#"{"ret":0}"#);
/// assert!(body.try_clone().is_some());
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    /// Nothing left to send: an empty body, or a buffer already read.
    Empty,
    /// One buffer not read yet.
    Full(Bytes),
    /// A response body straight from hyper, kept unboxed on the hot path.
    Incoming(hyper::body::Incoming),
    /// Any other body: one-shot.
    Boxed(Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static>>),
}

impl Body {
    /// A body with no bytes.
    pub const fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    /// A one-shot body that sends the chunks of `stream` as they come.
    ///
    /// An error from the stream aborts the request or response it belongs to.
    pub fn from_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::from_http_body(StreamBody { stream })
    }

    /// Wraps any other `http_body::Body` whose data is [`Bytes`]; one-shot.
    pub fn from_http_body<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            kind: Kind::Boxed(Box::pin(MapErr { inner: body })),
        }
    }

    /// Wraps a response body received by hyper.
    pub(crate) fn from_incoming(body: hyper::body::Incoming) -> Self {
        Self {
            kind: Kind::Incoming(body),
        }
    }

    /// A copy of this body for a second attempt, or `None` when the body is a
    /// one-shot stream.
    ///
    /// A buffered body is cloned without copying its bytes. A buffered body
    /// that has already been read clones to an empty body, since the clone
    /// holds what remains to be sent.
    pub fn try_clone(&self) -> Option<Body> {
        match &self.kind {
            Kind::Empty => Some(Self::empty()),
            Kind::Full(bytes) => Some(Self {
                kind: Kind::Full(bytes.clone()),
            }),
            Kind::Incoming(_) | Kind::Boxed(_) => None,
        }
    }

    /// The bytes of a buffered body without reading it, or `None` for a
    /// stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Empty => Some(&[]),
            Kind::Full(bytes) => Some(bytes),
            Kind::Incoming(_) | Kind::Boxed(_) => None,
        }
    }

    /// Reads the whole body into memory, failing with
    /// [`Error::is_body_too_large`] as soon as more than `limit` bytes arrive (or
    /// are announced by the body's size hint).
    ///
    /// A buffered body is returned without copying; a streamed body with a
    /// single chunk is returned without copying too.
    pub async fn collect_limited(self, limit: u64) -> Result<Bytes, Error> {
        if http_body::Body::size_hint(&self).lower() > limit {
            return Err(Error::body_too_large(limit));
        }
        if let Kind::Full(bytes) = self.kind {
            return Ok(bytes);
        }
        let mut body = self;
        let mut first: Option<Bytes> = None;
        let mut rest: Option<BytesMut> = None;
        let mut total: u64 = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(Error::from_box)?;
            let Ok(data) = frame.into_data() else {
                // Trailers carry no payload; there is nothing to collect.
                continue;
            };
            if data.is_empty() {
                continue;
            }
            total = total.saturating_add(data.len() as u64);
            if total > limit {
                return Err(Error::body_too_large(limit));
            }
            match (&mut first, &mut rest) {
                (None, _) => first = Some(data),
                (Some(head), None) => {
                    let mut buf = BytesMut::with_capacity(head.len() + data.len());
                    buf.extend_from_slice(head);
                    buf.extend_from_slice(&data);
                    rest = Some(buf);
                }
                (Some(_), Some(buf)) => buf.extend_from_slice(&data),
            }
        }
        Ok(match (first, rest) {
            (_, Some(buf)) => buf.freeze(),
            (Some(head), None) => head,
            (None, None) => Bytes::new(),
        })
    }

    /// Turns the body into a [`Stream`] of its data chunks (trailers are
    /// skipped). Reading it holds at most one chunk at a time.
    pub fn into_data_stream(self) -> DataStream {
        DataStream { body: self }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The contents may hold secrets (context tokens, keys), so only the
        // shape is shown.
        let shape = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "buffered",
            Kind::Incoming(_) => "incoming",
            Kind::Boxed(_) => "stream",
        };
        f.debug_struct("Body").field("kind", &shape).finish()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Self::empty()
        } else {
            Self {
                kind: Kind::Full(bytes),
            }
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => {
                let Kind::Full(bytes) = std::mem::replace(&mut this.kind, Kind::Empty) else {
                    return Poll::Ready(None);
                };
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Kind::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|res| res.map_err(BoxError::from))),
            Kind::Boxed(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(_) => false,
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Incoming(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

/// The data chunks of a [`Body`] as a [`Stream`]; see
/// [`Body::into_data_stream`].
#[derive(Debug)]
pub struct DataStream {
    body: Body,
}

impl DataStream {
    /// The body's size hint: exact for buffered bodies and for responses with
    /// a `Content-Length`.
    pub fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.body)
    }
}

impl Stream for DataStream {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let frame = match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                return Poll::Ready(Some(Ok(data)));
            }
            // A trailers frame: skip it and read on.
        }
    }
}

pin_project_lite::pin_project! {
    /// Adapts a stream of byte chunks to `http_body::Body`.
    struct StreamBody<S> {
        #[pin]
        stream: S,
    }
}

impl<S, E> http_body::Body for StreamBody<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project()
            .stream
            .poll_next(cx)
            .map(|item| item.map(|res| res.map(Frame::data).map_err(Into::into)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

pin_project_lite::pin_project! {
    /// Boxes the error of a foreign body.
    struct MapErr<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for MapErr<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map(|frame| frame.map(|res| res.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_traits<T: Send + Sync + Unpin + 'static>() {}

    #[test]
    fn body_is_send_sync_unpin() {
        assert_traits::<Body>();
        assert_traits::<DataStream>();
    }

    #[tokio::test]
    async fn buffered_body_clones_and_collects_without_copy() {
        let bytes = Bytes::from_static(b"hello");
        let body = Body::from(bytes.clone());
        let clone = body.try_clone().unwrap();
        let got = body.collect_limited(5).await.unwrap();
        assert_eq!(got, bytes);
        assert_eq!(got.as_ptr(), bytes.as_ptr());
        assert_eq!(clone.collect_limited(5).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn stream_body_is_one_shot_and_limited() {
        let chunks = || (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"abc")));
        let body = Body::from_stream(futures_util::stream::iter(chunks()));
        assert!(body.try_clone().is_none());
        assert_eq!(
            body.collect_limited(9).await.unwrap(),
            Bytes::from_static(b"abcabcabc")
        );
        let body = Body::from_stream(futures_util::stream::iter(chunks()));
        let err = body.collect_limited(8).await.unwrap_err();
        assert!(err.is_body_too_large(), "{err:?}");
    }

    #[tokio::test]
    async fn buffered_body_over_limit_is_rejected_before_reading() {
        let err = Body::from("0123456789")
            .collect_limited(4)
            .await
            .unwrap_err();
        assert!(err.is_body_too_large());
    }

    #[tokio::test]
    async fn data_stream_yields_chunks_in_order() {
        use futures_util::StreamExt;
        let chunks = vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"a")),
            Ok(Bytes::from_static(b"b")),
        ];
        let stream = Body::from_stream(futures_util::stream::iter(chunks)).into_data_stream();
        let got: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        assert_eq!(
            got,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }

    #[test]
    fn debug_never_shows_contents() {
        let body = Body::from("context_token=secret");
        assert!(!format!("{body:?}").contains("secret"));
    }
}
