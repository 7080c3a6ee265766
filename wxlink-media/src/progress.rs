//! Progress reports for uploads and downloads, for progress bars.

use std::fmt;
use std::sync::Arc;

/// Which part of a transfer a [`Progress`] report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Reading the source to compute its MD5 (plaintext bytes).
    Hashing,
    /// Fetching a URL source into a local spool file (plaintext bytes).
    Fetching,
    /// Sending the encrypted body to the CDN (ciphertext bytes).
    Uploading,
    /// Receiving an encrypted body from the CDN (ciphertext bytes).
    Downloading,
}

/// One progress report: `done` of `total` bytes in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The phase the numbers belong to.
    pub phase: Phase,
    /// Bytes done so far in this phase.
    pub done: u64,
    /// Bytes expected in this phase, when known.
    pub total: Option<u64>,
}

impl Progress {
    /// A report of `done` of `total` bytes in `phase`.
    pub const fn new(phase: Phase, done: u64, total: Option<u64>) -> Self {
        Self { phase, done, total }
    }
}

/// A callback that receives [`Progress`] reports. Cheap to clone.
///
/// It is called from the task or thread doing the transfer, once per chunk
/// (every few hundred KiB), so it should return quickly.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use wxlink_media::progress::ProgressHook;
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let hook = {
///     let seen = Arc::clone(&seen);
///     ProgressHook::new(move |p| seen.store(p.done, Ordering::Relaxed))
/// };
/// # drop(hook);
/// ```
#[derive(Clone)]
pub struct ProgressHook(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressHook {
    /// Wraps a callback.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Delivers one report.
    pub fn report(&self, progress: Progress) {
        (self.0)(progress);
    }
}

impl fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressHook(..)")
    }
}

/// Reports to an optional hook.
#[cfg(feature = "transport")]
pub(crate) fn report(hook: Option<&ProgressHook>, phase: Phase, done: u64, total: Option<u64>) {
    if let Some(hook) = hook {
        hook.report(Progress::new(phase, done, total));
    }
}
