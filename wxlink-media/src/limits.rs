//! Time limits of CDN transfers: an idle limit between chunks and an
//! overall limit that grows with the size.
//!
//! A CDN that stops reading an upload or stops sending a download would
//! otherwise hold the call (and any handler or listener waiting on it)
//! forever: the protocol's own client sets no limit (docs/protocol.md,
//! "Transfer time limits"). [`TransferTimeouts`] bounds both directions:
//!
//! - **idle**: the longest pause without progress, counted from the request
//!   until the response head, between body chunks in either direction, and
//!   from the last upload chunk until the CDN answers;
//! - **overall**: `base + size / min_rate`, so a 1 GiB file gets more time
//!   than a thumbnail, computed with saturating arithmetic so that no size
//!   or setting can overflow it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::Instant;
use wxlink_transport::{Body, BoxError};

/// The largest frame handed to the HTTP client at once, so that progress is
/// seen at this granularity even when the source is one big buffer.
const WATCH_FRAME: usize = 64 * 1024;

/// Time limits of one CDN upload or download.
///
/// ```
/// use std::time::Duration;
/// use wxlink_media::TransferTimeouts;
///
/// let limits = TransferTimeouts::default();
/// // 30 s plus one second per 64 KiB.
/// assert_eq!(limits.overall_for(64 * 1024 * 10), Some(Duration::from_secs(40)));
/// let strict = TransferTimeouts::new(Some(Duration::from_secs(5)), Duration::from_secs(10), 1 << 20);
/// assert_eq!(strict.idle, Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferTimeouts {
    /// The longest pause without progress (default 30 s); `None` for no
    /// idle limit.
    pub idle: Option<Duration>,
    /// The fixed part of the overall limit (default 30 s).
    pub base: Duration,
    /// The slowest average rate accepted, in bytes per second (default
    /// 64 KiB/s); the overall limit is `base + size / min_rate`. `0` turns
    /// the overall limit off.
    pub min_rate: u64,
}

impl Default for TransferTimeouts {
    fn default() -> Self {
        Self {
            idle: Some(Duration::from_secs(30)),
            base: Duration::from_secs(30),
            min_rate: 64 * 1024,
        }
    }
}

impl TransferTimeouts {
    /// Limits from their parts.
    pub const fn new(idle: Option<Duration>, base: Duration, min_rate: u64) -> Self {
        Self {
            idle,
            base,
            min_rate,
        }
    }

    /// No limits at all, as the official client has.
    pub const fn none() -> Self {
        Self {
            idle: None,
            base: Duration::MAX,
            min_rate: 0,
        }
    }

    /// The overall limit of a transfer of `bytes`: `base + bytes /
    /// min_rate`, saturating; `None` when `min_rate` is 0 or the sum
    /// saturates (no overall limit).
    pub fn overall_for(&self, bytes: u64) -> Option<Duration> {
        if self.min_rate == 0 {
            return None;
        }
        let secs = bytes / self.min_rate;
        let rest = bytes % self.min_rate;
        // rest < min_rate, so the product fits in u128 and the quotient
        // below one second's worth of nanoseconds.
        let nanos = (u128::from(rest) * 1_000_000_000) / u128::from(self.min_rate);
        let nanos = u32::try_from(nanos).unwrap_or(999_999_999);
        let extra = Duration::new(secs, 0).checked_add(Duration::from_nanos(u64::from(nanos)))?;
        self.base.checked_add(extra)
    }
}

/// The instant a transfer last made progress, shared between the body that
/// moves the bytes and the watchdog that waits on it.
#[derive(Debug, Clone)]
pub(crate) struct ProgressClock {
    start: Instant,
    /// Milliseconds from `start` to the last progress.
    last_ms: Arc<AtomicU64>,
}

impl ProgressClock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records progress now.
    pub(crate) fn tick(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        let ms = self.last_ms.load(Ordering::Relaxed);
        self.start
            .checked_add(Duration::from_millis(ms))
            .unwrap_or(self.start)
    }

    /// Resolves once no progress has been seen for `idle`; never with
    /// `None`.
    pub(crate) async fn stalled(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let Some(due) = self.last().checked_add(idle) else {
                return std::future::pending().await;
            };
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// A body that ticks `clock` whenever a frame moves, handing large frames
/// on in [`WATCH_FRAME`] slices.
pub(crate) struct Watched {
    inner: Body,
    pending: Bytes,
    clock: ProgressClock,
}

impl Watched {
    /// Wraps `inner` into a one-shot body that reports progress to `clock`.
    pub(crate) fn wrap(inner: Body, clock: ProgressClock) -> Body {
        Body::from_http_body(Self {
            inner,
            pending: Bytes::new(),
            clock,
        })
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
            }
        }
        let n = this.pending.len().min(WATCH_FRAME);
        let part = this.pending.split_to(n);
        this.clock.tick();
        Poll::Ready(Some(Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(pending));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(pending));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overall_limit_grows_with_the_size_and_never_overflows() {
        let t = TransferTimeouts::default();
        assert_eq!(t.overall_for(0), Some(Duration::from_secs(30)));
        assert_eq!(
            t.overall_for(32 * 1024),
            Some(Duration::from_millis(30_500))
        );
        assert_eq!(
            t.overall_for(u64::MAX)
                .map(|d| d > Duration::from_secs(1 << 40)),
            Some(true)
        );
        let huge_base = TransferTimeouts::new(None, Duration::MAX, 1);
        assert_eq!(huge_base.overall_for(u64::MAX), None);
        assert_eq!(TransferTimeouts::none().overall_for(1 << 30), None);
    }
}
