//! The bot runtime: what a bot needs on top of `poll`.
//!
//! - [`BotRuntime`]: one per bot account; owns the [`Store`] and the
//!   policies, and sends with the remembered context token and the send
//!   budget ([`BotRuntime::reply`], [`BotRuntime::send_to`]).
//! - [`Updates`] ([`BotRuntime::updates`]): the stream of inbound messages
//!   that never loses or repeats one: journaled before the cursor advances,
//!   de-duplicated by exact id, yielded again after a crash until
//!   acknowledged ([`Delivery::ack`]). [`BotRuntime::run`] is the same loop
//!   with a handler.
//! - [`TypingGuard`] ([`BotRuntime::typing`]): keeps "typing…" alive and
//!   cancels it.
//! - [`Store`]: the persisted state, with the crash-safe [`SqliteStore`] and
//!   the in-memory [`MemoryStore`].
//! - [`backoff`], [`budget`], [`config_cache`]: the official numbers for
//!   poll backoff, the per-turn send budget and reply window, and the
//!   typing-ticket cache, as pure policy types.

mod api;
pub mod backoff;
mod bot;
pub mod budget;
mod client_api;
pub mod config_cache;
mod error;
mod memory;
mod sqlite;
pub mod store;
mod stream;
mod typing;

pub use backoff::{Backoff, BackoffPolicy};
pub use bot::{BotRuntime, RuntimeOptions};
pub use budget::{ContextProblem, ReplyWindow, SendBudgetPolicy, WhenExhausted};
pub use config_cache::ConfigCachePolicy;
pub use error::RuntimeError;
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
