//! Downloading inbound media from the CDN (docs/protocol.md, "Media download").
//!
//! [`resolve_item`] turns an inbound `MessageItem` (image, voice, file or
//! video) into an [`InboundMedia`]: the URL (`full_url` first, else one
//! built from `encrypt_query_param`), the key (per item type, see
//! [`resolve_item_key`]), the kind and the file
//! name; [`resolve_thumbnail`] does the same for an image's or video's
//! thumbnail. [`download`] and [`download_to_file`] stream the GET through
//! the [`Decryptor`], with a size cap, and detect the real content type
//! from the plaintext. Voice is SILK and reported as `audio/silk`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, StatusCode};
use tokio::io::AsyncWriteExt;
use wxlink_proto::{CdnMedia, MessageItem, MessageItemType};
use wxlink_transport::{Body, CallMeta};

use crate::crypto::Decryptor;
use crate::error::{Error, ErrorKind};
use crate::http::{HttpService, cdn_download_url, content_length, excerpt, read_prefix_within};
use crate::key::{AesKey, KeyEncoding, resolve_item_key};
use crate::kind::{MediaKind, OCTET_STREAM, SILK_MIME, SNIFF_LEN, is_silk, sniff_mime};
use crate::limits::TransferTimeouts;
use crate::progress::{Phase, ProgressHook, report};

/// The default download cap: 100 MiB, the official client's limit.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// An inbound media reference, ready to download.
///
/// `Debug` never shows the key, nor the URL's query (it carries the CDN's
/// `encrypted_query_param`, which grants the download).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundMedia {
    /// What the item is. A thumbnail is an [`MediaKind::Image`].
    pub kind: MediaKind,
    /// The download URL.
    pub url: String,
    /// The decryption key; `None` for an image sent without one, which is
    /// downloaded as is.
    pub key: Option<AesKey>,
    /// How the key was encoded on the wire.
    pub key_encoding: Option<KeyEncoding>,
    /// The file name, for file items.
    pub file_name: Option<String>,
    /// The plaintext MD5 the item declares, when it does.
    pub md5: Option<String>,
    /// Whether this is a thumbnail rather than the item itself.
    pub thumbnail: bool,
}

impl std::fmt::Debug for InboundMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is shown up to its query, which is replaced.
        let url = match self.url.split_once('?') {
            Some((base, _)) => format!("{base}?<redacted>"),
            None => self.url.clone(),
        };
        f.debug_struct("InboundMedia")
            .field("kind", &self.kind)
            .field("url", &url)
            .field("key", &self.key)
            .field("key_encoding", &self.key_encoding)
            .field("file_name", &self.file_name)
            .field("md5", &self.md5)
            .field("thumbnail", &self.thumbnail)
            .finish()
    }
}

impl InboundMedia {
    /// A media reference from its parts, e.g. one stored by the caller.
    pub fn new(kind: MediaKind, url: impl Into<String>, key: Option<AesKey>) -> Self {
        Self {
            kind,
            url: url.into(),
            key,
            key_encoding: None,
            file_name: None,
            md5: None,
            thumbnail: false,
        }
    }

    /// Sets the file name.
    #[must_use]
    pub fn with_file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }
}

/// Where a `CdnMedia` can be downloaded from: `full_url` when present, else
/// `<cdn base>/download?encrypted_query_param=…`.
pub fn media_url(media: &CdnMedia, cdn_base_url: &str) -> Option<String> {
    if let Some(full) = media
        .full_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        return Some(full.to_owned());
    }
    media
        .encrypt_query_param
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| cdn_download_url(cdn_base_url, p))
}

fn media_key(media: Option<&CdnMedia>) -> Option<&str> {
    media
        .and_then(|m| m.aes_key.as_ref())
        .map(|k| k.expose_secret())
}

fn item_kind(item: &MessageItem) -> Option<MediaKind> {
    match item.item_type {
        Some(t) => MediaKind::from_item_type(t),
        // Without a type, the filled payload says what the item is.
        None if item.image_item.is_some() => Some(MediaKind::Image),
        None if item.video_item.is_some() => Some(MediaKind::Video),
        None if item.file_item.is_some() => Some(MediaKind::File),
        None if item.voice_item.is_some() => Some(MediaKind::Voice),
        None => None,
    }
}

