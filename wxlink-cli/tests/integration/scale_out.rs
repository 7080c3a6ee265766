//! `wxlink accounts` and `wxlink listen --store postgres://…` as real runner
//! processes on one throwaway PostgreSQL server (wxlink-pgtest), against
//! one in-process multi-account simulator on loopback (one token per
//! account): three runners share 300 accounts and one is SIGKILLed mid
//! traffic; a runner is SIGSTOPped past its lease and resumed; a fourth
//! runner joins three.
//!
//! Where each message went is read from the simulator's poll records
//! ([`wxlink_sim::PollRecord`]): the poll that carried it, and the cursor
//! the next poll of that token came with. The server advances on delivery
//! (`docs/protocol.md`, "Cursor"), so a batch the server handed to a
//! runner that died before journaling it is gone, on the real server as
//! here: the next poll comes back with the cursor from before that batch.
//! The kill test counts those messages apart, and only when they were
//! carried by the killed runner's last poll of the account before the
//! kill (give or take `SIGNAL_SLACK`, as the simulator stamps a poll when
//! it gets to it); a message lost anywhere else fails it.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use wxlink_sim::{Account, InboundMessage, PollRecord, Simulator};

/// How long the simulator holds an empty poll. The client's limit of a
/// poll is this plus its 5 s margin: [`TTL_MS`] must be longer than that
/// plus its tenth kept in reserve, or a lease could run out under a poll.
const HOLD: Duration = Duration::from_secs(1);

/// The longest one poll may take: the hold plus the client's margin.
const POLL_LIMIT: Duration = Duration::from_secs(6);

/// The lease period of these tests: a whole poll (6 s) fits in it with
/// room for three renewals a period, and it is short enough to keep the
/// suite fast.
const TTL_MS: u64 = 10_000;

/// How long after `kill` returns the simulator may still stamp the arrival
/// of a poll that the killed or frozen runner sent before the signal took
/// effect: the signal lands asynchronously, and the simulator stamps a
/// request when its task gets to run on this busy test process. Well under
/// what the runner's lease has left at the signal (at least two thirds of
/// [`TTL_MS`], as it renews three times a period), so no other runner can
/// have sent a poll of its accounts this soon.
const SIGNAL_SLACK: Duration = Duration::from_secs(1);

/// The one user who writes to every bot: each account's messages are
/// handled one at a time, in order.
const USER: &str = "alice@im.wechat";

/// What one runner process printed: message ids (stdout) and lease events
/// (stderr), each with when it was read.
#[derive(Default)]
struct Seen {
    handled: Vec<(Instant, String, u64)>,
    started: Vec<(Instant, String)>,
    /// Lost or stopped.
    lost: Vec<(Instant, String)>,
    /// Lines of the runner's log (`RUST_LOG` as given to it).
    log: Vec<String>,
}

