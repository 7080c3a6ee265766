//! The bridge's own overhead per turn, and many conversations at once.
//!
//! Three measurements, printed as one JSON object on the last line:
//!
//! 1. **engine**: the turn engine alone, with a zero-latency agent and an
//!    outbox that sends nothing, on one thread: the time from
//!    `Engine::dispatch` to the agent's call (`in_us`), from the agent's
//!    answer to the first message handed to the outbox (`out_us`), and the
//!    thread's CPU time per turn (`cpu_us`, from `/proc/thread-self/schedstat`).
//!    This is what the bridge adds to a turn, runtime and network excluded.
//! 2. **runtime**: the whole bridge on a `wxlink-bot` host against an
//!    in-process simulator, one turn at a time: from the host handing the
//!    message to the bridge's handler to the agent's call (`in_us`), and from
//!    the agent's answer to the simulator receiving the first `sendmessage`
//!    (`out_us`, which includes that loopback HTTP call and the runtime's
//!    budget and pacing checks; pacing set to zero).
//! 3. **concurrent**: `--accounts` accounts × `--users` users, every user
//!    writing at once: all answered, none twice, no error, and the time.
//!
//! `cargo run --release -p wxlink-bridge --example bridge_bench -- --turns 2000`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{
    Agent, BoxFuture, Engine, EngineOptions, Error, Inbound, Outbox, Reply, ReplyMedia, ReplyTo,
    Settle, Turn, Typing,
};
use wxlink_client::WxLinkClient;
use wxlink_sim::Simulator;

/// Answers at once and notes when each turn reached it.
#[derive(Default)]
struct ZeroAgent {
    called: Mutex<HashMap<u64, (Instant, SystemTime)>>,
    answered: Mutex<HashMap<u64, (Instant, SystemTime)>>,
}

impl Agent for ZeroAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        let now = (Instant::now(), SystemTime::now());
        self.called.lock().unwrap().insert(turn.message_id, now);
        let reply = Reply::text(format!("ok {}", turn.text));
        let done = (Instant::now(), SystemTime::now());
        self.answered.lock().unwrap().insert(turn.message_id, done);
        Box::pin(async move { Ok(reply) })
    }
}

/// Sends nothing; notes the first message of each turn.
#[derive(Default)]
struct NullOutbox {
    first: Mutex<HashMap<u64, Instant>>,
}

struct NoTyping;

impl Typing for NoTyping {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

impl Outbox for NullOutbox {
    fn typing<'a>(&'a self, _to: &'a ReplyTo) -> BoxFuture<'a, Box<dyn Typing>> {
        Box::pin(async { Box::new(NoTyping) as Box<dyn Typing> })
    }
    fn send_text<'a>(
        &'a self,
        to: &'a ReplyTo,
        _index: u32,
        _text: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let now = Instant::now();
        if let Some(id) = to.message_id {
            self.first.lock().unwrap().entry(id).or_insert(now);
        }
        Box::pin(async { Ok(()) })
    }
    fn send_media<'a>(
        &'a self,
        _to: &'a ReplyTo,
        _index: u32,
        _media: &'a ReplyMedia,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
}

struct Signal(tokio::sync::oneshot::Sender<()>);

