//! wxlink-sim's integration tests. The files of this directory are linked into
//! one test binary, since one link per file made a fresh build several
//! times larger and slower. Each module covers one area, and
//! `cargo nextest run -p wxlink-sim -E 'test(/^api::/)'` runs one of them.

// Tests may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod api;
mod cdn;
mod chaos;
mod control;
mod faults;
mod fixtures;
mod fuzz;
mod harness;
mod limits;
mod login;
mod records;
mod secrets;
mod stalls;
