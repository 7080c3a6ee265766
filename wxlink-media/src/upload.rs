//! Uploading media to the CDN (docs/protocol.md, "Media upload").
//!
//! [`upload`] runs the whole flow: a first pass over the source for its
//! size, MD5 and first bytes; kind inference; `getuploadurl` with a fresh
//! file key and AES key; then the encrypted body streamed to the CDN, with
//! the CDN's retry rules. The result, [`UploadedMedia`], builds the outbound
//! message item. Memory stays at a few chunks whatever the file size.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, StatusCode, header};
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceExt};
use wxlink_proto::{AesKeyText, GetUploadUrlRequest, GetUploadUrlResponse};
use wxlink_transport::layers::{ReplayBody, RetryLayer, RetryRule};
use wxlink_transport::{Body, CallMeta, RetryPolicy};

use crate::crypto::ciphertext_len;
use crate::error::{Error, ErrorKind};
use crate::fetch::fetch;
use crate::http::{HttpService, cdn_upload_url, excerpt, read_prefix_within};
use crate::item::UploadedMedia;
use crate::key::AesKey;
use crate::kind::infer_kind;
use crate::limits::{ProgressClock, TransferTimeouts, Watched};
use crate::progress::ProgressHook;
use crate::source::{
    DEFAULT_CHUNK_SIZE, ErrorSlot, Origin, Prepared, Replay, base_name, digest_bytes, digest_path,
    read_head, spool_reader, take_error,
};

pub use crate::fetch::FetchOptions;
pub use crate::source::UploadSource;

/// The most CDN POST attempts per upload, as the official client does.
pub const MAX_ATTEMPTS: u32 = 3;

/// The `getuploadurl` call an upload makes. Implemented by
/// `wxlink_transport::ApiClient`; tests may implement it with a fake.
pub trait UploadUrlApi: Sync {
    /// Calls `getuploadurl`.
    fn get_upload_url(
        &self,
        request: &GetUploadUrlRequest,
    ) -> impl Future<Output = Result<GetUploadUrlResponse, wxlink_transport::Error>> + Send;
}

impl<S> UploadUrlApi for wxlink_transport::ApiClient<S>
where
    S: tower::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = wxlink_transport::BoxError,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    fn get_upload_url(
        &self,
        request: &GetUploadUrlRequest,
    ) -> impl Future<Output = Result<GetUploadUrlResponse, wxlink_transport::Error>> + Send {
        self.call::<wxlink_proto::GetUploadUrl>(request)
    }
}

/// Settings of an upload.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UploadOptions {
    /// The CDN base URL, used when `getuploadurl` returns no full upload URL
    /// (default `https://novac2c.cdn.weixin.qq.com/c2c`).
    pub cdn_base_url: String,
    /// Receives hashing, fetching and uploading progress.
    pub progress: Option<ProgressHook>,
    /// The size of the chunks read and encrypted (default 256 KiB).
    pub chunk_size: usize,
    /// Limits for URL sources and for spooling readers.
    pub fetch: FetchOptions,
    /// A time limit for each CDN POST attempt, body included; `None` (the
    /// default, like the official client) for none. An attempt that runs
    /// out of time counts as a network error and is retried.
    pub attempt_timeout: Option<std::time::Duration>,
    /// The idle and overall limits of each CDN POST (see
    /// [`TransferTimeouts`]); a stall ends the upload with
    /// [`Error::is_stalled`] or [`Error::is_timeout`], not retried.
    pub timeouts: TransferTimeouts,
    /// The retry budget the CDN POSTs draw on, shared with other calls
    /// (the facade passes its API calls' budget); `None` (the default) for
    /// one of the upload's own. An upload makes at most [`MAX_ATTEMPTS`]
    /// POSTs either way; a spent budget ends it at the first failure.
    pub retry_budget: Option<Arc<TpsBudget>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            cdn_base_url: wxlink_proto::DEFAULT_CDN_BASE_URL.to_owned(),
            progress: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            fetch: FetchOptions::default(),
            attempt_timeout: None,
            timeouts: TransferTimeouts::default(),
            retry_budget: None,
        }
    }
}

impl UploadOptions {
    /// Defaults with the given CDN base URL.
    pub fn with_cdn_base_url(cdn_base_url: impl Into<String>) -> Self {
        Self {
            cdn_base_url: cdn_base_url.into(),
            ..Self::default()
        }
    }

    /// Sets the progress hook.
    #[must_use]
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = Some(hook);
        self
    }
}

