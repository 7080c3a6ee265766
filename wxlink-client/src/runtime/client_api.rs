//! The runtime's view of [`WxLinkClient`]: each call the runtime needs,
//! through the facade's public request builders.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use wxlink_proto::{ContextToken, GetUpdatesResponse, TypingTicket};

use super::api::{ApiError, MediaSend, MediaSource, RuntimeApi};
use super::bot::{BotRuntime, RuntimeOptions};
use super::store::Store;
use crate::media::MediaKind;
use crate::{Error, SentMedia, WxLinkClient};

/// Classifies a facade error for the runtime.
fn api_error(err: Error) -> ApiError {
    ApiError {
        session_expired: err.is_session_expired(),
        source: err,
    }
}

impl RuntimeApi for WxLinkClient {
    fn poll(
        &self,
        cursor: String,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GetUpdatesResponse, ApiError>> {
        let request = WxLinkClient::poll(self, cursor).timeout(timeout);
        Box::pin(async move {
            request
                .send()
                .await
                .map(|result| result.response)
                .map_err(api_error)
        })
    }

    fn send_text(
        &self,
        to: String,
        text: String,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let request = WxLinkClient::send_text(self, to, text).context_token(context);
        Box::pin(async move { request.send().await.map(drop).map_err(api_error) })
    }

    fn get_config(
        &self,
        user: String,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<TypingTicket, ApiError>> {
        let request = WxLinkClient::get_config(self, user).context_token(context);
        Box::pin(async move {
            let response = request.send().await.map_err(api_error)?;
            Ok(response.typing_ticket.unwrap_or_default())
        })
    }

    fn send_typing(
        &self,
        user: String,
        ticket: TypingTicket,
        typing: bool,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let request = if typing {
            WxLinkClient::send_typing(self, user)
        } else {
            WxLinkClient::cancel_typing(self, user)
        }
        .ticket(ticket);
        Box::pin(async move { request.send().await.map_err(api_error) })
    }

    fn send_media(
        &self,
        to: String,
        media: MediaSend,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<SentMedia, ApiError>> {
        let MediaSend {
            source,
            kind,
            caption,
            file_name,
            content_type,
            progress,
        } = media;
        let request = match source {
            MediaSource::Voice(voice) => {
                let mut request = WxLinkClient::send_voice(self, to, voice.audio)
                    .fallback_to_file(voice.fallback_to_file)
                    .context_token(context);
                if let Some(ms) = voice.playtime_ms {
                    request = request.playtime_ms(ms);
                }
                if let Some(hz) = voice.sample_rate {
                    request = request.sample_rate(hz);
                }
                if let Some(encode_type) = voice.encode_type {
                    request = request.encode_type(encode_type);
                }
                if let Some(name) = file_name {
                    request = request.file_name(name);
                }
                return Box::pin(async move { request.send().await.map_err(api_error) });
            }
            MediaSource::Path(path) => match kind {
                Some(MediaKind::Image) => self.send_image(to, path),
                Some(MediaKind::Video) => self.send_video(to, path),
                Some(MediaKind::File) => self.send_file(to, path),
                _ => WxLinkClient::send_media_from_path(self, to, path),
            },
            MediaSource::Bytes(bytes) => match kind {
                Some(MediaKind::Image) => self.send_image_buffer(to, bytes),
                Some(MediaKind::Video) => self.send_video_buffer(to, bytes),
                Some(MediaKind::File) => self.send_file_buffer(to, bytes),
                _ => WxLinkClient::send_media_from_buffer(self, to, bytes),
            },
            MediaSource::Url(url) => WxLinkClient::send_media_from_url(self, to, url),
        };
        let mut request = request.context_token(context);
        if let Some(caption) = caption {
            request = request.caption(caption);
        }
        if let Some(name) = file_name {
            request = request.file_name(name);
        }
        if let Some(content_type) = content_type {
            request = request.content_type(content_type);
        }
        if let Some(hook) = progress {
            request = request.progress(move |p| hook.report(p));
        }
        Box::pin(async move { request.send().await.map_err(api_error) })
    }

    fn notify_start(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        let client = self.clone();
        Box::pin(async move { client.notify_start().await.map_err(api_error) })
    }

    fn notify_stop(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        let client = self.clone();
        Box::pin(async move { client.notify_stop().await.map_err(api_error) })
    }
}

impl BotRuntime {
    /// A runtime for `client` keeping its state in `store`, with the default
    /// options.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use wxlink_client::runtime::{BotRuntime, SqliteStore, UpdatesOptions};
    /// use wxlink_client::{AccountRecord, WxLinkClient};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = WxLinkClient::from_account(&AccountRecord::load("account.json")?)?;
    /// let bot = BotRuntime::new(client, SqliteStore::open("bot.db")?);
    /// let mut updates = bot.updates(UpdatesOptions::default());
    /// while let Some(item) = updates.next().await {
    ///     let delivery = item?; // ends with SessionExpired on -14
    ///     let typing = bot.typing(delivery.sender());
    ///     let answer = format!("you said: {}", delivery.text().unwrap_or("(media)"));
    ///     // Sends the reply and cancels "typing…" with it.
    ///     typing.reply(&answer).await?;
    ///     delivery.ack().await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: WxLinkClient, store: impl Store + 'static) -> Self {
        Self::with_options(client, store, RuntimeOptions::default())
    }

    /// A runtime for `client` with `options`.
    pub fn with_options(
        client: WxLinkClient,
        store: impl Store + 'static,
        options: RuntimeOptions,
    ) -> Self {
        Self::from_api(Arc::new(client), Arc::new(store), options)
    }

    /// A runtime over a store shared with other code (for example to read
    /// the journal while the stream runs).
    pub fn with_shared_store(
        client: WxLinkClient,
        store: Arc<dyn Store>,
        options: RuntimeOptions,
    ) -> Self {
        Self::from_api(Arc::new(client), store, options)
    }
}
