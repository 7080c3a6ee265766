//! A small scripted HTTP/1.1 server on 127.0.0.1 for the integration tests:
//! it records every request (method, URI, headers, body) and answers with
//! whatever the test's handler returns.
#![allow(clippy::unwrap_used, dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A JSON body with the given status.
    Json(StatusCode, String),
    /// Any body with a content type.
    Raw(StatusCode, &'static str, String),
    /// `n` bytes sent in chunks without a `Content-Length`.
    Chunked(usize),
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
    /// Close the connection after reading the request, without answering.
    Close,
}

impl Reply {
    pub fn ok(json: &str) -> Self {
        Self::Json(StatusCode::OK, json.to_owned())
    }

    pub fn status(code: u16) -> Self {
        Self::Json(StatusCode::from_u16(code).unwrap(), "{}".to_owned())
    }
}

type Handler = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

/// A running test server; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    /// Starts a server that answers request number `i` (0-based, counted
    /// over all connections) with `handler(i, &request)`.
    pub async fn start<F>(handler: F) -> Self
    where
        F: Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        serve(req, Arc::clone(&handler), Arc::clone(&recorded))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            connections,
        }
    }

    /// Always answers `reply`.
    pub async fn always(reply: Reply) -> Self {
        Self::start(move |_, _| reply.clone()).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

type ServerBody = BoxBody<Bytes, Infallible>;

async fn serve(
    req: Request<Incoming>,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) -> Result<Response<ServerBody>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request = Recorded {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let index = {
        let mut all = recorded.lock().unwrap();
        all.push(request.clone());
        all.len() - 1
    };
    let mut reply = handler(index, &request);
    loop {
        match reply {
            Reply::Delay(delay, next) => {
                tokio::time::sleep(delay).await;
                reply = *next;
            }
            Reply::Json(status, body) => return Ok(respond(status, "application/json", body)),
            Reply::Raw(status, content_type, body) => {
                return Ok(respond(status, content_type, body));
            }
            Reply::Chunked(n) => {
                let chunks = (0..n.div_ceil(256)).map(move |i| {
                    let len = 256.min(n - i * 256);
                    Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
                });
                let body = StreamBody::new(futures_util::stream::iter(chunks));
                return Ok(Response::new(BodyExt::boxed(body)));
            }
            // An error from the service makes hyper drop the connection
            // without writing a response.
            Reply::Close => return Err(std::io::Error::other("closing on purpose")),
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<ServerBody> {
    let mut resp = Response::new(BodyExt::boxed(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
    resp
}

/// A `127.0.0.1` port that refuses connections (bound, then released).
pub async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}
