//! A plain keep-alive HTTP client with no SDK and no tower layers: the
//! ceiling of a small call that `bare-post` measures.

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
