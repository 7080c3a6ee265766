//! The bridge at the edges of what it may send, against `wxlink-sim`:
//! reply URLs that point inside this machine or its network, and answers
//! longer than the reply budget of one inbound message.
//!
//! No test here sends a packet off loopback, even when the code under test
//! is wrong: names are resolved by a test resolver, and the account's
//! transport passes only requests for the simulator on; every other
//! request is recorded and answered by the transport itself.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use tower::ServiceExt as _;
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, Host};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{Agent, EngineOptions, Error, FnAgent, Reply, ReplyMedia, Turn};
use wxlink_client::WxLinkClient;
use wxlink_client::media::{AddressPolicy, FetchOptions, Resolver};
use wxlink_sim::Simulator;
use wxlink_transport::{Body, BoxError, HttpsTransport, TransportOptions};

use crate::sim::{WAIT, engine_options, fast, sim};
use crate::support::eventually;

/// A tiny picture the recording transport serves for any URL.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-- served by the recording transport --";

/// Maps the test's names; any other name fails to resolve.
fn test_resolver() -> Resolver {
    Resolver::new(|host: &str, _port: u16| {
        let addr: &str = match host {
            "public.example" => "93.184.216.34",
            "loop.example" => "127.0.0.1",
            "ten.example" => "10.20.30.40",
            "metadata.example" => "169.254.169.254",
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "unknown test name",
                ));
            }
        };
        Ok(vec![addr.parse::<IpAddr>().unwrap()])
    })
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// The account's transport: requests for the simulator go to it on
/// loopback; any other request is recorded and answered here without a
/// connection (`public.example/hop?to=URL` with a redirect to URL, the
/// rest with [`PNG`]).
#[derive(Clone)]
struct Recording {
    sim: String,
    inner: HttpsTransport,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn new(sim: &Simulator) -> Self {
        let base: http::Uri = sim.base_url().parse().unwrap();
        Self {
            sim: base.authority().unwrap().to_string(),
            inner: HttpsTransport::with_options(TransportOptions::default().proxy(None)),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl tower::Service<Request<Body>> for Recording {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> BoxFuture {
        let authority = req.uri().authority().map(ToString::to_string);
        if authority.as_deref() == Some(self.sim.as_str()) {
            let inner = self.inner.clone();
            return Box::pin(async move { inner.oneshot(req).await });
        }
        let uri = req.uri().to_string();
        self.seen.lock().unwrap().push(uri);
        let redirect = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("to="))
            .filter(|_| req.uri().host() == Some("public.example"))
            .map(str::to_owned);
        Box::pin(async move {
            let resp = match redirect {
                Some(location) => Response::builder()
                    .status(302)
                    .header("location", location)
                    .body(Body::empty()),
                None => Response::builder()
                    .status(200)
                    .header("content-type", "image/png")
                    .body(Body::from(PNG.to_vec())),
            };
            Ok(resp.unwrap())
        })
    }
}

/// What the bridge logged at WARN and above while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Running {
    bridge: Bridge,
    _dir: tempfile::TempDir,
}

/// The bridge on `sim`'s account; the host (which gives every account's
/// client its one transport) uses `transport`.
async fn start(
    sim: &Simulator,
    transport: Recording,
    agent: Arc<dyn Agent>,
    engine: EngineOptions,
    fetch: FetchOptions,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder(MemoryStore::new())
        .transport(transport)
        .build();
    let bridge = Bridge::new(
        host,
        agent,
        BridgeOptions::new(engine, dir.path().join("in")).fetch(fetch),
    );
    let account = AccountConfig::new(
        AccountId::new(sim.bot_id()).unwrap(),
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .cdn_base_url(sim.cdn_base_url())
            .token(sim.token()),
    );
    bridge.add_account(account, fast()).await.unwrap();
    Running { bridge, _dir: dir }
}

fn answer_with(urls: &'static [&'static str]) -> Arc<dyn Agent> {
    Arc::new(FnAgent::new(move |_t: Turn| async move {
        let mut reply = Reply::text("here are your files");
        for url in urls {
            reply = reply.with_media(ReplyMedia::Url((*url).to_owned()));
        }
        Ok::<_, Error>(reply)
    }))
}