fn build(
    kind: MediaKind,
    media: Option<&CdnMedia>,
    image_aeskey: Option<&str>,
    cdn_base_url: &str,
) -> Result<InboundMedia, Error> {
    let url = media
        .and_then(|m| media_url(m, cdn_base_url))
        .ok_or(ErrorKind::NoMedia { kind })?;
    let resolved = resolve_item_key(kind, image_aeskey, media_key(media))?;
    let (key, key_encoding) = match resolved {
        Some((k, e)) => (Some(k), Some(e)),
        None => (None, None),
    };
    Ok(InboundMedia {
        kind,
        url,
        key,
        key_encoding,
        file_name: None,
        md5: None,
        thumbnail: false,
    })
}

/// Resolves an inbound image, voice, file or video item (docs/protocol.md,
/// "Media download").
///
/// # Errors
///
/// [`Error::is_not_media`] for text and unknown items,
/// [`Error::is_missing_reference`] when the item has no CDN reference,
/// [`Error::is_missing_key`] or [`Error::is_invalid_key`] for keys.
pub fn resolve_item(item: &MessageItem, cdn_base_url: &str) -> Result<InboundMedia, Error> {
    let kind = item_kind(item).ok_or(ErrorKind::NotMedia)?;
    match kind {
        MediaKind::Image => {
            let img = item
                .image_item
                .as_ref()
                .ok_or(ErrorKind::NoMedia { kind })?;
            build(
                kind,
                img.media.as_ref(),
                img.aeskey.as_ref().map(|k| k.expose_secret()),
                cdn_base_url,
            )
        }
        MediaKind::Voice => {
            let voice = item
                .voice_item
                .as_ref()
                .ok_or(ErrorKind::NoMedia { kind })?;
            build(kind, voice.media.as_ref(), None, cdn_base_url)
        }
        MediaKind::File => {
            let file = item.file_item.as_ref().ok_or(ErrorKind::NoMedia { kind })?;
            let mut out = build(kind, file.media.as_ref(), None, cdn_base_url)?;
            out.file_name = file.file_name.clone().filter(|n| !n.trim().is_empty());
            out.md5 = file.md5.clone().filter(|m| !m.is_empty());
            Ok(out)
        }
        MediaKind::Video => {
            let video = item
                .video_item
                .as_ref()
                .ok_or(ErrorKind::NoMedia { kind })?;
            let mut out = build(kind, video.media.as_ref(), None, cdn_base_url)?;
            out.md5 = video.video_md5.clone().filter(|m| !m.is_empty());
            Ok(out)
        }
    }
}

