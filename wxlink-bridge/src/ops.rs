//! The operations endpoints on loopback: `/healthz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Serialize;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::server::{LoopbackServer, json, text};

/// What `/healthz` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Accounts running.
    pub accounts: usize,
    /// Accounts whose session expired (they need a new login).
    pub session_expired: usize,
    /// Accounts whose sends are throttled by the server.
    pub throttled: usize,
    /// The bridge is shutting down.
    pub stopping: bool,
}

impl Health {
    /// Healthy: running, not stopping, and at least one account able to
    /// poll (a process with no account left to serve is not healthy).
    pub fn is_healthy(&self) -> bool {
        !self.stopping && self.accounts > self.session_expired
    }
}

/// Serves `GET /healthz` (200 when [`Health::is_healthy`], else 503, with
/// the report as JSON) and `GET /metrics` (the Prometheus text format) on
/// `addr`, a loopback address.
pub async fn serve_ops(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<dyn Fn() -> Health + Send + Sync>,
) -> Result<LoopbackServer, Error> {
    LoopbackServer::bind(addr, move |req| {
        let metrics = metrics.clone();
        let health = health.clone();
        async move {
            if req.method() != Method::GET {
                return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            }
            match req.uri().path() {
                "/healthz" => {
                    let report = health();
                    let status = if report.is_healthy() {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let value = serde_json::to_value(&report).unwrap_or_default();
                    json(status, &value)
                }
                "/metrics" => {
                    let mut response = http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from(metrics.encode()),
                    ));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    );
                    response
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    })
    .await
}
