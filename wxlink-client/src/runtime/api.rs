//! The narrow view of the iLink API the runtime is built on.
//!
//! The runtime needs seven calls of the facade. Going through this private
//! trait keeps the stream, the sends and the typing guard independent of how
//! the facade spells them, and lets the unit tests script the server.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use wxlink_proto::{ContextToken, GetUpdatesResponse, TypingTicket};

pub(crate) use super::media::{MediaSend, MediaSource};
use crate::SentMedia;

/// A failed API call, classified the way the runtime reacts to it.
pub(crate) struct ApiError {
    /// The server answered `-14`.
    pub(crate) session_expired: bool,
    /// The facade's error.
    pub(crate) source: crate::Error,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("session_expired", &self.session_expired)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// The calls the runtime makes. Every future is `'static` so that the
/// runtime can race it against a shutdown signal and drop it (which aborts
/// the request).
pub(crate) trait RuntimeApi: Send + Sync + 'static {
    /// One long poll from `cursor`, with `timeout` as the client-side limit
    /// when the facade lets the caller choose one.
    fn poll(
        &self,
        cursor: String,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GetUpdatesResponse, ApiError>>;

    /// Sends one text message.
    fn send_text(
        &self,
        to: String,
        text: String,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<(), ApiError>>;

    /// Fetches the typing ticket of `user` (empty when the server has none).
    fn get_config(
        &self,
        user: String,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<TypingTicket, ApiError>>;

    /// Starts (`typing == true`) or cancels the typing indicator.
    fn send_typing(
        &self,
        user: String,
        ticket: TypingTicket,
        typing: bool,
    ) -> BoxFuture<'static, Result<(), ApiError>>;

    /// Uploads and sends one media message (and its caption, if any),
    /// through the facade's media request builders.
    fn send_media(
        &self,
        to: String,
        media: MediaSend,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<SentMedia, ApiError>>;

    /// `msg/notifystart`.
    fn notify_start(&self) -> BoxFuture<'static, Result<(), ApiError>>;

    /// `msg/notifystop`.
    fn notify_stop(&self) -> BoxFuture<'static, Result<(), ApiError>>;
}
