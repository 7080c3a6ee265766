//! `wxlink-bot`: the bot runtime for the WeChat iLink bot API, on top of
//! the [`wxlink_client`] facade: many accounts per process, a durable store
//! with leases, the server's real send limits, dead letters.
//!
//! ```no_run
//! use wxlink_bot::store::SqliteStore;
//! use wxlink_bot::{AccountConfig, AccountOptions, Host, Incoming};
//! use wxlink_bot::store::AccountId;
//! use wxlink_client::WxLinkClient;
//! use wxlink_proto::BotToken;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder(SqliteStore::open("bots.db")?).concurrency(32).build();
//! let config = AccountConfig::new(
//!     AccountId::new("bot-1")?,
//!     WxLinkClient::builder().token(BotToken::new("token")),
//! )
//! .options(AccountOptions::default().max_attempts(3));
//! host.add_account(config, |incoming: Incoming| async move {
//!     let _typing = incoming.typing();
//!     incoming.reply("hello").await
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The parts
//!
//! - [`Host`]: runs N accounts on one shared transport; each supervised on
//!   its own (lease, poll loop, backoff, `-14`, throttle). Accounts can be
//!   added and removed while it runs; [`Host::events`] reports what happens
//!   ([`Event`]).
//! - [`Handler`] and [`Incoming`]: one inbound message and its replies;
//!   handlers run in order per user and concurrently across users and
//!   accounts, up to a bound.
//! - [`store`]: the [`Store`](store::Store) trait, keyed by account, with
//!   leases and epoch fencing; [`SqliteStore`](store::SqliteStore) (feature
//!   `sqlite`, default) and [`MemoryStore`](store::MemoryStore).
//! - [`limits`](AccountOptions): pacing, the bot-wide throttle, reply and
//!   push budgets, as the server applies them.
//! - [`backoff`], [`config_cache`]: the official poll backoff and the
//!   typing-ticket cache numbers, as pure policy types.
//!
//! # Delivery guarantees
//!
//! Each poll's messages and the new cursor are committed to the store in
//! one transaction before any is handed out; a message leaves the journal
//! when its handler succeeds, or becomes a dead letter after
//! [`AccountOptions::max_attempts`] failures. Duplicates the server sends
//! are dropped by exact id. So every message the server delivered is
//! handled at least once, and exactly once unless the runner dies between
//! a handler's success and its acknowledgement; replies already accepted
//! are not sent again on a replay (see [`Incoming`]).
//!
//! # Errors
//!
//! One opaque [`Error`] with predicates: [`Error::is_session_expired`],
//! [`Error::is_throttled`], [`Error::is_leased`], [`Error::is_fenced`],
//! [`Error::is_budget_exhausted`], [`Error::may_have_been_sent`],
//! [`Error::is_retryable`] and more. The [`Store`](store::Store) trait and
//! every store fail with it too ([`Error::is_store`],
//! [`Error::leased_by`], [`Error::is_newer_schema`]); a store of your own
//! builds its failures with [`Error::store_with`] and the constructors
//! beside it.
//!
//! # Features
//!
//! - `sqlite` (default): [`SqliteStore`](store::SqliteStore), bundled SQLite.

mod account;
pub mod backoff;
pub mod config_cache;
mod error;
mod events;
mod handler;
mod host;
mod incoming;
mod limits;
mod options;
#[cfg(feature = "postgres")]
pub mod runner;
mod send;
mod shared;
pub mod store;
mod typing;

pub use error::Error;
pub use events::{Event, EventKind};
pub use handler::{Handler, HandlerError, HandlerFuture};
pub use host::{AccountConfig, AccountHandle, Host, HostBuilder};
pub use incoming::{Incoming, ReplyPermit, reply_client_id};
pub use options::{AccountOptions, OnRefusal};
pub use typing::TypingGuard;
