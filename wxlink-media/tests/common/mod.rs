//! Helpers shared by the integration tests: a simulator with an API client
//! pointed at it, and a tiny local HTTP server for URL sources and CDN
//! misbehaviour the simulator cannot produce.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use wxlink_sim::Simulator;
use wxlink_transport::{ApiClient, ApiConfig, CdnService, HttpsTransport};

/// A simulator and a client for it.
pub struct Env {
    pub sim: Simulator,
    pub api: ApiClient<HttpsTransport>,
    pub cdn: CdnService,
}

impl Env {
    pub async fn start() -> Self {
        Self::with(Simulator::start().await.unwrap())
    }

    pub fn with(sim: Simulator) -> Self {
        let api = ApiClient::new(
            ApiConfig::default()
                .base_url(sim.base_url())
                .token(Some(sim.token())),
        );
        let cdn = api.cdn_service();
        Self { sim, api, cdn }
    }

    /// Upload options for the simulator's CDN. URL sources may be fetched
    /// from loopback, where the tests' own servers listen.
    pub fn options(&self) -> wxlink_media::UploadOptions {
        let mut options = wxlink_media::UploadOptions::with_cdn_base_url(self.sim.cdn_base_url());
        options.fetch.policy = wxlink_media::AddressPolicy::AllowLoopback;
        options
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A tiny PNG-looking payload of `len` bytes.
pub fn png_like(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    v.extend(noise(len.saturating_sub(v.len()), 7));
    v.truncate(len.max(8));
    v
}

/// The request a [`TinyServer`] handler sees: method, path and query.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub body_len: usize,
    pub headers: http::HeaderMap,
}

/// A one-route-function HTTP/1.1 server on 127.0.0.1.
pub struct TinyServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TinyServer {
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let hits2 = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let hits = Arc::clone(&hits2);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let hits = Arc::clone(&hits);
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            let method = req.method().to_string();
                            let path_and_query = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let body_len = body.map(|b| b.len()).unwrap_or(0);
                            let seen = Seen {
                                method,
                                path_and_query,
                                body_len,
                                headers,
                            };
                            Ok::<_, Infallible>(handler(seen).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with a status, headers and a body.
pub fn respond(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        resp.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    resp
}
