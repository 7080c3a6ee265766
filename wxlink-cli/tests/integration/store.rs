//! `wxlink listen --store` and `wxlink dead-letters` on a SQLite store,
//! against an in-process simulator.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;
use wxlink_bot::store::{AccountId, InboundBatch, InboundMessage, SqliteStore, Store};
use wxlink_sim::{InboundMessage as SimMessage, Simulator};

#[cfg(unix)]
use crate::support::{interrupt, polls, texts, wait_for_polls};
use crate::support::{sim, wxlink};

/// `wxlink listen --store s.db` pointed at `sim`, in `dir`.
fn listen(sim: &Simulator, dir: &Path) -> Command {
    let mut cmd = listen_without_account(dir);
    cmd.env("WXLINK_TOKEN", sim.token().expose_secret())
        .env("WXLINK_BASE_URL", sim.base_url())
        .env("WXLINK_CDN_BASE_URL", sim.cdn_base_url());
    cmd
}

/// `wxlink listen --store s.db` in `dir` with no account named anywhere.
fn listen_without_account(dir: &Path) -> Command {
    let mut cmd = wxlink(dir);
    cmd.args(["listen", "--store", "s.db"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Asserts that a run exited with status 0, showing its stderr if not.
fn assert_exit_0(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_store_prints_each_message_once_across_restarts_even_when_the_server_repeats_it() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let child = listen(&sim, dir.path()).spawn().unwrap();
    wait_for_polls(&sim, 1).await;
    sim.inject_message(SimMessage::text(sim.user_id(), "one").message_id(501));
    sim.inject_message(SimMessage::text(sim.user_id(), "two").message_id(502));
    // The server sends "one" again, as it is known to.
    sim.inject_message(SimMessage::text(sim.user_id(), "one").message_id(501));
    wait_for_polls(&sim, polls(&sim) + 2).await;
    let first = interrupt(child).await;
    assert_exit_0(&first);
    assert_eq!(texts(&first), ["one", "two"]);

    // A restart resumes from the stored cursor and prints only what is new.
    let child = listen(&sim, dir.path()).spawn().unwrap();
    wait_for_polls(&sim, polls(&sim) + 1).await;
    sim.inject_message(SimMessage::text(sim.user_id(), "three").message_id(503));
    sim.inject_message(SimMessage::text(sim.user_id(), "two").message_id(502));
    wait_for_polls(&sim, polls(&sim) + 2).await;
    let second = interrupt(child).await;
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(texts(&second), ["three"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("s.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the store is readable by others: {mode:o}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_without_the_token_and_a_requeued_one_is_printed_by_listen() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // A message that failed once with a limit of one: a dead letter.
    {
        let store = SqliteStore::open(&path).unwrap();
        let id = AccountId::new("default").unwrap();
        let lease = store.claim(&id, "test", 1, 0).await.unwrap();
        let json = format!(
            r#"{{"message_id":77,"from_user_id":"{}","context_token":"CTX-SECRET-9f","item_list":[{{"type":1,"text_item":{{"text":"poison"}}}}]}}"#,
            sim.user_id()
        );
        let batch = InboundBatch {
            cursor: None,
            messages: vec![InboundMessage {
                message_id: Some(77),
                sender: sim.user_id(),
                context_token: None,
                json,
            }],
            now_ms: 1,
            id_window: 100,
        };
        let key = store.commit_batch(&lease, &batch).await.unwrap().accepted[0].key;
        store
            .record_failure(&lease, key, "handler failed", 1, 2)
            .await
            .unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_wxlink");
    let list = || {
        let mut cmd = std::process::Command::new(bin);
        cmd.current_dir(dir.path())
            .args(["dead-letters", "list", "--store", "s.db"]);
        cmd
    };
    let out = list().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("CTX-SECRET-9f"), "{text}");
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["account"], "default");
    assert_eq!(line["text"], "poison");
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["last_error"], "handler failed");
    let key = line["key"].as_u64().unwrap().to_string();

    let requeue = |key: &str| {
        std::process::Command::new(bin)
            .current_dir(dir.path())
            .args(["dead-letters", "requeue", "--store", "s.db"])
            .args(["--for", "default", key])
            .output()
            .unwrap()
    };
    let missing = requeue("999");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no dead letter with key 999"));
    let requeued = requeue(&key);
    assert!(
        requeued.status.success(),
        "{}",
        String::from_utf8_lossy(&requeued.stderr)
    );
    assert!(list().output().unwrap().stdout.is_empty());

    // The next listener prints it first.
    let child = listen(&sim, dir.path()).spawn().unwrap();
    wait_for_polls(&sim, 1).await;
    let out = interrupt(child).await;
    assert_eq!(texts(&out), ["poison"]);
}

/// Runs `wxlink accounts ARGS…` in `dir` (at most 30 s).
async fn accounts(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = wxlink(dir);
    cmd.arg("accounts").args(args);
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("wxlink accounts did not finish within 30 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_add_list_and_remove_work_on_a_sqlite_file_without_showing_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = "bot-token-that-must-not-be-printed";
    std::fs::write(
        dir.path().join("bot.json"),
        format!(
            r#"{{"token":"{token}","base_url":"http://127.0.0.1:9","account_id":"bot-1@im.bot"}}"#
        ),
    )
    .unwrap();
    let all = |out: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    let added = accounts(dir.path(), &["add", "--store", "s.db", "bot.json"]).await;
    assert!(added.status.success(), "{}", all(&added));
    assert!(!all(&added).contains(token), "{}", all(&added));
    let mode = std::fs::metadata(dir.path().join("s.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the store holds the token");
    // The runners read the account file back from the store.
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let id = AccountId::new("bot-1@im.bot").unwrap();
    let kept = store
        .credentials(&id)
        .await
        .unwrap()
        .expect("an account file");
    let kept: serde_json::Value = serde_json::from_str(kept.expose_secret()).unwrap();
    assert_eq!(kept["token"], token);
    assert_eq!(kept["base_url"], "http://127.0.0.1:9");

    let listed = accounts(dir.path(), &["list", "--store", "s.db"]).await;
    assert!(listed.status.success(), "{}", all(&listed));
    assert!(!all(&listed).contains(token), "{}", all(&listed));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["account"], "bot-1@im.bot");
    assert_eq!(lines[0]["lease_holder"], serde_json::Value::Null);

    // A live lease held by a runner refuses the removal.
    let lease = store
        .claim(&id, "runner-a", 60_000, now_ms())
        .await
        .unwrap();
    let refused = accounts(dir.path(), &["remove", "--store", "s.db", "bot-1@im.bot"]).await;
    assert!(!refused.status.success(), "{}", all(&refused));
    assert!(all(&refused).contains("runner-a"), "{}", all(&refused));
    store.release(&lease).await.unwrap();
    drop(store);

    let removed = accounts(dir.path(), &["remove", "--store", "s.db", "bot-1@im.bot"]).await;
    assert!(removed.status.success(), "{}", all(&removed));
    let listed = accounts(dir.path(), &["list", "--store", "s.db"]).await;
    assert!(listed.status.success(), "{}", all(&listed));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "");
    let again = accounts(dir.path(), &["remove", "--store", "s.db", "bot-1@im.bot"]).await;
    assert!(!again.status.success(), "a second removal finds nothing");
    assert!(
        all(&again).contains("no account bot-1@im.bot"),
        "{}",
        all(&again)
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_store_with_no_account_runs_the_accounts_the_sqlite_file_keeps() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();

    // An empty store and no account: the usual error, and why the store
    // could not stand in.
    let empty = tokio::time::timeout(
        Duration::from_secs(30),
        listen_without_account(dir.path()).output(),
    )
    .await
    .expect("wxlink listen did not give up within 30 s")
    .unwrap();
    assert!(!empty.status.success());
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("keeps no account files"), "{stderr}");

    std::fs::write(
        dir.path().join("bot.json"),
        serde_json::json!({
            "token": sim.token().expose_secret(),
            "base_url": sim.base_url(),
            "cdn_base_url": sim.cdn_base_url(),
            "account_id": "bot-1@im.bot",
        })
        .to_string(),
    )
    .unwrap();
    let added = accounts(dir.path(), &["add", "--store", "s.db", "bot.json"]).await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let child = listen_without_account(dir.path()).spawn().unwrap();
    wait_for_polls(&sim, 1).await;
    sim.inject_message(SimMessage::text(sim.user_id(), "hello").message_id(601));
    wait_for_polls(&sim, polls(&sim) + 2).await;
    let out = interrupt(child).await;
    assert_exit_0(&out);
    assert_eq!(texts(&out), ["hello"]);
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["account"], "bot-1@im.bot");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(sim.token().expose_secret()));

    // The message was journaled and acknowledged under the stored account.
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let id = AccountId::new("bot-1@im.bot").unwrap();
    assert!(store.is_seen(&id, 601).await.unwrap());
    assert!(store.pending(&id, None, 10).await.unwrap().is_empty());
}
