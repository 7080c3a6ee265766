//! Upload sources and the two passes over them.
//!
//! An upload reads its source twice: a first pass computes the size, the MD5
//! and the first bytes (for kind inference), because `getuploadurl` needs
//! them before the CDN POST; a second pass encrypts the data chunk by chunk
//! into a streaming request body. Memory therefore stays at a few chunks
//! whatever the size.
//!
//! A path and bytes can be read any number of times, so a CDN retry simply
//! reopens them. A URL is fetched once into a temporary spool file (hashing
//! while it arrives), which is then replayable. An async reader is one-shot:
//! without a known MD5 it is spooled like a URL; with one (see
//! [`UploadSource::md5`]) it is streamed straight to the CDN in a single
//! pass, and a retry fails with [`Error::is_not_replayable`].

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use wxlink_transport::{Body, BoxError};

use crate::crypto::{Encryptor, ciphertext_len};
use crate::error::{Error, ErrorKind};
use crate::hash::Md5;
use crate::key::AesKey;
use crate::kind::{MediaKind, SNIFF_LEN};
use crate::progress::{Phase, ProgressHook, report};

/// The default size of the chunks read, hashed and encrypted: 256 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// How many encrypted chunks may wait between the reader and the HTTP
/// client. With the default chunk size this bounds the upload's buffers to
/// about 1 MiB.
const CHANNEL_DEPTH: usize = 4;

/// Plaintext smaller than this is encrypted in one piece into a replayable
/// buffered body instead of being streamed.
const INLINE_LIMIT: u64 = 1024 * 1024;

type BoxReader = Pin<Box<dyn AsyncRead + Send>>;

/// What to upload: a file path, bytes in memory, an async reader of known
/// length, or an `http(s)` URL.
///
/// An upload reads its source twice: once for the size, MD5 and first
/// bytes, which `getuploadurl` needs, then again to encrypt and send it.
/// A path and bytes are simply read again, and again for each CDN retry. A
/// URL is fetched once into a temporary spool file (hashed as it arrives),
/// which is then replayable. A reader is one-shot: without a known MD5 it is
/// spooled like a URL; with one ([`md5`](Self::md5)) it is streamed to the
/// CDN in a single pass, and a retry fails with
/// [`Error::is_not_replayable`].
///
/// ```
/// use wxlink_media::upload::UploadSource;
///
/// let from_disk = UploadSource::path("report.pdf");
/// let from_memory = UploadSource::bytes(b"hello".to_vec()).file_name("hello.txt");
/// let from_web = UploadSource::url("https://example.com/cat.png");
/// # drop((from_disk, from_memory, from_web));
/// ```
pub struct UploadSource {
    pub(crate) origin: Origin,
    pub(crate) file_name: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) md5: Option<String>,
    pub(crate) kind: Option<MediaKind>,
}

pub(crate) enum Origin {
    Path(PathBuf),
    Bytes(Bytes),
    Reader { reader: BoxReader, len: u64 },
    Url(String),
}

impl fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.origin {
            Origin::Path(p) => format!("path {}", p.display()),
            Origin::Bytes(b) => format!("{} bytes", b.len()),
            Origin::Reader { len, .. } => format!("reader of {len} bytes"),
            // A URL may carry credentials in its query; only the scheme and
            // host are shown.
            Origin::Url(u) => match url::Url::parse(u) {
                Ok(u) => format!("url {}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
                Err(_) => "url (unparsable)".to_owned(),
            },
        };
        f.debug_struct("UploadSource")
            .field("origin", &origin)
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl UploadSource {
    fn new(origin: Origin) -> Self {
        Self {
            origin,
            file_name: None,
            content_type: None,
            md5: None,
            kind: None,
        }
    }

    /// A file on disk. Its base name becomes the file name unless
    /// [`file_name`](Self::file_name) says otherwise.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::new(Origin::Path(path.into()))
    }