/// Resolves the thumbnail of an inbound image or video; `Ok(None)` when the
/// item has none.
///
/// An image thumbnail uses `image_item.aeskey` first, then
/// `thumb_media.aes_key`, else it is plain. A video thumbnail uses
/// `thumb_media.aes_key`, else the video's `media.aes_key`.
///
/// # Errors
///
/// As [`resolve_item`].
pub fn resolve_thumbnail(
    item: &MessageItem,
    cdn_base_url: &str,
) -> Result<Option<InboundMedia>, Error> {
    let kind = item_kind(item).ok_or(ErrorKind::NotMedia)?;
    let thumb = match (kind, item.item_type) {
        (MediaKind::Image, _) => {
            let Some(img) = item.image_item.as_ref() else {
                return Ok(None);
            };
            let Some(thumb) = img.thumb_media.as_ref() else {
                return Ok(None);
            };
            build(
                MediaKind::Image,
                Some(thumb),
                img.aeskey.as_ref().map(|k| k.expose_secret()),
                cdn_base_url,
            )?
        }
        (MediaKind::Video, _) | (_, Some(MessageItemType::Video)) => {
            let Some(video) = item.video_item.as_ref() else {
                return Ok(None);
            };
            let Some(thumb) = video.thumb_media.as_ref() else {
                return Ok(None);
            };
            let key = media_key(Some(thumb)).or_else(|| media_key(video.media.as_ref()));
            let url = media_url(thumb, cdn_base_url).ok_or(ErrorKind::NoMedia {
                kind: MediaKind::Image,
            })?;
            let (key, key_encoding) = match key {
                Some(k) => {
                    let (k, e) = AesKey::parse_inbound(k)?;
                    (Some(k), Some(e))
                }
                None => {
                    return Err(ErrorKind::MissingKey {
                        kind: MediaKind::Video,
                    }
                    .into());
                }
            };
            InboundMedia {
                kind: MediaKind::Image,
                url,
                key,
                key_encoding,
                file_name: None,
                md5: None,
                thumbnail: true,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(InboundMedia {
        thumbnail: true,
        ..thumb
    }))
}

/// Settings of a download.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// The largest plaintext accepted, in bytes (default 100 MiB).
    pub max_bytes: u64,
    /// The time the whole download may take; `None` (the default) for no
    /// limit beyond the transport's own and [`timeouts`](Self::timeouts).
    pub timeout: Option<Duration>,
    /// The idle limit (until the response head and between chunks) and
    /// the overall limit that grows with the announced size (or the cap
    /// when no size is announced). A stall ends the download with
    /// [`Error::is_stalled`], the overall limit with
    /// [`Error::is_timeout`].
    pub timeouts: TransferTimeouts,
    /// Receives downloading progress (ciphertext bytes).
    pub progress: Option<ProgressHook>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: None,
            timeouts: TransferTimeouts::default(),
            progress: None,
        }
    }
}

impl DownloadOptions {
    /// Defaults with a different size cap.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            ..Self::default()
        }
    }
}

/// Downloaded media held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Downloaded {
    /// The plaintext.
    pub bytes: Bytes,
    /// The content type detected from the plaintext (`audio/silk` for voice).
    pub mime: String,
    /// The item's kind.
    pub kind: MediaKind,
    /// The item's file name, when it has one.
    pub file_name: Option<String>,
}

/// Downloaded media written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedFile {
    /// Where the plaintext was written.
    pub path: PathBuf,
    /// The plaintext size in bytes.
    pub size: u64,
    /// The content type detected from the plaintext (`audio/silk` for voice).
    pub mime: String,
    /// The item's kind.
    pub kind: MediaKind,
    /// The item's file name, when it has one.
    pub file_name: Option<String>,
}

/// The content type of downloaded plaintext: its magic bytes, else what the
/// kind and the file name say.
pub fn detect_mime(kind: MediaKind, head: &[u8], file_name: Option<&str>) -> String {
    if kind == MediaKind::Voice {
        // Inbound voice is SILK (docs/protocol.md, "Voice"), with or without
        // its magic.
        return if is_silk(head) || sniff_mime(head).is_none() {
            SILK_MIME.to_owned()
        } else {
            sniff_mime(head).unwrap_or_else(|| SILK_MIME.to_owned())
        };
    }
    if let Some(mime) = sniff_mime(head) {
        return mime;
    }
    if let Some(mime) = file_name.and_then(|n| mime_guess::from_path(n).first()) {
        return mime.essence_str().to_owned();
    }
    match kind {
        MediaKind::Video => "video/mp4".to_owned(),
        _ => OCTET_STREAM.to_owned(),
    }
}

/// Receives plaintext chunks during a download.
trait Sink {
    async fn write(&mut self, data: &[u8]) -> Result<(), Error>;
}

struct MemorySink {
    buf: Vec<u8>,
}

impl Sink for MemorySink {
    async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.buf.extend_from_slice(data);
        Ok(())
    }
}

struct FileSink {
    file: tokio::io::BufWriter<tokio::fs::File>,
}

impl Sink for FileSink {
    async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file
            .write_all(data)
            .await
            .map_err(|e| ErrorKind::Io { source: e }.into())
    }
}

