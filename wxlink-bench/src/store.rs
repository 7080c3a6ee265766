//! `wxlink-bench store`: batches committed per second by `PostgresStore`
//! beside `SqliteStore`, and the store's part of a takeover.
//!
//! Each batch is what one poll commits: five new messages with ids and
//! context tokens, and a new cursor, fenced by the account's lease. Both
//! stores sync every commit to disk (SQLite `synchronous=FULL`, PostgreSQL
//! with `fsync` on, a throwaway server started from the distribution's
//! binaries on loopback by wxlink-pgtest). Two shapes: one account
//! committing in sequence (the latency of one commit), and 16 accounts
//! committing concurrently (throughput across accounts).
//!
//! Then the takeover time on PostgreSQL: runner A holds its share of 64
//! accounts beside runner B, both passing `claim_share` every third of the
//! lease; A stops as after a SIGKILL (no release, no more heartbeats) and
//! the figure is the time from A's last pass until B holds every account,
//! median and max over `--runs` runs. It is the store's part of a
//! takeover (lease expiry plus one claim interval), without the process
//! start and the first poll.
//!
//! Without PostgreSQL server binaries the PostgreSQL rows have no value
//! and a note says why; the SQLite rows are still measured.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wxlink_bot::store::{
    AccountId, InboundBatch, InboundMessage, PostgresStore, SqliteStore, Store,
};
use wxlink_proto::ContextToken;

use crate::report::{self, Row};

/// Accounts in each takeover run.
const TAKEOVER_ACCOUNTS: u64 = 64;

/// Concurrent accounts in the throughput shape.
const PARALLEL_ACCOUNTS: usize = 16;

/// The flags of `wxlink-bench store`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Batches committed by the one account (the 16 accounts commit a
    /// quarter of this each).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(4..))]
    pub batches: u64,
    /// Takeover runs; the median and the maximum are reported.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// The lease period of the takeover runs, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(30..=60_000))]
    pub lease_ttl_ms: u64,
}

impl Args {
    /// The command line that reproduces these figures.
    fn command(&self) -> String {
        format!(
            "wxlink-bench store --batches {} --runs {} --lease-ttl-ms {}",
            self.batches, self.runs, self.lease_ttl_ms
        )
    }
}

/// Runs the measurement and prints its rows.
pub fn run(args: &Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    for row in rt.block_on(measure(args))? {
        row.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// The row names, so that the suite and this module agree on them.
pub fn commit_row_name(store: &str, shape: &str) -> String {
    format!("store commits, {store}, {shape}")
}

/// The name of a takeover row: `what` is `median` or `max`.
pub fn takeover_row_name(what: &str, ttl_ms: u64, runs: u64) -> String {
    format!("store takeover after a runner stops, {ttl_ms} ms lease, {what} of {runs}")
}

/// Takes every figure; a PostgreSQL server that cannot be had leaves its
/// rows without a value.
async fn measure(args: &Args) -> Result<Vec<Row>> {
    let command = args.command();
    let one = "1 account in sequence".to_owned();
    let many = format!("{PARALLEL_ACCOUNTS} accounts concurrently");
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("bench.sqlite")).context("cannot open SQLite")?);
    eprintln!("store: SQLite, {} batches", args.batches);
    let sqlite_one = commits(Arc::clone(&sqlite), 1, args.batches, "seq").await?;
    let sqlite_many = commits(sqlite, PARALLEL_ACCOUNTS, args.batches / 4, "par").await?;
    let mut rows = vec![
        Row::new(commit_row_name("SQLite", &one), sqlite_one, "batches/s").command(&command),
        Row::new(commit_row_name("SQLite", &many), sqlite_many, "batches/s").command(&command),
    ];
    let missing = |rows: &mut Vec<Row>, why: &str| {
        for name in [
            commit_row_name("PostgreSQL", &one),
            commit_row_name("PostgreSQL", &many),
        ] {
            rows.push(
                Row::new(name, f64::NAN, "batches/s")
                    .label(why)
                    .command(&command),
            );
        }
        for what in ["median", "max"] {
            rows.push(
                Row::new(
                    takeover_row_name(what, args.lease_ttl_ms, args.runs),
                    f64::NAN,
                    "ms",
                )
                .label(why)
                .command(&command),
            );
        }
    };
    let server = match wxlink_pgtest::PgServer::start_durable() {
        Ok(server) => server,
        Err(err @ wxlink_pgtest::PgTestError::NoBinaries { .. }) => {
            report::note(&format!("store: no PostgreSQL figures: {err}"));
            missing(&mut rows, "no PostgreSQL binaries");
            return Ok(rows);
        }
        Err(err) => return Err(err).context("cannot start a throwaway PostgreSQL server"),
    };
    let db = server
        .create_database()
        .context("cannot create a database")?;
    let pg: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(db.url().expose())
            .await
            .context("cannot connect to the throwaway PostgreSQL")?,
    );
    eprintln!("store: PostgreSQL, {} batches", args.batches);
    let pg_one = commits(Arc::clone(&pg), 1, args.batches, "seq").await?;
    let pg_many = commits(pg, PARALLEL_ACCOUNTS, args.batches / 4, "par").await?;
    rows.push(
        Row::new(commit_row_name("PostgreSQL", &one), pg_one, "batches/s")
            .against(sqlite_one, "batches/s", "SQLite")
            .command(&command),
    );
    rows.push(
        Row::new(commit_row_name("PostgreSQL", &many), pg_many, "batches/s")
            .against(sqlite_many, "batches/s", "SQLite")
            .command(&command),
    );
    let ttl = Duration::from_millis(args.lease_ttl_ms);
    let mut times = Vec::new();
    for run in 0..args.runs {
        let ms = takeover(&server, ttl, run).await?;
        eprintln!(
            "store: takeover run {} of {}: {ms:.0} ms",
            run + 1,
            args.runs
        );
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let max = times.last().copied().unwrap_or(f64::NAN);
    for (what, value) in [("median", median), ("max", max)] {
        rows.push(
            Row::new(
                takeover_row_name(what, args.lease_ttl_ms, args.runs),
                value,
                "ms",
            )
            .against(args.lease_ttl_ms as f64, "ms", "lease")
            .command(&command),
        );
    }
    Ok(rows)
}

