//! The crate's one error type, [`Error`].
//!
//! The error is opaque: a private kind (which also holds the cause) behind
//! one box. Callers ask it questions instead of matching variants, so that
//! kinds can be added and reshaped without breaking them.

use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use wxlink_proto::ApiStatus;

use crate::guard::AddressClass;
use crate::kind::MediaKind;

/// Why a media operation failed.
///
/// Predicates tell the failures apart: decryption
/// ([`is_decrypt`](Error::is_decrypt)), keys and inbound items
/// ([`is_invalid_key`](Error::is_invalid_key),
/// [`is_missing_key`](Error::is_missing_key),
/// [`is_not_media`](Error::is_not_media)), the source
/// ([`is_io`](Error::is_io), [`source_changed`](Error::source_changed),
/// [`size_limit`](Error::size_limit)), URL fetches
/// ([`is_blocked_address`](Error::is_blocked_address),
/// [`is_insecure_redirect`](Error::is_insecure_redirect),
/// [`redirect_limit`](Error::redirect_limit)), time
/// ([`is_timeout`](Error::is_timeout), [`is_stalled`](Error::is_stalled)),
/// the CDN ([`status`](Error::status),
/// [`is_cdn_rejected`](Error::is_cdn_rejected)) and `getuploadurl`
/// ([`api_status`](Error::api_status),
/// [`is_session_expired`](Error::is_session_expired)).
/// [`is_retryable`](Error::is_retryable) says whether another upload attempt
/// may succeed. The cause, whatever library it comes from, is reachable
/// only through [`source`](std::error::Error::source).
///
/// Neither `Display` nor `Debug` shows an AES key: a key error names lengths
/// and forms, never the key.
pub struct Error {
    kind: Box<ErrorKind>,
}

/// What went wrong; private so that the set can grow and change.
#[derive(Debug, thiserror::Error)]
// Without the transport, the transfer kinds are never built.
#[cfg_attr(not(feature = "transport"), allow(dead_code))]
pub(crate) enum ErrorKind {
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
    /// The HTTP exchange failed (connect, network, body), or an upload
    /// attempt ran out of time. Retried for CDN uploads.
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
        last: Option<Error>,
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

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("wxlink_media::Error")
            .field("kind", &self.kind)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.kind.source()
    }
}

impl Error {
    /// The kind, for this crate's own tests and classification.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// True when the ciphertext could not be decrypted: its length is zero
    /// or not a multiple of 16 (a truncated download, or not AES-128-ECB
    /// data), or its padding is invalid (corrupt data or a wrong key).
    pub fn is_decrypt(&self) -> bool {
        matches!(
            *self.kind,
            ErrorKind::CiphertextLength { .. } | ErrorKind::BadPadding
        )
    }

    /// True when the final block does not end in valid PKCS#7 padding: the
    /// data is corrupt or the key is wrong.
    pub fn is_bad_padding(&self) -> bool {
        matches!(*self.kind, ErrorKind::BadPadding)
    }

    /// The ciphertext length, when it was zero or not a multiple of 16.
    pub fn bad_ciphertext_len(&self) -> Option<u64> {
        match *self.kind {
            ErrorKind::CiphertextLength { len } => Some(len),
            _ => None,
        }
    }

    /// True when an AES key could not be read (the message says why, never
    /// what the key was).
    pub fn is_invalid_key(&self) -> bool {
        matches!(*self.kind, ErrorKind::InvalidKey { .. })
    }

    /// True when an inbound media item carries no usable key.
    pub fn is_missing_key(&self) -> bool {
        matches!(*self.kind, ErrorKind::MissingKey { .. })
    }

    /// True when an inbound item is not media (text, or an unknown type).
    pub fn is_not_media(&self) -> bool {
        matches!(*self.kind, ErrorKind::NotMedia)
    }

    /// True when a media item has no CDN reference to download from.
    pub fn is_missing_reference(&self) -> bool {
        matches!(*self.kind, ErrorKind::NoMedia { .. })
    }

    /// The kind of the inbound item whose key or CDN reference is missing.
    pub fn item_kind(&self) -> Option<MediaKind> {
        match *self.kind {
            ErrorKind::MissingKey { kind } | ErrorKind::NoMedia { kind } => Some(kind),
            _ => None,
        }
    }