/// Uploads `source` for `to_user_id`: first pass, `getuploadurl` through
/// `api`, then the encrypted POST to the CDN through `http`.
///
/// ```no_run
/// use wxlink_media::{UploadOptions, UploadSource, upload};
/// use wxlink_proto::BotToken;
/// use wxlink_transport::{ApiClient, ApiConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let api = ApiClient::new(ApiConfig::default().token(Some(BotToken::new("…"))));
/// let uploaded = upload(
///     &api,
///     &api.cdn_service(),
///     "o9cq80EXAMPLE@im.wechat",
///     UploadSource::path("report.pdf"),
///     &UploadOptions::default(),
/// )
/// .await?;
/// // The item to put into a sendmessage request.
/// let item = uploaded.to_message_item();
/// # drop(item);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::is_io`] reading the source, the fetch errors of a URL source,
/// [`Error::is_upload_url_call`] from `getuploadurl`, [`Error::is_no_upload_url`],
/// [`Error::is_cdn_rejected`] (a 4xx, never retried), and after
/// [`MAX_ATTEMPTS`] the last of [`Error::is_cdn_server_error`],
/// [`Error::is_cdn_missing_param`] or [`Error::is_http`];
/// [`Error::is_not_replayable`] when a one-shot source needed a retry.
pub async fn upload<A, H>(
    api: &A,
    http: &H,
    to_user_id: &str,
    source: UploadSource,
    options: &UploadOptions,
) -> Result<UploadedMedia, Error>
where
    A: UploadUrlApi,
    H: HttpService,
{
    let kind_override = source.kind;
    let mut prepared = prepare(http, source, options).await?;
    let inferred = infer_kind(
        prepared.content_type.as_deref(),
        &prepared.head,
        prepared.file_name.as_deref(),
    );
    let kind = kind_override.unwrap_or(inferred.kind);
    let aes_key = AesKey::random();
    let filekey = hex::encode(rand::random::<[u8; 16]>());
    let filesize = ciphertext_len(prepared.rawsize);

    let request = GetUploadUrlRequest {
        filekey: Some(filekey.clone()),
        media_type: Some(kind.upload_media_type()),
        to_user_id: Some(to_user_id.to_owned()),
        rawsize: Some(prepared.rawsize),
        rawfilemd5: Some(prepared.md5.clone()),
        filesize: Some(filesize),
        no_need_thumb: Some(true),
        aeskey: Some(AesKeyText::new(aes_key.to_hex())),
        ..GetUploadUrlRequest::default()
    };
    let response = api
        .get_upload_url(&request)
        .await
        .map_err(|source| ErrorKind::Api { source })?;
    let url = upload_url(&response, &options.cdn_base_url, &filekey)?;

    let download_param = post_with_retries(http, &url, &mut prepared, &aes_key, options).await?;
    let mut uploaded = UploadedMedia::new(
        filekey,
        download_param,
        aes_key,
        prepared.rawsize,
        prepared.md5,
        kind,
        inferred.mime,
    );
    uploaded.file_name = prepared.file_name;
    Ok(uploaded)
}

/// The CDN upload URL: `upload_full_url` (trimmed) when non-blank, else one
/// built from `upload_param` (docs/protocol.md, "Media upload").
pub fn upload_url(
    response: &GetUploadUrlResponse,
    cdn_base_url: &str,
    filekey: &str,
) -> Result<String, Error> {
    if let Some(full) = response
        .upload_full_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        return Ok(full.to_owned());
    }
    match response
        .upload_param
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(param) => Ok(cdn_upload_url(cdn_base_url, param, filekey)),
        None => Err(ErrorKind::NoUploadUrl.into()),
    }
}

