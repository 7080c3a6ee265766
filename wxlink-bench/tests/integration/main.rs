//! wxlink-bench's integration tests, linked into one test binary. Each
//! module covers one area; `cargo nextest run -p wxlink-bench -E
//! 'test(/^load::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod load;
mod usage;