    /// Bytes in memory (shared, not copied; replayable).
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::new(Origin::Bytes(bytes.into()))
    }

    /// An async reader that yields exactly `len` bytes. It is read once; see
    /// the type documentation for how it is uploaded.
    pub fn reader(reader: impl AsyncRead + Send + 'static, len: u64) -> Self {
        Self::new(Origin::Reader {
            reader: Box::pin(reader),
            len,
        })
    }

    /// An `http://` or `https://` URL, fetched with the limits of
    /// [`FetchOptions`](crate::upload::FetchOptions). The content type and
    /// file name come from the response unless set here.
    pub fn url(url: impl Into<String>) -> Self {
        Self::new(Origin::Url(url.into()))
    }

    /// The file name shown to the receiver (and used for kind inference).
    #[must_use]
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// The content type, which takes precedence over magic bytes and the
    /// extension (unless it is `application/octet-stream`).
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The plaintext MD5 (32 hex characters), when the caller already knows
    /// it. A reader with a known MD5 is streamed once, without spooling.
    #[must_use]
    pub fn md5(mut self, md5_hex: impl Into<String>) -> Self {
        self.md5 = Some(md5_hex.into().to_ascii_lowercase());
        self
    }

    /// Uploads as this kind instead of the inferred one (e.g. to send a
    /// picture as a file).
    #[must_use]
    pub fn kind(mut self, kind: MediaKind) -> Self {
        self.kind = Some(kind);
        self
    }
}

/// A source after its first pass: what `getuploadurl` needs, and a way to
/// produce the encrypted body (once or many times).
pub(crate) struct Prepared {
    pub(crate) replay: Replay,
    pub(crate) rawsize: u64,
    pub(crate) md5: String,
    pub(crate) head: Vec<u8>,
    pub(crate) file_name: Option<String>,
    pub(crate) content_type: Option<String>,
}

/// How the second pass reads the data.
pub(crate) enum Replay {
    Path(PathBuf),
    /// A spool file, deleted when dropped.
    Spool(tempfile::TempPath),
    Bytes(Bytes),
    /// The head already read for sniffing, then the rest of the reader;
    /// `None` once used.
    OneShot(Option<(Bytes, BoxReader)>),
}

/// A first-pass result for `len` bytes read from `read`.
pub(crate) struct Digested {
    pub(crate) len: u64,
    pub(crate) md5: String,
    pub(crate) head: Vec<u8>,
}

/// Streams `read` through MD5, keeping the first [`SNIFF_LEN`] bytes.
/// Blocking: run it on a blocking thread.
pub(crate) fn digest_blocking(
    mut read: impl Read,
    expected: Option<u64>,
    chunk: usize,
    progress: Option<&ProgressHook>,
) -> Result<Digested, Error> {
    let mut md5 = Md5::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; chunk.max(16)];
    let mut len = 0u64;
    loop {
        let n = match read.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ErrorKind::Io { source: e }.into()),
        };
        md5.update(&buf[..n]);
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        len += n as u64;
        report(progress, Phase::Hashing, len, expected);
    }
    Ok(Digested {
        len,
        md5: hex::encode(md5.finalize()),
        head,
    })
}

/// Runs a blocking closure on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ErrorKind::Io {
            source: std::io::Error::other(e),
        })?
}

/// The base name of a path, as a file name for the receiver.
pub(crate) fn base_name(path: &Path) -> Option<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
}

/// First pass over a file at `path`.
pub(crate) async fn digest_path(
    path: PathBuf,
    chunk: usize,
    progress: Option<ProgressHook>,
) -> Result<Digested, Error> {
    blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| ErrorKind::Io { source: e })?;
        let len = file
            .metadata()
            .map_err(|e| ErrorKind::Io { source: e })?
            .len();
        digest_blocking(file, Some(len), chunk, progress.as_ref())
    })
    .await
}

/// First pass over bytes in memory.
pub(crate) async fn digest_bytes(
    bytes: Bytes,
    progress: Option<ProgressHook>,
) -> Result<Digested, Error> {
    let len = bytes.len() as u64;
    let run = move || digest_blocking(&bytes[..], Some(len), DEFAULT_CHUNK_SIZE, progress.as_ref());
    if len <= INLINE_LIMIT {
        run()
    } else {
        blocking(run).await
    }
}