impl Settle for Signal {
    fn done(self: Box<Self>) -> BoxFuture<'static, ()> {
        let _ = self.0.send(());
        Box::pin(async {})
    }
    fn failed(self: Box<Self>, _reason: String) -> BoxFuture<'static, ()> {
        let _ = self.0.send(());
        Box::pin(async {})
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This thread's CPU time, from the scheduler's statistics.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn median_us(mut xs: Vec<Duration>) -> f64 {
    xs.sort_unstable();
    xs.get(xs.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn p99_us(mut xs: Vec<Duration>) -> f64 {
    xs.sort_unstable();
    let i = (xs.len() * 99 / 100).min(xs.len().saturating_sub(1));
    xs.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn engine_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.failure_notice = None;
    o
}

/// 1. The engine alone on one thread.
async fn engine_bench(turns: usize) -> serde_json::Value {
    let agent = Arc::new(ZeroAgent::default());
    let outbox = Arc::new(NullOutbox::default());
    let engine = Engine::new(agent.clone(), outbox.clone(), engine_options());
    let mut ins = Vec::with_capacity(turns);
    let mut outs = Vec::with_capacity(turns);
    // Warm up.
    for id in 0..200u64 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        engine.dispatch(Inbound::new(
            "bot",
            format!("u{}", id % 10),
            id,
            "hi",
            Box::new(Signal(tx)),
        ));
        let _ = rx.await;
    }
    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    for n in 0..turns as u64 {
        let id = 1_000_000 + n;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = Instant::now();
        engine.dispatch(Inbound::new(
            "bot",
            format!("u{}", n % 100),
            id,
            "hello there",
            Box::new(Signal(tx)),
        ));
        let _ = rx.await;
        let called = agent.called.lock().unwrap()[&id].0;
        let answered = agent.answered.lock().unwrap()[&id].0;
        let first = outbox.first.lock().unwrap()[&id];
        ins.push(called - start);
        outs.push(first - answered);
    }
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed();
    serde_json::json!({
        "turns": turns,
        "in_us_median": median_us(ins.clone()),
        "in_us_p99": p99_us(ins),
        "out_us_median": median_us(outs.clone()),
        "out_us_p99": p99_us(outs),
        "cpu_us_per_turn": cpu.as_secs_f64() * 1e6 / turns as f64,
        "wall_us_per_turn": wall.as_secs_f64() * 1e6 / turns as f64,
    })
}

fn fast() -> AccountOptions {
    AccountOptions::default()
        .pace(Duration::ZERO)
        .typing_keepalive(Duration::from_secs(5))
        .reply_budget(1000)
}

/// Notes when the host handed each message over, by message id.
#[derive(Default)]
struct Handover(Mutex<HashMap<u64, Instant>>);

/// 2. The whole bridge on a host against the simulator, one turn at a time.
async fn runtime_bench(turns: usize) -> serde_json::Value {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let agent = Arc::new(ZeroAgent::default());
    let host = Host::builder(MemoryStore::new()).build();
    let dir = std::env::temp_dir().join(format!("bridge-bench-{}", std::process::id()));
    let handover = Arc::new(Handover::default());
    let h = handover.clone();
    let options = BridgeOptions::new(engine_options(), &dir).on_delivery(Arc::new(move |_, id| {
        h.0.lock().unwrap().insert(id, Instant::now());
    }));
    let bridge = Bridge::new(host, agent.clone(), options);
    let config = AccountConfig::new(
        AccountId::new(sim.bot_id()).unwrap(),
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .token(sim.token()),
    );
    bridge.add_account(config, fast()).await.unwrap();
    let user = sim.user_id();
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for n in 0..(turns + 20) {
        let injected = sim.inject_text(&user, format!("m{n}"));
        let id = injected.message_id;
        sim.wait_for_sent(n + 1, Duration::from_secs(10))
            .await
            .unwrap();
        let sent_at = sim.sent_messages().last().unwrap().at;
        if n < 20 {
            continue; // warm-up
        }
        let handed = handover.0.lock().unwrap()[&id];
        let called = agent.called.lock().unwrap()[&id].0;
        let answered = agent.answered.lock().unwrap()[&id].1;
        ins.push(called - handed);
        outs.push(sent_at.duration_since(answered).unwrap_or_default());
    }
    bridge.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::json!({
        "turns": turns,
        "in_us_median": median_us(ins.clone()),
        "in_us_p99": p99_us(ins),
        "out_us_median": median_us(outs.clone()),
        "out_us_p99": p99_us(outs),
    })
}

/// 3. Many accounts and users at once.
async fn concurrent_bench(accounts: usize, users: usize) -> serde_json::Value {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(500))
        .accounts(accounts)
        .start()
        .await
        .unwrap();
    let agent = Arc::new(ZeroAgent::default());
    let host = Host::builder(MemoryStore::new()).concurrency(256).build();
    let dir = std::env::temp_dir().join(format!("bridge-bench-c-{}", std::process::id()));
    let mut options = engine_options();
    options.max_concurrent_turns = 256;
    let bridge = Bridge::new(host, agent.clone(), BridgeOptions::new(options, &dir));
    let sim_accounts = sim.accounts();
    for a in &sim_accounts {
        let config = AccountConfig::new(
            AccountId::new(a.bot_id()).unwrap(),
            WxLinkClient::builder()
                .base_url(sim.base_url())
                .token(a.token()),
        );
        bridge.add_account(config, fast()).await.unwrap();
    }
    // Let every account's first poll reach the simulator.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let total = accounts * users;
    let start = Instant::now();
    let mut expected = HashSet::new();
    for a in &sim_accounts {
        for u in 0..users {
            let user = format!("user-{u}@im.wechat");
            a.inject_text(&user, format!("{}:{user}", a.bot_id()))
                .unwrap();
            expected.insert((
                a.bot_id().to_owned(),
                user.clone(),
                format!("ok {}:{user}", a.bot_id()),
            ));
        }
    }
    let ok = sim
        .wait_for_sent(total, Duration::from_secs(120))
        .await
        .is_ok();
    let wall = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = sim.sent_messages();
    let got: HashSet<_> = sent
        .iter()
        .map(|m| {
            (
                m.bot_id.clone(),
                m.to_user_id().to_owned(),
                m.text().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let metrics = bridge.engine().metrics().encode();
    let errors = metrics
        .lines()
        .filter(|l| {
            (l.starts_with("wxlink_bridge_agent_errors_total")
                || l.starts_with("wxlink_bridge_send_errors_total"))
                && !l.ends_with(" 0")
        })
        .count();
    bridge.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::json!({
        "accounts": accounts,
        "conversations": total,
        "answered": got.intersection(&expected).count(),
        "sent": sent.len(),
        "twice": sent.len() - got.len(),
        "errors": errors,
        "complete": ok && got == expected && sent.len() == total && errors == 0,
        "wall_ms": wall.as_secs_f64() * 1e3,
    })
}

fn main() {
    let turns = arg("--turns", 2000);
    let accounts = arg("--accounts", 100);
    let users = arg("--users", 10);
    // The engine on one thread, so that its CPU time is one thread's.
    let engine = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine_bench(turns * 10));
    eprintln!("engine: {engine}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = rt.block_on(runtime_bench(turns / 4));
    eprintln!("runtime: {runtime}");
    let concurrent = rt.block_on(concurrent_bench(accounts, users));
    eprintln!("concurrent: {concurrent}");
    println!(
        "{}",
        serde_json::json!({"engine": engine, "runtime": runtime, "concurrent": concurrent})
    );
}
