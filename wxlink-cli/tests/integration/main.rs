//! wxlink-cli's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-cli -E 'test(/^commands::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bridge;
mod commands;
#[cfg(unix)]
mod scale_out;
mod store;
mod support;
mod usage;