struct RunnerProc {
    name: String,
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl RunnerProc {
    fn start(url: &str, owner: &str, log: &str) -> RunnerProc {
        let log = std::env::var("SCALE_OUT_LOG").unwrap_or_else(|_| log.to_owned());
        let mut child = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .env_remove("WXLINK_ACCOUNT")
            .env_remove("WXLINK_TOKEN")
            .env("RUST_LOG", log)
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
        let name = owner.to_owned();
        let tag = name.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let now = Instant::now();
                if std::env::var_os("SCALE_OUT_LOG").is_some() {
                    eprintln!("[{tag}] {line}");
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
                } else {
                    s.log.push(line);
                }
            }
        });
        RunnerProc { name, child, seen }
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

    /// Stops the runner with Ctrl-C and waits for it (bounded).
    async fn interrupt(mut self) {
        self.signal("INT");
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// A database, a simulator with `n` accounts, and each account added to
/// the store from its account file with one `wxlink accounts add`.
struct Fleet {
    url: String,
    sim: Simulator,
    /// Account ids (store names) and the simulator's accounts, by index.
    accounts: Vec<(String, Account)>,
    /// Injected message ids, by account index.
    injected: Arc<Mutex<Vec<Vec<u64>>>>,
    next_id: Arc<Mutex<u64>>,
    _db: wxlink_pgtest::PgDatabase,
    _dir: tempfile::TempDir,
}

impl Fleet {
    async fn new(test: &'static str, n: usize) -> Option<Fleet> {
        let server = wxlink_pgtest::shared_or_skip(test)?;
        let db = tokio::task::spawn_blocking(move || server.create_database())
            .await
            .unwrap()
            .unwrap();
        let url = db.url().expose().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::builder()
            .hold(HOLD)
            .accounts(n)
            .record_limit(100_000)
            .start()
            .await
            .unwrap();
        let mut accounts = Vec::new();
        let mut files = Vec::new();
        for (i, account) in sim.accounts().into_iter().enumerate() {
            let id = format!("bot{i:03}@im.bot");
            let file = dir.path().join(format!("{i}.json"));
            std::fs::write(
                &file,
                serde_json::json!({
                    "token": account.token().expose_secret(),
                    "base_url": sim.base_url(),
                    "account_id": id,
                })
                .to_string(),
            )
            .unwrap();
            files.push(file);
            accounts.push((id, account));
        }
        let added = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .args(["accounts", "add", "--store", &url])
            .args(&files)
            .output()
            .await
            .unwrap();
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&added.stdout).lines().count(), n);
        Some(Fleet {
            url,
            sim,
            injected: Arc::new(Mutex::new(vec![Vec::new(); accounts.len()])),
            accounts,
            next_id: Arc::new(Mutex::new(1)),
            _db: db,
            _dir: dir,
        })
    }

    /// A fleet of `n` accounts, every one of them in the store, and three
    /// runners (`r1`, `r2`, `r3`) that share them evenly; `None` when no
    /// PostgreSQL server is available (see `wxlink_pgtest::shared_or_skip`).
    async fn with_three_runners(
        test: &'static str,
        n: usize,
    ) -> Option<(Arc<Fleet>, Vec<RunnerProc>)> {
        let fleet = Arc::new(Fleet::new(test, n).await?);
        assert_eq!(fleet.leases().await.len(), n);
        let runners: Vec<RunnerProc> = ["r1", "r2", "r3"]
            .iter()
            .map(|o| RunnerProc::start(&fleet.url, o, "wxlink_bot=warn"))
            .collect();
        balanced(
            &runners,
            n,
            Duration::from_secs(60),
            "three runners share the accounts",
        )
        .await;
        Some((fleet, runners))
    }

    /// One message to account `i`.
    fn inject(&self, i: usize) {
        let id = {
            let mut next = self.next_id.lock().unwrap();
            let id = *next;
            *next += 1;
            id
        };
        self.accounts[i]
            .1
            .inject_message(InboundMessage::text(USER, format!("m{id}")).message_id(id))
            .unwrap();
        self.injected.lock().unwrap()[i].push(id);
    }

    /// Steady traffic until [`Traffic::stop`]: every 100 ms one message to
    /// each of the next `per_tick` accounts, round robin.
    fn traffic(self: &Arc<Self>, per_tick: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let fleet = Arc::clone(self);
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut i = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !flag.load(Ordering::SeqCst) {
                tick.tick().await;
                for _ in 0..per_tick {
                    fleet.inject(i % fleet.accounts.len());
                    i += 1;
                }
            }
        });
        Traffic { stop, task }
    }

    /// The injected messages that no runner handled (`got`, from
    /// [`handled`]), split by the poll records. First, with the poll that
    /// carried each, those that the runner which held the `accounts` and
    /// was killed or frozen at `at` received and never journaled: its last
    /// poll of the account, one that arrived before `at` (give or take
    /// [`SIGNAL_SLACK`]), carried them, and the next poll
    /// (another runner's, after `at`) came back with the cursor from before
    /// that poll. Second, a description of every other one: lost.
    fn unhandled(
        &self,
        got: &HashMap<u64, usize>,
        accounts: &HashSet<String>,
        at: SystemTime,
    ) -> (Vec<(u64, PollRecord)>, Vec<String>) {
        let injected = self.injected.lock().unwrap().clone();
        let mut in_last_polls = Vec::new();
        let mut lost_elsewhere = Vec::new();
        for (i, ids) in injected.iter().enumerate() {
            let (name, account) = &self.accounts[i];
            let polls = account.polls();
            for id in ids {
                if got.contains_key(id) {
                    continue;
                }
                match fate(&polls, *id) {
                    Fate::NotJournaled {
                        poll,
                        next: Some(next),
                    } if accounts.contains(name)
                        && poll.started < at + SIGNAL_SLACK
                        && next.started > at + SIGNAL_SLACK
                        && next.cursor_sent == poll.cursor_sent =>
                    {
                        in_last_polls.push((*id, poll));
                    }
                    other => lost_elsewhere.push(format!("{name} id {id}: {other:?}")),
                }
            }
        }
        (in_last_polls, lost_elsewhere)
    }

    fn total_injected(&self) -> usize {
        self.injected.lock().unwrap().iter().map(Vec::len).sum()
    }

    /// `wxlink accounts list`: lease holder and expiry by account.
    async fn leases(&self) -> HashMap<String, (Option<String>, Option<i64>)> {
        let listed = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .args(["accounts", "list", "--store", &self.url])
            .output()
            .await
            .unwrap();
        assert!(listed.status.success());
        let text = String::from_utf8(listed.stdout).unwrap();
        for (_, account) in &self.accounts {
            assert!(!text.contains(account.token().expose_secret()));
        }
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["account"].as_str().unwrap().to_owned(),
                    (
                        v["lease_holder"].as_str().map(str::to_owned),
                        v["lease_expires_at_ms"].as_i64(),
                    ),
                )
            })
            .collect()
    }

    /// The simulator's concurrent polls, summed over every account.
    fn concurrent_polls(&self) -> u64 {
        self.accounts
            .iter()
            .map(|(_, a)| a.concurrent_polls())
            .sum()
    }
}

