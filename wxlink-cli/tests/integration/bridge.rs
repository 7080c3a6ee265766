//! `wxlink bridge` and `wxlink demo --bridge` as real processes, against an
//! in-process simulator and a fake OpenAI-compatible endpoint on
//! 127.0.0.1.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::process::{Child, Command};
use wxlink_bridge::LoopbackServer;
use wxlink_sim::Simulator;

use crate::support::{free_port, sim};

const WAIT: Duration = Duration::from_secs(30);

/// `wxlink <args>` pointed at `sim`, in `dir`.
fn wxlink(sim: &Simulator, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxlink"));
    cmd.current_dir(dir)
        .env_remove("WXLINK_ACCOUNT")
        .env_remove("WXLINK_CA_CERT")
        .env_remove("WXLINK_H2C")
        .env_remove("RUST_LOG")
        .env_remove("OPENAI_API_KEY")
        .env("WXLINK_TOKEN", sim.token().expose_secret())
        .env("WXLINK_BASE_URL", sim.base_url())
        .env("WXLINK_CDN_BASE_URL", sim.cdn_base_url())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(_) => (0, String::new()),
    }
}

#[tokio::test]
async fn demo_bridge_passes_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_wxlink"))
        .args(["demo", "--bridge"])
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all 10 checks passed"), "{stdout}");
    assert!(stdout.contains("\"typing…\" was shown before the answer"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_answers_serves_health_and_metrics_and_stops_on_ctrl_c() {
    // A fake OpenAI-compatible endpoint answering every request with a
    // streamed "pong", recording the authorization it got.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let fake = LoopbackServer::bind("127.0.0.1:0".parse().unwrap(), move |req| {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        log.lock().unwrap().push(auth);
        async move {
            let body = "data: {\"choices\":[{\"delta\":{\"content\":\"po\"}}]}\n\n\
                        data: {\"choices\":[{\"delta\":{\"content\":\"ng\"}}]}\n\ndata: [DONE]\n\n";
            let mut resp = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            resp.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("text/event-stream"),
            );
            resp
        }
    })
    .await
    .unwrap();

    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{}/v1", fake.local_addr());
    let mut cmd = wxlink(
        &sim,
        dir.path(),
        &[
            "bridge",
            "--openai-base-url",
            &base,
            "--model",
            "m",
            "--store",
            "b.db",
            "--listen",
            &listen,
        ],
    );
    cmd.env("OPENAI_API_KEY", "sk-cli-secret-42");
    let child = cmd.spawn().unwrap();

    sim.inject_text(sim.user_id(), "ping");
    let sent = sim
        .wait_for_sent(1, WAIT)
        .await
        .expect("the bridge answered");
    assert_eq!(sent[0].text(), Some("pong"));
    assert_eq!(seen.lock().unwrap()[0], "Bearer sk-cli-secret-42");

    let (status, body) = get(&format!("http://{listen}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    // The turn is counted once its typing is cancelled, just after the reply.
    let mut metrics = String::new();
    for _ in 0..100 {
        let (status, body) = get(&format!("http://{listen}/metrics")).await;
        assert_eq!(status, 200);
        metrics = body;
        if metrics.contains("wxlink_bridge_turns_total{outcome=\"answered\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("wxlink_bridge_turns_total{outcome=\"answered\"} 1"),
        "{metrics}"
    );

    signal(&child, "-INT");
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("stopped")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("sk-cli-secret-42"), "{stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
    // The store file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("b.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}

/// An agent whose answer is four paragraphs of about 1 900 characters:
/// four messages, a second apart at the default pace.
const LONG_AGENT: &str = r#"
import json, sys
turn = json.load(sys.stdin)
parts = ["part %d of the answer to %s: " % (i, turn["text"]) + "x" * 1880 for i in range(4)]
print(json.dumps({"text": "\n\n".join(parts)}))
"#;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_mid_reply_and_restarted_sends_no_reply_twice() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent.py"), LONG_AGENT).unwrap();
    std::fs::write(
        dir.path().join("bridge.toml"),
        "store = \"b.db\"\n[agent]\nkind = \"command\"\nprogram = \"python3\"\nargs = [\"agent.py\"]\n",
    )
    .unwrap();
    let args = ["bridge", "--config", "bridge.toml", "--owner", "runner-1"];

    let first = wxlink(&sim, dir.path(), &args).spawn().unwrap();
    sim.inject_text(sim.user_id(), "go");
    // Kill it once the first part went out and was journaled as accepted
    // (a moment after the server's answer), while it waits its pace for
    // the next part. A kill between the server's answer and that journal
    // write is the one window the runtime cannot close; the replay then
    // repeats the part under the same client_id.
    sim.wait_for_sent(1, WAIT).await.expect("the first part");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&first, "-KILL");
    let _ = first.wait_with_output().await;
    let before = sim.sent_messages().len();
    assert!(before < 4, "killed too late: {before} parts already sent");

    let second = wxlink(&sim, dir.path(), &args).spawn().unwrap();
    sim.wait_for_sent(4, WAIT)
        .await
        .expect("the rest after the restart");
    // Give a repeated send the time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&second, "-INT");
    let _ = tokio::time::timeout(WAIT, second.wait_with_output()).await;

    let sent = sim.sent_messages();
    let texts: Vec<&str> = sent.iter().filter_map(|m| m.text()).collect();
    let heads: Vec<&str> = texts.iter().map(|t| &t[..t.find(':').unwrap()]).collect();
    assert_eq!(
        heads,
        [
            "part 0 of the answer to go",
            "part 1 of the answer to go",
            "part 2 of the answer to go",
            "part 3 of the answer to go"
        ]
    );
    let ids: HashSet<_> = sent.iter().map(|m| m.msg.client_id.clone()).collect();
    assert_eq!(ids.len(), sent.len(), "no client_id twice");
}