/// The first pass over a source.
async fn prepare<H: HttpService>(
    http: &H,
    source: UploadSource,
    options: &UploadOptions,
) -> Result<Prepared, Error> {
    let chunk = options.chunk_size.max(16);
    let progress = options.progress.clone();
    let UploadSource {
        origin,
        file_name,
        content_type,
        md5,
        ..
    } = source;
    let prepared = match origin {
        Origin::Path(path) => {
            let digest = digest_path(path.clone(), chunk, progress).await?;
            Prepared {
                file_name: file_name.or_else(|| base_name(&path)),
                replay: Replay::Path(path),
                rawsize: digest.len,
                md5: digest.md5,
                head: digest.head,
                content_type,
            }
        }
        Origin::Bytes(bytes) => {
            let digest = digest_bytes(bytes.clone(), progress).await?;
            Prepared {
                replay: Replay::Bytes(bytes),
                rawsize: digest.len,
                md5: digest.md5,
                head: digest.head,
                file_name,
                content_type,
            }
        }
        Origin::Reader { mut reader, len } => match md5 {
            Some(md5) => {
                let head = read_head(&mut reader, len).await?;
                Prepared {
                    head: head.to_vec(),
                    replay: Replay::OneShot(Some((head, reader))),
                    rawsize: len,
                    md5,
                    file_name,
                    content_type,
                }
            }
            None => {
                let (spool, digest) = spool_reader(
                    reader,
                    Some(len),
                    len,
                    chunk,
                    crate::progress::Phase::Hashing,
                    progress,
                )
                .await?;
                Prepared {
                    replay: Replay::Spool(spool),
                    rawsize: digest.len,
                    md5: digest.md5,
                    head: digest.head,
                    file_name,
                    content_type,
                }
            }
        },
        Origin::Url(url) => {
            let fetched = fetch(http, &url, &options.fetch, chunk, progress).await?;
            Prepared {
                replay: Replay::Spool(fetched.spool),
                rawsize: fetched.digest.len,
                md5: fetched.digest.md5,
                head: fetched.digest.head,
                file_name: file_name.or(fetched.file_name),
                content_type: content_type.or(fetched.content_type),
            }
        }
    };
    Ok(prepared)
}

/// Whether the CDN rules allow another attempt after `err`.
fn retryable(err: &Error) -> bool {
    err.is_retryable()
}

/// The CDN's rule for another attempt, as the transport's retry policy
/// applies it: the outcomes [`retryable`] allows.
#[derive(Debug, Clone, Copy)]
struct CdnUploadRule;

impl RetryRule<String, Error> for CdnUploadRule {
    fn retry_reason(
        &self,
        _meta: &CallMeta,
        result: &Result<String, Error>,
    ) -> Option<Cow<'static, str>> {
        match result {
            Err(err) if retryable(err) => Some(Cow::Owned(err.to_string())),
            _ => None,
        }
    }
}

/// The retry policy of CDN uploads: up to [`MAX_ATTEMPTS`] POSTs back to
/// back, as the official client makes them, within `budget` when given.
fn cdn_upload_policy(budget: Option<&Arc<TpsBudget>>) -> RetryPolicy<CdnUploadRule> {
    let policy = RetryPolicy::default()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_backoff(Duration::ZERO, Duration::ZERO)
        .with_jitter(0.0)
        .with_total_deadline(None);
    let policy = match budget {
        Some(budget) => policy.with_budget(Arc::clone(budget)),
        None => policy,
    };
    policy.with_rule(CdnUploadRule)
}

/// POSTs the encrypted source to `url` through the transport's retry
/// layer: each attempt is [`post_once`]; a replayable source is opened
/// again for each repeated attempt.
async fn post_with_retries<H: HttpService>(
    http: &H,
    url: &str,
    prepared: &mut Prepared,
    key: &AesKey,
    options: &UploadOptions,
) -> Result<String, Error> {
    let total = ciphertext_len(prepared.rawsize);
    let replayable = prepared.replay.is_replayable();
    // The error slot of the attempt under way; each opening of the source
    // gets its own, so a late failure of an abandoned attempt's reader is
    // never taken for the next attempt's.
    let current: Arc<Mutex<ErrorSlot>> = Arc::default();
    let replay = Arc::new(Mutex::new(std::mem::replace(
        &mut prepared.replay,
        Replay::OneShot(None),
    )));
    let open = {
        let current = Arc::clone(&current);
        let key = key.clone();
        let progress = options.progress.clone();
        let (rawsize, chunk) = (prepared.rawsize, options.chunk_size);
        move || -> Option<Body> {
            let slot = ErrorSlot::default();
            let body = replay
                .lock()
                .ok()?
                .open(&key, rawsize, chunk, progress.clone(), &slot)?;
            *current.lock().ok()? = slot;
            Some(body)
        }
    };
    let Some(body) = open() else {
        // Only a one-shot source that was already sent gets here.
        return Err(ErrorKind::NotReplayable { last: None }.into());
    };
    let mut request = Request::new(body);
    request.extensions_mut().insert(CallMeta::cdn());
    if replayable {
        request.extensions_mut().insert(ReplayBody::new(open));
    }
    let attempt = {
        let http = http.clone();
        let url = url.to_owned();
        let timeout = options.attempt_timeout;
        let limits = options.timeouts;
        tower::service_fn(move |req: Request<Body>| {
            let (http, url, current) = (http.clone(), url.clone(), Arc::clone(&current));
            async move {
                let err =
                    match post_once(&http, &url, req.into_body(), total, timeout, &limits).await {
                        Ok(param) => return Ok(param),
                        Err(err) => err,
                    };
                // A failure of the source itself (I/O, a file that shrank)
                // is reported as such, and the rule does not retry it.
                let slot = current.lock().map(|slot| Arc::clone(&slot)).ok();
                Err(slot.and_then(|slot| take_error(&slot)).unwrap_or(err))
            }
        })
    };
    let retrying = RetryLayer::new(cdn_upload_policy(options.retry_budget.as_ref())).layer(attempt);
    match retrying.oneshot(request).await {
        Ok(param) => {
            crate::progress::report(
                options.progress.as_ref(),
                crate::progress::Phase::Uploading,
                total,
                Some(total),
            );
            Ok(param)
        }
        Err(err) if !replayable && retryable(&err) => {
            Err(ErrorKind::NotReplayable { last: Some(err) }.into())
        }
        Err(err) => Err(err),
    }
}