/// The traffic task of [`Fleet::traffic`].
struct Traffic {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Stops the traffic and waits for its last tick.
    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

async fn until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < end, "timed out: {what}");
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

/// Waits until `runners` run every account between them, each exactly
/// `each`, none twice.
async fn balanced(runners: &[RunnerProc], n: usize, within: Duration, what: &str) {
    until(within, what, || {
        let sets: Vec<HashSet<String>> = runners.iter().map(RunnerProc::running).collect();
        let all: HashSet<&String> = sets.iter().flatten().collect();
        let sum: usize = sets.iter().map(HashSet::len).sum();
        all.len() == n
            && sum == n
            && sets
                .iter()
                .all(|s| s.len() == n.div_ceil(runners.len()) || s.len() == n / runners.len())
    })
    .await;
}

fn unix_ms(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Where an injected message that no runner handled went, by the
/// simulator's poll records of its account.
// A few short-lived values per test: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Fate {
    /// No poll carried it yet.
    Undelivered,
    /// A poll carried it and the next poll of the token came back with
    /// the new cursor: a client kept the batch, yet nobody handled it.
    Kept,
    /// A poll carried it and the next poll came back with the cursor from
    /// before it (or there was no next poll): the batch never reached the
    /// store.
    NotJournaled {
        poll: PollRecord,
        next: Option<PollRecord>,
    },
}

