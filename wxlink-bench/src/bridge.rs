//! `bridge`: the agent bridge's own overhead per turn, and many
//! conversations at once.
//!
//! Three measurements, each printed as [`Row`]s:
//!
//! 1. **engine**: the turn engine alone, with a zero-latency agent and an
//!    outbox that sends nothing, on one thread: the time from
//!    `Engine::dispatch` to the agent's call (delivered → agent request),
//!    from the agent's answer to the first message handed to the outbox
//!    (answer → first send), and the thread's CPU time per turn (from
//!    `/proc/thread-self/schedstat`). This is what the bridge adds to a
//!    turn, runtime and network excluded.
//! 2. **host**: the whole bridge on a `wxlink-bot` host against an
//!    in-process simulator, one turn at a time: from the host handing the
//!    message to the bridge's handler to the agent's call, and from the
//!    agent's answer to the simulator receiving the first `sendmessage`
//!    (which includes that loopback HTTP call and the host's budget and
//!    pacing checks; pacing set to zero). The process's CPU time per turn
//!    is reported beside them; it includes the simulator and the client.
//! 3. **concurrent**: `--accounts` accounts of one multi-account simulator,
//!    each polling with its own token, × `--users` users, every user
//!    writing at once: every conversation answered exactly once, the
//!    errors counted (agent errors, send errors, dead letters, turns not
//!    answered), and the time. The run fails unless there are none.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{
    Agent, BoxFuture, Engine, EngineOptions, Error, Inbound, Outbox, Reply, ReplyMedia, ReplyTo,
    Settle, Turn, Typing,
};
use wxlink_client::WxLinkClient;
use wxlink_sim::Simulator;

use crate::report::{self, Goal, Row};

/// Options of `bridge`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Turns measured one at a time on the host (the engine alone runs ten
    /// times as many).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub turns: u64,
    /// Accounts of the concurrent run, each with its own token.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub accounts: u64,
    /// Users per account in the concurrent run, all writing at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
}

/// The budget of each leg and of the CPU per turn, in µs.
const BUDGET_US: f64 = 2000.0;

/// The goal on each leg, in the words of the bridge's design.
const BELOW_BUDGET: Goal = Goal::Below(1.0 + 1e-9, "≤ 2 ms at the median");

/// Locks a mutex, keeping its data when another thread panicked with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers at once and notes when each turn reached it.
#[derive(Default)]
struct ZeroAgent {
    /// When each message's turn called the agent.
    called: Mutex<HashMap<u64, Instant>>,
    /// When the agent's answer to each message was ready.
    answered: Mutex<HashMap<u64, (Instant, SystemTime)>>,
}

impl Agent for ZeroAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        lock(&self.called).insert(turn.message_id, Instant::now());
        let reply = Reply::text(format!("ok {}", turn.text));
        lock(&self.answered).insert(turn.message_id, (Instant::now(), SystemTime::now()));
        Box::pin(async move { Ok(reply) })
    }
}

/// Sends nothing; notes the first message of each turn.
#[derive(Default)]
struct NullOutbox {
    /// When the first message of each turn reached the outbox.
    first: Mutex<HashMap<u64, Instant>>,
}

/// A typing indicator that shows nothing.
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
            lock(&self.first).entry(id).or_insert(now);
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

/// Tells the measuring loop that a turn settled, and whether it failed.
struct Signal(tokio::sync::oneshot::Sender<Option<String>>);

impl Settle for Signal {
    fn done(self: Box<Self>) -> BoxFuture<'static, ()> {
        let _ = self.0.send(None);
        Box::pin(async {})
    }

    fn failed(self: Box<Self>, reason: String) -> BoxFuture<'static, ()> {
        let _ = self.0.send(Some(reason));
        Box::pin(async {})
    }
}

/// CPU time from a `schedstat` file (its first field, in ns).
fn schedstat(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// This thread's CPU time.
fn thread_cpu() -> Result<Duration> {
    schedstat("/proc/thread-self/schedstat").context("cannot read /proc/thread-self/schedstat")
}

/// The whole process's CPU time: the sum over its threads.
fn process_cpu() -> Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc/self/task").context("cannot list /proc/self/task")? {
        let path = entry?.path().join("schedstat");
        // A thread may end between the listing and the read.
        total += schedstat(&path.to_string_lossy()).unwrap_or_default();
    }
    Ok(total)
}

