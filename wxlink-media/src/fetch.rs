//! Fetching an `http(s)` URL as an upload source.
//!
//! The response is streamed into a temporary spool file while its MD5 is
//! computed, with a size bound, an overall timeout and a redirect limit.
//! The content type comes from the response, and the file name from
//! `Content-Disposition` or else the last segment of the final URL's path.
//!
//! Before each hop, the first request and every redirect, the host is
//! resolved and its addresses checked against the [`AddressPolicy`] (see
//! [`crate::guard`]); a refused hop sends nothing.

use std::time::Duration;

use futures_util::StreamExt;
use http::{Request, StatusCode, header};
use wxlink_proto::{Auth, RetrySafety, TimeoutClass};
use wxlink_transport::{Body, CallMeta};

use crate::error::{Error, ErrorKind};
use crate::guard::{AddressPolicy, Resolver};
use crate::http::{HttpService, content_length};
use crate::progress::{Phase, ProgressHook};
use crate::source::{Digested, spool_reader};

/// Limits of a URL fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// The largest body accepted, in bytes (default 100 MiB).
    pub max_bytes: u64,
    /// The time the whole fetch may take, redirects included (default 120 s).
    pub timeout: Duration,
    /// How many redirects are followed (default 5).
    pub max_redirects: u32,
    /// Which addresses may be fetched (default: public ones only).
    pub policy: AddressPolicy,
    /// Whether an `https://` URL may redirect to `http://` (default no).
    pub allow_https_downgrade: bool,
    /// Resolves host names for the address check (default: the system's).
    pub resolver: Resolver,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            max_bytes: 100 * 1024 * 1024,
            timeout: Duration::from_secs(120),
            max_redirects: 5,
            policy: AddressPolicy::PublicOnly,
            allow_https_downgrade: false,
            resolver: Resolver::default(),
        }
    }
}

impl FetchOptions {
    /// Sets the address policy.
    #[must_use]
    pub fn policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the resolver used for the address check.
    #[must_use]
    pub fn resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// Sets the size limit in bytes.
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the time limit of the whole fetch.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many redirects are followed.
    #[must_use]
    pub fn max_redirects(mut self, max_redirects: u32) -> Self {
        self.max_redirects = max_redirects;
        self
    }
}

/// Checks that `url` may be fetched under `options`: its addresses after
/// resolution are allowed by the policy. `previous` is the URL that
/// redirected here, for the downgrade check.
pub(crate) async fn check_hop(
    url: &url::Url,
    previous: Option<&url::Url>,
    options: &FetchOptions,
) -> Result<(), Error> {
    if let Some(prev) = previous
        && prev.scheme() == "https"
        && url.scheme() == "http"
        && !options.allow_https_downgrade
    {
        return Err(ErrorKind::InsecureRedirect {
            host: url.host_str().unwrap_or_default().to_owned(),
        }
        .into());
    }
    if options.policy == AddressPolicy::AllowAll {
        return Ok(());
    }
    let host = url.host().ok_or_else(|| ErrorKind::UnsupportedUrl {
        reason: "url has no host".to_owned(),
    })?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (name, addrs) = match host {
        url::Host::Ipv4(v4) => (v4.to_string(), vec![std::net::IpAddr::V4(v4)]),
        url::Host::Ipv6(v6) => (v6.to_string(), vec![std::net::IpAddr::V6(v6)]),
        url::Host::Domain(name) => {
            let addrs = options
                .resolver
                .0
                .resolve(name, port)
                .await
                .map_err(|source| ErrorKind::Resolve {
                    host: name.to_owned(),
                    source,
                })?;
            (name.to_owned(), addrs)
        }
    };
    if addrs.is_empty() {
        return Err(ErrorKind::Resolve {
            host: name,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }
        .into());
    }
    // Every address must pass: the connection may use any of them.
    for addr in addrs {
        if let Err(class) = options.policy.check(addr) {
            return Err(ErrorKind::BlockedAddress {
                host: name,
                addr,
                class,
            }
            .into());
        }
    }
    Ok(())
}

/// A fetched URL, spooled to disk.
pub(crate) struct Fetched {
    pub(crate) spool: tempfile::TempPath,
    pub(crate) digest: Digested,
    pub(crate) content_type: Option<String>,
    pub(crate) file_name: Option<String>,
}

/// Parses `raw` and accepts only `http` and `https`.
pub(crate) fn parse_http_url(raw: &str) -> Result<url::Url, Error> {
    let parsed = url::Url::parse(raw.trim()).map_err(|_| ErrorKind::UnsupportedUrl {
        reason: "not a valid absolute url".to_owned(),
    })?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(ErrorKind::UnsupportedUrl {
            reason: format!("scheme `{other}` is not http or https"),
        }
        .into()),
    }
}

