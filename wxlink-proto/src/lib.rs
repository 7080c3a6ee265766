//! Wire types and endpoint descriptors of the WeChat iLink bot API.
//!
//! This crate is the protocol layer of WxLink: every request, response,
//! message, item and enum of the iLink API as plain serde types, generated
//! from the schema under `schema/` by `cargo xtask codegen`. It does no I/O.