    /// True when reading the source or writing the destination failed.
    pub fn is_io(&self) -> bool {
        matches!(*self.kind, ErrorKind::Io { .. })
    }

    /// `(expected, actual)` when the source yielded a different number of
    /// bytes than announced, or than the first pass read (the file changed
    /// in between).
    pub fn source_changed(&self) -> Option<(u64, u64)> {
        match *self.kind {
            ErrorKind::SourceChanged { expected, actual } => Some((expected, actual)),
            _ => None,
        }
    }

    /// The limit in bytes, when the media was larger than the configured
    /// limit.
    pub fn size_limit(&self) -> Option<u64> {
        match *self.kind {
            ErrorKind::TooLarge { limit } => Some(limit),
            _ => None,
        }
    }

    /// True when a download ended before the bytes its response announced.
    pub fn is_truncated(&self) -> bool {
        matches!(*self.kind, ErrorKind::Truncated { .. })
    }

    /// True when a URL was not usable: not `http`/`https`, or malformed.
    pub fn is_unsupported_url(&self) -> bool {
        matches!(*self.kind, ErrorKind::UnsupportedUrl { .. })
    }

    /// True when a URL fetch was refused before connecting because the host
    /// resolves to an address the fetch policy forbids.
    pub fn is_blocked_address(&self) -> bool {
        matches!(*self.kind, ErrorKind::BlockedAddress { .. })
    }

    /// The forbidden address and why it is forbidden, for
    /// [`is_blocked_address`](Error::is_blocked_address).
    pub fn blocked_address(&self) -> Option<(IpAddr, AddressClass)> {
        match *self.kind {
            ErrorKind::BlockedAddress { addr, class, .. } => Some((addr, class)),
            _ => None,
        }
    }

    /// True when an `https://` URL redirected to plain `http://` and the
    /// fetch options do not allow downgrades.
    pub fn is_insecure_redirect(&self) -> bool {
        matches!(*self.kind, ErrorKind::InsecureRedirect { .. })
    }

    /// True when the host name of a URL fetch could not be resolved.
    pub fn is_resolve(&self) -> bool {
        matches!(*self.kind, ErrorKind::Resolve { .. })
    }

