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
    /// A file read to its end, `remaining` bytes long.
    File {
        file: tokio::fs::File,
        remaining: u64,
        buf: BytesMut,
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
        let pause = tokio::time::sleep(std::time::Duration::from_millis(50));
        Self::Truncated(Some(half), Box::pin(pause))
    }
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
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
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
            Self::Truncated(..) => false,
            Self::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(d) => SizeHint::with_exact(d.len() as u64),
            Self::Truncated(..) => SizeHint::default(),
            Self::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
