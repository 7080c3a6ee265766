//! `WxLinkClient`: the high-level SDK for the WeChat iLink bot API.
//!
//! It offers every call of the reference API page (polling, text, typing,
//! media, config), QR login and the helpers bot authors need.

pub mod chunk;
pub mod runtime;

pub use chunk::{DEFAULT_MAX_CHARS, chunk_text};
