//! Media and voice sends of the runtime: the facade's media calls with the
//! remembered context token and the send budget.
//!
//! A media message with a caption is two `sendmessage` calls (the caption
//! first, ILINK.md §5.6 rule 1), so it takes two sends from the turn's
//! budget; without a caption, and for voice, one. The budget is taken
//! before the upload starts: a send refused by the budget uploads nothing,
//! and (as for text) a send that fails afterwards still counts.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use wxlink_proto::{VoiceEncodeType, WeixinMessage};

use super::bot::{BotRuntime, ReplyTarget};
use super::error::RuntimeError;
use crate::SentMedia;
use crate::client::BoxFuture;
use crate::media::{MediaKind, Progress, ProgressHook};

/// Where the bytes of a runtime media send come from.
#[derive(Clone)]
pub(crate) enum MediaSource {
    /// A local file.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
    /// An http(s) URL the facade downloads first.
    Url(String),
    /// SILK audio sent as a voice message.
    Voice(VoiceSend),
}

/// The voice parameters of [`MediaSource::Voice`].
#[derive(Clone, Default)]
pub(crate) struct VoiceSend {
    pub(crate) audio: Bytes,
    pub(crate) playtime_ms: Option<u64>,
    pub(crate) sample_rate: Option<u32>,
    pub(crate) encode_type: Option<VoiceEncodeType>,
    pub(crate) fallback_to_file: bool,
}

/// One media send as the runtime hands it to the facade.
#[derive(Clone)]
pub(crate) struct MediaSend {
    pub(crate) source: MediaSource,
    /// The kind to send as (path and buffer sources); inferred when unset.
    pub(crate) kind: Option<MediaKind>,
    pub(crate) caption: Option<String>,
    pub(crate) file_name: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) progress: Option<ProgressHook>,
}

impl MediaSend {
    fn new(source: MediaSource) -> Self {
        Self {
            source,
            kind: None,
            caption: None,
            file_name: None,
            content_type: None,
            progress: None,
        }
    }

