//! [`PostgresStore`]: the [`Store`] that several runner processes share, on
//! PostgreSQL (feature `postgres`).
//!
//! The schema comes from embedded, versioned migrations applied when the
//! store connects ([`migrate`]). Connections come from a pool
//! (`deadpool-postgres` over `tokio-postgres`); every method is one short
//! transaction.
//!
//! # Fencing
//!
//! A fenced write starts by locking the account's row with `SELECT … FOR
//! UPDATE … WHERE account = $1 AND owner = $2 AND epoch = $3`. No row means
//! the lease was lost, and the method fails with [`Error::is_fenced`]
//! having written nothing. A row means the lease is current and stays so
//! until the transaction ends: a claim by another runner updates that same
//! row, so it waits for the commit and bumps the epoch only afterwards.
//!
//! # Sharing the accounts
//!
//! Beside the trait's per-account [`claim`](Store::claim), runners divide
//! the accounts with [`PostgresStore::claim_share`]: each runner keeps a
//! heartbeat row, and takes free or expired leases with `FOR UPDATE SKIP
//! LOCKED` (never waiting on another runner's claim) up to its fair share,
//! `ceil(accounts / live runners)`. No session-level advisory lock is used:
//! such locks pin a connection each and break behind a pooler in
//! transaction mode.
//!
//! Message ids are 64-bit unsigned and PostgreSQL's `bigint` signed: ids
//! are stored bit-cast, so every id up to `u64::MAX` round-trips exactly.
//! Context tokens and message JSON are bound as parameters, never formatted
//! into SQL, and the connection URL's password never reaches `Debug`.

pub mod migrate;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use wxlink_proto::ContextToken;

use crate::error::Error;

use super::rules::{self, ClaimEpoch, PushWindow};
use super::sql::{
    JOURNAL_COLUMNS, count, db, evict_through, id_from_sql, id_to_sql, key_from_sql, key_to_sql,
    limit_to_sql, throttle_from_sql, throttle_to_sql,
};
use super::{
    AccountCredentials, AccountId, AccountSummary, BudgetKind, BudgetOutcome, CommitOutcome,
    ContextRecord, DeadLetter, FailureOutcome, InboundBatch, JournalEntry, JournalKey, Lease,
    Store, StoreFuture, ThrottleRecord,
};

/// How a [`PostgresStore`] connects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Most connections the pool opens at once (8 by default).
    pub pool_size: usize,
    /// How long a method waits for a free connection (30 s by default).
    pub wait_timeout: Duration,
    /// How long opening one connection may take (10 s by default, unless
    /// the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// How long the server lets a transaction sit idle before it ends the
    /// session (`idle_in_transaction_session_timeout`; 5 s by default,
    /// zero for no limit). A runner frozen inside a transaction (a
    /// SIGSTOP, a long pause) would otherwise keep its account rows locked,
    /// and the claims of the other runners skip locked rows: keep it below
    /// the lease period.
    pub idle_in_transaction_timeout: Duration,
}

impl PostgresOptions {
    /// Sets [`idle_in_transaction_timeout`](Self::idle_in_transaction_timeout).
    pub fn idle_in_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.idle_in_transaction_timeout = timeout;
        self
    }

    /// Sets [`pool_size`](Self::pool_size).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets [`wait_timeout`](Self::wait_timeout).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(5),
        }
    }
}

/// What one [`PostgresStore::claim_share`] call found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareOutcome {
    /// The leases taken by this call (free or expired accounts).
    pub claimed: Vec<Lease>,
    /// Live runners, this one included.
    pub live_runners: u64,
    /// Accounts in the store.
    pub accounts: u64,
    /// `ceil(accounts / live_runners)`: the most this runner should hold.
    pub share: u64,
    /// Unexpired leases this runner holds now, the new ones included.
    pub held: u64,
    /// The next time, after this call, at which another claim may find
    /// more to do: the earliest expiry of a lease another runner holds, or
    /// the moment the runner with the oldest heartbeat goes stale (and the
    /// share grows). `None` when no other runner holds anything.
    pub next_change_ms: Option<i64>,
}

impl ShareOutcome {
    /// How many leases this runner holds beyond its share (a newer runner
    /// joined); it should stop polling and release that many.
    pub fn excess(&self) -> u64 {
        self.held.saturating_sub(self.share)
    }
}

/// The [`Store`] on PostgreSQL, for several runner processes.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `host:port/database`, for `Debug` (no user, no password).
    target: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `host:port/database` of a parsed configuration.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("");
    format!("{host}:{port}/{database}")
}

