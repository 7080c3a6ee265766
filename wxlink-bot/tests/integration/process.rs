//! Real processes on one SQLite file: runners killed with SIGKILL mid
//! traffic and restarted, and a second runner meeting a held lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use wxlink_sim::{InboundMessage, Simulator};

use crate::support::{account_id, sim};

/// A runner process over `store` for `sims`.
struct Runner {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Runner {
    async fn start(store: &std::path::Path, sims: &[Simulator], extra: &[&str]) -> Runner {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wxlink-bot-test-runner"))
            .arg(store)
            .args(extra)
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut accounts = String::new();
        for s in sims {
            let token = s.token();
            accounts.push_str(&format!(
                "{} {} {}\n",
                account_id(s),
                s.base_url(),
                token.expose_secret()
            ));
        }
        accounts.push('\n');
        stdin.write_all(accounts.as_bytes()).await.unwrap();
        drop(stdin);
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Runner { child, lines }
    }

    /// The next line the runner prints, within `within`.
    async fn line(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.lines.next_line())
            .await
            .ok()?
            .ok()?
    }

    /// Waits until the runner holds every one of `n` accounts.
    async fn wait_started(&mut self, n: usize) {
        let mut started = HashSet::new();
        while started.len() < n {
            let line = self
                .line(Duration::from_secs(15))
                .await
                .expect("runner did not start its accounts");
            if let Some(rest) = line.strip_prefix("started ") {
                started.insert(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }

    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
}

/// Replies per injected message id, as `client_id`s, over all `sims`.
fn replies(sims: &[Simulator]) -> HashMap<(usize, u64), Vec<String>> {
    let mut map: HashMap<(usize, u64), Vec<String>> = HashMap::new();
    for (n, s) in sims.iter().enumerate() {
        for m in s.sent_messages() {
            let Some(id) = m
                .text()
                .and_then(|t| t.strip_prefix("echo: "))
                .and_then(|t| t.parse().ok())
            else {
                continue;
            };
            map.entry((n, id))
                .or_default()
                .push(m.msg.client_id.clone().unwrap_or_default());
        }
    }
    map
}

fn total_sent(sims: &[Simulator]) -> usize {
    sims.iter().map(|s| s.sent_messages().len()).sum()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_accounts_survive_five_sigkills_with_every_message_answered_and_none_twice() {
    let mut sims = Vec::new();
    for _ in 0..10 {
        sims.push(sim().await);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runner.db");
    let mut injected: BTreeMap<(usize, u64), ()> = BTreeMap::new();
    let per_round = 20;
    for round in 0..5u64 {
        let mut runner = Runner::start(&store, &sims, &[]).await;
        runner.wait_started(sims.len()).await;
        let before = total_sent(&sims);
        for (n, s) in sims.iter().enumerate() {
            for i in 0..per_round {
                let id = 1_000_000 * (round + 1) + (n as u64) * 1_000 + i;
                let user = if i % 2 == 0 {
                    "alice@im.wechat"
                } else {
                    "bob@im.wechat"
                };
                s.inject_message(InboundMessage::text(user, format!("m{id}")).message_id(id));
                injected.insert((n, id), ());
            }
        }
        // Kill once every batch left the server (so no answer is on the
        // wire) and the replies are under way, about a third of them out.
        let drained = tokio::time::Instant::now() + Duration::from_secs(15);
        while sims.iter().any(|s| s.pending_messages() > 0) {
            assert!(
                tokio::time::Instant::now() < drained,
                "the runner stopped polling"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let target = before + sims.len() * per_round as usize / 3;
        let out = tokio::time::Instant::now() + Duration::from_secs(15);
        while total_sent(&sims) < target {
            assert!(tokio::time::Instant::now() < out, "replies stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        runner.kill().await;
        let done = total_sent(&sims) - before;
        assert!(
            done < sims.len() * per_round as usize,
            "round {round}: the kill came after the traffic"
        );
    }
    // The last runner finishes what the killed ones left.
    let mut runner = Runner::start(&store, &sims, &[]).await;
    runner.wait_started(sims.len()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = replies(&sims);
        if injected.keys().all(|k| got.contains_key(k)) {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let missing: Vec<_> = injected.keys().filter(|k| !got.contains_key(k)).collect();
            let db = wxlink_bot::store::SqliteStore::open(&store).unwrap();
            use wxlink_bot::store::Store;
            let mut state = String::new();
            for a in db.accounts().await.unwrap() {
                state.push_str(&format!("{a:?}\n"));
                for d in db.dead_letters(&a.account, 5).await.unwrap() {
                    state.push_str(&format!("  dead {d:?}\n"));
                }
            }
            panic!(
                "{} messages left unanswered, e.g. {:?}\n{state}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    runner.kill().await;
    let got = replies(&sims);
    let mut repeated_same_id = 0;
    for (key, ids) in &got {
        assert!(
            injected.contains_key(key),
            "a reply to a message never injected: {key:?}"
        );
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "message {key:?} was answered twice with different ids: {ids:?}"
        );
        repeated_same_id += ids.len() - 1;
    }
    println!(
        "sigkill test: {} messages, 5 kills, {} answered, 0 answered twice, {repeated_same_id} sends repeated under the same client_id (accepted, answer lost to the kill)",
        injected.len(),
        got.len()
    );
    assert_eq!(got.len(), injected.len());
    // The repeat window is one send per account in flight at a kill.
    assert!(
        repeated_same_id <= 5 * sims.len(),
        "{repeated_same_id} repeats"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_runner_process_is_refused_the_lease_then_takes_over_after_a_kill() {
    let sims = vec![sim().await, sim().await];
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("runner.db");
    let mut first = Runner::start(&store, &sims, &[]).await;
    first.wait_started(2).await;
    sims[0].inject_message(InboundMessage::text("alice@im.wechat", "m1").message_id(1));
    sims[0]
        .wait_for_sent(1, Duration::from_secs(10))
        .await
        .unwrap();

    let mut refused = Runner::start(&store, &sims, &["--fail-if-leased"]).await;
    let line = refused.line(Duration::from_secs(10)).await.unwrap();
    assert_eq!(line, format!("leased {}", account_id(&sims[0])));
    let status = tokio::time::timeout(Duration::from_secs(10), refused.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(3));

    let mut second = Runner::start(&store, &sims, &[]).await;
    first.kill().await;
    for (n, s) in sims.iter().enumerate() {
        s.inject_message(InboundMessage::text("alice@im.wechat", "m").message_id(10 + n as u64));
    }
    second.wait_started(2).await;
    sims[0]
        .wait_for_sent(2, Duration::from_secs(10))
        .await
        .unwrap();
    sims[1]
        .wait_for_sent(1, Duration::from_secs(10))
        .await
        .unwrap();
    let got = replies(&sims);
    assert_eq!(got.len(), 3, "{got:?}");
    second.kill().await;
}
