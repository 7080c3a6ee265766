//! Media for the iLink bot API: kind inference, streaming AES-128-ECB,
//! inbound key parsing, outbound item builders and (with the `transport`
//! feature) CDN upload and download in constant memory.
//!
//! ```
//! use wxlink_media::{AesKey, crypto};
//!
//! let key = AesKey::random();
//! let ciphertext = crypto::encrypt(&key, b"hello ilink");
//! assert_eq!(ciphertext.len() as u64, crypto::ciphertext_len(11));
//! assert_eq!(crypto::decrypt(&key, &ciphertext)?, b"hello ilink");
//! # Ok::<(), wxlink_media::MediaError>(())
//! ```
//!
//! # Features
//!
//! - `transport` (default): CDN upload and download through
//!   `wxlink-transport`. Without it the crate has no HTTP or async
//!   dependency.

pub mod crypto;
pub mod item;
pub mod key;
pub mod kind;

pub use crypto::{Decryptor, Encryptor, ciphertext_len};
pub use item::{UploadedMedia, VoiceMeta};
pub use key::{AesKey, KeyEncoding, resolve_item_key};
pub use kind::{Inferred, MediaKind, infer_kind};

/// Errors of the media layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The ciphertext length is zero or not a multiple of 16: the download
    /// was truncated or is not AES-128-ECB data.
    #[error("ciphertext length {len} is not a positive multiple of 16")]
    CiphertextLength {
        /// The length received.
        len: u64,
    },
    /// The final block does not end in valid PKCS#7 padding: the data is
    /// corrupt or the key is wrong.
    #[error("invalid pkcs#7 padding")]
    BadPadding,
    /// An AES key could not be read. The reason never contains the key.
    #[error("invalid aes key: {reason}")]
    InvalidKey {
        /// What was wrong (lengths and forms, never the key itself).
        reason: String,
    },
    /// An inbound item of this kind carries no usable key.
    #[error("{kind} item has no aes key")]
    MissingKey {
        /// The item's kind.
        kind: MediaKind,
    },
}
