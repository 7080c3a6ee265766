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
//! Prints `wxlink-bench <name> <batches/s>` lines. Run with
//! `cargo run --release -p wxlink-bot --example store_bench [-- BATCHES]`.

use std::sync::Arc;
use std::time::Instant;

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
}
