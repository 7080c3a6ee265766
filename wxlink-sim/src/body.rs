//! The response body type of the simulator: whole buffers, buffers cut
//! short on purpose, and ciphertext streamed from memory or a file.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// Size of the pieces a stored file or buffer is streamed in.
const CHUNK: usize = 64 * 1024;

/// The error a deliberately truncated body ends with.
#[derive(Debug, thiserror::Error)]
#[error("simulated truncated body")]
pub struct BodyError(Option<std::io::Error>);

/// A response body produced by the simulator.
#[derive(Debug)]
pub(crate) enum SimBody {
    /// A whole buffer, sent in pieces of [`CHUNK`] bytes.
    Bytes(Bytes),
    /// A prefix of a body, then a short pause (so the prefix is flushed to
    /// the client), then an error so the connection is cut.
    Truncated(Option<Bytes>, Pin<Box<tokio::time::Sleep>>),
    /// Nothing until the pause is over, then the inner body: the headers
    /// go out at once and the body stalls.
    Stalled(Pin<Box<tokio::time::Sleep>>, Box<SimBody>),
    /// A file read to its end, `remaining` bytes long.
    File {
        file: tokio::fs::File,
        remaining: u64,
        buf: BytesMut,
        /// Set when the body is cut on purpose: after `remaining` bytes,
        /// wait this pause and then fail instead of ending.
        cut: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl SimBody {
    pub(crate) fn empty() -> Self {
        Self::Bytes(Bytes::new())
    }

    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::Bytes(data.into())
    }

    /// The first half of `data`, then a cut connection.
    pub(crate) fn truncated(half: Bytes) -> Self {
        Self::Truncated(Some(half), cut_pause())
    }

    /// A file of `len` bytes.
    pub(crate) fn file(file: tokio::fs::File, len: u64) -> Self {
        Self::File {
            file,
            remaining: len,
            buf: BytesMut::new(),
            cut: None,
        }
    }

    /// This body, held back for `pause` after the headers are sent.
    pub(crate) fn stalled(self, pause: std::time::Duration) -> Self {
        Self::Stalled(Box::pin(tokio::time::sleep(pause)), Box::new(self))
    }

    /// Cuts this body half way, returning the full length it would have
    /// had; a buffer is cut in memory, a file by reading only its first half.
    pub(crate) async fn cut_in_half(self) -> (Self, u64) {
        match self {
            Self::File {
                file,
                remaining,
                buf,
                ..
            } => {
                let body = Self::File {
                    file,
                    remaining: remaining / 2,
                    buf,
                    cut: Some(cut_pause()),
                };
                (body, remaining)
            }
            other => {
                use http_body_util::BodyExt as _;
                let full = match other.collect().await {
                    Ok(c) => c.to_bytes(),
                    Err(_) => Bytes::new(),
                };
                let len = full.len();
                (Self::truncated(full.slice(..len / 2)), len as u64)
            }
        }
    }
}

/// The pause before a deliberate cut, long enough for the data before it
/// to reach the client.
fn cut_pause() -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50)))
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Bytes(data) => {
                if data.is_empty() {
                    return Poll::Ready(None);
                }
                let n = data.len().min(CHUNK);
                Poll::Ready(Some(Ok(Frame::data(data.split_to(n)))))
            }
            Self::Stalled(pause, inner) => match pause.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => Pin::new(inner.as_mut()).poll_frame(cx),
            },
            Self::Truncated(data, pause) => match data.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => match pause.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError(None)))),
                },
            },
            Self::File {
                file,
                remaining,
                buf,
                cut,
            } => {
                if *remaining == 0 {
                    return match cut {
                        None => Poll::Ready(None),
                        Some(pause) => match pause.as_mut().poll(cx) {
                            Poll::Pending => Poll::Pending,
                            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError(None)))),
                        },
                    };
                }
                let want = usize::try_from(*remaining).unwrap_or(CHUNK).min(CHUNK);
                buf.resize(want, 0);
                let mut rb = ReadBuf::new(&mut buf[..]);
                match Pin::new(file).poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(BodyError(Some(e))))),
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            return Poll::Ready(Some(Err(BodyError(Some(
                                std::io::ErrorKind::UnexpectedEof.into(),
                            )))));
                        }
                        *remaining -= n as u64;
                        let chunk = buf.split_to(n).freeze();
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(d) => d.is_empty(),
            Self::Truncated(..) | Self::Stalled(..) => false,
            Self::File { remaining, cut, .. } => *remaining == 0 && cut.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(d) => SizeHint::with_exact(d.len() as u64),
            Self::Truncated(..) => SizeHint::default(),
            Self::Stalled(_, inner) => inner.size_hint(),
            Self::File {
                remaining,
                cut: None,
                ..
            } => SizeHint::with_exact(*remaining),
            Self::File { .. } => SizeHint::default(),
        }
    }
}