/// One CDN POST, its answer classified as docs/protocol.md, "Media upload"
/// says, within `limits`.
async fn post_once<H: HttpService>(
    http: &H,
    url: &str,
    body: Body,
    len: u64,
    timeout: Option<std::time::Duration>,
    limits: &TransferTimeouts,
) -> Result<String, Error> {
    let clock = ProgressClock::new();
    let body = Watched::wrap(body, clock.clone());
    let mut req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(|_| ErrorKind::UnsupportedUrl {
            reason: "cdn upload url is not a valid request uri".to_owned(),
        })?;
    req.extensions_mut()
        .insert(CallMeta::cdn().with_timeout(timeout));
    let send = http.send(req);
    let attempt = async {
        let resp = match timeout {
            // The transport's timeout layer applies the per-call limit too; this
            // outer one also covers a transport without that layer.
            Some(after) => {
                tokio::time::timeout(after, send)
                    .await
                    .map_err(|_| ErrorKind::Http {
                        source: Box::new(Error::from(ErrorKind::Timeout { after })),
                    })?
            }
            None => send.await,
        }
        .map_err(|source| ErrorKind::Http { source })?;
        classify(resp, limits).await
    };
    let watched = async {
        tokio::select! {
            result = attempt => result,
            () = clock.stalled(limits.idle) => Err(ErrorKind::Stalled {
                idle: limits.idle.unwrap_or_default(),
            }.into()),
        }
    };
    match limits.overall_for(len) {
        Some(after) => tokio::time::timeout(after, watched)
            .await
            .map_err(|_| ErrorKind::Timeout { after })?,
        None => watched.await,
    }
}

/// Reads the CDN's answer to an upload: the download parameter, or the
/// typed refusal.
async fn classify(resp: http::Response<Body>, limits: &TransferTimeouts) -> Result<String, Error> {
    let status = resp.status();
    let header_text = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if status == StatusCode::OK {
        return header_text("x-encrypted-param").ok_or(ErrorKind::CdnMissingParam.into());
    }
    let header_message = header_text("x-error-message");
    if status.is_client_error() {
        let message = match header_message {
            Some(m) => excerpt(m.as_bytes()),
            None => excerpt(&read_prefix_within(resp.into_body(), limits.idle).await),
        };
        return Err(ErrorKind::CdnRejected {
            status: status.as_u16(),
            message,
        }
        .into());
    }
    Err(ErrorKind::CdnServer {
        status: status.as_u16(),
        message: header_message
            .map(|m| excerpt(m.as_bytes()))
            .unwrap_or_else(|| format!("status {}", status.as_u16())),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_wins_and_is_trimmed() {
        let resp = GetUploadUrlResponse {
            upload_full_url: Some("  https://cdn.example/c2c/upload?x=1 \n".to_owned()),
            upload_param: Some("param".to_owned()),
            ..GetUploadUrlResponse::default()
        };
        assert_eq!(
            upload_url(&resp, "https://other/c2c", "fk").unwrap(),
            "https://cdn.example/c2c/upload?x=1"
        );
    }

    #[test]
    fn blank_full_url_falls_back_to_the_param() {
        let resp = GetUploadUrlResponse {
            upload_full_url: Some("   ".to_owned()),
            upload_param: Some("p/q".to_owned()),
            ..GetUploadUrlResponse::default()
        };
        assert_eq!(
            upload_url(&resp, "https://cdn.example/c2c/", "00ff").unwrap(),
            "https://cdn.example/c2c/upload?encrypted_query_param=p%2Fq&filekey=00ff"
        );
    }

    #[test]
    fn no_url_at_all_is_an_error() {
        let resp = GetUploadUrlResponse::default();
        assert!(matches!(
            upload_url(&resp, "https://cdn", "fk")
                .as_ref()
                .map_err(Error::kind),
            Err(ErrorKind::NoUploadUrl)
        ));
    }
}
