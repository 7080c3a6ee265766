//! `WxLinkClient`: the high-level SDK for the WeChat iLink bot API (the HTTP
//! API behind WeChat ClawBot).
//!
//! It offers every call of the reference API page of the TypeScript
//! `WxLinkClient` in Rust's idiom (required arguments positional, optional
//! ones as setters on a request builder that you `.await`), QR login, and a
//! few things bot authors ask for that no other SDK has: native voice
//! messages, an `md5` on every file item, and `sendmessage` rejections that
//! are errors instead of silent successes.
//!
//! ```no_run
//! use wxlink_client::{AccountRecord, WxLinkClient};
//!
//! # async fn run() -> Result<(), wxlink_client::Error> {
//! let client = WxLinkClient::from_account(&AccountRecord::load("account.json")?)?;
//! client.notify_start().await?;
//! let mut cursor = String::new();
//! loop {
//!     let updates = client.poll(&cursor).await?;
//!     for msg in updates.messages() {
//!         let Some(user) = msg.from_user_id.clone() else { continue };
//!         client
//!             .send_text(user, "got it")
//!             .context_token(msg.context_token.clone())
//!             .await?;
//!     }
//!     cursor = updates.next_cursor;
//! }
//! # }
//! ```
//!
//! # The reference page, call by call
//!
//! | reference call | WxLink |
//! |---|---|
//! | `new WxLinkClient(options)` | [`WxLinkClient::builder`]`().base_url(..).token(..).cdn_base_url(..).transport(..).build()` |
//! | `WxLinkClient.fromAccount(record, options?)` | [`WxLinkClient::from_account`], [`WxLinkClient::from_account_with`] |
//! | `client.poll(cursor?)` | [`WxLinkClient::poll`]`(cursor)` → [`PollResult`] `{ response, next_cursor }` |
//! | `client.sendText({toUserId, text, contextToken?})` | [`WxLinkClient::send_text`]`(to, text).context_token(..)` → [`SentMessage`] |
//! | `client.sendTextChunked(to, text, ctx?, maxLength?)` | [`WxLinkClient::send_text_chunked`]`(to, text).context_token(..).max_chars(..)` → count |
//! | `client.sendTyping(userId, contextToken?)` | [`WxLinkClient::send_typing`]`(user).context_token(..)`; also [`WxLinkClient::cancel_typing`] |
//! | `client.sendImage / sendVideo / sendFile({toUserId, filePath, text?, contextToken?})` | [`WxLinkClient::send_image`] / [`send_video`](WxLinkClient::send_video) / [`send_file`](WxLinkClient::send_file)`(to, path).caption(..).context_token(..)` |
//! | `client.sendMediaFromPath(options)` | [`WxLinkClient::send_media_from_path`]`(to, path)` |
//! | `client.sendImageBuffer / sendVideoBuffer / sendFileBuffer / sendMediaFromBuffer(..)` | [`WxLinkClient::send_image_buffer`] / [`send_video_buffer`](WxLinkClient::send_video_buffer) / [`send_file_buffer`](WxLinkClient::send_file_buffer) / [`send_media_from_buffer`](WxLinkClient::send_media_from_buffer)`(to, bytes).file_name(..).content_type(..)` |
//! | `client.sendMediaFromUrl({toUserId, url, text?, contextToken?})` | [`WxLinkClient::send_media_from_url`]`(to, url)` |
//! | `client.getConfig(userId, contextToken?)` | [`WxLinkClient::get_config`]`(user).context_token(..)` |
//! | `LoginResult.botToken / baseUrl` (QR login) | [`login_with_qr`], [`LoginSession`] → [`LoginResult`] → [`AccountRecord`] |
//!
//! Beyond the page: [`WxLinkClient::send_voice`], [`WxLinkClient::resolve_media`],
//! [`WxLinkClient::download_media`], [`WxLinkClient::download_media_to`],
//! [`WxLinkClient::notify_start`], [`WxLinkClient::notify_stop`] and
//! [`chunk_text`].
//!
//! Each call has a compiling example in its own documentation.
//!
//! # Errors
//!
//! Every call, the QR login and the account file functions return the one
//! [`Error`]. It is opaque; ask it: `-14` is [`Error::is_session_expired`],
//! a timeout [`Error::is_timeout`], a `sendmessage` rejection carries its
//! [`ApiStatus`](wxlink_proto::ApiStatus) in [`Error::api_status`] and its
//! likely cause in [`Error::rejection`], a QR code that expired too often
//! is [`Error::is_login_expired`] and an unreadable account file
//! [`Error::is_account_file`]. [`Error::may_have_been_sent`] says whether
//! retrying could deliver a message twice, [`Error::is_retryable`] whether
//! it is safe and may help. The failures of the layers below stay typed
//! behind [`Error::transport`] and [`Error::media`] (a CDN refusal keeps
//! its HTTP status).
//!
//! # Modules
//!
//! - [`client`] holds [`WxLinkClient`], its builder and request builders;
//! - [`media`] holds the media request builders and inbound media;
//! - [`login`] is QR login;
//! - [`account`] holds [`AccountRecord`], the saved credentials;
//! - [`chunk`] holds [`chunk_text`].
//!
//! The bot runtime (update stream, stores, many accounts, send limits) is
//! the `wxlink-bot` crate, on top of this one.

pub mod account;
mod api;
pub mod chunk;
pub mod client;
mod error;
pub mod login;
pub mod media;
pub mod reject;

pub use account::AccountRecord;
pub use chunk::{DEFAULT_MAX_CHARS, chunk_text};
pub use client::{ClientBuilder, PollResult, SentMessage, WxLinkClient};
pub use error::Error;
pub use login::{
    LoginCallbacks, LoginOptions, LoginOutcome, LoginResult, LoginSession, LoginState,
    login_with_qr,
};
pub use media::SentMedia;