/// What a URL the driver cannot parse is reported as: the parser's own
/// error may quote the URL, password included, so it is not kept.
const BAD_URL: &str =
    "the PostgreSQL URL is not valid (check its form: postgres://user:password@host:port/database)";

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:
    /// port/database`, or the key-value form), with default
    /// [`PostgresOptions`], and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with explicit options; see [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, Error> {
        // A bad URL is the caller's to fix, not a store failure to retry.
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|_| Error::invalid_store_argument(BAD_URL))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if !options.idle_in_transaction_timeout.is_zero() {
            let ms = options.idle_in_transaction_timeout.as_millis();
            let mut settings = config.get_options().unwrap_or_default().to_owned();
            if !settings.is_empty() {
                settings.push(' ');
            }
            settings.push_str(&format!("-c idle_in_transaction_session_timeout={ms}"));
            config.options(settings);
        }
        if config.get_application_name().is_none() {
            config.application_name("wxlink");
        }
        let target = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(db("build the connection pool"))?;
        let store = Self { pool, target };
        let mut client = store.client("connect to PostgreSQL").await?;
        migrate::migrate(&mut client).await?;
        Ok(store)
    }

    /// A pooled connection.
    async fn client(&self, operation: &'static str) -> Result<Object, Error> {
        self.pool.get().await.map_err(db(operation))
    }

    /// The schema version of the connected database.
    pub async fn schema_version(&self) -> Result<i32, Error> {
        let op = "read the schema version";
        let client = self.client(op).await?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM wxlink_schema_migrations",
                &[],
            )
            .await
            .map_err(db(op))?;
        row.try_get(0).map_err(db(op))
    }

    /// Records that runner `owner` is alive at `now_ms` (first call: that it
    /// started). Runners call this at least every lease period;
    /// [`claim_share`](Self::claim_share) does it too.
    pub async fn heartbeat(&self, owner: &str, now_ms: i64) -> Result<(), Error> {
        let op = "record a heartbeat";
        let client = self.client(op).await?;
        client
            .execute(
                "INSERT INTO wxlink_runners (owner, started_at, heartbeat_at) VALUES ($1, $2, $2) \
                 ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                &[&owner, &now_ms],
            )
            .await
            .map_err(db(op))?;
        Ok(())
    }

    /// Removes runner `owner` from the live runners (a clean stop), so that
    /// the others' shares grow at once.
    pub async fn retire_runner(&self, owner: &str) -> Result<(), Error> {
        let op = "retire a runner";
        let client = self.client(op).await?;
        client
            .execute("DELETE FROM wxlink_runners WHERE owner = $1", &[&owner])
            .await
            .map_err(db(op))?;
        Ok(())
    }

    /// Runners whose heartbeat is newer than `now_ms - stale_after_ms`.
    pub async fn live_runners(&self, now_ms: i64, stale_after_ms: i64) -> Result<u64, Error> {
        let op = "count live runners";
        let client = self.client(op).await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM wxlink_runners WHERE heartbeat_at > $1",
                &[&now_ms.saturating_sub(stale_after_ms)],
            )
            .await
            .map_err(db(op))?;
        Ok(count(row.try_get(0).map_err(db(op))?).into())
    }

    /// In one transaction: records `owner`'s heartbeat, counts the live
    /// runners (heartbeat within `stale_after_ms`) and the accounts, and
    /// claims free or expired accounts with `FOR UPDATE SKIP LOCKED` until
    /// `owner` holds its fair share, `ceil(accounts / live runners)`, each
    /// lease until `now_ms + ttl_ms` with its epoch increased by one.
    ///
    /// Accounts locked by another runner's claim are skipped, not waited
    /// for. The outcome says how many leases `owner` holds beyond its share
    /// ([`ShareOutcome::excess`]) when more runners have joined.
    pub async fn claim_share(
        &self,
        owner: &str,
        ttl_ms: i64,
        stale_after_ms: i64,
        now_ms: i64,
    ) -> Result<ShareOutcome, Error> {
        let op = "claim a share of the accounts";
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(db(op))?;
        tx.execute(
            "INSERT INTO wxlink_runners (owner, started_at, heartbeat_at) VALUES ($1, $2, $2) \
             ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            &[&owner, &now_ms],
        )
        .await
        .map_err(db(op))?;
        let row = tx
            .query_one(
                "SELECT \
                   (SELECT COUNT(*) FROM wxlink_runners WHERE heartbeat_at > $2), \
                   (SELECT COUNT(*) FROM wxlink_accounts), \
                   (SELECT COUNT(*) FROM wxlink_accounts WHERE owner = $1 AND expires_at > $3), \
                   (SELECT MIN(expires_at) FROM wxlink_accounts \
                     WHERE owner IS DISTINCT FROM $1 AND expires_at > $3), \
                   (SELECT MIN(heartbeat_at) FROM wxlink_runners \
                     WHERE owner <> $1 AND heartbeat_at > $2)",
                &[&owner, &now_ms.saturating_sub(stale_after_ms), &now_ms],
            )
            .await
            .map_err(db(op))?;
        let live = u64::from(count(row.try_get(0).map_err(db(op))?)).max(1);
        let accounts = u64::from(count(row.try_get(1).map_err(db(op))?));
        let held = u64::from(count(row.try_get(2).map_err(db(op))?));
        let next_expiry: Option<i64> = row.try_get(3).map_err(db(op))?;
        let oldest_heartbeat: Option<i64> = row.try_get(4).map_err(db(op))?;
        let next_change_ms = [
            next_expiry,
            oldest_heartbeat.map(|h| h.saturating_add(stale_after_ms)),
        ]
        .into_iter()
        .flatten()
        .min();
        let share = accounts.div_ceil(live);
        let want = i64::try_from(share.saturating_sub(held)).unwrap_or(i64::MAX);
        let mut claimed = Vec::new();
        if want > 0 {
            let expires = now_ms.saturating_add(ttl_ms);
            let rows = tx
                .query(
                    "UPDATE wxlink_accounts a \
                     SET owner = $1, epoch = a.epoch + 1, expires_at = $3 \
                     FROM (SELECT account FROM wxlink_accounts WHERE expires_at <= $2 \
                           ORDER BY expires_at, account LIMIT $4 FOR UPDATE SKIP LOCKED) free \
                     WHERE a.account = free.account \
                     RETURNING a.account, a.epoch",
                    &[&owner, &now_ms, &expires, &want],
                )
                .await
                .map_err(db(op))?;
            for row in rows {
                let account: String = row.try_get(0).map_err(db(op))?;
                let epoch: i64 = row.try_get(1).map_err(db(op))?;
                claimed.push(Lease {
                    account: AccountId::new(account)?,
                    owner: owner.to_owned(),
                    epoch: epoch as u64,
                    expires_at_ms: expires,
                });
            }
        }
        tx.commit().await.map_err(db(op))?;
        claimed.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(ShareOutcome {
            held: held + claimed.len() as u64,
            claimed,
            live_runners: live,
            accounts,
            share,
            next_change_ms,
        })
    }
}