fn texts(sim: &Simulator) -> Vec<String> {
    sim.sent_messages()
        .iter()
        .filter_map(|m| m.text().map(str::to_owned))
        .collect()
}

const INTERNAL: &[&str] = &[
    "http://loop.example/a.png",
    "http://ten.example/b.png",
    "http://metadata.example/latest/meta-data/iam",
    "http://10.0.0.7/c.png",
    "http://127.0.0.1:9/d.png",
    "http://169.254.169.254/latest/user-data",
    // Public at first, then a redirect to the metadata service.
    "http://public.example/hop?to=http://metadata.example/latest/",
];

#[tokio::test]
async fn reply_urls_to_loopback_private_and_metadata_addresses_are_refused_and_never_fetched() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let sim = sim().await;
    let transport = Recording::new(&sim);
    let mut engine = engine_options();
    engine.media_notice = Some("(a file could not be sent)".to_owned());
    let fetch = FetchOptions::default().resolver(test_resolver());
    let run = start(
        &sim,
        transport.clone(),
        answer_with(INTERNAL),
        engine,
        fetch,
    )
    .await;
    sim.inject_text(sim.user_id(), "send me the files");

    // The answer's text, then one notice in place of each refused file.
    let Ok(sent) = sim.wait_for_sent(1 + INTERNAL.len(), WAIT).await else {
        panic!("{:?}\n{}", texts(&sim), logs.text());
    };
    let mut expected = vec!["here are your files".to_owned()];
    expected.extend(
        INTERNAL
            .iter()
            .map(|_| "(a file could not be sent)".to_owned()),
    );
    assert_eq!(texts(&sim), expected);
    assert_eq!(sent.len(), 1 + INTERNAL.len(), "only text went out");
    assert!(sim.uploads().is_empty(), "nothing was uploaded");
    // Nothing was fetched: the one public hop was asked for, the
    // addresses behind every name and redirect never.
    assert_eq!(
        transport.seen(),
        ["http://public.example/hop?to=http://metadata.example/latest/"]
    );
    // Each refusal is counted and logged once its notice is out.
    let metrics = run.bridge.engine().metrics().clone();
    eventually(WAIT, "seven refusals counted", || {
        metrics.media_refused() == 7
    })
    .await;

    // Each refusal is logged with its reason.
    let log = logs.text();
    for reason in [
        "127.0.0.1 is a loopback address",
        "10.20.30.40 is a private address",
        "169.254.169.254 is a cloud metadata address",
        "10.0.0.7 is a private address",
    ] {
        assert!(log.contains(reason), "no {reason:?} in the log:\n{log}");
    }
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("a reply file is refused"))
            .count(),
        INTERNAL.len(),
        "{log}"
    );
}

#[tokio::test]
async fn with_private_urls_allowed_a_loopback_url_is_fetched_and_sent_as_an_image() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let sim = sim().await;
    let transport = Recording::new(&sim);
    let options = BridgeOptions::new(engine_options(), "unused").allow_private_urls(true);
    assert_eq!(options.fetch.policy, AddressPolicy::AllowAll);
    let fetch = options.fetch.resolver(test_resolver());
    let _run = start(
        &sim,
        transport.clone(),
        answer_with(&["http://loop.example/chart.png", "http://ten.example/x.png"]),
        engine_options(),
        fetch,
    )
    .await;
    sim.inject_text(sim.user_id(), "send me the chart");

    let sent = sim.wait_for_sent(3, WAIT).await.unwrap();
    assert_eq!(texts(&sim), ["here are your files"], "{}", logs.text());
    assert_eq!(
        transport.seen(),
        ["http://loop.example/chart.png", "http://ten.example/x.png"]
    );
    let uploads = sim.uploads();
    assert_eq!(uploads.len(), 2);
    assert!(uploads.iter().all(|u| u.media_type == 1), "images");
    assert!(
        sent[1..]
            .iter()
            .all(|m| m.msg.item_list.iter().any(|i| i.image_item.is_some()))
    );
}

