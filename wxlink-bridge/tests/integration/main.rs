//! wxlink-bridge's integration tests, linked into one binary. Each module
//! covers one area; `cargo nextest run -p wxlink-bridge -E 'test(/^openai::/)'`
//! runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod command;
mod engine;
mod fake;
mod limits;
mod markdown;
mod openai;
mod sim;
mod support;
mod webhook;