/// Copies a one-shot reader into a spool file while hashing it; fails when
/// it yields more than `max` bytes (or, when `exact` is set, a different
/// number of bytes).
pub(crate) async fn spool_reader(
    mut reader: BoxReader,
    exact: Option<u64>,
    max: u64,
    chunk: usize,
    phase: Phase,
    progress: Option<ProgressHook>,
) -> Result<(tempfile::TempPath, Digested), Error> {
    let (file, path) = tempfile::NamedTempFile::new()
        .map_err(|e| ErrorKind::Io { source: e })?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut md5 = Md5::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; chunk.max(16)];
    let mut len = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| ErrorKind::Io { source: e })?;
        if n == 0 {
            break;
        }
        len += n as u64;
        if let Some(exact) = exact.filter(|&exact| len > exact) {
            return Err(ErrorKind::SourceChanged {
                expected: exact,
                actual: len,
            }
            .into());
        }
        if len > max {
            return Err(ErrorKind::TooLarge { limit: max }.into());
        }
        md5.update(&buf[..n]);
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &buf[..n])
            .await
            .map_err(|e| ErrorKind::Io { source: e })?;
        report(progress.as_ref(), phase, len, exact);
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| ErrorKind::Io { source: e })?;
    if let Some(exact) = exact.filter(|&exact| exact != len) {
        return Err(ErrorKind::SourceChanged {
            expected: exact,
            actual: len,
        }
        .into());
    }
    Ok((
        path,
        Digested {
            len,
            md5: hex::encode(md5.finalize()),
            head,
        },
    ))
}

/// Reads up to [`SNIFF_LEN`] bytes from the start of a reader.
pub(crate) async fn read_head(reader: &mut BoxReader, len: u64) -> Result<Bytes, Error> {
    let want = (SNIFF_LEN as u64).min(len) as usize;
    let mut head = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        let n = reader
            .read(&mut head[filled..])
            .await
            .map_err(|e| ErrorKind::Io { source: e })?;
        if n == 0 {
            return Err(ErrorKind::SourceChanged {
                expected: len,
                actual: filled as u64,
            }
            .into());
        }
        filled += n;
    }
    Ok(Bytes::from(head))
}

/// Where a producer leaves the error that ended its stream, so the upload
/// can report it instead of the HTTP client's generic "body failed".
pub(crate) type ErrorSlot = Arc<Mutex<Option<Error>>>;

fn put_error(slot: &ErrorSlot, err: impl Into<Error>) {
    if let Ok(mut guard) = slot.lock() {
        guard.get_or_insert(err.into());
    }
}

pub(crate) fn take_error(slot: &ErrorSlot) -> Option<Error> {
    slot.lock().ok().and_then(|mut guard| guard.take())
}

/// The error the body stream itself yields when its producer failed; the
/// real cause is in the [`ErrorSlot`].
#[derive(Debug, thiserror::Error)]
#[error("upload source failed")]
struct SourceFailed;

impl Replay {
    /// Whether [`open`](Self::open) can be called again.
    pub(crate) fn is_replayable(&self) -> bool {
        !matches!(self, Self::OneShot(_))
    }

    /// Starts the second pass: a request body that yields the ciphertext of
    /// the `rawsize` plaintext bytes, encrypted with `key`. `None` when a
    /// one-shot source was already used.
    pub(crate) fn open(
        &mut self,
        key: &AesKey,
        rawsize: u64,
        chunk: usize,
        progress: Option<ProgressHook>,
        slot: &ErrorSlot,
    ) -> Option<Body> {
        let total = ciphertext_len(rawsize);
        let chunk = (chunk.max(16) / 16) * 16;
        match self {
            Self::Bytes(bytes) if rawsize <= INLINE_LIMIT => {
                let body = Body::from(crate::crypto::encrypt(key, bytes));
                report(progress.as_ref(), Phase::Uploading, 0, Some(total));
                Some(body)
            }
            Self::Bytes(bytes) => {
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let bytes = bytes.clone();
                let key = key.clone();
                let slot2 = Arc::clone(slot);
                tokio::task::spawn_blocking(move || {
                    encrypt_blocking(&bytes[..], &key, rawsize, chunk, &tx, &slot2);
                });
                Some(channel_body(rx, total, progress))
            }
            Self::Path(path) => Some(open_file(path.clone(), key, rawsize, chunk, progress, slot)),
            Self::Spool(path) => Some(open_file(
                path.to_path_buf(),
                key,
                rawsize,
                chunk,
                progress,
                slot,
            )),
            Self::OneShot(parts) => {
                let (head, reader) = parts.take()?;
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let key = key.clone();
                let slot2 = Arc::clone(slot);
                tokio::spawn(async move {
                    encrypt_reader(head, reader, &key, rawsize, chunk, &tx, &slot2).await;
                });
                Some(channel_body(rx, total, progress))
            }
        }
    }
}

