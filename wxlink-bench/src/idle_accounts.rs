//! `wxlink-bench idle-accounts`: memory per idle account, and CPU per
//! dispatched message, of one wxlink-bot host running N accounts, each
//! long-polling its own token.
//!
//! ```text
//! wxlink sim --hold-ms 300000 --accounts 10001 --tokens-file tokens.txt &
//! WXLINK_BASE_URL=http://127.0.0.1:PORT WXLINK_TOKENS=tokens.txt \
//!   wxlink-bench idle-accounts --count 10000 [--h2c] [--messages 20000]
//! ```
//!
//! The server must hold idle polls for longer than the run. `WXLINK_TOKENS`
//! names a file with one token a line: the first is the warm-up account's,
//! the next `--count` the measured accounts'.
//!
//! Rows: the RSS with every account's poll held, less the RSS with the
//! warm-up account polling, per account, beside the DESIGN.md budget; with
//! `--messages M`, M messages injected through the simulator's control API
//! round robin over the accounts, each answered with one reply, and the
//! process's user and system CPU while they were dispatched, less the CPU
//! of the injecting thread, per message.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host, Incoming};
use wxlink_client::WxLinkClient;
use wxlink_proto::BotToken;
use wxlink_transport::{Body, HttpsTransport, TransportOptions};

use crate::report::{self, Goal, Row};

/// Options of `idle-accounts`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Accounts measured (besides the warm-up one).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Speak HTTP/2 without TLS to the plain http:// server (h2c), so every
    /// poll shares one connection.
    #[arg(long)]
    pub h2c: bool,
    /// Messages to dispatch after the memory figure, for the CPU figure (0:
    /// none).
    #[arg(long, value_name = "M", default_value_t = 0)]
    pub messages: u64,
    /// The read buffer of each HTTP/1.1 connection in bytes, as a host's
    /// default transport has it; 0 keeps hyper's adaptive 8 KiB buffer.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub read_buffer: usize,
}

/// The process's resident set size, from `/proc/self/status` (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU seconds of `/proc/<what>/stat` (`self` for the
/// process, `thread-self` for the calling thread), Linux only.
fn cpu_seconds(what: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{what}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; 100 per second on every Linux build in use.
    Some((utime + stime) / 100.0)
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(measure(args))?;
    // Exiting drops the polls; no clean shutdown of 10,000 accounts needed.
    std::process::exit(0);
}

