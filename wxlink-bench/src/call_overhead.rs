//! `wxlink-bench call-overhead`: what the WxLink transport costs on top of a
//! bare keep-alive POST: `ApiClient::call::<SendMessage>` beside a plain
//! hyper client sending the same JSON to the same local server, 1 and 32
//! requests in flight (the best of three rounds each).
//!
//! It first measures the client-side CPU cost of one call with the network
//! replaced by memory. `--no-retry` and `--no-timeout` take the retry and
//! timeout layers out of the client's stack, `--bare-headers` makes the bare
//! POST carry the same iLink headers, and `--in-memory-only` stops after the
//! in-memory figure (for profiling).

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wxlink_proto::{
    BotToken, ContextToken, MessageItem, MessageItemType, MessageState, MessageType, SendMessage,
    SendMessageRequest, TextItem, WeixinMessage,
};
use wxlink_transport::{ApiClient, ApiConfig};

use crate::report::Row;

/// Requests per round over loopback.
const REQUESTS: usize = 20_000;

/// Options of `call-overhead`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Take the retry layer out of the client's stack.
    #[arg(long)]
    pub no_retry: bool,
    /// Take the timeout layer out of the client's stack.
    #[arg(long)]
    pub no_timeout: bool,
    /// Make the bare POST carry the same iLink headers as the client.
    #[arg(long)]
    pub bare_headers: bool,
    /// Stop after the in-memory figure (many more rounds, for profiling).
    #[arg(long)]
    pub in_memory_only: bool,
}

impl Args {
    /// The command line that reproduces a run.
    fn command(&self) -> String {
        let mut line = String::from("wxlink-bench call-overhead");
        for (on, flag) in [
            (self.no_retry, " --no-retry"),
            (self.no_timeout, " --no-timeout"),
            (self.bare_headers, " --bare-headers"),
            (self.in_memory_only, " --in-memory-only"),
        ] {
            if on {
                line.push_str(flag);
            }
        }
        line
    }
}

/// Starts a loopback server that reads each body and answers `{"ret":0}`.
async fn server() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            br#"{"ret":0}"#,
                        ))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// A typical bot reply: one short text with a context token.
fn request() -> SendMessageRequest {
    SendMessageRequest {
        msg: Some(WeixinMessage {
            from_user_id: Some(String::new()),
            to_user_id: Some("o9cq80EXAMPLEuserAlice01@im.wechat".into()),
            client_id: Some("wxlink:bench".into()),
            message_type: Some(MessageType::Bot),
            message_state: Some(MessageState::Finish),
            item_list: vec![MessageItem {
                item_type: Some(MessageItemType::Text),
                text_item: Some(TextItem {
                    text: Some("好的，已为你设置明天 10:00 的周会提醒。".into()),
                }),
                ..Default::default()
            }],
            context_token: Some(ContextToken::new(
                "AARzJWAFAAABAAAAAABEXAMPLEctx1mQe7o0q2S4u6w8y0A2C4E6G8I0K2M4O6Q8S0U2W4Y6==",
            )),
            ..Default::default()
        }),
        base_info: None,
    }
}

/// Runs `f` [`REQUESTS`] times with `concurrency` tasks; the time it took.
async fn timed<F, Fut>(concurrency: usize, f: F) -> Result<Duration>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS / concurrency {
                f().await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await.context("a worker stopped")??;
    }
    Ok(started.elapsed())
}

/// Runs the measurement and prints its rows.
pub fn run(args: &Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    for row in runtime.block_on(measure(args))? {
        row.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// The in-memory cost per call, then both clients at 1 and 32 in flight.
async fn measure(args: &Args) -> Result<Vec<Row>> {
    let command = args.command();
    let base = server().await?;
    let body = {
        // The exact bytes ApiClient sends, so both sides carry the same load.
        let mut v = serde_json::to_value(request())?;
        v["base_info"] = serde_json::json!({
            "channel_version": wxlink_proto::DEFAULT_CHANNEL_VERSION,
            "bot_agent": wxlink_proto::DEFAULT_BOT_AGENT,
        });
        Bytes::from(serde_json::to_vec(&v)?)
    };
    let bare: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut config = ApiConfig::default()
        .base_url(base.clone())
        .token(Some(BotToken::new("bench-token")));
    if args.no_retry {
        config = config.retry(wxlink_transport::RetryPolicy::none());
    }
    if args.no_timeout {
        config = config.timeouts(wxlink_transport::Timeouts::uniform(None));
    }
    let client = ApiClient::new(config.clone());

    // Client-side CPU per call, with the network replaced by memory.
    let memory = tower::service_fn(|_req: http::Request<wxlink_transport::Body>| async {
        Ok::<_, wxlink_transport::BoxError>(http::Response::new(wxlink_transport::Body::from(
            r#"{"ret":0}"#,
        )))
    });
    let in_memory = ApiClient::with_service(config, memory);
    let req = request();
    for _ in 0..10_000 {
        in_memory.call::<SendMessage>(&req).await?;
    }
    let rounds: u32 = if args.in_memory_only {
        2_000_000
    } else {
        100_000
    };
    let started = Instant::now();
    for _ in 0..rounds {
        in_memory.call::<SendMessage>(&req).await?;
    }
    let per_call = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..100_000 {
        std::hint::black_box(serde_json::to_vec(&req)?);
    }
    let serialise = started.elapsed() / 100_000;
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mut rows = vec![
        Row::new("call in memory", micros(per_call), "µs/call").command(&command),
        Row::new("serialising the request", micros(serialise), "µs/call").command(&command),
    ];
    if args.in_memory_only {
        return Ok(rows);
    }
    let url: http::Uri = format!("{base}/ilink/bot/sendmessage").parse()?;
    let client_version =
        wxlink_proto::encode_client_version(wxlink_proto::DEFAULT_CHANNEL_VERSION).to_string();
    for concurrency in [1, 32] {
        let mut bare_best = Duration::MAX;
        let mut ours_best = Duration::MAX;
        for _round in 0..3 {
            let (b, u, bd) = (bare.clone(), url.clone(), body.clone());
            let (headers, version) = (args.bare_headers, client_version.clone());
            let t = timed(concurrency, move || {
                let mut builder =
                    http::Request::post(u.clone()).header("content-type", "application/json");
                if headers {
                    builder = builder
                        .header("authorizationtype", "ilink_bot_token")
                        .header("x-wechat-uin", wxlink_proto::random_wechat_uin())
                        .header("ilink-app-id", wxlink_proto::consts::APP_ID)
                        .header("ilink-app-clientversion", version.as_str())
                        .header("authorization", "Bearer bench-token");
                }
                let req = builder.body(Full::new(bd.clone()));
                let b = b.clone();
                async move {
                    let resp = b.request(req?).await?;
                    resp.into_body().collect().await?;
                    Ok(())
                }
            })
            .await?;
            bare_best = bare_best.min(t);
            let c = client.clone();
            let req = Arc::new(request());
            let t = timed(concurrency, move || {
                let c = c.clone();
                let req = Arc::clone(&req);
                async move {
                    c.call::<SendMessage>(&req).await?;
                    Ok(())
                }
            })
            .await?;
            ours_best = ours_best.min(t);
        }
        let rate = |d: Duration| REQUESTS as f64 / d.as_secs_f64();
        rows.push(
            Row::new(
                format!("ApiClient sendmessage, {concurrency} in flight"),
                rate(ours_best),
                "req/s",
            )
            .against(rate(bare_best), "req/s", "bare POST")
            .command(&command),
        );
    }
    Ok(rows)
}
