//! Memory per idle account: one host runs N accounts, each long-polling,
//! and the process's RSS is read while every poll is held.
//!
//! ```text
//! WXLINK_BASE_URL=http://127.0.0.1:PORT WXLINK_TOKEN=TOKEN \
//!   cargo run --release -p wxlink-bot --example idle_accounts -- --count 10000 [--h2c]
//! ```
//!
//! Against a server that holds idle polls for longer than the run (`wxlink
//! sim --hold-ms 35000`). Tokens come from `WXLINK_TOKENS` (one per line, a
//! file path) when given, else every account polls with `WXLINK_TOKEN`.
//! Prints one JSON object: the baseline RSS (one warm-up account polling),
//! the RSS with every account's poll held, and the difference per account.
//! `cargo xtask bench` runs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host, Incoming};
use wxlink_client::WxLinkClient;
use wxlink_proto::BotToken;
use wxlink_transport::{Body, HttpsTransport, TransportOptions};

/// The process's resident set size, from `/proc/self/status` (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let count: usize = flag("--count").unwrap_or_else(|| "1000".into()).parse()?;
    let h2c = args.iter().any(|a| a == "--h2c");
    let base_url = std::env::var("WXLINK_BASE_URL")?;
    let token = std::env::var("WXLINK_TOKEN")?;
    let tokens: Vec<String> = match std::env::var("WXLINK_TOKENS") {
        Ok(path) => std::fs::read_to_string(path)?
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    };

    let mut options = TransportOptions::default();
    options.http2_prior_knowledge = h2c;
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
    let options = AccountOptions::default()
        .notify(false)
        .lease_ttl(Duration::from_secs(600));
    let add = |n: usize| -> Result<AccountConfig, wxlink_bot::store::StoreError> {
        let token = tokens.get(n).cloned().unwrap_or_else(|| token.clone());
        Ok(AccountConfig::new(
            AccountId::new(format!("idle-{n}"))?,
            WxLinkClient::builder()
                .base_url(base_url.clone())
                .token(BotToken::new(token)),
        )
        .options(options.clone()))
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
    let handler = |_incoming: Incoming| async move { Ok::<(), wxlink_bot::Error>(()) };

    host.add_account(add(0)?, handler).await?;
    if !wait_polls(1, Duration::from_secs(30)).await {
        return Err("the warm-up account never polled".into());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_bytes().ok_or("no /proc/self/status")?;
    let started = Instant::now();
    for n in 1..=count {
        host.add_account(add(n)?, handler).await?;
    }
    let held = wait_polls(count + 1, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_bytes().ok_or("no /proc/self/status")?;
    let in_flight = polls.load(Ordering::SeqCst).saturating_sub(1);
    let per = rss.saturating_sub(baseline) as f64 / count.max(1) as f64 / 1024.0;
    println!(
        "{}",
        serde_json::json!({
            "accounts": count,
            "held": in_flight,
            "all_held": held,
            "protocol": if h2c { "h2c" } else { "http/1.1" },
            "own_tokens": !tokens.is_empty(),
            "baseline_rss_bytes": baseline,
            "rss_bytes": rss,
            "kib_per_account": per,
            "start_seconds": started.elapsed().as_secs_f64(),
        })
    );
    // Exiting drops the polls; no clean shutdown of 10,000 accounts needed.
    std::process::exit(0);
}
