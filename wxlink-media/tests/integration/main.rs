//! wxlink-media's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-media -E 'test(/^crypto::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod crypto;
mod fetch_guard;
mod fuzz;
mod sim_roundtrip;
mod stall;
mod upload_retry;
