//! The bot runtime: what a bot needs on top of `poll`.
//!
//! - [`BotRuntime`]: one per bot account; owns the [`Store`] and the
//!   policies, and sends with the remembered context token and the send
//!   budget ([`BotRuntime::reply`], [`BotRuntime::send_to`], and for media
//!   [`BotRuntime::reply_media_from_path`] and its siblings).
//! - [`Updates`] ([`BotRuntime::updates`]): the stream of inbound messages
//!   that never loses or repeats one: journaled before the cursor advances,
//!   de-duplicated by exact id, yielded again after a crash until
//!   acknowledged ([`Delivery::ack`]). [`BotRuntime::run`] is the same loop
//!   with a handler.
//! - [`TypingGuard`] ([`BotRuntime::typing`]): keeps "typing…" alive and
//!   cancels it, on the reply itself with [`TypingGuard::reply`].
//! - [`Store`]: the persisted state, with the crash-safe [`SqliteStore`] and
//!   the in-memory [`MemoryStore`].
//! - [`backoff`], [`budget`], [`config_cache`]: the official numbers for
//!   poll backoff, the per-turn send budget and reply window, and the
//!   typing-ticket cache, as pure policy types.
//!
//! # Delivery guarantees
//!
//! The server hands each message out once and never replays an old cursor
//! (ILINK.md §9). The runtime therefore writes each poll's messages and the
//! new cursor to the store in one transaction before yielding any of them,
//! and keeps every message journaled until the application acknowledges it.
//! From the application's side this is at-least-once per store, exactly
//! once when every message is acknowledged after it was handled:
//!
//! - a message taken but not acknowledged (a crash, a handler error, a
//!   dropped stream) is yielded again, first, by the next stream over the
//!   same store, marked [`Delivery::is_replay`];
//! - a message id already journaled is dropped if the server sends it again
//!   (the id window is persisted and bounded, 10 000 ids by default);
//! - if the store cannot write, the batch is held in memory and retried,
//!   and nothing new is polled until it is written.
//!
//! What no client can prevent: a batch the server was sending at the very
//! moment the poll is aborted (shutdown, drop, a cut connection after the
//! server answered) is lost, because the server counts it as delivered.
//! Messages never acknowledged stay in the journal for ever.
//!
//! # Sends
//!
//! [`BotRuntime::send_to`] refuses early, with a typed error and without a
//! request, when the user has not written within the reply window
//! ([`RuntimeError::UserMustWriteFirst`]), when the turn's budget is used up
//! ([`RuntimeError::RateLimited`]; a failed send still counts, since the
//! server may have counted it) and while the session is expired or paused.
//! Every message counts: long text split into chunks counts each chunk, and
//! a captioned media reply counts two (the caption, then the media), all
//! reserved before the first one leaves.

mod api;
pub mod backoff;
mod bot;
pub mod budget;
mod client_api;
pub mod config_cache;
mod error;
mod media;
mod memory;
mod sqlite;
pub mod store;
mod stream;
mod typing;

pub use backoff::{Backoff, BackoffPolicy};
pub use bot::{BotRuntime, ReplyTarget, RuntimeOptions};
pub use budget::{ContextProblem, ReplyWindow, SendBudgetPolicy, WhenExhausted};
pub use config_cache::ConfigCachePolicy;
pub use error::RuntimeError;
pub use media::{MediaReplyRequest, VoiceReplyRequest};
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use store::{
    CommitOutcome, ContextRecord, DedupeSettings, InboundBatch, InboundMessage, JournalEntry,
    JournalKey, Store, StoreError, TurnRecord,
};
pub use stream::{Delivery, OnSessionExpired, Updates, UpdatesOptions};
pub use typing::TypingGuard;

#[cfg(test)]
mod tests;