    /// How many messages this send is: the caption (when not empty) and
    /// the media.
    pub(crate) fn message_count(&self) -> u32 {
        match &self.caption {
            Some(caption) if !caption.is_empty() => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Debug for MediaSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            MediaSource::Path(p) => format!("Path({})", p.display()),
            MediaSource::Bytes(b) => format!("Bytes({} bytes)", b.len()),
            MediaSource::Url(_) => "Url(..)".to_owned(),
            MediaSource::Voice(v) => format!("Voice({} bytes)", v.audio.len()),
        };
        f.debug_struct("MediaSend")
            .field("source", &source)
            .field("kind", &self.kind)
            .field("has_caption", &self.caption.is_some())
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// The sender of `message`: the recipient of a reply to it.
fn recipient(message: &WeixinMessage) -> Option<String> {
    message
        .from_user_id
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
}

impl BotRuntime {
    /// Replies to `message` with the file at `path`, sent as an image, a
    /// video or a file as its content and extension suggest (or as
    /// [`kind`](MediaReplyRequest::kind) says), with the sender's latest
    /// context token and the send budget: two sends with a
    /// [`caption`](MediaReplyRequest::caption), one without.
    ///
    /// ```no_run
    /// # async fn run(bot: wxlink_client::runtime::BotRuntime, delivery: wxlink_client::runtime::Delivery) -> Result<(), wxlink_client::runtime::RuntimeError> {
    /// let sent = bot
    ///     .reply_media_from_path(&delivery, "./chart.png")
    ///     .caption("here is the chart")
    ///     .await?;
    /// println!("sent as {:?}", sent.kind);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reply_media_from_path(
        &self,
        message: impl ReplyTarget,
        path: impl AsRef<Path>,
    ) -> MediaReplyRequest {
        let source = MediaSource::Path(path.as_ref().to_owned());
        self.media_request(recipient(message.inbound_message()), source)
    }

    /// Replies to `message` with `bytes`, sent as the kind their content
    /// type, magic bytes or file name suggest; see
    /// [`reply_media_from_path`](Self::reply_media_from_path).
    ///
    /// ```no_run
    /// # async fn run(bot: wxlink_client::runtime::BotRuntime, delivery: wxlink_client::runtime::Delivery, png: Vec<u8>) -> Result<(), wxlink_client::runtime::RuntimeError> {
    /// bot.reply_media_from_buffer(&delivery, png)
    ///     .file_name("chart.png")
    ///     .caption("the chart")
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reply_media_from_buffer(
        &self,
        message: impl ReplyTarget,
        bytes: impl Into<Bytes>,
    ) -> MediaReplyRequest {
        let source = MediaSource::Bytes(bytes.into());
        self.media_request(recipient(message.inbound_message()), source)
    }

    /// Replies to `message` with the media at `url` (http or https), which
    /// is downloaded first; see
    /// [`reply_media_from_path`](Self::reply_media_from_path).
    pub fn reply_media_from_url(
        &self,
        message: impl ReplyTarget,
        url: impl Into<String>,
    ) -> MediaReplyRequest {
        let source = MediaSource::Url(url.into());
        self.media_request(recipient(message.inbound_message()), source)
    }

    /// Sends the file at `path` to `user`, who must have written within the
    /// reply window, as [`reply_media_from_path`](Self::reply_media_from_path)
    /// does for a message's sender.
    pub fn send_media_from_path(&self, user: &str, path: impl AsRef<Path>) -> MediaReplyRequest {
        let source = MediaSource::Path(path.as_ref().to_owned());
        self.media_request(Some(user.to_owned()), source)
    }

    /// Sends `bytes` to `user`, as
    /// [`reply_media_from_buffer`](Self::reply_media_from_buffer) does for a
    /// message's sender.
    pub fn send_media_from_buffer(&self, user: &str, bytes: impl Into<Bytes>) -> MediaReplyRequest {
        self.media_request(Some(user.to_owned()), MediaSource::Bytes(bytes.into()))
    }

    /// Sends the media at `url` to `user`, as
    /// [`reply_media_from_url`](Self::reply_media_from_url) does for a
    /// message's sender.
    pub fn send_media_from_url(&self, user: &str, url: impl Into<String>) -> MediaReplyRequest {
        self.media_request(Some(user.to_owned()), MediaSource::Url(url.into()))
    }

    /// Replies to `message` with SILK audio as a voice message (one send
    /// from the budget), through
    /// [`WxLinkClient::send_voice`](crate::WxLinkClient::send_voice).
    ///
    /// ```no_run
    /// # async fn run(bot: wxlink_client::runtime::BotRuntime, delivery: wxlink_client::runtime::Delivery, silk: Vec<u8>) -> Result<(), wxlink_client::runtime::RuntimeError> {
    /// bot.reply_voice(&delivery, silk)
    ///     .playtime_ms(3_200)
    ///     .fallback_to_file(true)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reply_voice(
        &self,
        message: impl ReplyTarget,
        audio: impl Into<Bytes>,
    ) -> VoiceReplyRequest {
        self.voice_request(recipient(message.inbound_message()), audio.into())
    }

    /// Sends SILK audio to `user` as a voice message, as
    /// [`reply_voice`](Self::reply_voice) does for a message's sender.
    pub fn send_voice(&self, user: &str, audio: impl Into<Bytes>) -> VoiceReplyRequest {
        self.voice_request(Some(user.to_owned()), audio.into())
    }

    fn media_request(&self, to: Option<String>, source: MediaSource) -> MediaReplyRequest {
        MediaReplyRequest {
            runtime: self.clone(),
            to,
            media: MediaSend::new(source),
        }
    }

    fn voice_request(&self, to: Option<String>, audio: Bytes) -> VoiceReplyRequest {
        VoiceReplyRequest {
            runtime: self.clone(),
            to,
            voice: VoiceSend {
                audio,
                ..VoiceSend::default()
            },
            file_name: None,
        }
    }

    /// Checks, reserves the budget and sends one media message.
    async fn send_media_now(
        &self,
        to: Option<String>,
        media: MediaSend,
    ) -> Result<SentMedia, RuntimeError> {
        let to = to.ok_or(RuntimeError::NoSender)?;
        self.check_session()?;
        if let Some(caption) = &media.caption {
            let max = self.inner.options.max_chars.max(1);
            if caption.chars().count() > max {
                return Err(RuntimeError::Api(crate::Error::InvalidArgument(format!(
                    "caption is longer than {max} characters; send it as text first"
                ))));
            }
        }
        if matches!(media.kind, Some(MediaKind::Voice)) {
            return Err(RuntimeError::Api(crate::Error::InvalidArgument(
                "send voice with reply_voice or send_voice".into(),
            )));
        }
        let context = self.prepare_send(&to, media.message_count()).await?;
        self.inner
            .api
            .send_media(to, media, context)
            .await
            .map_err(|err| self.api_failed(err))
    }
}