/// The account row of a current lease, locked until the transaction ends:
/// `next_key, next_seen, push_started, push_used`. Fails with a fenced
/// error when `lease` is no longer the account's current lease.
async fn fence(
    tx: &deadpool_postgres::Transaction<'_>,
    lease: &Lease,
    operation: &'static str,
) -> Result<tokio_postgres::Row, Error> {
    let Ok(epoch) = i64::try_from(lease.epoch) else {
        return Err(Error::fenced(operation));
    };
    let stmt = tx
        .prepare_cached(
            "SELECT next_key, next_seen, push_started, push_used FROM wxlink_accounts \
             WHERE account = $1 AND owner = $2 AND epoch = $3 FOR UPDATE",
        )
        .await
        .map_err(db(operation))?;
    tx.query_opt(&stmt, &[&lease.account.as_str(), &lease.owner, &epoch])
        .await
        .map_err(db(operation))?
        .ok_or_else(|| Error::fenced(operation))
}

/// Reads a journal row.
fn journal_row(row: &tokio_postgres::Row) -> Result<JournalEntry, tokio_postgres::Error> {
    let replies: Vec<i64> = row.try_get(7)?;
    let mut accepted: Vec<u32> = replies
        .into_iter()
        .filter_map(|r| u32::try_from(r).ok())
        .collect();
    accepted.sort_unstable();
    accepted.dedup();
    Ok(JournalEntry {
        key: JournalKey(row.try_get::<_, i64>(0)? as u64),
        message_id: row.try_get::<_, Option<i64>>(1)?.map(id_from_sql),
        sender: row.try_get(2)?,
        json: row.try_get(3)?,
        received_at_ms: row.try_get(4)?,
        attempts: count(row.try_get(5)?),
        last_error: row.try_get(6)?,
        accepted_replies: accepted,
    })
}