/// Fetches `raw_url` through `http` within `options`.
pub(crate) async fn fetch<H: HttpService>(
    http: &H,
    raw_url: &str,
    options: &FetchOptions,
    chunk: usize,
    progress: Option<ProgressHook>,
) -> Result<Fetched, Error> {
    let work = fetch_inner(http, raw_url, options, chunk, progress);
    tokio::time::timeout(options.timeout, work)
        .await
        .map_err(|_| ErrorKind::Timeout {
            after: options.timeout,
        })?
}

async fn fetch_inner<H: HttpService>(
    http: &H,
    raw_url: &str,
    options: &FetchOptions,
    chunk: usize,
    progress: Option<ProgressHook>,
) -> Result<Fetched, Error> {
    let mut url = parse_http_url(raw_url)?;
    let mut previous: Option<url::Url> = None;
    let mut redirects = 0u32;
    loop {
        check_hop(&url, previous.as_ref(), options).await?;
        let mut req = Request::get(url.as_str())
            .body(Body::empty())
            .map_err(|_| ErrorKind::UnsupportedUrl {
                reason: "url is not a valid request uri".to_owned(),
            })?;
        req.extensions_mut().insert(
            CallMeta::new("fetch", TimeoutClass::Cdn, RetrySafety::BeforeSend)
                .with_auth(Auth::None),
        );
        let resp = http
            .send(req)
            .await
            .map_err(|source| ErrorKind::Http { source })?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or(ErrorKind::FetchStatus {
                    status: status.as_u16(),
                })?;
            redirects += 1;
            if redirects > options.max_redirects {
                return Err(ErrorKind::TooManyRedirects {
                    limit: options.max_redirects,
                }
                .into());
            }
            let next = url.join(location).map_err(|_| ErrorKind::UnsupportedUrl {
                reason: "redirect location is not a valid url".to_owned(),
            })?;
            previous = Some(std::mem::replace(&mut url, parse_http_url(next.as_str())?));
            continue;
        }
        if status != StatusCode::OK {
            return Err(ErrorKind::FetchStatus {
                status: status.as_u16(),
            }
            .into());
        }
        let announced = content_length(&resp);
        if announced.is_some_and(|len| len > options.max_bytes) {
            return Err(ErrorKind::TooLarge {
                limit: options.max_bytes,
            }
            .into());
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let file_name = resp
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(disposition_file_name)
            .or_else(|| url_file_name(&url));
        let stream = resp
            .into_body()
            .into_data_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let reader = Box::pin(tokio_util::io::StreamReader::new(stream));
        let (spool, digest) = spool_reader(
            reader,
            announced,
            options.max_bytes,
            chunk,
            Phase::Fetching,
            progress,
        )
        .await?;
        return Ok(Fetched {
            spool,
            digest,
            content_type,
            file_name,
        });
    }
}

/// The `filename` of a `Content-Disposition` header (`filename*=UTF-8''…`
/// preferred, then `filename="…"`), reduced to a base name.
fn disposition_file_name(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for part in value.split(';') {
        let part = part.trim();
        let Some((name, val)) = part.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let val = val.trim();
        if name == "filename*" {
            let encoded = val.rsplit('\'').next().unwrap_or(val);
            extended = percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned());
        } else if name == "filename" {
            plain = Some(val.trim_matches('"').to_owned());
        }
    }
    extended
        .or(plain)
        .map(|n| safe_base_name(&n))
        .filter(|n| !n.is_empty())
}

/// The last non-empty segment of a URL's path, percent-decoded.
fn url_file_name(url: &url::Url) -> Option<String> {
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8_lossy()
        .into_owned();
    Some(safe_base_name(&decoded)).filter(|n| !n.is_empty())
}

/// Drops any directory part a server put into a file name.
fn safe_base_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_are_accepted() {
        assert!(parse_http_url("https://example.com/a.png").is_ok());
        assert!(parse_http_url("http://127.0.0.1:8080/a").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "data:,hi",
            "/relative",
        ] {
            assert!(
                matches!(
                    parse_http_url(bad).as_ref().map_err(Error::kind),
                    Err(ErrorKind::UnsupportedUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_names_come_from_disposition_then_path() {
        assert_eq!(
            disposition_file_name("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            disposition_file_name("attachment; filename=\"a.txt\"; filename*=UTF-8''%E5%9B%BE.png")
                .as_deref(),
            Some("图.png")
        );
        assert_eq!(
            disposition_file_name("attachment; filename=\"../../etc/passwd\"").as_deref(),
            Some("passwd")
        );
        let u = url::Url::parse("https://h/dir/my%20cat.jpg?x=1").unwrap();
        assert_eq!(url_file_name(&u).as_deref(), Some("my cat.jpg"));
        let u = url::Url::parse("https://h/").unwrap();
        assert_eq!(url_file_name(&u), None);
    }
}
