//! wxlink-transport's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-transport -E 'test(/^api::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod api;
mod env_proxy;
mod fuzz_bodies;
mod retry;
mod secrets;
mod stack;
mod tls;
mod tracing;
