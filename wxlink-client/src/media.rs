//! Sending media (images, videos, files, voice) and reading inbound media.
//!
//! A send uploads the bytes to the CDN encrypted with a fresh AES-128 key
//! (docs/protocol.md, "Media upload"), then sends one message holding one media
//! item that references the upload. A caption goes out first as its own text
//! message, as the official client does (docs/protocol.md, "Shape of a bot
//! reply"). Every file item carries `md5`, `len` and `file_name`; without `md5`
//! files are known to arrive empty.

use std::future::Future;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use wxlink_media::{UploadOptions, UploadSource, UploadUrlApi, UploadedMedia, VoiceMeta};
use wxlink_proto::{
    ContextToken, GetUploadUrl, GetUploadUrlRequest, GetUploadUrlResponse, MessageItem,
    VoiceEncodeType,
};

use crate::Error;
use crate::api::Api;
use crate::client::{SentMessage, WxLinkClient, into_future};

pub use wxlink_media::{
    AddressPolicy, Downloaded, DownloadedFile, FetchOptions, InboundMedia, MediaKind, Phase,
    Progress, ProgressHook, Resolver, TransferTimeouts,
};

/// Where the bytes of an outbound media message come from.
#[derive(Clone)]
enum Source {
    Path(PathBuf),
    Bytes(Bytes),
    Url(String),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Url(_) => f.write_str("Url(..)"),
        }
    }
}

/// The result of a media send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentMedia {
    /// The media message.
    pub message: SentMessage,
    /// The caption message sent before it, if there was a caption.
    pub caption: Option<SentMessage>,
    /// The kind the media was sent as.
    pub kind: MediaKind,
    /// Plaintext size in bytes.
    pub size: u64,
    /// MD5 of the plaintext, lower-case hex.
    pub md5: String,
}

impl SentMedia {
    /// The id of the media message (its generated `client_id`).
    pub fn id(&self) -> &str {
        self.message.id()
    }
}

impl WxLinkClient {
    /// Uploads the file at `path` and sends it as an image.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, ctx: wxlink_proto::ContextToken) -> Result<(), wxlink_client::Error> {
    /// client
    ///     .send_image("alice@im.wechat", "./demo.jpg")
    ///     .caption("here is the chart")
    ///     .context_token(ctx)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_image(&self, to: impl Into<String>, path: impl AsRef<Path>) -> SendMediaRequest {
        self.media_request(
            to,
            Source::Path(path.as_ref().to_owned()),
            Some(MediaKind::Image),
        )
    }

    /// Uploads the file at `path` and sends it as a video.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// client.send_video("alice@im.wechat", "./demo.mp4").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_video(&self, to: impl Into<String>, path: impl AsRef<Path>) -> SendMediaRequest {
        self.media_request(
            to,
            Source::Path(path.as_ref().to_owned()),
            Some(MediaKind::Video),
        )
    }

    /// Uploads the file at `path` and sends it as a file attachment.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// client.send_file("alice@im.wechat", "./report.pdf").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_file(&self, to: impl Into<String>, path: impl AsRef<Path>) -> SendMediaRequest {
        self.media_request(
            to,
            Source::Path(path.as_ref().to_owned()),
            Some(MediaKind::File),
        )
    }

    /// Uploads the file at `path` and sends it as an image, a video or a
    /// file, chosen from its content and extension.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// let sent = client.send_media_from_path("alice@im.wechat", "./demo.mp4").await?;
    /// println!("sent as {:?}", sent.kind);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_media_from_path(
        &self,
        to: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Path(path.as_ref().to_owned()), None)
    }

    /// Uploads `bytes` and sends them as an image.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, png: Vec<u8>) -> Result<(), wxlink_client::Error> {
    /// client.send_image_buffer("alice@im.wechat", png).file_name("chart.png").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_image_buffer(
        &self,
        to: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Bytes(bytes.into()), Some(MediaKind::Image))
    }

    /// Uploads `bytes` and sends them as a video.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, mp4: Vec<u8>) -> Result<(), wxlink_client::Error> {
    /// client.send_video_buffer("alice@im.wechat", mp4).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_video_buffer(
        &self,
        to: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Bytes(bytes.into()), Some(MediaKind::Video))
    }

    /// Uploads `bytes` and sends them as a file attachment.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// client
    ///     .send_file_buffer("alice@im.wechat", b"a,b\n1,2\n".to_vec())
    ///     .file_name("table.csv")
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_file_buffer(
        &self,
        to: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Bytes(bytes.into()), Some(MediaKind::File))
    }

    /// Uploads `bytes` and sends them as the kind their content type, magic
    /// bytes or file name suggest.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, bytes: Vec<u8>) -> Result<(), wxlink_client::Error> {
    /// client
    ///     .send_media_from_buffer("alice@im.wechat", bytes)
    ///     .file_name("demo.jpg")
    ///     .content_type("image/jpeg")
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_media_from_buffer(
        &self,
        to: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Bytes(bytes.into()), None)
    }

    /// Downloads `url` (http or https) and sends it as the right kind.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient) -> Result<(), wxlink_client::Error> {
    /// client
    ///     .send_media_from_url("alice@im.wechat", "https://example.com/demo.jpg")
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_media_from_url(
        &self,
        to: impl Into<String>,
        url: impl Into<String>,
    ) -> SendMediaRequest {
        self.media_request(to, Source::Url(url.into()), None)
    }

    fn media_request(
        &self,
        to: impl Into<String>,
        source: Source,
        kind: Option<MediaKind>,
    ) -> SendMediaRequest {
        SendMediaRequest {
            client: self.clone(),
            to: to.into(),
            source,
            kind,
            file_name: None,
            content_type: None,
            caption: None,
            context_token: None,
            progress: None,
            fetch: None,
        }
    }
}

