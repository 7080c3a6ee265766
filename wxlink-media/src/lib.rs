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
//! # Ok::<(), wxlink_media::Error>(())
//! ```
//!
//! # Modules
//!
//! - [`crypto`]: AES-128-ECB with PKCS#7, whole-buffer and streaming. ECB is
//!   weak; it is used because the protocol mandates it (docs/protocol.md, "Media encryption").
//! - [`key`]: [`AesKey`], its outbound encodings and the one inbound parser.
//! - [`kind`]: [`MediaKind`] and [`infer_kind`] (content type, then magic
//!   bytes, then extension).
//! - [`item`]: outbound image, video, file and voice items from an
//!   [`UploadedMedia`].
//! - `upload`, `download` (feature `transport`): the CDN flows, streaming in
//!   chunks so that memory does not grow with the file.
//! - [`progress`]: progress reports for both.
//!
//! Every fallible function returns the one [`Error`]: opaque, with
//! predicates such as [`Error::is_timeout`], [`Error::is_decrypt`],
//! [`Error::status`] and [`Error::is_retryable`].
//!
//! # Features
//!
//! - `transport` (default): CDN upload and download through
//!   `wxlink-transport`. Without it the crate has no HTTP or async
//!   dependency.

pub mod crypto;
#[cfg(feature = "transport")]
pub mod download;
mod error;
#[cfg(feature = "transport")]
mod fetch;
pub mod guard;
mod hash;
#[cfg(feature = "transport")]
mod http;
pub mod item;
pub mod key;
pub mod kind;
#[cfg(feature = "transport")]
mod limits;
pub mod progress;
#[cfg(feature = "transport")]
mod source;
#[cfg(feature = "transport")]
pub mod upload;

#[cfg(feature = "transport")]
pub use download::{
    Downloaded, DownloadedFile, InboundMedia, download, download_to_file, resolve_item,
    resolve_thumbnail,
};
#[cfg(feature = "transport")]
pub use fetch::FetchOptions;
pub use guard::{AddressClass, AddressPolicy};
#[cfg(feature = "transport")]
pub use guard::{Resolve, Resolver};
#[cfg(feature = "transport")]
pub use http::{HttpService, cdn_download_url, cdn_upload_url};
#[cfg(feature = "transport")]
pub use limits::TransferTimeouts;
#[cfg(feature = "transport")]
pub use upload::{UploadOptions, UploadSource, UploadUrlApi, upload};

pub use crypto::{Decryptor, Encryptor, checked_ciphertext_len, ciphertext_len};
pub use error::Error;
pub use hash::Md5;
pub use item::{UploadedMedia, VoiceMeta};
pub use key::{AesKey, KeyEncoding, resolve_item_key};
pub use kind::{Inferred, MediaKind, infer_kind};
pub use progress::{Phase, Progress, ProgressHook};

#[cfg(all(test, feature = "transport"))]
mod send_tests {
    use wxlink_transport::{ApiClient, CdnService, HttpsTransport};

    fn assert_send<T: Send>(_: &T) {}

    /// Uploads and downloads must be spawnable on a multi-threaded runtime.
    #[test]
    fn transfer_futures_are_send() {
        let api: ApiClient<HttpsTransport> = ApiClient::new(Default::default());
        let cdn: CdnService = api.cdn_service();
        let options = crate::UploadOptions::default();
        let fut = crate::upload(
            &api,
            &cdn,
            "user",
            crate::UploadSource::bytes(&b"x"[..]),
            &options,
        );
        assert_send(&fut);
        drop(fut);
        let media = crate::InboundMedia {
            kind: crate::MediaKind::File,
            url: "http://127.0.0.1:1/".to_owned(),
            key: None,
            key_encoding: None,
            file_name: None,
            md5: None,
            thumbnail: false,
        };
        let dl_options = crate::download::DownloadOptions::default();
        let fut = crate::download(&cdn, &media, &dl_options);
        assert_send(&fut);
        let fut2 = crate::download_to_file(&cdn, &media, "/nonexistent/x", &dl_options);
        assert_send(&fut2);
    }
}
