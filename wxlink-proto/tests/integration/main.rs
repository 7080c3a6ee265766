//! wxlink-proto's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-proto -E 'test(/^examples::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdn_redaction;
mod examples;
mod field_reports;
mod fixtures;
mod lenient_fields;
mod properties;
mod robustness;
mod secrets;