/// A runner of `wxlink bridge --store postgres://…` whose command agent
/// answers every turn with `<owner>: <text>`; stderr lines are kept.
struct BridgeRunner {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl BridgeRunner {
    fn start(url: &str, dir: &Path, owner: &str) -> BridgeRunner {
        let agent = format!(
            "import json, sys\nturn = json.load(sys.stdin)\n\
             print(json.dumps({{\"text\": \"{owner}: \" + turn[\"text\"]}}))\n"
        );
        std::fs::write(dir.join(format!("{owner}.py")), agent).unwrap();
        std::fs::write(
            dir.join(format!("{owner}.toml")),
            format!(
                "[agent]\nkind = \"command\"\nprogram = \"python3\"\nargs = [\"{owner}.py\"]\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .current_dir(dir)
            .env_remove("WXLINK_ACCOUNT")
            .env_remove("WXLINK_TOKEN")
            .env(
                "RUST_LOG",
                std::env::var("BRIDGE_RUNNER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .args(["bridge", "--store", url, "--owner", owner])
            .args(["--config", &format!("{owner}.toml")])
            .args(["--lease-ttl-ms", "6000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut reader = tokio::io::BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        BridgeRunner { child, stderr }
    }

    /// The accounts this runner runs now, from its "running" and
    /// "stopped"/"lost" lines.
    fn running(&self) -> HashSet<String> {
        let mut running = HashSet::new();
        for line in self.stderr.lock().unwrap().iter() {
            let Some(rest) = line.strip_prefix("bridge: account ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let (Some(id), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            match what {
                "running" => {
                    running.insert(id.to_owned());
                }
                "stopped" | "lost" => {
                    running.remove(id);
                }
                _ => {}
            }
        }
        running
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

/// Writes an account file for each of `sim`'s accounts into `dir` and adds
/// them all to `store` with `wxlink accounts add` (run in `dir`, so a
/// relative SQLite path lands there).
async fn add_accounts(sim: &Simulator, dir: &Path, store: &str) {
    for (i, account) in sim.accounts().iter().enumerate() {
        let file = dir.join(format!("account-{i}.json"));
        std::fs::write(
            &file,
            serde_json::json!({
                "token": account.token().expose_secret(),
                "base_url": sim.base_url(),
                "cdn_base_url": sim.cdn_base_url(),
                "account_id": account.bot_id(),
            })
            .to_string(),
        )
        .unwrap();
        let added = Command::new(env!("CARGO_BIN_EXE_wxlink"))
            .current_dir(dir)
            .args(["accounts", "add", "--store", store])
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridge_runners_on_one_postgres_store_answer_every_turn_of_every_account_once() {
    let Some(server) = wxlink_pgtest::shared_or_skip(
        "two_bridge_runners_on_one_postgres_store_answer_every_turn_of_every_account_once",
    ) else {
        return;
    };
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .unwrap()
        .unwrap();
    let url = db.url().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();

    // Four bot accounts on one simulator, kept in the store.
    let sim = Simulator::builder()
        .accounts(4)
        .hold(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let accounts = sim.accounts();
    assert_eq!(accounts.len(), 4);
    add_accounts(&sim, dir.path(), &url).await;

    let runners = [
        BridgeRunner::start(&url, dir.path(), "r1"),
        BridgeRunner::start(&url, dir.path(), "r2"),
    ];
    until("the two runners share the four accounts", || {
        let sets: Vec<HashSet<String>> = runners.iter().map(BridgeRunner::running).collect();
        let all: HashSet<&String> = sets.iter().flatten().collect();
        all.len() == 4 && sets.iter().all(|s| s.len() == 2)
    })
    .await;

    // Three turns per account, each round once the last was answered (a
    // user's messages that arrive while the agent works would go into one
    // turn together).
    for round in 0..3usize {
        for account in &accounts {
            account
                .inject_text(
                    account.user_id(),
                    format!("q{round} for {}", account.bot_id()),
                )
                .unwrap();
        }
        let end = tokio::time::Instant::now() + WAIT;
        while accounts.iter().any(|a| a.sent_messages().len() <= round) {
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for the answers of round {round}: {:?}\n--- r1\n{}\n--- r2\n{}",
                accounts
                    .iter()
                    .map(|a| a.sent_messages().len())
                    .collect::<Vec<_>>(),
                runners[0].log(),
                runners[1].log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Time for a second answer to any of them to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut owners = HashSet::new();
    for account in &accounts {
        let bot = account.bot_id();
        let sent = account.sent_messages();
        let mut texts: Vec<String> = sent
            .iter()
            .filter_map(|m| m.text().map(str::to_owned))
            .collect();
        assert_eq!(texts.len(), 3, "{bot}: {texts:?}");
        // Every answer comes from the runner that holds the account, and
        // answers one question, each question once.
        let owner = texts[0].split(':').next().unwrap().to_owned();
        texts.sort();
        let expected: Vec<String> = (0..3)
            .map(|round| format!("{owner}: q{round} for {bot}"))
            .collect();
        assert_eq!(texts, expected, "{bot}");
        assert!(
            runners[usize::from(owner == "r2")].running().contains(bot),
            "{bot} answered by {owner}, which does not run it"
        );
        owners.insert(owner);
    }
    assert_eq!(owners.len(), 2, "both runners answered: {owners:?}");

    for runner in &runners {
        signal(&runner.child, "-INT");
    }
    for runner in runners {
        let log = runner.log();
        let status = tokio::time::timeout(WAIT, runner.child.wait_with_output())
            .await
            .expect("stopped")
            .unwrap()
            .status;
        assert!(status.success(), "{log}");
    }
}

/// `wxlink bridge` whose command agent answers with a picture at `url`,
/// with `extra` arguments; returns what the user got once two messages
/// (or one and a notice) arrived.
async fn answer_with_loopback_picture(url: &str, extra: &[&str]) -> (Simulator, Vec<String>) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agent.py"),
        format!(
            "import json, sys\njson.load(sys.stdin)\n\
             print(json.dumps({{\"text\": \"the chart\", \"media\": [{{\"url\": \"{url}\"}}]}}))\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bridge.toml"),
        "store = \"b.db\"\n[agent]\nkind = \"command\"\nprogram = \"python3\"\nargs = [\"agent.py\"]\n",
    )
    .unwrap();
    let mut args = vec!["bridge", "--config", "bridge.toml"];
    args.extend_from_slice(extra);
    let child = wxlink(&sim, dir.path(), &args).spawn().unwrap();
    sim.inject_text(sim.user_id(), "chart please");
    let sent = sim.wait_for_sent(2, WAIT).await.expect("two messages");
    signal(&child, "-INT");
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("stopped")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let texts = sent
        .iter()
        .map(|m| m.text().unwrap_or("<media>").to_owned())
        .collect();
    (sim, texts)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_reply_url_is_refused_with_a_notice_unless_the_flag_allows_it() {
    let fetched = Arc::new(Mutex::new(0u32));
    let count = fetched.clone();
    let files = LoopbackServer::bind("127.0.0.1:0".parse().unwrap(), move |_req| {
        *count.lock().unwrap() += 1;
        async move {
            let mut resp = http::Response::new(Full::new(Bytes::from_static(
                b"\x89PNG\r\n\x1a\n-- a loopback chart --",
            )));
            resp.headers_mut()
                .insert("content-type", http::HeaderValue::from_static("image/png"));
            resp
        }
    })
    .await
    .unwrap();
    let url = format!("http://{}/chart.png", files.local_addr());

    let (sim, texts) = answer_with_loopback_picture(&url, &[]).await;
    assert_eq!(
        texts,
        ["the chart", "(A file in this answer could not be sent.)"]
    );
    assert!(sim.uploads().is_empty());
    assert_eq!(*fetched.lock().unwrap(), 0, "the refused URL was fetched");

    let (sim, texts) = answer_with_loopback_picture(&url, &["--allow-private-reply-urls"]).await;
    assert_eq!(texts, ["the chart", "<media>"]);
    assert_eq!(sim.uploads().len(), 1);
    assert_eq!(*fetched.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_postgres_store_with_account_tables_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bridge.toml"),
        "[agent]\nkind = \"command\"\nprogram = \"true\"\n\n[[account]]\nfile = \"bot.json\"\n",
    )
    .unwrap();
    // The check comes before any connection; the URL is loopback anyway.
    let out = Command::new(env!("CARGO_BIN_EXE_wxlink"))
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .args(["bridge", "--config", "bridge.toml"])
        .args(["--store", "postgres://wxlink@127.0.0.1:1/none"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the accounts come from the store") && stderr.contains("[[account]]"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_on_a_sqlite_store_runs_every_account_the_file_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::builder()
        .accounts(2)
        .hold(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let accounts = sim.accounts();
    add_accounts(&sim, dir.path(), "bridge.db").await;

    // No account file, no token: the accounts come from the store alone.
    let runner = BridgeRunner::start("bridge.db", dir.path(), "solo");
    for account in &accounts {
        account
            .inject_text(account.user_id(), format!("hi {}", account.bot_id()))
            .unwrap();
    }
    let end = tokio::time::Instant::now() + WAIT;
    while accounts.iter().any(|a| a.sent_messages().is_empty()) {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for an answer on every account\n{}",
            runner.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for account in &accounts {
        let texts: Vec<String> = account
            .sent_messages()
            .iter()
            .filter_map(|m| m.text().map(str::to_owned))
            .collect();
        assert_eq!(
            texts,
            vec![format!("solo: hi {}", account.bot_id())],
            "{}",
            account.bot_id()
        );
    }
    signal(&runner.child, "-INT");
    let log = runner.log();
    let status = tokio::time::timeout(WAIT, runner.child.wait_with_output())
        .await
        .expect("stopped")
        .unwrap()
        .status;
    assert!(status.success(), "{log}");
}