/// One poll's batch, number `n`.
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
async fn commits(store: Arc<dyn Store>, accounts: usize, batches: u64, tag: &str) -> Result<f64> {
    let mut leases = Vec::new();
    for a in 0..accounts {
        let id = AccountId::new(format!("{tag}-{a}@im.bot"))?;
        leases.push(store.claim(&id, "bench", 3_600_000, 1_000_000).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for lease in leases {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for n in 0..batches {
                let out = store.commit_batch(&lease, &batch(n)).await?;
                if out.accepted.len() != 5 {
                    bail!("batch {n} accepted {} of 5 messages", out.accepted.len());
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a commit task panicked")??;
    }
    Ok((accounts as u64 * batches) as f64 / start.elapsed().as_secs_f64())
}

/// Milliseconds since the epoch, as the store's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One takeover on a fresh database: milliseconds from runner A's last
/// claim pass until runner B holds all the accounts.
async fn takeover(server: &wxlink_pgtest::PgServer, ttl: Duration, run: u64) -> Result<f64> {
    let db = server
        .create_database()
        .context("cannot create a database")?;
    let store = PostgresStore::connect(db.url().expose()).await?;
    for a in 0..TAKEOVER_ACCOUNTS {
        let id = AccountId::new(format!("t{a}@im.bot"))?;
        store.claim(&id, "setup", 1, 0).await?;
    }
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let tick = ttl / 3;
    // A few passes of both runners, so that they share the accounts.
    for _ in 0..3 {
        store.claim_share("a", ttl_ms, ttl_ms, now_ms()).await?;
        store.claim_share("b", ttl_ms, ttl_ms, now_ms()).await?;
        tokio::time::sleep(tick).await;
    }
    // A's last pass; B's passes then come at a phase against it that
    // differs per run (0, 1/3 or 2/3 of a tick), as two runners' clocks do.
    store.claim_share("a", ttl_ms, ttl_ms, now_ms()).await?;
    let died = Instant::now();
    let phase = u32::try_from(run % 3).unwrap_or(0);
    tokio::time::sleep(tick * phase / 3).await;
    loop {
        let out = store.claim_share("b", ttl_ms, ttl_ms, now_ms()).await?;
        if out.held == TAKEOVER_ACCOUNTS {
            return Ok(died.elapsed().as_secs_f64() * 1000.0);
        }
        if died.elapsed() > ttl * 10 {
            bail!(
                "runner B held {} of {TAKEOVER_ACCOUNTS} accounts ten lease periods after A stopped",
                out.held
            );
        }
        tokio::time::sleep(tick).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_takeover_row_names_its_lease_and_its_runs() {
        let name = takeover_row_name("median", 900, 5);
        assert!(name.contains("900 ms lease"), "{name}");
        assert!(name.contains("median of 5"), "{name}");
    }

    #[tokio::test]
    async fn sqlite_commits_store_every_message_of_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("t.sqlite")).unwrap());
        let rate = commits(Arc::clone(&store), 2, 4, "t").await.unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
        // A batch committed again is all duplicates: the first commits
        // really stored its five message ids.
        let id = AccountId::new("t-0@im.bot").unwrap();
        let lease = store
            .claim(&id, "bench", 3_600_000, 1_000_000)
            .await
            .unwrap();
        let again = store.commit_batch(&lease, &batch(3)).await.unwrap();
        assert!(again.accepted.is_empty(), "{}", again.accepted.len());
        assert_eq!(again.duplicates, 5);
    }
}