/// A pending media send; see [`WxLinkClient::send_image`] and its siblings.
#[must_use = "a request does nothing until it is awaited"]
pub struct SendMediaRequest {
    client: WxLinkClient,
    to: String,
    source: Source,
    kind: Option<MediaKind>,
    file_name: Option<String>,
    content_type: Option<String>,
    caption: Option<String>,
    context_token: Option<ContextToken>,
    progress: Option<ProgressHook>,
    fetch: Option<wxlink_media::FetchOptions>,
}

impl std::fmt::Debug for SendMediaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMediaRequest")
            .field("to", &self.to)
            .field("source", &self.source)
            .field("kind", &self.kind)
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("has_caption", &self.caption.is_some())
            .finish_non_exhaustive()
    }
}

impl SendMediaRequest {
    /// Text sent first, as its own message (docs/protocol.md, "Shape of a bot
    /// reply").
    pub fn caption(mut self, text: impl Into<String>) -> Self {
        self.caption = Some(text.into());
        self
    }

    /// The context token of the conversation, used for both messages.
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// The file name shown for a file attachment and used to infer the
    /// kind. Defaults to the path's name, the URL's last segment, or
    /// `file` plus an extension for the detected type.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// The MIME type, the first hint when inferring the kind.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Reports progress while the source is read, hashed and uploaded:
    /// the phase, bytes done and the total when known.
    pub fn progress(mut self, hook: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(ProgressHook::new(hook));
        self
    }

    /// The limits of this request's URL fetch, instead of the client's
    /// ([`ClientBuilder::fetch_options`](crate::ClientBuilder::fetch_options)).
    pub fn fetch_options(mut self, options: wxlink_media::FetchOptions) -> Self {
        self.fetch = Some(options);
        self
    }

    /// Uploads and sends.
    pub async fn send(self) -> Result<SentMedia, Error> {
        send_media(self).await
    }
}
into_future!(SendMediaRequest => SentMedia);

/// Lets the media layer call `getuploadurl` through the facade's client.
struct UploadApi<'a>(&'a Api);

impl UploadUrlApi for UploadApi<'_> {
    fn get_upload_url(
        &self,
        request: &GetUploadUrlRequest,
    ) -> impl Future<Output = Result<GetUploadUrlResponse, wxlink_transport::Error>> + Send {
        self.0.call_with_timeout::<GetUploadUrl>(request, None)
    }
}