/// Reads the one nullable text column that `sql` selects from the row of
/// `account`: `None` when the account is unknown or the value is NULL.
async fn account_text(
    client: &Object,
    sql: &str,
    account: &AccountId,
    operation: &'static str,
) -> Result<Option<String>, Error> {
    let stmt = client.prepare_cached(sql).await.map_err(db(operation))?;
    let row = client
        .query_opt(&stmt, &[&account.as_str()])
        .await
        .map_err(db(operation))?;
    match row {
        Some(row) => row.try_get(0).map_err(db(operation)),
        None => Ok(None),
    }
}

/// Runs `sql` with `params` through the connection's statement cache.
async fn exec(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// The body of [`Store::commit_batch`], inside the fenced transaction whose
/// account row is `row`.
async fn commit_in(
    tx: &deadpool_postgres::Transaction<'_>,
    row: &tokio_postgres::Row,
    lease: &Lease,
    batch: &InboundBatch,
) -> Result<CommitOutcome, tokio_postgres::Error> {
    let account = lease.account.as_str();
    let mut next_key: i64 = row.try_get(0)?;
    let mut next_seen: i64 = row.try_get(1)?;
    // Every message with an id takes the next place in the id window, in
    // server order, repeats included (they are duplicates).
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    for id in batch.messages.iter().filter_map(|m| m.message_id) {
        next_seen += 1;
        ids.push(id_to_sql(id));
        seqs.push(next_seen);
    }
    let mut fresh: HashSet<i64> = HashSet::new();
    if !ids.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO wxlink_seen_ids (account, id, seq) \
                 SELECT $1, id, seq FROM unnest($2::bigint[], $3::bigint[]) AS t (id, seq) \
                 ON CONFLICT (account, id) DO NOTHING RETURNING id",
            )
            .await?;
        for inserted in tx.query(&stmt, &[&account, &ids, &seqs]).await? {
            fresh.insert(inserted.try_get(0)?);
        }
    }
    let mut outcome = CommitOutcome::default();
    let mut keys = Vec::new();
    let mut message_ids = Vec::new();
    let mut senders = Vec::new();
    let mut jsons = Vec::new();
    let mut tokens: HashMap<&str, &str> = HashMap::new();
    for message in &batch.messages {
        if let Some(id) = message.message_id {
            // The first occurrence of a new id takes it; repeats are
            // duplicates.
            if !fresh.remove(&id_to_sql(id)) {
                outcome.duplicates += 1;
                continue;
            }
        }
        next_key += 1;
        keys.push(next_key);
        message_ids.push(message.message_id.map(id_to_sql));
        senders.push(message.sender.as_str());
        jsons.push(message.json.as_str());
        if let Some(token) = message.context_token.as_ref().filter(|t| !t.is_empty()) {
            tokens.insert(message.sender.as_str(), token.expose_secret());
        }
        outcome.accepted.push(rules::new_entry(
            key_from_sql(next_key),
            message,
            batch.now_ms,
        ));
    }
    let (token_users, token_values): (Vec<&str>, Vec<&str>) = tokens.into_iter().unzip();
    let cursor = batch.cursor.as_deref().filter(|c| !c.is_empty());
    // The statements below are independent; tokio-postgres pipelines them
    // on the one connection, in this order, in one round trip's time.
    let journal = async {
        if keys.is_empty() {
            return Ok(0);
        }
        exec(
            tx,
            "INSERT INTO wxlink_journal (account, key, message_id, sender, json, received_at) \
             SELECT $1, k, m, s, j, $6 \
             FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS t (k, m, s, j)",
            &[
                &account,
                &keys,
                &message_ids,
                &senders,
                &jsons,
                &batch.now_ms,
            ],
        )
        .await
    };
    let contexts = async {
        if token_users.is_empty() {
            return Ok(0);
        }
        exec(
            tx,
            "INSERT INTO wxlink_contexts (account, user_id, token, seen_at) \
             SELECT $1, u, t, $4 FROM unnest($2::text[], $3::text[]) AS x (u, t) \
             ON CONFLICT (account, user_id) \
             DO UPDATE SET token = excluded.token, seen_at = excluded.seen_at",
            &[&account, &token_users, &token_values, &batch.now_ms],
        )
        .await
    };
    let evict = async {
        if ids.is_empty() {
            return Ok(0);
        }
        exec(
            tx,
            "DELETE FROM wxlink_seen_ids WHERE account = $1 AND seq <= $2",
            &[&account, &evict_through(next_seen, batch.id_window)],
        )
        .await
    };
    let counters = async {
        exec(
            tx,
            "UPDATE wxlink_accounts SET next_key = $2, next_seen = $3, \
             cursor = COALESCE($4, cursor) WHERE account = $1",
            &[&account, &next_key, &next_seen, &cursor],
        )
        .await
    };
    futures_util::try_join!(journal, contexts, evict, counters)?;
    Ok(outcome)
}