/// The `q` quantile of `xs` in µs (sorts `xs`).
fn quantile_us(xs: &mut [Duration], q: f64) -> f64 {
    xs.sort_unstable();
    if xs.is_empty() {
        return f64::NAN;
    }
    let i = ((xs.len() as f64 * q) as usize).min(xs.len() - 1);
    xs.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// Engine options with no failure notice, so a failed turn sends nothing.
fn engine_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.failure_notice = None;
    o
}

/// The figures of one leg-by-leg run.
struct Legs {
    /// Turns measured.
    turns: usize,
    /// Delivered → agent called, per turn.
    ins: Vec<Duration>,
    /// Agent answer → first send, per turn.
    outs: Vec<Duration>,
    /// CPU time in all.
    cpu: Duration,
}

impl Legs {
    /// The rows of this run: both legs against the budget, CPU per turn.
    fn rows(mut self, scope: &str, cpu_what: &str, cpu_goal: bool, command: &str) -> Vec<Row> {
        let in_p50 = quantile_us(&mut self.ins, 0.5);
        let in_p99 = quantile_us(&mut self.ins, 0.99);
        let out_p50 = quantile_us(&mut self.outs, 0.5);
        let out_p99 = quantile_us(&mut self.outs, 0.99);
        let cpu = self.cpu.as_secs_f64() * 1e6 / self.turns as f64;
        let budget = |row: Row| row.against(BUDGET_US, "µs", "budget").goal(BELOW_BUDGET);
        let cpu_row = Row::new(format!("bridge{scope}: {cpu_what} per turn"), cpu, "µs");
        let cpu_row = if cpu_goal {
            cpu_row
                .against(BUDGET_US, "µs", "budget")
                .goal(Goal::Below(1.0 + 1e-9, "≤ 2 ms per turn"))
        } else {
            cpu_row.label("info")
        };
        vec![
            budget(Row::new(
                format!("bridge{scope}: delivered → agent request (median)"),
                in_p50,
                "µs",
            )),
            Row::new(
                format!("bridge{scope}: delivered → agent request (p99)"),
                in_p99,
                "µs",
            )
            .label("p99"),
            budget(Row::new(
                format!("bridge{scope}: agent answer → first sendmessage (median)"),
                out_p50,
                "µs",
            )),
            Row::new(
                format!("bridge{scope}: agent answer → first sendmessage (p99)"),
                out_p99,
                "µs",
            )
            .label("p99"),
            cpu_row,
        ]
        .into_iter()
        .map(|row| row.command(command))
        .collect()
    }
}

/// 1. The engine alone on this (single) thread.
async fn engine_legs(turns: usize) -> Result<Legs> {
    let agent = Arc::new(ZeroAgent::default());
    let outbox = Arc::new(NullOutbox::default());
    let engine = Engine::new(agent.clone(), outbox.clone(), engine_options());
    let warm_up = 200;
    let mut ins = Vec::with_capacity(turns);
    let mut outs = Vec::with_capacity(turns);
    let mut cpu0 = thread_cpu()?;
    for n in 0..(warm_up + turns) as u64 {
        if n == warm_up as u64 {
            cpu0 = thread_cpu()?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = Instant::now();
        engine.dispatch(Inbound::new(
            "bot",
            format!("u{}", n % 100),
            n,
            "hello there",
            Box::new(Signal(tx)),
        ));
        if let Some(reason) = rx.await.context("a turn was dropped unsettled")? {
            bail!("turn {n} failed: {reason}");
        }
        if n < warm_up as u64 {
            continue;
        }
        let called = lock(&agent.called).get(&n).copied();
        let answered = lock(&agent.answered).get(&n).map(|a| a.0);
        let first = lock(&outbox.first).get(&n).copied();
        let (Some(called), Some(answered), Some(first)) = (called, answered, first) else {
            bail!("turn {n} settled without calling the agent and sending its answer");
        };
        ins.push(called - start);
        outs.push(first - answered);
    }
    let cpu = thread_cpu()? - cpu0;
    Ok(Legs {
        turns,
        ins,
        outs,
        cpu,
    })
}

/// Account options with no pacing and a budget no run reaches.
fn fast() -> AccountOptions {
    AccountOptions::default()
        .pace(Duration::ZERO)
        .typing_keepalive(Duration::from_secs(5))
        .reply_budget(1000)
}

/// A scratch directory for the bridge's state, removed when dropped.
fn scratch() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("wxlink-bench-bridge-")
        .tempdir()
        .context("cannot create a scratch directory")
}

