//! `wxlink-bridge`: connects WeChat iLink bot accounts to an AI agent.
//!
//! Most bots run in front of an agent. This crate is that loop as a
//! library: every inbound message becomes a [`Turn`] for an [`Agent`], and
//! the agent's [`Reply`] goes back to the user through the bot runtime,
//! chunked so that no message is cut inside a code block.
//!
//! ```
//! use wxlink_bridge::{Agent, BoxFuture, Error, Reply, Turn};
//!
//! struct Shout;
//!
//! impl Agent for Shout {
//!     fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
//!         Box::pin(async move { Ok(Reply::text(turn.text.to_uppercase())) })
//!     }
//! }
//! ```
//!
//! # Modules
//!
//! - [`agent`]: the [`Agent`] trait;
//! - [`turn`]: [`Turn`] and [`Reply`], with their JSON form;
//! - [`openai`]: [`OpenAiAgent`], on an OpenAI-compatible endpoint;
//! - [`webhook`]: [`WebhookAgent`] and the [`SendEndpoint`] for answers
//!   that come later;
//! - [`command`]: [`CommandAgent`], a local program per turn or long-lived;
//! - [`markdown`]: chunking that keeps code fences intact, and the
//!   official client's markdown filter;
//! - [`media_endpoint`]: [`MediaEndpoint`], a turn's inbound media served
//!   on loopback to agents that cannot read the bridge's files;
//! - [`engine`]: the turn semantics (one turn at a time per user, retries,
//!   dead letters, commands, allow-lists) over an [`Outbox`];
//! - [`config`]: the TOML configuration of `wxlink bridge`;
//! - [`runtime`]: [`Bridge`](runtime::Bridge), the engine on the
//!   `wxlink-bot` host;
//! - [`metrics`]: the Prometheus metrics;
//! - [`history`]: per-user conversation history behind [`HistoryStore`].

pub mod agent;
pub mod command;
pub mod config;
pub mod engine;
mod error;
pub mod history;
mod http;
pub mod markdown;
pub mod media_endpoint;
pub mod metrics;
pub mod openai;
mod ops;
pub mod runtime;
mod secret;
mod server;
pub mod turn;
pub mod webhook;

pub use agent::{Agent, AgentRouter, BoxFuture, FnAgent};
pub use command::{CommandAgent, CommandConfig, CommandMode};
pub use config::{AgentConfig, BridgeConfig};
pub use engine::{
    DeliveryAttempt, Engine, EngineOptions, Inbound, Outbox, ReplyTo, Settle, Typing,
};
pub use error::Error;
pub use history::{HistoryEntry, HistoryLimits, HistoryStore, MemoryHistory, Role};
pub use http::HttpClient;
pub use markdown::{DEFAULT_CHUNK_CHARS, chunk_markdown, filter_markdown};
pub use media_endpoint::MediaEndpoint;
pub use metrics::Metrics;
pub use openai::{OpenAiAgent, OpenAiConfig};
pub use ops::{Health, serve_ops};
pub use secret::Secret;
pub use server::LoopbackServer;
pub use turn::{MediaKind, Reply, ReplyMedia, Turn, TurnMedia};
pub use webhook::{DeferredReply, ReplySink, SendEndpoint, WebhookAgent, WebhookConfig};