/// A pending media send of the runtime; see
/// [`BotRuntime::reply_media_from_path`] and its siblings. Send it with
/// `.await` or [`send`](Self::send).
#[must_use = "a request does nothing until it is awaited"]
pub struct MediaReplyRequest {
    runtime: BotRuntime,
    to: Option<String>,
    media: MediaSend,
}

impl std::fmt::Debug for MediaReplyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaReplyRequest")
            .field("to", &self.to)
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

impl MediaReplyRequest {
    /// Text sent first, as its own message (ILINK.md §5.6 rule 1); the
    /// send then takes two sends from the budget. A caption longer than
    /// [`RuntimeOptions::max_chars`](super::RuntimeOptions::max_chars) is
    /// refused: send long text with [`BotRuntime::reply`] first.
    pub fn caption(mut self, text: impl Into<String>) -> Self {
        self.media.caption = Some(text.into());
        self
    }

    /// Sends as this kind (image, video or file) instead of inferring it,
    /// like the facade's `send_image`, `send_video` and `send_file`. Not
    /// used for a URL; voice goes through [`BotRuntime::reply_voice`].
    pub fn kind(mut self, kind: MediaKind) -> Self {
        self.media.kind = Some(kind);
        self
    }

    /// The file name shown for a file attachment and used to infer the
    /// kind.
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.media.file_name = Some(name.into());
        self
    }

    /// The MIME type, the first hint when inferring the kind.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.media.content_type = Some(content_type.into());
        self
    }

    /// Reports progress while the source is read, hashed and uploaded.
    pub fn progress(mut self, hook: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.media.progress = Some(ProgressHook::new(hook));
        self
    }

    /// Checks the reply window and the budget, uploads and sends. Fails
    /// with [`RuntimeError::NoSender`], [`RuntimeError::UserMustWriteFirst`]
    /// or [`RuntimeError::RateLimited`] before anything is uploaded.
    pub async fn send(self) -> Result<SentMedia, RuntimeError> {
        self.runtime.send_media_now(self.to, self.media).await
    }
}

impl IntoFuture for MediaReplyRequest {
    type Output = Result<SentMedia, RuntimeError>;
    type IntoFuture = BoxFuture<Result<SentMedia, RuntimeError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A pending voice send of the runtime; see [`BotRuntime::reply_voice`].
#[must_use = "a request does nothing until it is awaited"]
pub struct VoiceReplyRequest {
    runtime: BotRuntime,
    to: Option<String>,
    voice: VoiceSend,
    file_name: Option<String>,
}

impl std::fmt::Debug for VoiceReplyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceReplyRequest")
            .field("to", &self.to)
            .field("audio_bytes", &self.voice.audio.len())
            .field("fallback_to_file", &self.voice.fallback_to_file)
            .finish_non_exhaustive()
    }
}

impl VoiceReplyRequest {
    /// The duration of the audio in milliseconds (`playtime`).
    pub fn playtime_ms(mut self, ms: u64) -> Self {
        self.voice.playtime_ms = Some(ms);
        self
    }

    /// The sample rate in Hz (24 000 by default).
    pub fn sample_rate(mut self, hz: u32) -> Self {
        self.voice.sample_rate = Some(hz);
        self
    }

    /// The audio encoding (SILK by default).
    pub fn encode_type(mut self, encode_type: VoiceEncodeType) -> Self {
        self.voice.encode_type = Some(encode_type);
        self
    }

    /// When the server refuses the voice message, send the audio as a file
    /// attachment instead of failing (still one send).
    pub fn fallback_to_file(mut self, fallback: bool) -> Self {
        self.voice.fallback_to_file = fallback;
        self
    }

    /// The file name used when falling back to a file (`voice.silk` by
    /// default).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// Checks the reply window and the budget, uploads and sends.
    pub async fn send(self) -> Result<SentMedia, RuntimeError> {
        let mut media = MediaSend::new(MediaSource::Voice(self.voice));
        media.file_name = self.file_name;
        self.runtime.send_media_now(self.to, media).await
    }
}

impl IntoFuture for VoiceReplyRequest {
    type Output = Result<SentMedia, RuntimeError>;
    type IntoFuture = BoxFuture<Result<SentMedia, RuntimeError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
