//! `wxlink-bot`: the bot runtime for the WeChat iLink bot API, on top of
//! the [`wxlink_client`] facade.
//!
//! - [`store`]: the [`Store`](store::Store) trait, keyed by account, with
//!   leases and epoch fencing; [`SqliteStore`](store::SqliteStore) (feature
//!   `sqlite`, default) and [`MemoryStore`](store::MemoryStore).
//! - [`backoff`], [`config_cache`]: the official poll backoff and the
//!   typing-ticket cache numbers, as pure policy types.
//!
//! # Features
//!
//! - `sqlite` (default): [`SqliteStore`](store::SqliteStore), bundled SQLite.

pub mod backoff;
pub mod config_cache;
// The runtime that raises most of these kinds lands next.
#[allow(dead_code)]
mod error;
pub mod store;

pub use error::Error;
