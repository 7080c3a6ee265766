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
//! # Features
//!
//! - `transport` (default): CDN upload and download through
//!   `wxlink-transport`. Without it the crate has no HTTP or async
//!   dependency.

pub mod crypto;
#[cfg(feature = "transport")]
pub mod download;
#[cfg(feature = "transport")]
mod fetch;
pub mod guard;
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
pub use item::{UploadedMedia, VoiceMeta};
pub use key::{AesKey, KeyEncoding, resolve_item_key};
pub use kind::{Inferred, MediaKind, infer_kind};
pub use progress::{Phase, Progress, ProgressHook};

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
    /// The item is not media (text, or an unknown type).
    #[error("item is not media")]
    NotMedia,
    /// The media item has no CDN reference to download from.
    #[error("{kind} item has no cdn reference")]
    NoMedia {
        /// The item's kind.
        kind: MediaKind,
    },
    /// Reading the source or writing the destination failed.
    #[error("media i/o failed")]
    Io {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The source yielded a different number of bytes than announced, or
    /// than the first pass read (the file changed in between).
    #[error("source length changed: expected {expected} bytes, got {actual}")]
    SourceChanged {
        /// The length announced or measured first.
        expected: u64,
        /// The length actually read.
        actual: u64,
    },
    /// The media is larger than the configured limit.
    #[error("media larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Fewer bytes arrived than the response announced.
    #[error("download truncated: {received} of {expected} bytes")]
    Truncated {
        /// The announced `Content-Length`.
        expected: u64,
        /// The bytes received.
        received: u64,
    },
    /// A URL was not usable: not `http`/`https`, or malformed.
    #[error("unsupported url: {reason}")]
    UnsupportedUrl {
        /// Why.
        reason: String,
    },
    /// A URL fetch was refused before connecting: the host resolves to an
    /// address the fetch policy forbids (loopback, private, link-local,
    /// CGNAT, multicast, cloud metadata…).
    #[error("refusing to fetch from {host}: {addr} is a {class} address")]
    BlockedAddress {
        /// The host name (or literal) of the refused hop.
        host: String,
        /// The forbidden address it resolved to.
        addr: std::net::IpAddr,
        /// Why the address is forbidden.
        class: crate::guard::AddressClass,
    },
    /// An `https://` URL redirected to plain `http://`; refused unless the
    /// fetch options allow downgrades.
    #[error("refusing the redirect from https to plain http at {host}")]
    InsecureRedirect {
        /// The host of the `http://` location.
        host: String,
    },
    /// The host name of a fetch could not be resolved.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// A URL fetch followed more redirects than allowed.
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The redirect limit.
        limit: u32,
    },
    /// A URL fetch got a status other than 200.
    #[error("url fetch failed with http status {status}")]
    FetchStatus {
        /// The HTTP status.
        status: u16,
    },
    /// A transfer took longer than its time limit.
    #[error("media transfer timed out after {} ms", .after.as_millis())]
    Timeout {
        /// The limit that fired.
        after: std::time::Duration,
    },
    /// A CDN transfer made no progress for its idle limit: the CDN stopped
    /// reading the upload, stopped sending the download, or never answered.
    /// Not retried.
    #[error("media transfer stalled: no progress for {} ms", .idle.as_millis())]
    Stalled {
        /// The idle limit that fired.
        idle: std::time::Duration,
    },
    /// The HTTP exchange failed (connect, network, body). Retried for CDN
    /// uploads.
    #[error("media http request failed")]
    Http {
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `getuploadurl` failed.
    #[cfg(feature = "transport")]
    #[error("getuploadurl failed")]
    Api {
        /// The API error.
        source: wxlink_transport::Error,
    },
    /// `getuploadurl` returned neither `upload_full_url` nor `upload_param`.
    #[error("getuploadurl returned no upload url")]
    NoUploadUrl,
    /// The CDN refused the upload with a 4xx status; not retried.
    #[error("cdn rejected upload with status {status}: {message}")]
    CdnRejected {
        /// The HTTP status.
        status: u16,
        /// `x-error-message`, else the start of the body.
        message: String,
    },
    /// The CDN answered with a non-200, non-4xx status; retried.
    #[error("cdn upload server error: {message}")]
    CdnServer {
        /// The HTTP status.
        status: u16,
        /// `x-error-message`, else `status N`.
        message: String,
    },
    /// The CDN answered 200 without the `x-encrypted-param` header; retried.
    #[error("cdn upload response missing x-encrypted-param header")]
    CdnMissingParam,
    /// A retry was needed but the source is a one-shot reader that was
    /// already consumed.
    #[error("upload source is one-shot and cannot be sent again")]
    NotReplayable {
        /// The failure that called for the retry.
        #[source]
        last: Option<Box<MediaError>>,
    },
    /// The CDN answered a download with a status other than 200.
    #[error("cdn download failed with http status {status}")]
    DownloadStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        message: String,
    },
}

impl MediaError {
    /// True when a transfer ran out of time: an overall limit
    /// ([`MediaError::Timeout`]), an idle limit ([`MediaError::Stalled`]),
    /// or an upload attempt's limit (wrapped in [`MediaError::Http`] so that
    /// it is retried, and so also behind [`MediaError::NotReplayable`]).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Stalled { .. } => true,
            Self::Http { source } => source
                .downcast_ref::<MediaError>()
                .is_some_and(MediaError::is_timeout),
            Self::NotReplayable { last: Some(last) } => last.is_timeout(),
            _ => false,
        }
    }
}

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