/// Streams the GET through the decryptor into `sink`; returns the
/// plaintext size and its first bytes.
async fn fetch_into<H: HttpService, K: Sink>(
    http: &H,
    media: &InboundMedia,
    options: &DownloadOptions,
    sink: &mut K,
) -> Result<(u64, Vec<u8>), Error> {
    let work = fetch_into_inner(http, media, options, sink);
    match options.timeout {
        Some(after) => tokio::time::timeout(after, work)
            .await
            .map_err(|_| ErrorKind::Timeout { after })?,
        None => work.await,
    }
}

async fn fetch_into_inner<H: HttpService, K: Sink>(
    http: &H,
    media: &InboundMedia,
    options: &DownloadOptions,
    sink: &mut K,
) -> Result<(u64, Vec<u8>), Error> {
    let mut req = Request::get(media.url.as_str())
        .body(Body::empty())
        .map_err(|_| ErrorKind::UnsupportedUrl {
            reason: "download url is not a valid request uri".to_owned(),
        })?;
    req.extensions_mut().insert(CallMeta::cdn());
    let idle = options.timeouts.idle;
    let stalled = |idle: Option<Duration>| ErrorKind::Stalled {
        idle: idle.unwrap_or_default(),
    };
    let send = http.send(req);
    let resp = match idle {
        Some(limit) => tokio::time::timeout(limit, send)
            .await
            .map_err(|_| stalled(idle))?,
        None => send.await,
    }
    .map_err(|source| ErrorKind::Http { source })?;
    let status = resp.status();
    if status != StatusCode::OK {
        let message = excerpt(&read_prefix_within(resp.into_body(), idle).await);
        return Err(ErrorKind::DownloadStatus {
            status: status.as_u16(),
            message,
        }
        .into());
    }
    // The ciphertext is at most 16 bytes longer than the plaintext.
    let cipher_cap = match media.key {
        Some(_) => options.max_bytes.saturating_add(16),
        None => options.max_bytes,
    };
    let announced = content_length(&resp);
    if announced.is_some_and(|len| len > cipher_cap) {
        return Err(ErrorKind::TooLarge {
            limit: options.max_bytes,
        }
        .into());
    }
    let progress = options.progress.as_ref();
    report(progress, Phase::Downloading, 0, announced);

    let mut decryptor = media.key.as_ref().map(Decryptor::new);
    let mut stream = resp.into_body().into_data_stream();
    let mut received = 0u64;
    let mut plain_len = 0u64;
    let mut head = Vec::new();
    let mut out = Vec::new();
    // The overall limit grows with the size the CDN announced, else with
    // the cap; it starts with the first byte of the body.
    let overall = options
        .timeouts
        .overall_for(announced.unwrap_or(cipher_cap));
    let deadline = overall.and_then(|d| tokio::time::Instant::now().checked_add(d));
    loop {
        let next = stream.next();
        let next = match (idle, deadline) {
            (None, None) => next.await,
            (idle_limit, deadline) => {
                let now = tokio::time::Instant::now();
                let idle_due = idle_limit.and_then(|d| now.checked_add(d));
                let due = match (idle_due, deadline) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => now,
                };
                match tokio::time::timeout_at(due, next).await {
                    Ok(next) => next,
                    Err(_) if deadline.is_some_and(|d| d <= due) => {
                        return Err(ErrorKind::Timeout {
                            after: overall.unwrap_or_default(),
                        }
                        .into());
                    }
                    Err(_) => return Err(stalled(idle).into()),
                }
            }
        };
        let Some(chunk) = next else { break };
        let chunk = match chunk {
            Ok(c) => c,
            Err(source) => {
                return Err(match announced {
                    Some(expected) if received < expected => {
                        ErrorKind::Truncated { expected, received }
                    }
                    _ => ErrorKind::Http { source },
                }
                .into());
            }
        };
        received += chunk.len() as u64;
        if received > cipher_cap {
            return Err(ErrorKind::TooLarge {
                limit: options.max_bytes,
            }
            .into());
        }
        report(progress, Phase::Downloading, received, announced);
        let plain: &[u8] = match decryptor.as_mut() {
            Some(dec) => {
                out.clear();
                dec.update(&chunk, &mut out);
                &out
            }
            None => &chunk,
        };
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(plain.len());
            head.extend_from_slice(&plain[..take]);
        }
        plain_len += plain.len() as u64;
        sink.write(plain).await?;
    }
    if let Some(expected) = announced.filter(|&expected| received < expected) {
        return Err(ErrorKind::Truncated { expected, received }.into());
    }
    if let Some(dec) = decryptor {
        let last = dec.finish()?;
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(last.len());
            head.extend_from_slice(&last[..take]);
        }
        plain_len += last.len() as u64;
        sink.write(&last).await?;
    }
    if plain_len > options.max_bytes {
        return Err(ErrorKind::TooLarge {
            limit: options.max_bytes,
        }
        .into());
    }
    Ok((plain_len, head))
}

