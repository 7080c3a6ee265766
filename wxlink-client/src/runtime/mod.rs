//! The bot runtime: what a bot needs on top of `poll`.
//!
//! - [`Store`]: the persisted state (cursor, journal of unacknowledged
//!   messages, de-duplication windows, context tokens, send budgets), with
//!   the crash-safe [`SqliteStore`] and the in-memory [`MemoryStore`].
//! - [`backoff`], [`budget`], [`config_cache`]: the official numbers for
//!   poll backoff, the per-turn send budget and reply window, and the
//!   typing-ticket cache, as pure policy types.

pub mod backoff;
pub mod budget;
pub mod config_cache;
mod memory;
mod sqlite;
pub mod store;

pub use backoff::{Backoff, BackoffPolicy};
pub use budget::{ReplyWindow, SendBudgetPolicy, WhenExhausted};
pub use config_cache::ConfigCachePolicy;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use store::{
    CommitOutcome, ContextRecord, DedupeSettings, InboundBatch, InboundMessage, JournalEntry,
    JournalKey, Store, StoreError, TurnRecord,
};
