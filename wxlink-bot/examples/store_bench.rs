//! Batches committed per second by `PostgresStore` beside `SqliteStore`.
//!
//! Each batch is what one poll commits: five new messages with ids and
//! context tokens, and a new cursor, fenced by the account's lease. Both
//! stores sync every commit to disk (SQLite `synchronous=FULL`, PostgreSQL
//! with `fsync` on, a throwaway server started from the distribution's
//! binaries on loopback). Two shapes: one account committing in sequence
//! (the latency of one commit), and 16 accounts committing concurrently
//! (throughput across accounts).
//!
//! Then the takeover time on PostgreSQL: runner A holds its share of 64
//! accounts beside runner B, both passing `claim_share` every third of a
//! 900 ms lease; A stops (as after a SIGKILL: no release, no more
//! heartbeats) and the figure is the time from A's last pass until B holds
//! every account, median and max over 7 runs. It is the store's part of a
//! takeover (lease expiry plus one claim interval), without the process
//! start and the first poll.
//!
//! Prints `wxlink-bench <name> <value>` lines (batches/s, and ms for the
//! takeover). Run with
//! `cargo run --release -p wxlink-bot --example store_bench [-- BATCHES]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wxlink_bot::store::{
    AccountId, InboundBatch, InboundMessage, PostgresStore, SqliteStore, Store,
};
use wxlink_proto::ContextToken;

/// One poll's batch for `account`, number `n`.
fn batch(n: u64) -> InboundBatch {
    InboundBatch {
        cursor: Some(format!("cursor-{n}")),
        messages: (0..5)
            .map(|i| InboundMessage {
                message_id: Some(n * 10 + i),
                sender: format!("user{i}@im.wechat"),
                context_token: Some(ContextToken::new(format!("token-{n}-{i}"))),
                json: format!(r#"{{"message_id":{},"text":"hello"}}"#, n * 10 + i),
            })
            .collect(),
        now_ms: 1_000_000,
        id_window: 10_000,
    }
}

/// Commits `batches` batches on each of `accounts` accounts, concurrently
/// across accounts; returns batches per second.
async fn run(store: Arc<dyn Store>, accounts: usize, batches: u64, tag: &str) -> f64 {
    let mut leases = Vec::new();
    for a in 0..accounts {
        let id = AccountId::new(format!("{tag}-{a}@im.bot")).expect("a valid id");
        leases.push(
            store
                .claim(&id, "bench", 3_600_000, 1_000_000)
                .await
                .expect("claim"),
        );
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for lease in leases {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for n in 0..batches {
                let out = store.commit_batch(&lease, &batch(n)).await.expect("commit");
                assert_eq!(out.accepted.len(), 5);
            }
        }));
    }
    for task in tasks {
        task.await.expect("the task runs");
    }
    (accounts as u64 * batches) as f64 / start.elapsed().as_secs_f64()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One takeover on a fresh database: milliseconds from runner A's last
/// claim pass until runner B holds all the accounts.
async fn takeover(server: &wxlink_pgtest::PgServer, run: u64) -> f64 {
    const TTL: Duration = Duration::from_millis(900);
    const ACCOUNTS: u64 = 64;
    let db = server.create_database().expect("a database");
    let store = PostgresStore::connect(db.url().expose())
        .await
        .expect("connect");
    for a in 0..ACCOUNTS {
        let id = AccountId::new(format!("t{a}@im.bot")).expect("a valid id");
        store
            .claim(&id, "setup", 1, 0)
            .await
            .expect("register the account");
    }
    let ttl = TTL.as_millis() as i64;
    let tick = TTL / 3;
    // A few passes of both runners, so that they share the accounts.
    for _ in 0..3 {
        store.claim_share("a", ttl, ttl, now_ms()).await.expect("a");
        store.claim_share("b", ttl, ttl, now_ms()).await.expect("b");
        tokio::time::sleep(tick).await;
    }
    // A's last pass, at a phase that differs per run against B's ticks.
    tokio::time::sleep(tick * (run % 3) as u32 / 3).await;
    store.claim_share("a", ttl, ttl, now_ms()).await.expect("a");
    let died = Instant::now();
    loop {
        let out = store.claim_share("b", ttl, ttl, now_ms()).await.expect("b");
        if out.held == ACCOUNTS {
            return died.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(died.elapsed() < TTL * 10, "B never took A's accounts");
        tokio::time::sleep(tick).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let batches: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("bench.sqlite")).expect("open SQLite"));
    let server = wxlink_pgtest::PgServer::start_durable().expect("a PostgreSQL server");
    let db = server.create_database().expect("a database");
    let pg: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(db.url().expose())
            .await
            .expect("connect"),
    );
    for (name, store) in [("sqlite", sqlite), ("postgres", pg)] {
        let one = run(Arc::clone(&store), 1, batches, "seq").await;
        println!("wxlink-bench store-commit-{name}-1-account {one:.0}");
        let many = run(store, 16, batches / 4, "par").await;
        println!("wxlink-bench store-commit-{name}-16-accounts {many:.0}");
    }
    let mut times = Vec::new();
    for run in 0..7 {
        times.push(takeover(&server, run).await);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "wxlink-bench store-takeover-900ms-lease-median-ms {:.0}",
        times[times.len() / 2]
    );
    println!(
        "wxlink-bench store-takeover-900ms-lease-max-ms {:.0}",
        times[times.len() - 1]
    );
}