/// Downloads and decrypts `media` into memory.
///
/// ```no_run
/// use wxlink_media::download::DownloadOptions;
/// use wxlink_media::{download, resolve_item};
/// use wxlink_transport::{ApiClient, ApiConfig};
///
/// # async fn run(item: wxlink_proto::MessageItem) -> Result<(), Box<dyn std::error::Error>> {
/// let api = ApiClient::new(ApiConfig::default());
/// let media = resolve_item(&item, wxlink_proto::DEFAULT_CDN_BASE_URL)?;
/// let got = download(&api.cdn_service(), &media, &DownloadOptions::default()).await?;
/// println!("{} bytes of {}", got.bytes.len(), got.mime);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::is_download_status`] for a non-200 answer,
/// [`Error::size_limit`] past `options.max_bytes`,
/// [`Error::is_truncated`] when fewer bytes arrive than announced,
/// [`Error::bad_ciphertext_len`] when the length is not a multiple of 16,
/// [`Error::is_bad_padding`] for corrupt data or a wrong key,
/// [`Error::is_http`] and [`Error::is_timeout`].
pub async fn download<H: HttpService>(
    http: &H,
    media: &InboundMedia,
    options: &DownloadOptions,
) -> Result<Downloaded, Error> {
    let mut sink = MemorySink { buf: Vec::new() };
    let (_, head) = fetch_into(http, media, options, &mut sink).await?;
    Ok(Downloaded {
        mime: detect_mime(media.kind, &head, media.file_name.as_deref()),
        bytes: Bytes::from(sink.buf),
        kind: media.kind,
        file_name: media.file_name.clone(),
    })
}