impl PostgresStore {
    /// Runs the fenced write `body` in a transaction: locks the account row
    /// of `lease` (or fails fenced), runs `body`, commits.
    async fn fenced_write<T>(
        &self,
        lease: &Lease,
        operation: &'static str,
        body: impl AsyncFnOnce(
            &deadpool_postgres::Transaction<'_>,
            &tokio_postgres::Row,
        ) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, Error> {
        let mut client = self.client(operation).await?;
        let tx = client.transaction().await.map_err(db(operation))?;
        let row = fence(&tx, lease, operation).await?;
        let out = body(&tx, &row).await.map_err(db(operation))?;
        tx.commit().await.map_err(db(operation))?;
        Ok(out)
    }
}

impl Store for PostgresStore {
    fn claim<'a>(
        &'a self,
        account: &'a AccountId,
        owner: &'a str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let op = "claim the account";
            let mut client = self.client(op).await?;
            let tx = client.transaction().await.map_err(db(op))?;
            exec(
                &tx,
                "INSERT INTO wxlink_accounts (account) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&account.as_str()],
            )
            .await
            .map_err(db(op))?;
            let row = tx
                .query_one(
                    "SELECT owner, epoch, expires_at FROM wxlink_accounts \
                     WHERE account = $1 FOR UPDATE",
                    &[&account.as_str()],
                )
                .await
                .map_err(db(op))?;
            let current: Option<String> = row.try_get(0).map_err(db(op))?;
            let epoch: i64 = row.try_get(1).map_err(db(op))?;
            let expires: i64 = row.try_get(2).map_err(db(op))?;
            let epoch = match rules::claim_epoch(current.as_deref(), expires, owner, now_ms)? {
                ClaimEpoch::Keep => epoch,
                ClaimEpoch::Bump => epoch + 1,
            };
            let expires_at_ms = now_ms.saturating_add(ttl_ms);
            exec(
                &tx,
                "UPDATE wxlink_accounts SET owner = $2, epoch = $3, expires_at = $4 \
                 WHERE account = $1",
                &[&account.as_str(), &owner, &epoch, &expires_at_ms],
            )
            .await
            .map_err(db(op))?;
            tx.commit().await.map_err(db(op))?;
            Ok(Lease {
                account: account.clone(),
                owner: owner.to_owned(),
                epoch: epoch as u64,
                expires_at_ms,
            })
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl_ms: i64, now_ms: i64) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let expires_at_ms = now_ms.saturating_add(ttl_ms);
            self.fenced_write(lease, "renew the lease", async |tx, _| {
                exec(
                    tx,
                    "UPDATE wxlink_accounts SET expires_at = $2 WHERE account = $1",
                    &[&lease.account.as_str(), &expires_at_ms],
                )
                .await
            })
            .await?;
            Ok(Lease {
                expires_at_ms,
                ..lease.clone()
            })
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.fenced_write(lease, "release the lease", async |tx, _| {
                exec(
                    tx,
                    "UPDATE wxlink_accounts SET expires_at = 0 WHERE account = $1",
                    &[&lease.account.as_str()],
                )
                .await
            })
            .await?;
            Ok(())
        })
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<AccountSummary>> {
        Box::pin(async move {
            let op = "list accounts";
            let client = self.client(op).await?;
            // COLLATE "C" orders by bytes, as AccountId's Ord does.
            let rows = client
                .query(
                    "SELECT a.account, a.owner, a.epoch, a.expires_at, \
                     (SELECT COUNT(*) FROM wxlink_journal j WHERE j.account = a.account), \
                     (SELECT COUNT(*) FROM wxlink_dead_letters d WHERE d.account = a.account) \
                     FROM wxlink_accounts a ORDER BY a.account COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(db(op))?;
            let mut list = Vec::with_capacity(rows.len());
            for row in rows {
                list.push(AccountSummary {
                    account: AccountId::new(row.try_get::<_, String>(0).map_err(db(op))?)?,
                    owner: row.try_get(1).map_err(db(op))?,
                    epoch: row.try_get::<_, i64>(2).map_err(db(op))? as u64,
                    expires_at_ms: row.try_get(3).map_err(db(op))?,
                    pending: row.try_get::<_, i64>(4).map_err(db(op))?.max(0) as u64,
                    dead_letters: row.try_get::<_, i64>(5).map_err(db(op))?.max(0) as u64,
                });
            }
            Ok(list)
        })
    }

    fn cursor<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let op = "read the cursor";
            let client = self.client(op).await?;
            let cursor = account_text(
                &client,
                "SELECT cursor FROM wxlink_accounts WHERE account = $1",
                account,
                op,
            )
            .await?;
            Ok(cursor.filter(|c| !c.is_empty()))
        })
    }

    fn commit_batch<'a>(
        &'a self,
        lease: &'a Lease,
        batch: &'a InboundBatch,
    ) -> StoreFuture<'a, CommitOutcome> {
        Box::pin(async move {
            self.fenced_write(lease, "commit batch", async |tx, row| {
                commit_in(tx, row, lease, batch).await
            })
            .await
        })
    }

    fn pending<'a>(
        &'a self,
        account: &'a AccountId,
        after: Option<JournalKey>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<JournalEntry>> {
        Box::pin(async move {
            let op = "read the journal";
            let client = self.client(op).await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {JOURNAL_COLUMNS} FROM wxlink_journal \
                     WHERE account = $1 AND key > $2 ORDER BY key LIMIT $3"
                ))
                .await
                .map_err(db(op))?;
            let after = after.map_or(0, key_to_sql);
            let limit = limit_to_sql(limit);
            let rows = client
                .query(&stmt, &[&account.as_str(), &after, &limit])
                .await
                .map_err(db(op))?;
            rows.iter()
                .map(journal_row)
                .collect::<Result<Vec<_>, _>>()
                .map_err(db(op))
        })
    }

    fn acknowledge<'a>(&'a self, lease: &'a Lease, key: JournalKey) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self
                .fenced_write(lease, "acknowledge", async |tx, _| {
                    exec(
                        tx,
                        "DELETE FROM wxlink_journal WHERE account = $1 AND key = $2",
                        &[&lease.account.as_str(), &key_to_sql(key)],
                    )
                    .await
                })
                .await?;
            Ok(n > 0)
        })
    }

    fn record_failure<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        error: &'a str,
        max_attempts: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, FailureOutcome> {
        Box::pin(async move {
            let account = lease.account.as_str();
            let key = key_to_sql(key);
            self.fenced_write(lease, "record a failure", async |tx, _| {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE wxlink_journal SET attempts = attempts + 1, last_error = $3 \
                         WHERE account = $1 AND key = $2 RETURNING attempts",
                    )
                    .await?;
                let Some(row) = tx.query_opt(&stmt, &[&account, &key, &error]).await? else {
                    return Ok(FailureOutcome::Missing);
                };
                let outcome = rules::after_failure(count(row.try_get(0)?), max_attempts);
                if let FailureOutcome::Retry { .. } = outcome {
                    return Ok(outcome);
                }
                exec(
                    tx,
                    "INSERT INTO wxlink_dead_letters \
                     (account, key, message_id, sender, json, received_at, failed_at, attempts, last_error) \
                     SELECT account, key, message_id, sender, json, received_at, $3, attempts, $4 \
                     FROM wxlink_journal WHERE account = $1 AND key = $2 \
                     ON CONFLICT (account, key) DO UPDATE SET message_id = excluded.message_id, \
                       sender = excluded.sender, json = excluded.json, \
                       received_at = excluded.received_at, failed_at = excluded.failed_at, \
                       attempts = excluded.attempts, last_error = excluded.last_error",
                    &[&account, &key, &now_ms, &error],
                )
                .await?;
                exec(
                    tx,
                    "DELETE FROM wxlink_journal WHERE account = $1 AND key = $2",
                    &[&account, &key],
                )
                .await?;
                Ok(outcome)
            })
            .await
        })
    }

    fn record_reply<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        index: u32,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let index = i64::from(index);
            self.fenced_write(lease, "record a reply", async |tx, _| {
                exec(
                    tx,
                    "UPDATE wxlink_journal SET replies = array_append(replies, $3) \
                     WHERE account = $1 AND key = $2 AND NOT ($3 = ANY (replies))",
                    &[&lease.account.as_str(), &key_to_sql(key), &index],
                )
                .await
            })
            .await?;
            Ok(())
        })
    }

    fn is_seen<'a>(&'a self, account: &'a AccountId, message_id: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let op = "check an id";
            let client = self.client(op).await?;
            let row = client
                .query_opt(
                    "SELECT 1 FROM wxlink_seen_ids WHERE account = $1 AND id = $2",
                    &[&account.as_str(), &id_to_sql(message_id)],
                )
                .await
                .map_err(db(op))?;
            Ok(row.is_some())
        })
    }

    fn dead_letters<'a>(
        &'a self,
        account: &'a AccountId,
        limit: usize,
    ) -> StoreFuture<'a, Vec<DeadLetter>> {
        Box::pin(async move {
            let op = "list dead letters";
            let client = self.client(op).await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    "SELECT key, message_id, sender, json, received_at, failed_at, attempts, \
                     last_error FROM wxlink_dead_letters WHERE account = $1 ORDER BY key LIMIT $2",
                    &[&account.as_str(), &limit],
                )
                .await
                .map_err(db(op))?;
            let read = |row: &tokio_postgres::Row| -> Result<DeadLetter, tokio_postgres::Error> {
                Ok(DeadLetter {
                    key: JournalKey(row.try_get::<_, i64>(0)? as u64),
                    message_id: row.try_get::<_, Option<i64>>(1)?.map(id_from_sql),
                    sender: row.try_get(2)?,
                    json: row.try_get(3)?,
                    received_at_ms: row.try_get(4)?,
                    failed_at_ms: row.try_get(5)?,
                    attempts: count(row.try_get(6)?),
                    last_error: row.try_get(7)?,
                })
            };
            rows.iter()
                .map(read)
                .collect::<Result<Vec<_>, _>>()
                .map_err(db(op))
        })
    }

    fn requeue<'a>(&'a self, account: &'a AccountId, key: JournalKey) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let op = "requeue a dead letter";
            let mut client = self.client(op).await?;
            let tx = client.transaction().await.map_err(db(op))?;
            let params: [&(dyn ToSql + Sync); 2] = [&account.as_str(), &key_to_sql(key)];
            let moved = exec(
                &tx,
                "INSERT INTO wxlink_journal (account, key, message_id, sender, json, received_at) \
                 SELECT account, key, message_id, sender, json, received_at \
                 FROM wxlink_dead_letters WHERE account = $1 AND key = $2 \
                 ON CONFLICT (account, key) DO NOTHING",
                &params,
            )
            .await
            .map_err(db(op))?;
            exec(
                &tx,
                "DELETE FROM wxlink_dead_letters WHERE account = $1 AND key = $2",
                &params,
            )
            .await
            .map_err(db(op))?;
            tx.commit().await.map_err(db(op))?;
            Ok(moved > 0)
        })
    }

    fn context<'a>(
        &'a self,
        account: &'a AccountId,
        user: &'a str,
    ) -> StoreFuture<'a, Option<ContextRecord>> {
        Box::pin(async move {
            let op = "read a context token";
            let client = self.client(op).await?;
            let stmt = client
                .prepare_cached(
                    "SELECT token, seen_at FROM wxlink_contexts WHERE account = $1 AND user_id = $2",
                )
                .await
                .map_err(db(op))?;
            let row = client
                .query_opt(&stmt, &[&account.as_str(), &user])
                .await
                .map_err(db(op))?;
            match row {
                Some(row) => Ok(Some(ContextRecord {
                    token: ContextToken::new(row.try_get::<_, String>(0).map_err(db(op))?),
                    seen_at_ms: row.try_get(1).map_err(db(op))?,
                })),
                None => Ok(None),
            }
        })
    }

    fn spend_budget<'a>(
        &'a self,
        lease: &'a Lease,
        kind: &'a BudgetKind,
        count_wanted: u32,
        limit: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, BudgetOutcome> {
        Box::pin(async move {
            let account = lease.account.as_str();
            self.fenced_write(lease, "spend budget", async |tx, row| match kind {
                BudgetKind::Reply { key } => {
                    let stmt = tx
                        .prepare_cached(
                            "SELECT budget_used FROM wxlink_journal WHERE account = $1 AND key = $2",
                        )
                        .await?;
                    let key = key_to_sql(*key);
                    // A message no longer journaled has no row, and no
                    // budget left.
                    let used = match tx.query_opt(&stmt, &[&account, &key]).await? {
                        Some(r) => Some(count(r.try_get(0)?)),
                        None => None,
                    };
                    let (outcome, save) = rules::spend_reply(used, count_wanted, limit);
                    if let Some(n) = save {
                        exec(
                            tx,
                            "UPDATE wxlink_journal SET budget_used = $3 \
                             WHERE account = $1 AND key = $2",
                            &[&account, &key, &i64::from(n)],
                        )
                        .await?;
                    }
                    Ok(outcome)
                }
                BudgetKind::Push { window_ms } => {
                    let stored = PushWindow {
                        started_at_ms: row.try_get(2)?,
                        used: count(row.try_get(3)?),
                    };
                    let (outcome, save) =
                        rules::spend_push(stored, *window_ms, count_wanted, limit, now_ms);
                    if let Some(window) = save {
                        exec(
                            tx,
                            "UPDATE wxlink_accounts SET push_started = $2, push_used = $3 \
                             WHERE account = $1",
                            &[&account, &window.started_at_ms, &i64::from(window.used)],
                        )
                        .await?;
                    }
                    Ok(outcome)
                }
            })
            .await
        })
    }

    fn throttle<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<ThrottleRecord>> {
        Box::pin(async move {
            let op = "read the throttle state";
            let client = self.client(op).await?;
            let row = client
                .query_opt(
                    "SELECT throttle_since, throttle_probe, throttle_failed FROM wxlink_accounts \
                     WHERE account = $1",
                    &[&account.as_str()],
                )
                .await
                .map_err(db(op))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let since: Option<i64> = row.try_get(0).map_err(db(op))?;
            let probe: Option<i64> = row.try_get(1).map_err(db(op))?;
            let failed: Option<i64> = row.try_get(2).map_err(db(op))?;
            Ok(throttle_from_sql((since, probe, failed)))
        })
    }

    fn set_throttle<'a>(
        &'a self,
        lease: &'a Lease,
        record: Option<ThrottleRecord>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (since, probe, failed) = throttle_to_sql(record);
            self.fenced_write(lease, "save the throttle state", async |tx, _| {
                exec(
                    tx,
                    "UPDATE wxlink_accounts SET throttle_since = $2, throttle_probe = $3, \
                     throttle_failed = $4 WHERE account = $1",
                    &[&lease.account.as_str(), &since, &probe, &failed],
                )
                .await
            })
            .await?;
            Ok(())
        })
    }

    fn put_credentials<'a>(
        &'a self,
        account: &'a AccountId,
        credentials: &'a AccountCredentials,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let op = "store an account";
            let client = self.client(op).await?;
            client
                .execute(
                    "INSERT INTO wxlink_accounts (account, credentials) VALUES ($1, $2) \
                     ON CONFLICT (account) DO UPDATE SET credentials = excluded.credentials",
                    &[&account.as_str(), &credentials.expose_secret()],
                )
                .await
                .map_err(db(op))?;
            Ok(())
        })
    }

    fn credentials<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> StoreFuture<'a, Option<AccountCredentials>> {
        Box::pin(async move {
            let op = "read an account";
            let client = self.client(op).await?;
            let json = account_text(
                &client,
                "SELECT credentials FROM wxlink_accounts WHERE account = $1",
                account,
                op,
            )
            .await?;
            Ok(json.map(AccountCredentials::new))
        })
    }

    fn remove_account<'a>(&'a self, account: &'a AccountId, now_ms: i64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let op = "remove an account";
            let mut client = self.client(op).await?;
            let tx = client.transaction().await.map_err(db(op))?;
            let row = tx
                .query_opt(
                    "SELECT owner, expires_at FROM wxlink_accounts WHERE account = $1 FOR UPDATE",
                    &[&account.as_str()],
                )
                .await
                .map_err(db(op))?;
            let Some(row) = row else {
                return Ok(false);
            };
            let owner: Option<String> = row.try_get(0).map_err(db(op))?;
            let expires: i64 = row.try_get(1).map_err(db(op))?;
            rules::check_removable(owner.as_deref(), expires, now_ms)?;
            tx.execute(
                "DELETE FROM wxlink_accounts WHERE account = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(db(op))?;
            tx.commit().await.map_err(db(op))?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_a_bad_argument_that_hides_the_password() {
        let err = PostgresStore::connect("postgres://bot:hunter2@127.0.0.1:notaport/db")
            .await
            .expect_err("the port does not parse");
        assert!(err.is_invalid() && err.is_store() && !err.is_retryable());
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("PostgreSQL URL is not valid"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
