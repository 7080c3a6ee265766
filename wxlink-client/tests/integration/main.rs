//! wxlink-client's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-client -E 'test(/^login::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod extremes;
mod login;
mod media;
mod messaging;
mod robustness;
mod upload_retry;