/// The facade's HTTP service as the media layer's [`HttpService`]
/// (wxlink_media::HttpService), with each request's future boxed here, where
/// its type is concrete: proving `Send` for the generic future later, inside
/// the request builders' futures, trips a compiler limitation with
/// higher-ranked lifetimes.
#[derive(Clone)]
pub(crate) struct CdnHttp(pub(crate) crate::client::BoxHttpService);

impl wxlink_media::HttpService for CdnHttp {
    fn send(
        &self,
        request: http::Request<wxlink_transport::Body>,
    ) -> impl Future<
        Output = Result<http::Response<wxlink_transport::Body>, wxlink_transport::BoxError>,
    > + Send {
        use tower::ServiceExt;
        let fut: crate::client::BoxFuture<
            Result<http::Response<wxlink_transport::Body>, wxlink_transport::BoxError>,
        > = Box::pin(self.0.clone().oneshot(request));
        fut
    }
}

/// Uploads `source` for `to` and returns what the item builders need.
async fn upload(
    client: &WxLinkClient,
    to: &str,
    source: UploadSource,
    progress: Option<ProgressHook>,
    fetch: Option<wxlink_media::FetchOptions>,
) -> Result<UploadedMedia, Error> {
    let mut options = UploadOptions::with_cdn_base_url(client.cdn_base_url());
    options.fetch = fetch.unwrap_or_else(|| client.api().fetch_options().clone());
    options.attempt_timeout = client.api().cdn_timeout();
    options.timeouts = client.api().cdn_timeouts();
    options.retry_budget = Some(client.api().retry_budget());
    if let Some(hook) = progress {
        options = options.progress(hook);
    }
    let api = client.api();
    let http = CdnHttp(api.service().clone());
    wxlink_media::upload(&UploadApi(api), &http, to, source, &options)
        .await
        .map_err(Error::from)
}

/// Checks the recipient of a media send.
fn check_recipient(to: &str) -> Result<(), Error> {
    if to.trim().is_empty() {
        return Err(Error::invalid_argument("recipient user id is empty"));
    }
    Ok(())
}

/// Uploads the media, then sends the caption (if any) and the media message.
///
/// The upload goes first so that a failed upload leaves no orphan caption
/// behind; the caption then precedes the media as docs/protocol.md, "Shape of a
/// bot reply" asks.
async fn send_media(req: SendMediaRequest) -> Result<SentMedia, Error> {
    check_recipient(&req.to)?;
    let mut source = match req.source {
        Source::Path(p) => UploadSource::path(p),
        Source::Bytes(b) => UploadSource::bytes(b),
        Source::Url(u) => UploadSource::url(u),
    };
    if let Some(name) = req.file_name {
        source = source.file_name(name);
    }
    if let Some(ct) = req.content_type {
        source = source.content_type(ct);
    }
    if let Some(kind) = req.kind {
        source = source.kind(kind);
    }
    let uploaded = upload(&req.client, &req.to, source, req.progress, req.fetch).await?;
    let item = uploaded.to_message_item();
    deliver(
        &req.client,
        &req.to,
        req.caption.as_deref(),
        item,
        req.context_token.as_ref(),
        &uploaded,
    )
    .await
}

/// Sends the caption (if any) and then the media item.
async fn deliver(
    client: &WxLinkClient,
    to: &str,
    caption: Option<&str>,
    item: MessageItem,
    context_token: Option<&ContextToken>,
    uploaded: &UploadedMedia,
) -> Result<SentMedia, Error> {
    let caption_sent = match caption.filter(|c| !c.is_empty()) {
        Some(text) => Some(client.send_text_now(to, text, context_token).await?),
        None => None,
    };
    let message = match client.send_item(to, item, context_token).await {
        Ok(m) => m,
        Err(e) if caption_sent.is_some() => {
            return Err(Error::partial_send(1, e));
        }
        Err(e) => return Err(e),
    };
    Ok(SentMedia {
        message,
        caption: caption_sent,
        kind: uploaded.kind,
        size: uploaded.rawsize,
        md5: uploaded.md5.clone(),
    })
}

