//! Sending media (images, videos, files, voice) and reading inbound media.
//!
//! A send uploads the bytes to the CDN encrypted with a fresh AES-128 key
//! (ILINK.md §7.2–§7.3), then sends one message holding one media item that
//! references the upload (§7.4). A caption goes out first as its own text
//! message, as the official client does (§5.6 rule 1). Every file item
//! carries `md5`, `len` and `file_name`; without `md5` files are known to
//! arrive empty.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use wxlink_proto::{ContextToken, MessageItem};

use crate::Error;
use crate::client::{BoxFuture, SentMessage, WxLinkClient, into_future};

pub use wxlink_media::MediaKind;

/// A callback told how many plaintext bytes have been uploaded so far and
/// the total, when known.
pub type ProgressHook = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Where the bytes of an outbound media message come from.
#[derive(Clone)]
#[allow(dead_code)]
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
    /// Text sent first, as its own message (ILINK.md §5.6 rule 1).
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

    /// Reports upload progress: bytes done and the total when known.
    pub fn progress(mut self, hook: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Uploads and sends.
    pub async fn send(self) -> Result<SentMedia, Error> {
        send_media(self).await
    }
}
into_future!(SendMediaRequest => SentMedia);

/// Uploads the media and sends the caption and the media message.
// The CDN upload lands with wxlink-media's upload module; until then this
// refuses every media send.
#[allow(dead_code)]
async fn send_media(req: SendMediaRequest) -> Result<SentMedia, Error> {
    let _ = (
        &req.client,
        &req.to,
        &req.source,
        &req.kind,
        &req.file_name,
        &req.content_type,
    );
    let _ = (&req.caption, &req.context_token, &req.progress);
    let _: Option<&MessageItem> = None;
    Err(Error::InvalidArgument(
        "media upload is not available yet".into(),
    ))
}