async fn measure(args: &Args) -> Result<()> {
    let count = usize::try_from(args.count).context("--count is too large")?;
    let messages = usize::try_from(args.messages).context("--messages is too large")?;
    let base_url = std::env::var("WXLINK_BASE_URL").context("WXLINK_BASE_URL is not set")?;
    let path = std::env::var("WXLINK_TOKENS").context("WXLINK_TOKENS is not set")?;
    let tokens: Vec<String> = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path}"))?
        .lines()
        .map(str::to_owned)
        .collect();
    if tokens.len() < count + 1 {
        bail!(
            "{} tokens for {count} accounts and the warm-up one",
            tokens.len()
        );
    }
    let label = if args.h2c { ", h2c" } else { ", HTTP/1.1" };

    let mut options = TransportOptions::default().proxy(None);
    options.http2_prior_knowledge = args.h2c;
    options.http1_read_buffer = (args.read_buffer > 0).then_some(args.read_buffer);
    let inner = HttpsTransport::try_with_options(options)?;
    // Counts the polls in flight, to know when every account is idle.
    let polls = Arc::new(AtomicUsize::new(0));
    let transport = {
        let polls = Arc::clone(&polls);
        tower::service_fn(move |req: http::Request<Body>| {
            let mut inner = inner.clone();
            let polls = Arc::clone(&polls);
            async move {
                use tower::Service;
                let is_poll = req.uri().path().ends_with("getupdates");
                if is_poll {
                    polls.fetch_add(1, Ordering::SeqCst);
                }
                let result = inner.call(req).await;
                if is_poll {
                    polls.fetch_sub(1, Ordering::SeqCst);
                }
                result
            }
        })
    };
    let host = Host::builder(MemoryStore::new())
        .transport(transport)
        .build();
    let account_options = AccountOptions::default()
        .notify(false)
        .pace(Duration::ZERO)
        .lease_ttl(Duration::from_secs(600));
    let add = |n: usize| -> Result<AccountConfig> {
        Ok(AccountConfig::new(
            AccountId::new(format!("idle-{n}"))?,
            WxLinkClient::builder()
                .base_url(base_url.clone())
                .token(BotToken::new(tokens[n].clone())),
        )
        .options(account_options.clone()))
    };
    let wait_polls = |want: usize, within: Duration| {
        let polls = Arc::clone(&polls);
        async move {
            let deadline = Instant::now() + within;
            while polls.load(Ordering::SeqCst) < want {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            true
        }
    };
    let replies = Arc::new(AtomicUsize::new(0));
    let handler = {
        let replies = Arc::clone(&replies);
        move |incoming: Incoming| {
            let replies = Arc::clone(&replies);
            async move {
                incoming.reply("ok").await?;
                replies.fetch_add(1, Ordering::SeqCst);
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };

    host.add_account(add(0)?, handler.clone()).await?;
    if !wait_polls(1, Duration::from_secs(30)).await {
        bail!("the warm-up account never polled");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_bytes().context("no /proc/self/status")?;
    let started = Instant::now();
    for n in 1..=count {
        host.add_account(add(n)?, handler.clone()).await?;
    }
    if !wait_polls(count + 1, Duration::from_secs(120)).await {
        bail!(
            "only {} of {count} accounts were polling",
            polls.load(Ordering::SeqCst).saturating_sub(1)
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_bytes().context("no /proc/self/status")?;
    let kib = rss.saturating_sub(baseline) as f64 / count as f64 / 1024.0;
    let budget = if args.h2c { 16.0 } else { 24.0 };
    let command = format!(
        "wxlink-bench idle-accounts --count {count}{}",
        if args.h2c { " --h2c" } else { "" }
    );
    report::note(&format!(
        "{count} idle accounts{label} on one wxlink-bot host, each long-polling its own token: ({} MiB RSS with every poll held − {} MiB with one warm-up account) / {count} = {kib:.1} KiB per account; started in {:.1} s",
        rss >> 20,
        baseline >> 20,
        started.elapsed().as_secs_f64()
    ));
    Row::new(format!("idle accounts, {count}{label}"), kib, "KiB/account")
        .against(budget, "KiB/account", "budget")
        .goal(Goal::Below(
            1.0 + 1e-9,
            if args.h2c {
                "≤ 16 KiB per account"
            } else {
                "≤ 24 KiB per account"
            },
        ))
        .command(command.clone())
        .print();

    if messages > 0 {
        let bot_ids = bot_ids(&base_url, &tokens[1..=count]).await?;
        let cpu_before = cpu_seconds("self").context("no /proc/self/stat")?;
        let inject_cpu = inject(&base_url, &bot_ids, messages)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while replies.load(Ordering::SeqCst) < messages && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cpu = cpu_seconds("self").context("no /proc/self/stat")? - cpu_before - inject_cpu;
        let answered = replies.load(Ordering::SeqCst);
        if answered < messages {
            bail!("only {answered} of {messages} messages were answered");
        }
        report::note(&format!(
            "{messages} messages over {count} accounts{label}, one reply each: {cpu:.2} s user+sys CPU of the host process, less {inject_cpu:.2} s of its injecting thread"
        ));
        Row::new(
            format!("CPU per dispatched message, {count} accounts{label}"),
            cpu * 1e6 / answered as f64,
            "µs/message",
        )
        .command(format!("{command} --messages {messages}"))
        .print();
    }
    Ok(())
}

/// Injects `messages` texts round robin over `bot_ids` through the
/// simulator's control API, on a thread of its own; returns the CPU that
/// thread used.
fn inject(base_url: &str, bot_ids: &[String], messages: usize) -> Result<f64> {
    let (base_url, bot_ids) = (base_url.to_owned(), bot_ids.to_vec());
    std::thread::spawn(move || -> Result<f64> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let start = cpu_seconds("thread-self").unwrap_or(0.0);
        rt.block_on(async {
            use tower::ServiceExt;
            let transport =
                HttpsTransport::try_with_options(TransportOptions::default().proxy(None))?;
            for n in 0..messages {
                let bot = &bot_ids[n % bot_ids.len()];
                let body = serde_json::json!({"text": format!("m{n}")}).to_string();
                let req = http::Request::post(format!("{base_url}/_sim/inject/text?bot_id={bot}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))?;
                let resp = transport
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| anyhow::anyhow!("inject failed: {e}"))?;
                if !resp.status().is_success() {
                    bail!("inject answered {}", resp.status());
                }
            }
            Ok(())
        })?;
        Ok(cpu_seconds("thread-self").unwrap_or(0.0) - start)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the injecting thread panicked"))?
}

/// The bot id of each token, from the simulator's `GET /_sim/accounts`.
async fn bot_ids(base_url: &str, tokens: &[String]) -> Result<Vec<String>> {
    use tower::ServiceExt;
    let transport = HttpsTransport::try_with_options(TransportOptions::default().proxy(None))?;
    let req = http::Request::get(format!("{base_url}/_sim/accounts")).body(Body::empty())?;
    let resp = transport
        .oneshot(req)
        .await
        .map_err(|e| anyhow::anyhow!("listing the accounts failed: {e}"))?;
    let bytes = resp.into_body().collect_limited(256 << 20).await?;
    let list: serde_json::Value = serde_json::from_slice(&bytes)?;
    let by_token: std::collections::HashMap<&str, &str> = list
        .as_array()
        .context("the account list is not an array")?
        .iter()
        .filter_map(|a| Some((a["token"].as_str()?, a["bot_id"].as_str()?)))
        .collect();
    tokens
        .iter()
        .map(|t| {
            by_token
                .get(t.as_str())
                .map(|b| (*b).to_owned())
                .context("a token the simulator does not list")
        })
        .collect()
}
