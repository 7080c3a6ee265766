//! A fake HTTP server on 127.0.0.1 that records every request and answers
//! from a closure: the stand-in for an OpenAI-compatible endpoint or a
//! webhook receiver.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

/// What the fake answers.
pub enum Answer {
    /// A status and a JSON body.
    Json(u16, Value),
    /// A 200 stream of server-sent events, one `data:` event per item, a
    /// short pause between them.
    Sse(Vec<String>),
    /// Any status, content type and body.
    Raw(u16, &'static str, Vec<u8>),
}

type Body = BoxBody<Bytes, Infallible>;

fn respond(answer: Answer) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
    Box::pin(async move {
        match answer {
            Answer::Json(status, value) => Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/json")
                .body(full(value.to_string().into_bytes()))
                .unwrap(),
            Answer::Raw(status, content_type, bytes) => Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", content_type)
                .body(full(bytes))
                .unwrap(),
            Answer::Sse(events) => {
                let stream =
                    futures_util::stream::unfold(events.into_iter(), |mut it| async move {
                        let event = it.next()?;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let frame = Frame::data(Bytes::from(format!("data: {event}\n\n")));
                        Some((Ok::<_, Infallible>(frame), it))
                    });
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(StreamBody::new(stream).boxed())
                    .unwrap()
            }
        }
    })
}

fn full(bytes: Vec<u8>) -> Body {
    http_body_util::Full::new(Bytes::from(bytes)).boxed()
}

/// The fake server; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Starts a fake answering each request with `answer(request, n)`, where
    /// `n` counts requests from 0.
    pub async fn start<F>(answer: F) -> Self
    where
        F: Fn(&Recorded, usize) -> Answer + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let answer = Arc::new(answer);
        let log = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            let answer = answer.clone();
                            async move {
                                let path = req.uri().path().to_owned();
                                let headers = req.headers().clone();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let recorded = Recorded {
                                    path,
                                    headers,
                                    body,
                                };
                                let n = {
                                    let mut log = log.lock().unwrap();
                                    log.push(recorded.clone());
                                    log.len() - 1
                                };
                                Ok::<_, Infallible>(respond(answer(&recorded, n)).await)
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// The SSE events of a streamed completion answering `text` in `parts`
/// pieces, then `[DONE]`.
pub fn completion_events(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(parts.max(1)).max(1);
    let mut events: Vec<String> = chars
        .chunks(size)
        .map(|c| {
            let piece: String = c.iter().collect();
            serde_json::json!({"choices":[{"index":0,"delta":{"content":piece}}]}).to_string()
        })
        .collect();
    events.insert(
        0,
        serde_json::json!({"choices":[{"index":0,"delta":{"role":"assistant"}}]}).to_string(),
    );
    events.push("[DONE]".into());
    events
}

/// A plain JSON completion answering `text`.
pub fn completion_json(text: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    })
}