    /// The host a URL fetch was refused at or could not resolve: the host of
    /// a blocked address, of a plain-HTTP redirect, or of a failed lookup.
    pub fn host(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::BlockedAddress { host, .. }
            | ErrorKind::InsecureRedirect { host }
            | ErrorKind::Resolve { host, .. } => Some(host),
            _ => None,
        }
    }

    /// The redirect limit, when a URL fetch followed more redirects.
    pub fn redirect_limit(&self) -> Option<u32> {
        match *self.kind {
            ErrorKind::TooManyRedirects { limit } => Some(limit),
            _ => None,
        }
    }

    /// True when a URL fetch got an HTTP status other than 200 (the status
    /// is [`status`](Error::status)).
    pub fn is_fetch_status(&self) -> bool {
        matches!(*self.kind, ErrorKind::FetchStatus { .. })
    }

    /// True when a transfer ran out of time: its overall limit, its idle
    /// limit ([`is_stalled`](Error::is_stalled)), an upload attempt's limit,
    /// or the transport's timeout, also when the attempt that ran out was
    /// the one a one-shot source could not repeat.
    pub fn is_timeout(&self) -> bool {
        match &*self.kind {
            ErrorKind::Timeout { .. } | ErrorKind::Stalled { .. } => true,
            ErrorKind::Http { source } => {
                source
                    .downcast_ref::<Error>()
                    .is_some_and(Error::is_timeout)
                    || transport_timeout(source.as_ref())
            }
            #[cfg(feature = "transport")]
            ErrorKind::Api { source } => source.is_timeout(),
            ErrorKind::NotReplayable { last: Some(last) } => last.is_timeout(),
            _ => false,
        }
    }

    /// True when a CDN transfer made no progress for its idle limit: the CDN
    /// stopped reading the upload, stopped sending the download, or never
    /// answered.
    pub fn is_stalled(&self) -> bool {
        match &*self.kind {
            ErrorKind::Stalled { .. } => true,
            ErrorKind::NotReplayable { last: Some(last) } => last.is_stalled(),
            _ => false,
        }
    }

    /// The time limit that fired: the overall limit of a transfer that
    /// timed out, or the idle limit of one that stalled.
    pub fn time_limit(&self) -> Option<Duration> {
        match &*self.kind {
            ErrorKind::Timeout { after } => Some(*after),
            ErrorKind::Stalled { idle } => Some(*idle),
            ErrorKind::Http { source } => source.downcast_ref::<Error>()?.time_limit(),
            ErrorKind::NotReplayable { last: Some(last) } => last.time_limit(),
            _ => None,
        }
    }

    /// True when the HTTP exchange itself failed (connect, network, body).
    pub fn is_http(&self) -> bool {
        matches!(*self.kind, ErrorKind::Http { .. })
    }

    /// True when `getuploadurl` failed; its status, when the server sent
    /// one, is [`api_status`](Error::api_status).
    pub fn is_upload_url_call(&self) -> bool {
        match &*self.kind {
            #[cfg(feature = "transport")]
            ErrorKind::Api { .. } => true,
            _ => false,
        }
    }

    /// The transport error of a failed `getuploadurl` call.
    #[cfg(feature = "transport")]
    pub fn transport(&self) -> Option<&wxlink_transport::Error> {
        match &*self.kind {
            ErrorKind::Api { source } => Some(source),
            _ => None,
        }
    }

    /// The `ret`/`errcode`/`errmsg` that `getuploadurl` answered with, when
    /// it failed with a business error.
    pub fn api_status(&self) -> Option<&ApiStatus> {
        match &*self.kind {
            #[cfg(feature = "transport")]
            ErrorKind::Api { source } => source.api_status(),
            _ => None,
        }
    }

    /// True when `getuploadurl` answered `-14`: the session expired and a
    /// new QR login is needed.
    pub fn is_session_expired(&self) -> bool {
        self.api_status().is_some_and(ApiStatus::is_session_expired)
    }

    /// True when `getuploadurl` answered with neither an upload URL nor an
    /// upload parameter.
    pub fn is_no_upload_url(&self) -> bool {
        matches!(*self.kind, ErrorKind::NoUploadUrl)
    }

    /// True when the CDN refused an upload with a 4xx status; such an
    /// upload is not retried.
    pub fn is_cdn_rejected(&self) -> bool {
        matches!(*self.kind, ErrorKind::CdnRejected { .. })
    }

    /// True when the CDN answered an upload with a status that is neither
    /// 200 nor 4xx.
    pub fn is_cdn_server_error(&self) -> bool {
        matches!(*self.kind, ErrorKind::CdnServer { .. })
    }

    /// True when the CDN accepted an upload without the
    /// `x-encrypted-param` header that names the stored file.
    pub fn is_cdn_missing_param(&self) -> bool {
        matches!(*self.kind, ErrorKind::CdnMissingParam)
    }

    /// True when the CDN answered a download with a status other than 200.
    pub fn is_download_status(&self) -> bool {
        matches!(*self.kind, ErrorKind::DownloadStatus { .. })
    }

    /// The HTTP status of a refused URL fetch, CDN upload or CDN download.
    pub fn status(&self) -> Option<u16> {
        match *self.kind {
            ErrorKind::FetchStatus { status }
            | ErrorKind::CdnRejected { status, .. }
            | ErrorKind::CdnServer { status, .. }
            | ErrorKind::DownloadStatus { status, .. } => Some(status),
            _ => None,
        }
    }

    /// What the CDN said when it refused an upload or a download: its
    /// `x-error-message` header, else the start of the body.
    pub fn message(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::CdnRejected { message, .. }
            | ErrorKind::CdnServer { message, .. }
            | ErrorKind::DownloadStatus { message, .. } => Some(message),
            _ => None,
        }
    }

    /// True when an upload needed another attempt but its source is a
    /// one-shot reader that was already consumed. The failure that called
    /// for the attempt, if any, is the [`source`](std::error::Error::source).
    pub fn is_not_replayable(&self) -> bool {
        matches!(*self.kind, ErrorKind::NotReplayable { .. })
    }

    /// Whether another upload attempt may succeed: the CDN answered with a
    /// server error or without its `x-encrypted-param` header, or the HTTP
    /// exchange failed or ran out of time. A 4xx refusal, a stall and bad
    /// input are final.
    pub fn is_retryable(&self) -> bool {
        matches!(
            *self.kind,
            ErrorKind::CdnServer { .. } | ErrorKind::CdnMissingParam | ErrorKind::Http { .. }
        )
    }
}

