//! Memory per idle account, and CPU per dispatched message, of one
//! wxlink-bot host running N accounts, each long-polling its own token.
//!
//! ```text
//! wxlink sim --hold-ms 300000 --accounts 10001 --tokens-file tokens.txt &
//! WXLINK_BASE_URL=http://127.0.0.1:PORT WXLINK_TOKENS=tokens.txt \
//!   cargo run --release -p wxlink-bot --example idle_accounts -- \
//!   --count 10000 [--h2c] [--messages 20000] [--read-buffer BYTES]
//! ```
//!
//! The server must hold idle polls for longer than the run. `WXLINK_TOKENS`
//! names a file with one token a line: the first is the warm-up account's,
//! the next `--count` the measured accounts'. Without it every account polls
//! `WXLINK_TOKEN` (one bot polled N times, which a real server refuses).
//!
//! Prints one JSON object:
//! - the RSS with the warm-up account polling (the baseline), with every
//!   account's poll held, and the difference per account;
//! - the live heap the same way, counted by this binary's allocator (the
//!   RSS also holds allocator slack and freed pages not yet returned);
//! - with `--messages M > 0`: M messages injected through the simulator's
//!   control API, round robin over the accounts, each answered with one
//!   reply, and the process's user and system CPU while they were
//!   dispatched, per message, less the CPU of the injecting thread.
//!
//! `cargo xtask bench` runs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host, Incoming};
use wxlink_client::WxLinkClient;
use wxlink_proto::BotToken;
use wxlink_transport::{Body, HttpsTransport, TransportOptions};

/// The system allocator, counting the bytes it has handed out and not yet
/// taken back.
struct Counting;

/// Live heap bytes.
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator; only
// a counter is updated beside it. A global allocator cannot be written
// without `unsafe`, hence the exception to the workspace's rule.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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