/// An agent whose answer is `n` paragraphs, one message each at 60
/// characters a message; it counts its calls.
fn paragraphs(n: usize, calls: Arc<Mutex<u32>>) -> Arc<dyn Agent> {
    Arc::new(FnAgent::new(move |_t: Turn| {
        let calls = calls.clone();
        async move {
            *calls.lock().unwrap() += 1;
            let text = (0..n)
                .map(|i| format!("paragraph {i:02} {}", "x".repeat(40)))
                .collect::<Vec<_>>()
                .join("\n\n");
            Ok::<_, Error>(Reply::text(text))
        }
    }))
}

#[tokio::test]
async fn an_answer_past_the_reply_budget_is_cut_with_a_notice_and_the_rest_comes_with_more() {
    let sim = sim().await;
    let calls = Arc::new(Mutex::new(0));
    let mut engine = engine_options();
    engine.chunk_chars = 60;
    let transport = Recording::new(&sim);
    let run = start(
        &sim,
        transport,
        paragraphs(14, calls.clone()),
        engine,
        FetchOptions::default(),
    )
    .await;
    let user = sim.user_id();
    sim.inject_text(&user, "tell me everything");

    // The budget is 10 messages per inbound message: nine paragraphs and
    // the notice that says how many wait.
    sim.wait_for_sent(10, WAIT).await.unwrap();
    let got = texts(&sim);
    assert_eq!(got.len(), 10);
    for (i, text) in got[..9].iter().enumerate() {
        assert!(text.starts_with(&format!("paragraph {i:02}")), "{text}");
    }
    assert!(got[9].contains("5 more messages"), "{}", got[9]);
    assert!(got[9].contains("/more"), "{}", got[9]);
    assert_eq!(run.bridge.engine().held(&sim.bot_id(), &user), 5);
    assert_eq!(run.bridge.engine().metrics().replies_cut(), 1);

    // `/more` sends the rest without asking the agent again.
    sim.inject_text(&user, "/more");
    sim.wait_for_sent(15, WAIT).await.unwrap();
    let got = texts(&sim);
    for (i, text) in got[10..].iter().enumerate() {
        assert!(
            text.starts_with(&format!("paragraph {:02}", i + 9)),
            "{text}"
        );
    }
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(run.bridge.engine().held(&sim.bot_id(), &user), 0);

    // Nothing was lost or sent twice.
    let paragraphs: Vec<&String> = got.iter().filter(|t| t.starts_with("paragraph")).collect();
    assert_eq!(paragraphs.len(), 14);

    // Another `/more` says there is nothing left.
    sim.inject_text(&user, "/more");
    sim.wait_for_sent(16, WAIT).await.unwrap();
    assert_eq!(
        texts(&sim).last().unwrap(),
        &EngineOptions::default().nothing_more_text
    );
}

#[tokio::test]
async fn a_remainder_longer_than_one_more_is_cut_again_and_reset_forgets_it() {
    let sim = sim().await;
    let calls = Arc::new(Mutex::new(0));
    let mut engine = engine_options();
    engine.chunk_chars = 60;
    let run = start(
        &sim,
        Recording::new(&sim),
        paragraphs(25, calls),
        engine,
        FetchOptions::default(),
    )
    .await;
    let user = sim.user_id();
    sim.inject_text(&user, "everything, please");
    sim.wait_for_sent(10, WAIT).await.unwrap();
    assert!(texts(&sim)[9].contains("16 more messages"));

    sim.inject_text(&user, "/more");
    sim.wait_for_sent(20, WAIT).await.unwrap();
    let got = texts(&sim);
    assert!(got[10].starts_with("paragraph 09"), "{}", got[10]);
    assert!(got[18].starts_with("paragraph 17"), "{}", got[18]);
    assert!(got[19].contains("7 more messages"), "{}", got[19]);
    let bot = sim.bot_id();
    eventually(WAIT, "seven held", || {
        run.bridge.engine().held(&bot, &user) == 7
    })
    .await;

    sim.inject_text(&user, "/reset");
    sim.wait_for_sent(21, WAIT).await.unwrap();
    assert_eq!(run.bridge.engine().held(&bot, &user), 0);
}
