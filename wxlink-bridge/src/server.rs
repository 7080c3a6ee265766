//! A small HTTP server for the bridge's own loopback endpoints (the
//! webhook send endpoint, `/healthz`, `/metrics`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::{Error, Kind};

/// The largest request body the bridge's endpoints read (1 MiB).
pub(crate) const MAX_REQUEST_BYTES: usize = 1 << 20;

/// A running loopback server; it stops when dropped or on
/// [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct LoopbackServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoopbackServer {
    /// Serves `handler` on `addr`, which must be a loopback address (port 0
    /// picks a free port). The request body is read whole, up to 1 MiB; a
    /// larger one is answered 413 without calling `handler`.
    pub async fn bind<F, Fut>(addr: SocketAddr, handler: F) -> Result<Self, Error>
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        if !addr.ip().is_loopback() {
            return Err(Error::new(
                Kind::Config,
                format!("{addr} is not a loopback address; the bridge serves on loopback only"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| Error::with_source(Kind::Io, format!("cannot listen on {addr}"), err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| Error::with_source(Kind::Io, "cannot read the address", err))?;
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body =
                                    match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                                        Ok(body) => body.to_bytes(),
                                        Err(_) => {
                                            return Ok::<_, Infallible>(text(
                                                StatusCode::PAYLOAD_TOO_LARGE,
                                                "request body too large\n",
                                            ));
                                        }
                                    };
                                Ok(handler(Request::from_parts(parts, body)).await)
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