/// Injects `messages` texts round robin over `bot_ids` through the
/// simulator's control API, on a thread of its own; returns the CPU that
/// thread used.
fn inject(base_url: &str, bot_ids: &[String], messages: usize) -> Result<f64, String> {
    let (base_url, bot_ids) = (base_url.to_owned(), bot_ids.to_vec());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let start = cpu_seconds("thread-self").unwrap_or(0.0);
        rt.block_on(async {
            use tower::ServiceExt;
            let transport =
                HttpsTransport::try_with_options(TransportOptions::default().proxy(None))
                    .map_err(|e| e.to_string())?;
            for n in 0..messages {
                let bot = &bot_ids[n % bot_ids.len()];
                let body = serde_json::json!({"text": format!("m{n}")}).to_string();
                let req = http::Request::post(format!("{base_url}/_sim/inject/text?bot_id={bot}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .map_err(|e| e.to_string())?;
                let resp = transport
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("inject answered {}", resp.status()));
                }
            }
            Ok::<(), String>(())
        })?;
        Ok(cpu_seconds("thread-self").unwrap_or(0.0) - start)
    })
    .join()
    .map_err(|_| "the injecting thread panicked".to_owned())?
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
    let messages: usize = flag("--messages").unwrap_or_else(|| "0".into()).parse()?;
    // The host's default transport reads HTTP/1.1 answers into 4 KiB; 0
    // keeps hyper's adaptive 8 KiB buffer, for comparison.
    let read_buffer: usize = flag("--read-buffer")
        .unwrap_or_else(|| "4096".into())
        .parse()?;
    let h2c = args.iter().any(|a| a == "--h2c");
    let base_url = std::env::var("WXLINK_BASE_URL")?;
    let tokens: Vec<String> = match std::env::var("WXLINK_TOKENS") {
        Ok(path) => std::fs::read_to_string(path)?
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => vec![std::env::var("WXLINK_TOKEN")?],
    };
    let own_tokens = tokens.len() > 1;
    if own_tokens && tokens.len() < count + 1 {
        return Err(format!(
            "{} tokens for {count} accounts and the warm-up one",
            tokens.len()
        )
        .into());
    }

    let mut options = TransportOptions::default().proxy(None);
    options.http2_prior_knowledge = h2c;
    options.http1_read_buffer = (read_buffer > 0).then_some(read_buffer);
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
        .pace(Duration::ZERO)
        .lease_ttl(Duration::from_secs(600));
    let add = |n: usize| -> Result<AccountConfig, wxlink_bot::store::StoreError> {
        let token = tokens.get(n).unwrap_or(&tokens[0]).clone();
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
        return Err("the warm-up account never polled".into());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_bytes().ok_or("no /proc/self/status")?;
    let baseline_heap = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    for n in 1..=count {
        host.add_account(add(n)?, handler.clone()).await?;
    }
    let held = wait_polls(count + 1, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_bytes().ok_or("no /proc/self/status")?;
    let heap = LIVE.load(Ordering::SeqCst);
    let in_flight = polls.load(Ordering::SeqCst).saturating_sub(1);
    let per = rss.saturating_sub(baseline) as f64 / count.max(1) as f64 / 1024.0;
    let heap_per = (heap - baseline_heap) as f64 / count.max(1) as f64 / 1024.0;
    let start_seconds = started.elapsed().as_secs_f64();

    let mut dispatch = serde_json::Value::Null;
    if messages > 0 && own_tokens {
        // The simulator's bot ids, in the order of the tokens file.
        let bot_ids = bot_ids(&base_url, &tokens[1..=count]).await?;
        let cpu_before = cpu_seconds("self").ok_or("no /proc/self/stat")?;
        let t0 = Instant::now();
        let inject_cpu = inject(&base_url, &bot_ids, messages)?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while replies.load(Ordering::SeqCst) < messages && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds("self").ok_or("no /proc/self/stat")? - cpu_before - inject_cpu;
        let answered = replies.load(Ordering::SeqCst);
        dispatch = serde_json::json!({
            "messages": messages,
            "answered": answered,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "inject_cpu_seconds": inject_cpu,
            "cpu_us_per_message": cpu * 1e6 / answered.max(1) as f64,
        });
    }
    println!(
        "{}",
        serde_json::json!({
            "accounts": count,
            "held": in_flight,
            "all_held": held,
            "protocol": if h2c { "h2c" } else { "http/1.1" },
            "http1_read_buffer": read_buffer,
            "own_tokens": own_tokens,
            "baseline_rss_bytes": baseline,
            "rss_bytes": rss,
            "kib_per_account": per,
            "baseline_heap_bytes": baseline_heap,
            "heap_bytes": heap,
            "heap_kib_per_account": heap_per,
            "start_seconds": start_seconds,
            "dispatch": dispatch,
        })
    );
    // Exiting drops the polls; no clean shutdown of 10,000 accounts needed.
    std::process::exit(0);
}

/// The bot id of each token, from the simulator's `GET /_sim/accounts`.
async fn bot_ids(
    base_url: &str,
    tokens: &[String],
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    use tower::ServiceExt;
    let transport = HttpsTransport::try_with_options(TransportOptions::default().proxy(None))?;
    let req = http::Request::get(format!("{base_url}/_sim/accounts")).body(Body::empty())?;
    let resp = transport.oneshot(req).await.map_err(|e| e.to_string())?;
    let bytes = resp.into_body().collect_limited(256 << 20).await?;
    let list: serde_json::Value = serde_json::from_slice(&bytes)?;
    let by_token: std::collections::HashMap<&str, &str> = list
        .as_array()
        .ok_or("the account list is not an array")?
        .iter()
        .filter_map(|a| Some((a["token"].as_str()?, a["bot_id"].as_str()?)))
        .collect();
    tokens
        .iter()
        .map(|t| {
            by_token
                .get(t.as_str())
                .map(|b| (*b).to_owned())
                .ok_or_else(|| "a token the simulator does not list".into())
        })
        .collect()
}