/// Whether a boxed transport failure is the transport's own timeout.
#[cfg(feature = "transport")]
fn transport_timeout(source: &(dyn StdError + Send + Sync + 'static)) -> bool {
    source
        .downcast_ref::<wxlink_transport::Error>()
        .is_some_and(wxlink_transport::Error::is_timeout)
}

/// Without the transport there is no transport timeout.
#[cfg(not(feature = "transport"))]
fn transport_timeout(_source: &(dyn StdError + Send + Sync + 'static)) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every kind, built the way the crate builds them. The
    /// `match` has no wildcard, so a new kind does not compile until it is
    /// listed here.
    fn every_kind() -> Vec<Error> {
        let io = || std::io::Error::other("disk gone");
        let kinds = vec![
            ErrorKind::CiphertextLength { len: 29 },
            ErrorKind::BadPadding,
            ErrorKind::InvalidKey {
                reason: "hex key has 31 characters, expected 32".to_owned(),
            },
            ErrorKind::MissingKey {
                kind: MediaKind::File,
            },
            ErrorKind::NotMedia,
            ErrorKind::NoMedia {
                kind: MediaKind::Image,
            },
            ErrorKind::Io { source: io() },
            ErrorKind::SourceChanged {
                expected: 20,
                actual: 10,
            },
            ErrorKind::TooLarge { limit: 1000 },
            ErrorKind::Truncated {
                expected: 100,
                received: 10,
            },
            ErrorKind::UnsupportedUrl {
                reason: "scheme ftp is not http or https".to_owned(),
            },
            ErrorKind::BlockedAddress {
                host: "metadata.example".to_owned(),
                addr: IpAddr::from([169, 254, 169, 254]),
                class: AddressClass::LinkLocal,
            },
            ErrorKind::InsecureRedirect {
                host: "public.example".to_owned(),
            },
            ErrorKind::Resolve {
                host: "nowhere.example".to_owned(),
                source: io(),
            },
            ErrorKind::TooManyRedirects { limit: 3 },
            ErrorKind::FetchStatus { status: 404 },
            ErrorKind::Timeout {
                after: Duration::from_secs(5),
            },
            ErrorKind::Stalled {
                idle: Duration::from_millis(700),
            },
            ErrorKind::Http {
                source: Box::new(io()),
            },
            #[cfg(feature = "transport")]
            ErrorKind::Api {
                source: wxlink_transport::Error::api(ApiStatus::new(Some(-14), None, None)),
            },
            ErrorKind::NoUploadUrl,
            ErrorKind::CdnRejected {
                status: 400,
                message: "bad filekey".to_owned(),
            },
            ErrorKind::CdnServer {
                status: 502,
                message: "busy".to_owned(),
            },
            ErrorKind::CdnMissingParam,
            ErrorKind::NotReplayable {
                last: Some(ErrorKind::CdnMissingParam.into()),
            },
            ErrorKind::DownloadStatus {
                status: 404,
                message: "unknown media".to_owned(),
            },
        ];
        for kind in &kinds {
            match kind {
                ErrorKind::CiphertextLength { .. }
                | ErrorKind::BadPadding
                | ErrorKind::InvalidKey { .. }
                | ErrorKind::MissingKey { .. }
                | ErrorKind::NotMedia
                | ErrorKind::NoMedia { .. }
                | ErrorKind::Io { .. }
                | ErrorKind::SourceChanged { .. }
                | ErrorKind::TooLarge { .. }
                | ErrorKind::Truncated { .. }
                | ErrorKind::UnsupportedUrl { .. }
                | ErrorKind::BlockedAddress { .. }
                | ErrorKind::InsecureRedirect { .. }
                | ErrorKind::Resolve { .. }
                | ErrorKind::TooManyRedirects { .. }
                | ErrorKind::FetchStatus { .. }
                | ErrorKind::Timeout { .. }
                | ErrorKind::Stalled { .. }
                | ErrorKind::Http { .. }
                | ErrorKind::NoUploadUrl
                | ErrorKind::CdnRejected { .. }
                | ErrorKind::CdnServer { .. }
                | ErrorKind::CdnMissingParam
                | ErrorKind::NotReplayable { .. }
                | ErrorKind::DownloadStatus { .. } => {}
                #[cfg(feature = "transport")]
                ErrorKind::Api { .. } => {}
            }
        }
        kinds.into_iter().map(Error::from).collect()
    }

    #[test]
    fn every_kind_reads_as_a_short_lowercase_phrase_and_debug_names_the_type() {
        for err in every_kind() {
            let text = err.to_string();
            assert!(
                text.chars().next().is_some_and(|c| !c.is_uppercase()),
                "{text}"
            );
            assert!(!text.ends_with('.'), "{text}");
            let debug = format!("{err:?}");
            assert!(debug.starts_with("wxlink_media::Error { kind: "), "{debug}");
        }
    }

    #[test]
    fn the_error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn a_stalled_transfer_is_a_timeout_with_its_idle_limit() {
        let err = Error::from(ErrorKind::Stalled {
            idle: Duration::from_millis(700),
        });
        assert!(err.is_timeout() && err.is_stalled());
        assert_eq!(err.time_limit(), Some(Duration::from_millis(700)));
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_timed_out_upload_attempt_is_a_retryable_timeout() {
        // An attempt that ran out of time is wrapped so that it is retried.
        let attempt = Error::from(ErrorKind::Http {
            source: Box::new(Error::from(ErrorKind::Timeout {
                after: Duration::from_secs(5),
            })),
        });
        assert!(attempt.is_timeout() && attempt.is_retryable() && !attempt.is_stalled());
        assert_eq!(attempt.time_limit(), Some(Duration::from_secs(5)));
        // Behind a one-shot source that could not be sent again, too.
        let one_shot = Error::from(ErrorKind::NotReplayable {
            last: Some(attempt),
        });
        assert!(one_shot.is_timeout() && one_shot.is_not_replayable());
        assert!(!one_shot.is_retryable());
        let cause = one_shot.source().and_then(|e| e.downcast_ref::<Error>());
        assert!(cause.is_some_and(Error::is_http));
    }

    #[cfg(feature = "transport")]
    #[test]
    fn an_expired_session_on_getuploadurl_is_session_expired() {
        let err = Error::from(ErrorKind::Api {
            source: wxlink_transport::Error::api(ApiStatus::new(Some(-14), None, None)),
        });
        assert!(err.is_session_expired() && err.is_upload_url_call());
        assert_eq!(err.api_status().map(ApiStatus::code), Some(-14));
        assert!(
            err.transport()
                .is_some_and(wxlink_transport::Error::is_session_expired)
        );
        assert!(!err.is_retryable() && !err.is_timeout());
        assert_eq!(err.to_string(), "getuploadurl failed");
        assert!(err.source().is_some());
    }

    #[test]
    fn cdn_refusals_keep_their_status_and_message_and_only_5xx_is_retried() {
        let rejected = Error::from(ErrorKind::CdnRejected {
            status: 413,
            message: "too big for us".to_owned(),
        });
        assert!(rejected.is_cdn_rejected() && !rejected.is_retryable());
        assert_eq!(rejected.status(), Some(413));
        assert_eq!(rejected.message(), Some("too big for us"));
        let busy = Error::from(ErrorKind::CdnServer {
            status: 503,
            message: "status 503".to_owned(),
        });
        assert!(busy.is_cdn_server_error() && busy.is_retryable());
        assert!(Error::from(ErrorKind::CdnMissingParam).is_retryable());
    }

    #[test]
    fn a_blocked_fetch_names_its_host_address_and_class() {
        let err = Error::from(ErrorKind::BlockedAddress {
            host: "metadata.example".to_owned(),
            addr: IpAddr::from([169, 254, 169, 254]),
            class: AddressClass::LinkLocal,
        });
        assert!(err.is_blocked_address());
        assert_eq!(err.host(), Some("metadata.example"));
        assert_eq!(
            err.blocked_address(),
            Some((IpAddr::from([169, 254, 169, 254]), AddressClass::LinkLocal))
        );
    }
}