/// 2. The whole bridge on a host against the simulator, one turn at a time.
async fn host_legs(turns: usize) -> Result<Legs> {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(500))
        .start()
        .await
        .context("cannot start the simulator")?;
    let agent = Arc::new(ZeroAgent::default());
    let host = Host::builder(MemoryStore::new()).build();
    let dir = scratch()?;
    let handover: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let h = handover.clone();
    let options =
        BridgeOptions::new(engine_options(), dir.path()).on_delivery(Arc::new(move |_, id| {
            lock(&h).insert(id, Instant::now());
        }));
    let bridge = Bridge::new(host, agent.clone(), options);
    let config = AccountConfig::new(
        AccountId::new(sim.bot_id()).context("the simulator's bot id")?,
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .token(sim.token()),
    );
    bridge
        .add_account(config, fast())
        .await
        .context("cannot add the account")?;
    let user = sim.user_id();
    let warm_up = 20;
    let mut ins = Vec::with_capacity(turns);
    let mut outs = Vec::with_capacity(turns);
    let mut cpu0 = process_cpu()?;
    for n in 0..(warm_up + turns) {
        if n == warm_up {
            cpu0 = process_cpu()?;
        }
        let id = sim.inject_text(&user, format!("m{n}")).message_id;
        sim.wait_for_sent(n + 1, Duration::from_secs(10))
            .await
            .with_context(|| format!("turn {n} was not answered within 10 s"))?;
        if n < warm_up {
            continue;
        }
        let sent_at = sim
            .sent_messages()
            .last()
            .map(|m| m.at)
            .context("the simulator recorded no message")?;
        let handed = lock(&handover).get(&id).copied();
        let called = lock(&agent.called).get(&id).copied();
        let answered = lock(&agent.answered).get(&id).map(|a| a.1);
        let (Some(handed), Some(called), Some(answered)) = (handed, called, answered) else {
            bail!("turn {n} was answered without passing through the bridge's handler and agent");
        };
        ins.push(called - handed);
        outs.push(sent_at.duration_since(answered).unwrap_or_default());
    }
    let cpu = process_cpu()? - cpu0;
    bridge.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
    Ok(Legs {
        turns,
        ins,
        outs,
        cpu,
    })
}