impl WxLinkClient {
    /// Sends audio (SILK by default) to `to` **as a file attachment**, the
    /// form that arrives.
    ///
    /// The server accepts native voice bubbles (`voice_item`) in every
    /// format tried and answers success, but recipients are shown nothing
    /// (docs/protocol.md, "Voice"); no answer tells the two apart. So the
    /// audio goes out as a FILE item named `voice.silk` unless
    /// [`native_bubble(true)`](SendVoiceRequest::native_bubble) asks for the
    /// voice bubble. With the bubble, a refusal is [`Error::is_voice_rejected`],
    /// or, with [`fallback_to_file(true)`](SendVoiceRequest::fallback_to_file),
    /// a file send.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, silk: Vec<u8>) -> Result<(), wxlink_client::Error> {
    /// // Arrives as a file.
    /// client.send_voice("alice@im.wechat", silk.clone()).await?;
    /// // The native bubble, accepted but not shown by the server today.
    /// let sent = client
    ///     .send_voice("alice@im.wechat", silk)
    ///     .native_bubble(true)
    ///     .playtime_ms(3_200)
    ///     .sample_rate(24_000)
    ///     .fallback_to_file(true)
    ///     .await?;
    /// println!("sent as {:?}", sent.kind);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_voice(&self, to: impl Into<String>, audio: impl Into<Bytes>) -> SendVoiceRequest {
        SendVoiceRequest {
            client: self.clone(),
            to: to.into(),
            audio: audio.into(),
            meta: VoiceMeta::default(),
            context_token: None,
            fallback_to_file: false,
            native_bubble: false,
            file_name: None,
        }
    }

    /// Where an inbound media item can be downloaded and how to decrypt it
    /// (docs/protocol.md, "Media download"), without downloading it.
    ///
    /// ```no_run
    /// # fn run(client: wxlink_client::WxLinkClient, item: wxlink_proto::MessageItem) -> Result<(), wxlink_client::Error> {
    /// let media = client.resolve_media(&item)?;
    /// println!("{:?} at {}", media.kind, media.url);
    /// # Ok(())
    /// # }
    /// ```
    pub fn resolve_media(&self, item: &MessageItem) -> Result<InboundMedia, Error> {
        wxlink_media::resolve_item(item, self.cdn_base_url()).map_err(Error::from)
    }

    /// Downloads and decrypts an inbound media item into memory (at most
    /// 100 MiB), detecting its real content type.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, item: wxlink_proto::MessageItem) -> Result<(), wxlink_client::Error> {
    /// let media = client.download_media(&item).await?;
    /// println!("{} bytes of {}", media.bytes.len(), media.mime);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn download_media(&self, item: &MessageItem) -> Result<Downloaded, Error> {
        let media = self.resolve_media(item)?;
        let mut options = wxlink_media::download::DownloadOptions::default();
        options.timeout = self.api().cdn_timeout();
        options.timeouts = self.api().cdn_timeouts();
        let http = CdnHttp(self.api().service().clone());
        wxlink_media::download(&http, &media, &options)
            .await
            .map_err(Error::from)
    }

    /// Downloads and decrypts an inbound media item into the file at
    /// `path`, streaming; the file is removed again if the download fails.
    ///
    /// ```no_run
    /// # async fn run(client: wxlink_client::WxLinkClient, item: wxlink_proto::MessageItem) -> Result<(), wxlink_client::Error> {
    /// let file = client.download_media_to(&item, "/tmp/inbound.bin").await?;
    /// println!("{} bytes of {}", file.size, file.mime);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn download_media_to(
        &self,
        item: &MessageItem,
        path: impl AsRef<Path>,
    ) -> Result<DownloadedFile, Error> {
        let media = self.resolve_media(item)?;
        let mut options = wxlink_media::download::DownloadOptions::default();
        options.timeout = self.api().cdn_timeout();
        options.timeouts = self.api().cdn_timeouts();
        let http = CdnHttp(self.api().service().clone());
        wxlink_media::download_to_file(&http, &media, path, &options)
            .await
            .map_err(Error::from)
    }
}

/// A pending [`WxLinkClient::send_voice`].
#[must_use = "a request does nothing until it is awaited"]
pub struct SendVoiceRequest {
    client: WxLinkClient,
    to: String,
    audio: Bytes,
    meta: VoiceMeta,
    context_token: Option<ContextToken>,
    fallback_to_file: bool,
    native_bubble: bool,
    file_name: Option<String>,
}

