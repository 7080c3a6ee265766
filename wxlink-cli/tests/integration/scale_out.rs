//! `wxlink accounts` and `wxlink listen --store postgres://…` as real runner
//! processes on one throwaway PostgreSQL server (wxlink-pgtest), against
//! in-process simulators on loopback: three runners share the accounts,
//! one is SIGKILLed mid traffic, one SIGSTOPped past its lease, and a
//! fourth joins.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use wxlink_sim::{InboundMessage, Simulator};

/// The lease period of these tests: longer than one whole poll (the
/// simulator's 200 ms hold plus the client's 5 s margin), short enough to
/// keep the suite fast.
const TTL_MS: u64 = 6_000;

/// What one runner process printed: message ids (stdout) and lease events
/// (stderr), each with when it was read.
#[derive(Default)]
struct Seen {
    handled: Vec<(Instant, String, u64)>,
    started: Vec<(Instant, String)>,
    /// Lost or stopped.
    lost: Vec<(Instant, String)>,
}

struct RunnerProc {
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl RunnerProc {
    fn start(url: &str, owner: &str) -> RunnerProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .env_remove("WXLINK_ACCOUNT")
            .env_remove("WXLINK_TOKEN")
            .env(
                "RUST_LOG",
                std::env::var("SCALE_OUT_LOG").unwrap_or_else(|_| "off".into()),
            )
            .args(["listen", "--store", url, "--owner", owner])
            .args(["--lease-ttl-ms", &TTL_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let account = v["account"].as_str().unwrap().to_owned();
                let id = v["message_id"].as_u64().unwrap();
                s.lock()
                    .unwrap()
                    .handled
                    .push((Instant::now(), account, id));
            }
        });
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let now = Instant::now();
                if std::env::var_os("SCALE_OUT_LOG").is_some() {
                    eprintln!("[{}] {line}", s.lock().unwrap().started.len());
                }
                let mut s = s.lock().unwrap();
                if let Some(rest) = line.strip_prefix("started ") {
                    let id = rest.split_whitespace().next().unwrap_or_default();
                    s.started.push((now, id.to_owned()));
                } else if let Some(id) = line
                    .strip_prefix("lost ")
                    .or_else(|| line.strip_prefix("stopped "))
                {
                    s.lost.push((now, id.to_owned()));
                }
            }
        });
        RunnerProc { child, seen }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id().unwrap()).unwrap()
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The accounts this runner runs now: started and not lost or
    /// stopped since.
    fn running(&self) -> HashSet<String> {
        let s = self.seen.lock().unwrap();
        let mut events: Vec<(Instant, &String, bool)> = s
            .started
            .iter()
            .map(|(t, a)| (*t, a, true))
            .chain(s.lost.iter().map(|(t, a)| (*t, a, false)))
            .collect();
        events.sort_by_key(|e| e.0);
        let mut running = HashSet::new();
        for (_, a, up) in events {
            if up {
                running.insert(a.clone());
            } else {
                running.remove(a);
            }
        }
        running
    }
}

