//! A plain-HTTP client for the one request the CLI makes itself: the
//! demo's independent check of what landed on the simulated CDN.
//! Everything else goes through `WxLinkClient`.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled keep-alive HTTP/1.1 client for `http://` URLs.
pub type PlainClient = Client<HttpConnector, Full<Bytes>>;

/// A new pooled client.
pub fn plain_client() -> PlainClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build(connector)
}

/// Sends `request` and reads the whole response body.
pub async fn send(
    client: &PlainClient,
    request: http::Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes)> {
    let response = client
        .request(request)
        .await
        .context("http request failed")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the http response failed")?
        .to_bytes();
    Ok((status, body))
}

/// GETs `url` and returns the body; a non-2xx status is an error.
pub async fn get(client: &PlainClient, url: &str) -> Result<Bytes> {
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .with_context(|| format!("invalid url {url}"))?;
    let (status, body) = send(client, request).await?;
    if !status.is_success() {
        anyhow::bail!("GET answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}
