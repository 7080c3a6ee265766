//! wxlink-bot's integration tests, linked into one binary. Each module
//! covers one area; `cargo nextest run -p wxlink-bot -E 'test(/^host::/)'`
//! runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod host;
mod limits;
#[cfg(unix)]
mod process;
mod soak;
mod store;
mod support;