fn fate(polls: &[PollRecord], id: u64) -> Fate {
    let Some(at) = polls.iter().position(|p| p.message_ids.contains(&id)) else {
        return Fate::Undelivered;
    };
    let poll = polls[at].clone();
    let next = polls.get(at + 1).cloned();
    match &next {
        Some(n) if n.cursor_sent == poll.cursor_returned => Fate::Kept,
        _ => Fate::NotJournaled { poll, next },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_share_300_accounts_and_a_sigkilled_runners_accounts_move_within_the_lease() {
    let test =
        "three_runners_share_300_accounts_and_a_sigkilled_runners_accounts_move_within_the_lease";
    let n = 300;
    let Some((fleet, mut runners)) = Fleet::with_three_runners(test, n).await else {
        return;
    };

    // Steady traffic: 100 messages a second, each account one every 3 s.
    let traffic = fleet.traffic(10);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let killed = runners.remove(0);
    let orphans = killed.running();
    assert_eq!(orphans.len(), n / 3);
    killed.signal("KILL");
    let killed_at = SystemTime::now();
    let killed_instant = Instant::now();
    // What the store says of the orphans' leases right after the kill.
    let leases = fleet.leases().await;

    let end = Instant::now() + Duration::from_millis(2 * TTL_MS + 10_000);
    loop {
        let running: HashSet<String> = runners.iter().flat_map(RunnerProc::running).collect();
        let left: Vec<&String> = orphans.iter().filter(|a| !running.contains(*a)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > end {
            let now = fleet.leases().await;
            let mut holders: HashMap<Option<String>, usize> = HashMap::new();
            for (h, _) in now.values() {
                *holders.entry(h.clone()).or_default() += 1;
            }
            for r in &runners {
                let running = r.running().len();
                let s = r.seen.lock().unwrap();
                eprintln!(
                    "{}: running {running}, log tail {:#?}",
                    r.name,
                    &s.log[s.log.len().saturating_sub(20)..]
                );
            }
            panic!(
                "{} orphans never taken over, e.g. {:?}; lease holders now {holders:?}",
                left.len(),
                &left[..left.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken_over = killed_instant.elapsed();
    // A little more traffic on the new owners, then drain.
    tokio::time::sleep(Duration::from_secs(2)).await;
    traffic.stop().await;
    let total = fleet.total_injected();

    let mut everyone: Vec<&RunnerProc> = runners.iter().collect();
    everyone.push(&killed);
    drain(&fleet, &everyone, Duration::from_secs(30)).await;

    // Classify every message by the poll records: one no runner handled
    // is either in the killed runner's last poll of its account (the next
    // poll came from another runner, after the kill, with the cursor from
    // before it) or lost elsewhere.
    let got = handled(&everyone);
    let (in_last_polls, lost_elsewhere) = fleet.unhandled(&got, &orphans, killed_at);
    let kill_window: Vec<u64> = in_last_polls.iter().map(|(id, _)| *id).collect();
    let mut window_end_ms: Vec<i64> = in_last_polls
        .iter()
        .map(|(_, poll)| unix_ms(poll.ended) - unix_ms(killed_at))
        .collect();
    assert!(
        lost_elsewhere.is_empty(),
        "{} of {total} messages lost outside the killed runner's last polls: {:#?}",
        lost_elsewhere.len(),
        &lost_elsewhere[..lost_elsewhere.len().min(10)]
    );

    // Each orphan is polled again by another runner within its lease's
    // expiry plus one poll (a claim at the expiry, the account's start and
    // its first request); the first poll that starts after the kill (and
    // its `SIGNAL_SLACK`) is not the killed runner's.
    let mut takeover_ms = Vec::new();
    for (name, account) in &fleet.accounts {
        if !orphans.contains(name) {
            continue;
        }
        let (holder, expires) = &leases[name];
        assert_eq!(holder.as_deref(), Some("r1"), "{name}");
        let expires = expires.unwrap();
        let first = account
            .polls()
            .into_iter()
            .find(|p| p.started > killed_at + SIGNAL_SLACK)
            .unwrap_or_else(|| panic!("{name} was never polled after the kill"));
        let started = unix_ms(first.started);
        takeover_ms.push(started - unix_ms(killed_at));
        let one_poll = i64::try_from(POLL_LIMIT.as_millis()).unwrap();
        let kill = unix_ms(killed_at);
        let start_event = runners
            .iter()
            .flat_map(|r| {
                r.seen
                    .lock()
                    .unwrap()
                    .started
                    .iter()
                    .filter(|(t, a)| a == name && *t > killed_instant)
                    .map(|(t, _)| t.duration_since(killed_instant))
                    .collect::<Vec<_>>()
            })
            .min();
        assert!(
            started <= expires + one_poll,
            "{name}: polled again {} ms after its lease ran out (lease ran out {} ms after the \
             kill, started again {start_event:?} after it, polled again {} ms after it)",
            started - expires,
            expires - kill,
            started - kill,
        );
    }
    takeover_ms.sort_unstable();

    // Exactly once: a message handled twice is one a killed runner's
    // handler printed before the kill and the new owner ran again.
    let killed_ids: HashSet<u64> = killed
        .seen
        .lock()
        .unwrap()
        .handled
        .iter()
        .map(|h| h.2)
        .collect();
    let twice: Vec<(&u64, &usize)> = got.iter().filter(|(_, c)| **c > 1).collect();
    for (id, count) in &twice {
        assert_eq!(**count, 2, "message {id} handled {count} times");
        assert!(
            killed_ids.contains(id),
            "message {id} handled twice by survivors"
        );
    }
    assert!(twice.len() <= orphans.len(), "{twice:?}");
    assert_eq!(
        got.len() + kill_window.len(),
        total,
        "every message is handled or was in the killed runner's last polls"
    );
    assert_eq!(
        fleet.concurrent_polls(),
        0,
        "two runners polled one account at once"
    );
    window_end_ms.sort_unstable();
    println!(
        "{total} messages over {n} accounts; kill -9 of a runner with {} accounts: \
         {} messages were in its last polls (those polls ended {:?} ms from the kill, first..last), \
         0 lost elsewhere, {} handled twice; \
         orphans polled again {}..{} ms after the kill (lease {TTL_MS} ms), all taken over in {taken_over:?}",
        orphans.len(),
        kill_window.len(),
        (window_end_ms.first(), window_end_ms.last()),
        twice.len(),
        takeover_ms.first().unwrap(),
        takeover_ms.last().unwrap(),
    );
    for r in runners {
        r.interrupt().await;
    }
    assert_eq!(fleet.concurrent_polls(), 0);
    fleet.sim.shutdown().await;
}

/// Runs `SQL` against the test database and returns its one number.
fn psql_count(url: &str, sql: &str) -> i64 {
    let psql = wxlink_pgtest::find_binaries().unwrap().join("psql");
    let out = std::process::Command::new(psql)
        .args([url, "-At", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Waits until every injected message is handled by one of `runners` or
/// settled in the poll records as a batch that never reached the store.
async fn drain(fleet: &Fleet, runners: &[&RunnerProc], within: Duration) {
    let end = Instant::now() + within;
    loop {
        let got = handled(runners);
        let injected = fleet.injected.lock().unwrap().clone();
        let open = injected.iter().enumerate().any(|(i, ids)| {
            let polls = fleet.accounts[i].1.polls();
            ids.iter().any(|id| {
                !got.contains_key(id)
                    && !matches!(fate(&polls, *id), Fate::NotJournaled { next: Some(_), .. })
            })
        });
        if !open || Instant::now() > end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_frozen_past_its_lease_is_fenced_off_and_drops_the_accounts_it_lost() {
    let test = "a_runner_frozen_past_its_lease_is_fenced_off_and_drops_the_accounts_it_lost";
    let n = 30;
    let Some((fleet, mut runners)) = Fleet::with_three_runners(test, n).await else {
        return;
    };
    let traffic = fleet.traffic(5);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let frozen = runners.remove(0);
    let its = frozen.running();
    assert_eq!(its.len(), n / 3);
    frozen.signal("STOP");
    let stopped_at = SystemTime::now();
    // One message to each of its accounts while it is frozen: where the
    // frozen runner had a poll held, the server hands the message to it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (i, (name, _)) in fleet.accounts.iter().enumerate() {
        if its.contains(name) {
            fleet.inject(i);
        }
    }
    until(
        Duration::from_millis(2 * TTL_MS + 10_000),
        "the frozen runner's accounts are taken over",
        || {
            let running: HashSet<String> = runners.iter().flat_map(RunnerProc::running).collect();
            its.iter().all(|a| running.contains(a))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    frozen.signal("CONT");
    let resumed = Instant::now();
    until(
        Duration::from_secs(15),
        "the resumed runner drops the accounts it lost",
        || {
            let s = frozen.seen.lock().unwrap();
            its.iter()
                .all(|a| s.lost.iter().any(|(t, l)| l == a && *t > resumed))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    traffic.stop().await;
    let total = fleet.total_injected();
    let mut everyone: Vec<&RunnerProc> = runners.iter().collect();
    everyone.push(&frozen);
    drain(&fleet, &everyone, Duration::from_secs(30)).await;

    // Its old leases are gone: an account the store names it the holder
    // of now is one it claimed anew after waking (a live runner again, it
    // takes a share back from the others).
    let restarted: HashSet<String> = frozen
        .seen
        .lock()
        .unwrap()
        .started
        .iter()
        .filter(|(t, _)| *t > resumed)
        .map(|(_, a)| a.clone())
        .collect();
    for (name, (holder, _)) in fleet.leases().await {
        if holder.as_deref() == Some("r1") {
            assert!(
                restarted.contains(&name),
                "{name} still held under an old lease"
            );
        }
    }
    // What its held polls carried never reached the store: the commit it
    // tried on waking was refused by the fence, and the next poll of the
    // account (another runner's) came back with the cursor from before.
    let got = handled(&everyone);
    let (in_held_polls, lost_elsewhere) = fleet.unhandled(&got, &its, stopped_at);
    let refused: Vec<u64> = in_held_polls.iter().map(|(id, _)| *id).collect();
    assert!(lost_elsewhere.is_empty(), "{lost_elsewhere:#?}");
    assert!(
        !refused.is_empty(),
        "no held poll of the frozen runner carried a message"
    );
    let ids: Vec<String> = refused.iter().map(u64::to_string).collect();
    assert_eq!(
        psql_count(
            &fleet.url,
            &format!(
                "SELECT COUNT(*) FROM wxlink_seen_ids WHERE id IN ({})",
                ids.join(",")
            )
        ),
        0,
        "a batch of the frozen runner was journaled"
    );
    // On waking, its first write for each account (a renewal, or the
    // commit of what its held poll carried) was refused by the fence.
    let log = frozen.seen.lock().unwrap().log.clone();
    for name in &its {
        assert!(
            log.iter()
                .any(|l| l.contains("lease lost") && l.contains(&format!("account={name}"))),
            "{name}: no refused write in {log:#?}"
        );
    }
    // Whatever it printed on waking under an old lease was not
    // acknowledged (the fence refused that too), so the new owner handled
    // it as well.
    let after: Vec<u64> = {
        let s = frozen.seen.lock().unwrap();
        let dropped: HashMap<&String, Instant> = its
            .iter()
            .filter_map(|a| {
                s.lost
                    .iter()
                    .find(|(t, l)| l == a && *t > resumed)
                    .map(|(t, _)| (a, *t))
            })
            .collect();
        s.handled
            .iter()
            .filter(|(t, a, _)| *t > resumed && dropped.get(a).is_some_and(|d| t <= d))
            .map(|h| h.2)
            .collect()
    };
    let others = handled(&runners.iter().collect::<Vec<_>>());
    for id in &after {
        assert!(
            others.contains_key(id),
            "message {id} handled only by the fenced runner after it woke"
        );
    }
    for (id, count) in &got {
        assert!(
            *count == 1 || (*count == 2 && after.contains(id)),
            "message {id} handled {count} times"
        );
    }
    assert_eq!(got.len() + refused.len(), total);
    assert_eq!(
        fleet.concurrent_polls(),
        0,
        "two runners polled one account at once"
    );
    println!(
        "{total} messages; a runner frozen past its lease: {} messages carried by its held polls \
         never journaled (its writes refused on waking), {} printed after waking and handled \
         again by the new owners, 0 lost elsewhere",
        refused.len(),
        after.len()
    );
    runners.push(frozen);
    for r in runners {
        r.interrupt().await;
    }
    fleet.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_runner_takes_its_share_within_one_lease_period_and_nothing_is_lost() {
    let test = "a_fourth_runner_takes_its_share_within_one_lease_period_and_nothing_is_lost";
    let n = 24;
    let Some((fleet, mut runners)) = Fleet::with_three_runners(test, n).await else {
        return;
    };
    let traffic = fleet.traffic(4);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let joined_at = Instant::now();
    runners.push(RunnerProc::start(&fleet.url, "r4", "wxlink_bot=warn"));
    balanced(
        &runners,
        n,
        Duration::from_millis(TTL_MS),
        "the fourth runner gets its share within one lease period",
    )
    .await;
    let joined_in = joined_at.elapsed();
    assert_eq!(runners[3].running().len(), n / 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    traffic.stop().await;
    let total = fleet.total_injected();
    let everyone: Vec<&RunnerProc> = runners.iter().collect();
    drain(&fleet, &everyone, Duration::from_secs(30)).await;

    // A handover by a live runner loses nothing and repeats nothing: it
    // journals its last poll and lets its handlers finish first.
    let got = handled(&everyone);
    let injected = fleet.injected.lock().unwrap().clone();
    let missing: Vec<u64> = injected
        .iter()
        .flatten()
        .filter(|id| !got.contains_key(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {total} never handled: {missing:?}",
        missing.len()
    );
    let twice: Vec<_> = got.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(
        fleet.concurrent_polls(),
        0,
        "two runners polled one account at once"
    );
    println!(
        "{total} messages over {n} accounts; a fourth runner got its {} accounts in {joined_in:?} \
         (lease {TTL_MS} ms), none lost or repeated",
        n / 4
    );
    for r in runners {
        r.interrupt().await;
    }
    fleet.sim.shutdown().await;
}