/// The sum of the samples of every metric in `encoded` whose line starts
/// with one of `names`.
fn metric_sum(encoded: &str, names: &[&str]) -> f64 {
    encoded
        .lines()
        .filter(|l| names.iter().any(|n| l.starts_with(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the concurrent run found.
struct Concurrent {
    /// Accounts, each with its own token.
    accounts: usize,
    /// Conversations started (accounts × users).
    conversations: usize,
    /// Conversations answered with their own reply.
    answered: usize,
    /// Messages the simulator received.
    sent: usize,
    /// Replies received more than once.
    twice: usize,
    /// Agent errors, send errors, dead letters and turns not answered.
    errors: f64,
    /// Whether the simulator saw every reply in time.
    in_time: bool,
    /// From the first message injected to the last reply received.
    wall: Duration,
}

impl Concurrent {
    /// Whether every conversation was answered exactly once without error.
    fn complete(&self) -> bool {
        self.in_time
            && self.answered == self.conversations
            && self.sent == self.conversations
            && self.twice == 0
            && self.errors == 0.0
    }
}

/// 3. Many accounts and users at once.
async fn concurrent(accounts: usize, users: usize) -> Result<Concurrent> {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(500))
        .accounts(accounts)
        .start()
        .await
        .context("cannot start the simulator")?;
    let agent = Arc::new(ZeroAgent::default());
    let host = Host::builder(MemoryStore::new()).concurrency(256).build();
    let dir = scratch()?;
    let mut options = engine_options();
    options.max_concurrent_turns = 256;
    let bridge = Bridge::new(host, agent, BridgeOptions::new(options, dir.path()));
    let sim_accounts = sim.accounts();
    let tokens: HashSet<String> = sim_accounts
        .iter()
        .map(|a| a.token().expose_secret().to_owned())
        .collect();
    if tokens.len() != accounts {
        bail!(
            "the simulator gave {} distinct tokens for {accounts} accounts",
            tokens.len()
        );
    }
    for a in &sim_accounts {
        let config = AccountConfig::new(
            AccountId::new(a.bot_id()).context("a simulator bot id")?,
            WxLinkClient::builder()
                .base_url(sim.base_url())
                .token(a.token()),
        );
        bridge
            .add_account(config, fast())
            .await
            .context("cannot add an account")?;
    }
    // Let every account's first poll reach the simulator.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let conversations = accounts * users;
    let start = Instant::now();
    let mut expected = HashSet::new();
    for a in &sim_accounts {
        for u in 0..users {
            let user = format!("user-{u}@im.wechat");
            let text = format!("{}:{user}", a.bot_id());
            a.inject_text(&user, &text)
                .with_context(|| format!("cannot write to {}", a.bot_id()))?;
            expected.insert((a.bot_id().to_owned(), user, format!("ok {text}")));
        }
    }
    let in_time = sim
        .wait_for_sent(conversations, Duration::from_secs(120))
        .await
        .is_ok();
    let wall = start.elapsed();
    // Anything sent twice arrives shortly after.
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
    let metrics = bridge.engine().metrics();
    let encoded = metrics.encode();
    let failed = metric_sum(
        &encoded,
        &[
            "wxlink_bridge_agent_errors_total",
            "wxlink_bridge_send_errors_total",
            "wxlink_bridge_dead_letters_total",
        ],
    );
    let answered_turns = metrics.turns("answered") as f64;
    let errors = failed + (conversations as f64 - answered_turns).max(0.0);
    bridge.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
    Ok(Concurrent {
        accounts,
        conversations,
        answered: got.intersection(&expected).count(),
        sent: sent.len(),
        twice: sent.len().saturating_sub(got.len()),
        errors,
        in_time,
        wall,
    })
}

/// Runs the three measurements and prints their rows; fails unless every
/// concurrent conversation was answered once without error.
pub fn run(args: &Args) -> Result<ExitCode> {
    let turns = usize::try_from(args.turns).context("--turns is too large")?;
    let accounts = usize::try_from(args.accounts).context("--accounts is too large")?;
    let users = usize::try_from(args.users).context("--users is too large")?;
    let command =
        format!("wxlink-bench bridge --turns {turns} --accounts {accounts} --users {users}");
    // The engine on one thread, so that its CPU time is one thread's.
    eprintln!(
        "bridge: the engine alone, {} turns on one thread",
        turns * 10
    );
    let engine = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(engine_legs(turns * 10))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    eprintln!("bridge: on a wxlink-bot host against the simulator, {turns} turns");
    let host = rt.block_on(host_legs(turns))?;
    eprintln!("bridge: {accounts} accounts × {users} users at once");
    let together = rt.block_on(concurrent(accounts, users))?;
    let mut rows = engine.rows(" engine", "CPU (one thread)", true, &command);
    rows.extend(host.rows(
        " on a host",
        "process CPU (with the simulator)",
        false,
        &command,
    ));
    let mut errors = Row::new(
        format!(
            "bridge: errors in {} conversations × {} accounts",
            together.conversations, together.accounts
        ),
        together.errors,
        "errors",
    )
    .command(&command);
    errors.goal = Some("no error".to_owned());
    errors.met = Some(together.complete());
    rows.push(errors);
    rows.push(
        Row::new(
            format!(
                "bridge: {} conversations × {} accounts, answered once",
                together.conversations, together.accounts
            ),
            together.answered as f64,
            "conversations",
        )
        .against(together.conversations as f64, "conversations", "started")
        .goal(Goal::AtLeast(1.0, "every one answered once"))
        .command(&command),
    );
    rows.push(
        Row::new(
            format!(
                "bridge: {} conversations × {} accounts, wall time",
                together.conversations, together.accounts
            ),
            together.wall.as_secs_f64() * 1e3,
            "ms",
        )
        .label("info")
        .command(&command),
    );
    for row in &rows {
        row.print();
    }
    report::note(&format!(
        "bridge overhead, zero-latency agent: the engine alone runs on one thread with an outbox that sends nothing; on a wxlink-bot host against the in-process simulator, delivered → agent request includes whatever the bridge awaits before calling the agent (the typing indicator's loopback calls) and answer → first sendmessage includes that loopback call; the host's CPU figure is the whole process, simulator included. Concurrent: {} sent, {} sent twice, {} errors, every reply in time: {}",
        together.sent, together.twice, together.errors, together.in_time
    ));
    if !together.complete() {
        eprintln!(
            "bridge: not every conversation was answered exactly once without error ({} of {} answered, {} sent twice, {} errors)",
            together.answered, together.conversations, together.twice, together.errors
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
