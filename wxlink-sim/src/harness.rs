//! What a process that drives the simulator from outside the SDK needs: a
//! plain HTTP client and enough file descriptors.
//!
//! - [`PlainClient`] is a pooled keep-alive HTTP/1.1 client with no SDK and
//!   no tower layers. A demo uses it to check what landed on the simulated
//!   CDN independently of the bot it runs, and a load tool to measure the
//!   ceiling of a small call (a bare POST) beside the SDK's.
//! - [`raise_open_file_limit`] lifts the process's open-file limit to its
//!   hard maximum, so that a simulator holding thousands of long polls, or
//!   a client making them, does not fail with `EMFILE`.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::SimError;

/// A pooled keep-alive HTTP/1.1 client for `http://` URLs (the simulator
/// serves plain HTTP on 127.0.0.1). Clones share one connection pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), wxlink_sim::SimError> {
/// use wxlink_sim::Simulator;
/// use wxlink_sim::harness::PlainClient;
///
/// let sim = Simulator::builder().start().await?;
/// let client = PlainClient::new();
/// let counts = client.get(&format!("{}/_sim/counts", sim.base_url())).await?;
/// assert!(counts.starts_with(b"{"));
/// sim.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PlainClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl PlainClient {
    /// A new client with its own pool. Idle connections are kept without a
    /// bound per host and Nagle's algorithm is off, so a load of small
    /// calls reuses warm connections.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        Self { inner }
    }

    /// Sends `request` and reads the whole response body; any status is
    /// returned as it is.
    ///
    /// # Errors
    ///
    /// [`SimError::is_http`] when the request cannot be sent (an `https://`
    /// URL, no server, a broken connection) or its body breaks off.
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<(http::StatusCode, Bytes), SimError> {
        let response = self
            .inner
            .request(request.map(Full::new))
            .await
            .map_err(SimError::http)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(SimError::http)?
            .to_bytes();
        Ok((status, body))
    }

    /// GETs `url` and returns the body.
    ///
    /// # Errors
    ///
    /// [`SimError::is_invalid_input`] for a URL that is not one,
    /// [`SimError::http_status`] for a status that is not a success, and the
    /// errors of [`send`](Self::send).
    pub async fn get(&self, url: &str) -> Result<Bytes, SimError> {
        let request = http::Request::get(url)
            .body(Bytes::new())
            .map_err(|_| SimError::invalid_input(format!("not a url: {url}")))?;
        let (status, body) = self.send(request).await?;
        if !status.is_success() {
            return Err(SimError::status(
                status.as_u16(),
                String::from_utf8_lossy(&body),
            ));
        }
        Ok(body)
    }
}

impl Default for PlainClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Raises this process's open-file limit to its hard maximum, so that
/// thousands of concurrent connections do not fail with `EMFILE`. Returns
/// the limit in force afterwards (`u64::MAX` when unlimited); a limit that
/// cannot be raised stays as it was. The call goes through `rustix`'s safe
/// `getrlimit`/`setrlimit`, so it needs no `unsafe`.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is "unlimited".
    let unlimited = |v: Option<u64>| v.unwrap_or(u64::MAX);
    let mut current = limit.current;
    if unlimited(limit.current) < unlimited(limit.maximum) {
        let wanted = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            current = limit.maximum;
        }
    }
    Some(unlimited(current))
}

/// Raises this process's open-file limit; off Unix there is no such limit
/// to raise, and this returns `None`.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_at_least_what_it_was() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let after = raise_open_file_limit().unwrap();
        assert!(after >= before.current.unwrap_or(u64::MAX), "{after}");
    }
}