fn open_file(
    path: PathBuf,
    key: &AesKey,
    rawsize: u64,
    chunk: usize,
    progress: Option<ProgressHook>,
    slot: &ErrorSlot,
) -> Body {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let key = key.clone();
    let slot2 = Arc::clone(slot);
    tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
        Ok(file) => encrypt_blocking(file, &key, rawsize, chunk, &tx, &slot2),
        Err(e) => {
            put_error(&slot2, ErrorKind::Io { source: e });
            let _ = tx.blocking_send(Err(()));
        }
    });
    channel_body(rx, ciphertext_len(rawsize), progress)
}

/// Reads `rawsize` bytes from `read` in chunks, encrypts each in place and
/// sends it; then sends the final padded block. Stops early when the
/// receiver is gone (the request was dropped).
fn encrypt_blocking(
    mut read: impl Read,
    key: &AesKey,
    rawsize: u64,
    chunk: usize,
    tx: &mpsc::Sender<Result<Bytes, ()>>,
    slot: &ErrorSlot,
) {
    let mut enc = Encryptor::new(key);
    let mut remaining = rawsize;
    while remaining > 0 {
        let want = (chunk as u64).min(remaining) as usize;
        // `read_to_end` fills spare capacity without zeroing it first.
        let mut buf = Vec::with_capacity(want);
        let filled = match (&mut read).take(want as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                put_error(slot, ErrorKind::Io { source: e });
                let _ = tx.blocking_send(Err(()));
                return;
            }
        };
        if filled < want {
            put_error(
                slot,
                ErrorKind::SourceChanged {
                    expected: rawsize,
                    actual: rawsize - remaining + filled as u64,
                },
            );
            let _ = tx.blocking_send(Err(()));
            return;
        }
        remaining -= want as u64;
        enc.update_in_place(&mut buf);
        if !buf.is_empty() && tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return;
        }
    }
    let _ = tx.blocking_send(Ok(Bytes::copy_from_slice(&enc.finish())));
}

/// The async twin of [`encrypt_blocking`] for a one-shot reader whose first
/// bytes (`head`) were already read.
async fn encrypt_reader(
    head: Bytes,
    mut reader: BoxReader,
    key: &AesKey,
    rawsize: u64,
    chunk: usize,
    tx: &mpsc::Sender<Result<Bytes, ()>>,
    slot: &ErrorSlot,
) {
    let mut enc = Encryptor::new(key);
    let mut out = Vec::with_capacity(head.len() + 16);
    enc.update(&head, &mut out);
    if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
        return;
    }
    let mut remaining = rawsize - head.len() as u64;
    while remaining > 0 {
        let want = (chunk as u64).min(remaining) as usize;
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match reader.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    put_error(slot, ErrorKind::Io { source: e });
                    let _ = tx.send(Err(())).await;
                    return;
                }
            }
        }
        if filled < want {
            put_error(
                slot,
                ErrorKind::SourceChanged {
                    expected: rawsize,
                    actual: rawsize - remaining + filled as u64,
                },
            );
            let _ = tx.send(Err(())).await;
            return;
        }
        remaining -= want as u64;
        enc.update_in_place(&mut buf);
        if !buf.is_empty() && tx.send(Ok(Bytes::from(buf))).await.is_err() {
            return;
        }
    }
    let _ = tx.send(Ok(Bytes::copy_from_slice(&enc.finish()))).await;
}

fn channel_body(
    rx: mpsc::Receiver<Result<Bytes, ()>>,
    total: u64,
    progress: Option<ProgressHook>,
) -> Body {
    report(progress.as_ref(), Phase::Uploading, 0, Some(total));
    Body::from_http_body(ChannelBody {
        rx,
        total,
        sent: 0,
        progress,
    })
}

/// A request body fed by a producer through a bounded channel, with an
/// exact size so the HTTP client sends a `Content-Length`.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, ()>>,
    total: u64,
    sent: u64,
    progress: Option<ProgressHook>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(bytes))) => {
                self.sent += bytes.len() as u64;
                report(
                    self.progress.as_ref(),
                    Phase::Uploading,
                    self.sent,
                    Some(self.total),
                );
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(()))) => Poll::Ready(Some(Err(Box::new(SourceFailed)))),
            Poll::Ready(None) if self.sent != self.total => {
                Poll::Ready(Some(Err(Box::new(SourceFailed))))
            }
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.total
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total.saturating_sub(self.sent))
    }
}