impl std::fmt::Debug for SendVoiceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendVoiceRequest")
            .field("to", &self.to)
            .field("audio_bytes", &self.audio.len())
            .field("meta", &self.meta)
            .field("fallback_to_file", &self.fallback_to_file)
            .field("native_bubble", &self.native_bubble)
            .finish_non_exhaustive()
    }
}

impl SendVoiceRequest {
    /// The duration of the audio in milliseconds (`playtime`).
    pub fn playtime_ms(mut self, ms: u64) -> Self {
        self.meta.playtime_ms = Some(ms);
        self
    }

    /// The sample rate in Hz (24 000 by default).
    pub fn sample_rate(mut self, hz: u32) -> Self {
        self.meta.sample_rate = hz;
        self
    }

    /// The audio encoding (SILK by default).
    pub fn encode_type(mut self, encode_type: VoiceEncodeType) -> Self {
        self.meta.encode_type = encode_type;
        self
    }

    /// The context token of the conversation.
    pub fn context_token(mut self, token: impl Into<Option<ContextToken>>) -> Self {
        self.context_token = token.into();
        self
    }

    /// Sends a native voice bubble (`voice_item`) instead of a file. The
    /// server accepts it but, as of the latest field reports, recipients
    /// see nothing (docs/protocol.md, "Voice"); use it only to test
    /// whether that changed.
    pub fn native_bubble(mut self, native: bool) -> Self {
        self.native_bubble = native;
        self
    }

    /// With [`native_bubble`](Self::native_bubble): when the server refuses
    /// the voice message, send the audio as a file attachment instead of
    /// failing.
    pub fn fallback_to_file(mut self, fallback: bool) -> Self {
        self.fallback_to_file = fallback;
        self
    }

    /// The file name used when falling back to a file (`voice.silk` by
    /// default).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// Uploads and sends.
    pub async fn send(self) -> Result<SentMedia, Error> {
        check_recipient(&self.to)?;
        if self.audio.is_empty() {
            return Err(Error::invalid_argument("voice audio is empty"));
        }
        let file_name = self
            .file_name
            .clone()
            .unwrap_or_else(|| "voice.silk".into());
        let ctx = self.context_token.as_ref();
        if !self.native_bubble {
            return send_audio_file(&self.client, &self.to, self.audio, file_name, ctx).await;
        }
        let source = UploadSource::bytes(self.audio.clone())
            .file_name(file_name.clone())
            .kind(MediaKind::Voice);
        let attempt = async {
            let uploaded = upload(&self.client, &self.to, source, None, None).await?;
            let item = wxlink_media::item::voice_item(&uploaded, self.meta);
            deliver(&self.client, &self.to, None, item, ctx, &uploaded).await
        };
        let err = match attempt.await {
            Ok(sent) => return Ok(sent),
            Err(e) if is_refusal(&e) => e,
            Err(e) => return Err(e),
        };
        if !self.fallback_to_file {
            return Err(Error::voice_rejected(err));
        }
        tracing::debug!(error = %err, "server refused the voice message; sending a file");
        send_audio_file(&self.client, &self.to, self.audio, file_name, ctx).await
    }
}

/// Uploads audio and sends it as a file attachment.
async fn send_audio_file(
    client: &WxLinkClient,
    to: &str,
    audio: Bytes,
    file_name: String,
    ctx: Option<&ContextToken>,
) -> Result<SentMedia, Error> {
    let source = UploadSource::bytes(audio)
        .file_name(file_name)
        .content_type("audio/silk")
        .kind(MediaKind::File);
    let uploaded = upload(client, to, source, None, None).await?;
    let item = uploaded.to_message_item();
    deliver(client, to, None, item, ctx, &uploaded).await
}
into_future!(SendVoiceRequest => SentMedia);

/// True when the server refused the request itself (a business error other
/// than session expiry, or a CDN 4xx), as opposed to a transport failure.
fn is_refusal(e: &Error) -> bool {
    if e.is_session_expired() {
        return false;
    }
    e.api_status().is_some() || e.media().is_some_and(wxlink_media::Error::is_cdn_rejected)
}