/// Accounts kept in the store, one simulator each (one simulator serves
/// one bot).
async fn accounts(url: &str, n: usize, dir: &std::path::Path) -> Vec<(String, Simulator)> {
    let mut out = Vec::new();
    for i in 0..n {
        let sim = Simulator::builder()
            .hold(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        let id = format!("bot{i:03}@im.bot");
        let file = dir.join(format!("{i}.json"));
        std::fs::write(
            &file,
            serde_json::json!({
                "token": sim.token().expose_secret(),
                "base_url": sim.base_url(),
                "account_id": id,
            })
            .to_string(),
        )
        .unwrap();
        let added = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .args(["accounts", "add", "--store", url])
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        out.push((id, sim));
    }
    out
}

/// One message to every account, with ids from `next_id` on.
fn inject(accounts: &[(String, Simulator)], next_id: &mut u64) {
    for (_, sim) in accounts {
        let id = *next_id;
        sim.inject_message(
            InboundMessage::text("alice@im.wechat", format!("m{id}")).message_id(id),
        );
        *next_id += 1;
    }
}

async fn until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every message id up to `total` was handled by one of
/// `runners` or by the `killed` one.
async fn wait_all_handled(
    runners: &[RunnerProc],
    killed: &RunnerProc,
    total: u64,
    n: usize,
    url: &str,
) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let mut list: Vec<&RunnerProc> = runners.iter().collect();
        list.push(killed);
        let got = handled(&list);
        let missing: Vec<u64> = (1..=total).filter(|id| !got.contains_key(id)).collect();
        if missing.is_empty() {
            return;
        }
        if Instant::now() >= end {
            let accounts: HashSet<u64> = missing.iter().map(|id| (id - 1) % n as u64).collect();
            let listed = Command::new(env!("CARGO_BIN_EXE_wxlink"))
                .args(["accounts", "list", "--store", url])
                .output()
                .await
                .unwrap();
            let held: Vec<HashSet<String>> = list.iter().map(|r| r.running()).collect();
            let ids: Vec<String> = missing.iter().map(u64::to_string).collect();
            let psql = wxlink_pgtest::find_binaries().unwrap().join("psql");
            let seen = std::process::Command::new(psql)
                .arg(url)
                .arg("-c")
                .arg(format!(
                    "SELECT account, id, seq FROM wxlink_seen_ids WHERE id IN ({})",
                    ids.join(",")
                ))
                .output()
                .unwrap();
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&seen.stdout),
                String::from_utf8_lossy(&seen.stderr)
            );
            panic!(
                "{} of {total} messages never handled, e.g. {:?}, on accounts {accounts:?}\n{}\n{held:?}",
                missing.len(),
                &missing[..missing.len().min(10)],
                String::from_utf8_lossy(&listed.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every handled message id over `runners`, with how often.
fn handled(runners: &[&RunnerProc]) -> HashMap<u64, usize> {
    let mut map = HashMap::new();
    for r in runners {
        for (_, _, id) in &r.seen.lock().unwrap().handled {
            *map.entry(*id).or_default() += 1;
        }
    }
    map
}

// Not reliable yet: some runs lose the batches a runner had taken from the
// server just before it was killed (see docs/operations.md, Status). Run it
// with `cargo nextest run -p wxlink-cli --run-ignored all -E 'test(/scale_out/)'`.
#[ignore = "flaky: a killed runner's last batches are sometimes lost"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_share_the_accounts_and_survive_a_kill_a_stop_and_a_join() {
    let Some(server) = wxlink_pgtest::shared_or_skip(
        "three_runners_share_the_accounts_and_survive_a_kill_a_stop_and_a_join",
    ) else {
        return;
    };
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .unwrap()
        .unwrap();
    let url = db.url().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let n = 24;
    let accounts = accounts(&url, n, dir.path()).await;

    // `accounts list` shows every account and no token.
    let listed = Command::new(env!("CARGO_BIN_EXE_wxlink"))
        .args(["accounts", "list", "--store", &url])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), n, "{listed}");
    for (_, sim) in &accounts {
        assert!(!listed.contains(sim.token().expose_secret()));
    }

    let runners: Vec<RunnerProc> = ["r1", "r2", "r3"]
        .iter()
        .map(|o| RunnerProc::start(&url, o))
        .collect();
    until(
        Duration::from_secs(20),
        "three runners share the accounts",
        || {
            let sets: Vec<HashSet<String>> = runners.iter().map(RunnerProc::running).collect();
            let all: HashSet<&String> = sets.iter().flatten().collect();
            all.len() == n && sets.iter().all(|s| s.len() == n / 3)
        },
    )
    .await;

    // Steady traffic: one message per account every 100 ms, ids unique.
    let mut next_id = 1u64;
    for _ in 0..5 {
        inject(&accounts, &mut next_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut runners = runners;
    // SIGKILL the first runner mid traffic.
    let killed = runners.remove(0);
    let orphans = killed.running();
    let killed_handled: usize = killed.seen.lock().unwrap().handled.len();
    killed.signal("KILL");
    let killed_at = Instant::now();
    for _ in 0..10 {
        inject(&accounts, &mut next_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until(
        Duration::from_millis(2 * TTL_MS + 5_000),
        "the killed runner's accounts are taken over",
        || {
            let running: HashSet<String> = runners.iter().flat_map(RunnerProc::running).collect();
            orphans.iter().all(|a| running.contains(a))
        },
    )
    .await;
    let taken_over = killed_at.elapsed();
    println!(
        "takeover after SIGKILL: {} accounts in {taken_over:?} (lease {TTL_MS} ms)",
        orphans.len()
    );
    // Claims run every third of the lease; a lease lasts at most the whole
    // period after its last renewal.
    assert!(
        taken_over <= Duration::from_millis(TTL_MS + TTL_MS / 3 + 2_000),
        "{taken_over:?}"
    );
    let total = next_id - 1;
    wait_all_handled(&runners, &killed, total, n, &url).await;

    // A fourth runner joins: it gets its share (n / 3 → n / 3 of 3 live)
    // within one lease period, and nothing is lost.
    let joined_at = Instant::now();
    runners.push(RunnerProc::start(&url, "r4"));
    inject(&accounts, &mut next_id);
    until(
        Duration::from_millis(TTL_MS + 5_000),
        "the fourth runner gets its share",
        || {
            let sets: Vec<HashSet<String>> = runners.iter().map(RunnerProc::running).collect();
            let all: HashSet<&String> = sets.iter().flatten().collect();
            all.len() == n && sets.iter().all(|s| s.len() == n / 3)
        },
    )
    .await;
    println!(
        "a joining runner got its share in {:?}",
        joined_at.elapsed()
    );

    // SIGSTOP one runner past its lease, then SIGCONT: it loses its
    // accounts to the others and writes nothing under the old leases.
    let stopped = runners.remove(0);
    let its = stopped.running();
    stopped.signal("STOP");
    // A batch the server sends to a frozen runner is lost (the server
    // sends each batch once); so the traffic resumes after the frozen
    // runner's last poll has ended, as it would with a runner that hangs
    // between polls.
    tokio::time::sleep(Duration::from_millis(600)).await;
    inject(&accounts, &mut next_id);
    until(
        Duration::from_millis(2 * TTL_MS + 5_000),
        "the stopped runner's accounts are taken over",
        || {
            let running: HashSet<String> = runners.iter().flat_map(RunnerProc::running).collect();
            its.iter().all(|a| running.contains(a))
        },
    )
    .await;
    let before = stopped.seen.lock().unwrap().handled.len();
    stopped.signal("CONT");
    until(
        Duration::from_secs(10),
        "the stopped runner drops its accounts",
        || {
            let running = stopped.running();
            its.iter().all(|a| !running.contains(a))
        },
    )
    .await;
    runners.push(stopped);
    let total = next_id - 1;
    wait_all_handled(&runners, &killed, total, n, &url).await;

    // Exactly once: each message was journaled once, so only a message in
    // a handler at the kill may have been printed twice.
    let mut all = handled(&runners.iter().collect::<Vec<_>>());
    for (_, _, id) in &killed.seen.lock().unwrap().handled {
        *all.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = all.iter().filter(|(_, c)| **c > 1).collect();
    println!(
        "{total} messages over {n} accounts, {} handled more than once; the killed runner had handled {killed_handled}; the stopped one {before}",
        twice.len()
    );
    assert!(
        twice.len() <= orphans.len(),
        "more repeats than accounts in flight at the kill: {twice:?}"
    );
    assert_eq!(all.len() as u64, total);
    for r in &mut runners {
        r.signal("INT");
    }
    for mut r in runners {
        let _ = tokio::time::timeout(Duration::from_secs(15), r.child.wait()).await;
    }
}