/// Downloads and decrypts `media` into the file at `path` (created or
/// truncated). On any error the partial file is removed.
///
/// # Errors
///
/// As [`download`], plus [`Error::is_io`] writing the file.
pub async fn download_to_file<H: HttpService>(
    http: &H,
    media: &InboundMedia,
    path: impl AsRef<Path>,
    options: &DownloadOptions,
) -> Result<DownloadedFile, Error> {
    let path = path.as_ref().to_path_buf();
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ErrorKind::Io { source: e })?;
    let mut sink = FileSink {
        file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
    };
    let result = async {
        let got = fetch_into(http, media, options, &mut sink).await?;
        sink.file
            .flush()
            .await
            .map_err(|e| ErrorKind::Io { source: e })?;
        Ok(got)
    }
    .await;
    match result {
        Ok((size, head)) => Ok(DownloadedFile {
            path,
            size,
            mime: detect_mime(media.kind, &head, media.file_name.as_deref()),
            kind: media.kind,
            file_name: media.file_name.clone(),
        }),
        Err(err) => {
            drop(sink);
            let _ = tokio::fs::remove_file(&path).await;
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxlink_proto::{AesKeyText, FileItem, ImageItem, VideoItem, VoiceItem};

    const CDN: &str = "https://cdn.example/c2c/";

    fn media(param: &str, key: Option<&str>) -> CdnMedia {
        CdnMedia {
            encrypt_query_param: Some(param.to_owned()),
            aes_key: key.map(AesKeyText::new),
            ..CdnMedia::default()
        }
    }

    #[test]
    fn image_prefers_image_item_aeskey_and_builds_the_url() {
        let item = MessageItem {
            item_type: Some(MessageItemType::Image),
            image_item: Some(ImageItem {
                aeskey: Some(AesKeyText::new("a1b2c3d4e5f60718293a4b5c6d7e8f90")),
                media: Some(media("p=1", Some("AAAAAAAAAAAAAAAAAAAAAA=="))),
                thumb_media: Some(media("thumb", Some("obLD1OX2BxgpOktcbX6PkA=="))),
                ..ImageItem::default()
            }),
            ..MessageItem::default()
        };
        let got = resolve_item(&item, CDN).unwrap();
        assert_eq!(got.kind, MediaKind::Image);
        assert_eq!(
            got.url,
            "https://cdn.example/c2c/download?encrypted_query_param=p%3D1"
        );
        assert_eq!(got.key_encoding, Some(KeyEncoding::Hex));
        assert_eq!(
            got.key.unwrap().to_hex(),
            "a1b2c3d4e5f60718293a4b5c6d7e8f90"
        );
        let thumb = resolve_thumbnail(&item, CDN).unwrap().unwrap();
        assert!(thumb.thumbnail);
        assert!(thumb.url.ends_with("encrypted_query_param=thumb"));
    }

    #[test]
    fn full_url_is_used_as_is() {
        let mut m = media(
            "ignored",
            Some("MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY="),
        );
        m.full_url = Some("https://cdn.example/full?x=1".to_owned());
        let item = MessageItem {
            item_type: Some(MessageItemType::Video),
            video_item: Some(VideoItem {
                media: Some(m),
                video_md5: Some("abc".to_owned()),
                thumb_media: Some(media("vt", None)),
                ..VideoItem::default()
            }),
            ..MessageItem::default()
        };
        let got = resolve_item(&item, CDN).unwrap();
        assert_eq!(got.url, "https://cdn.example/full?x=1");
        assert_eq!(got.md5.as_deref(), Some("abc"));
        // The thumbnail borrows the video's key when it has none.
        let thumb = resolve_thumbnail(&item, CDN).unwrap().unwrap();
        assert_eq!(thumb.key, got.key);
        assert_eq!(thumb.kind, MediaKind::Image);
    }

    #[test]
    fn file_and_voice_need_a_media_key() {
        let item = MessageItem {
            item_type: Some(MessageItemType::File),
            file_item: Some(FileItem {
                media: Some(media("f", None)),
                file_name: Some("a.pdf".to_owned()),
                ..FileItem::default()
            }),
            ..MessageItem::default()
        };
        assert!(matches!(
            resolve_item(&item, CDN).as_ref().map_err(Error::kind),
            Err(ErrorKind::MissingKey {
                kind: MediaKind::File
            })
        ));
        let item = MessageItem {
            item_type: Some(MessageItemType::Voice),
            voice_item: Some(VoiceItem {
                media: Some(media("v", Some("ABEiM0RVZneImaq7zN3u/w=="))),
                ..VoiceItem::default()
            }),
            ..MessageItem::default()
        };
        let got = resolve_item(&item, CDN).unwrap();
        assert_eq!(got.kind, MediaKind::Voice);
        assert_eq!(got.key_encoding, Some(KeyEncoding::Base64Raw));
    }

    #[test]
    fn text_items_and_items_without_media_are_errors() {
        let text = MessageItem {
            item_type: Some(MessageItemType::Text),
            ..MessageItem::default()
        };
        assert!(matches!(
            resolve_item(&text, CDN).as_ref().map_err(Error::kind),
            Err(ErrorKind::NotMedia)
        ));
        let empty_image = MessageItem {
            item_type: Some(MessageItemType::Image),
            image_item: Some(ImageItem::default()),
            ..MessageItem::default()
        };
        assert!(matches!(
            resolve_item(&empty_image, CDN)
                .as_ref()
                .map_err(Error::kind),
            Err(ErrorKind::NoMedia { .. })
        ));
    }

    #[test]
    fn voice_is_reported_as_silk() {
        assert_eq!(
            detect_mime(MediaKind::Voice, b"\x02#!SILK_V3..", None),
            SILK_MIME
        );
        assert_eq!(detect_mime(MediaKind::Voice, b"no magic", None), SILK_MIME);
        assert_eq!(
            detect_mime(MediaKind::File, b"plain", Some("a.txt")),
            "text/plain"
        );
    }
}
