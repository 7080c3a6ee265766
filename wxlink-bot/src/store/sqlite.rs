//! [`SqliteStore`]: the embedded, crash-safe [`Store`]: every account of a
//! process in one SQLite file.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a committed
//! transaction survives a crash or a power cut. Writes run in `BEGIN
//! IMMEDIATE` transactions that check the lease fence first, so two
//! processes sharing the file cannot interleave a fence check and a write.
//! The file is created with mode 0600 (on Unix): it holds context tokens.
//! The schema carries its version in `PRAGMA user_version`; an older file
//! is migrated in place (version 2 added the account files of `wxlink
//! accounts`), and a file written by a newer version of this crate is
//! refused instead of guessed at.
//!
//! Message ids are 64-bit unsigned and SQLite integers 64-bit signed: ids
//! are stored bit-cast to `i64` and cast back, so every id up to `u64::MAX`
//! round-trips exactly.
//!
//! Each call runs on tokio's blocking pool behind one connection.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use wxlink_proto::ContextToken;

use crate::error::Error;

use super::rules::{self, ClaimEpoch, PushWindow};
use super::sql::{
    JOURNAL_COLUMNS, ThrottleColumns, count, db, evict_through, id_from_sql, id_to_sql,
    key_from_sql, key_to_sql, limit_to_sql, throttle_from_sql, throttle_to_sql,
};
use super::{
    AccountCredentials, AccountId, AccountSummary, BudgetKind, BudgetOutcome, CommitOutcome,
    ContextRecord, DeadLetter, FailureOutcome, InboundBatch, JournalEntry, JournalKey, Lease,
    Store, StoreFuture, ThrottleRecord,
};

/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 2;

/// The steps from an empty file to [`SCHEMA_VERSION`]: step `n` brings a
/// file at version `n` to version `n + 1`.
const MIGRATIONS: [&str; 2] = [SCHEMA_V1, ADD_CREDENTIALS];

/// Version 2: the account file (JSON with the bot token) that `wxlink
/// accounts add` keeps for the runners; NULL for accounts only claimed.
const ADD_CREDENTIALS: &str = "ALTER TABLE accounts ADD COLUMN credentials TEXT;";

/// The version 1 schema.
const SCHEMA_V1: &str = "
CREATE TABLE accounts (
    account         TEXT PRIMARY KEY,
    owner           TEXT,
    epoch           INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER NOT NULL DEFAULT 0,
    cursor          TEXT,
    next_key        INTEGER NOT NULL DEFAULT 0,
    next_seen       INTEGER NOT NULL DEFAULT 0,
    push_started    INTEGER NOT NULL DEFAULT 0,
    push_used       INTEGER NOT NULL DEFAULT 0,
    throttle_since  INTEGER,
    throttle_probe  INTEGER,
    throttle_failed INTEGER
) WITHOUT ROWID;
CREATE TABLE journal (
    account     TEXT NOT NULL,
    key         INTEGER NOT NULL,
    message_id  INTEGER,
    sender      TEXT NOT NULL,
    json        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    replies     TEXT NOT NULL DEFAULT '',
    budget_used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, key)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
    account     TEXT NOT NULL,
    key         INTEGER NOT NULL,
    message_id  INTEGER,
    sender      TEXT NOT NULL,
    json        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    failed_at   INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT NOT NULL,
    PRIMARY KEY (account, key)
) WITHOUT ROWID;
CREATE TABLE seen_ids (
    account TEXT NOT NULL,
    id      INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;
CREATE INDEX seen_ids_by_seq ON seen_ids (account, seq);
CREATE TABLE contexts (
    account TEXT NOT NULL,
    user    TEXT NOT NULL,
    token   TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (account, user)
) WITHOUT ROWID;
";

/// A [`Store`] in one SQLite file (bundled SQLite; no system library).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// Reply indexes as stored: ascending, comma-separated.
fn replies_to_sql(replies: &[u32]) -> String {
    replies
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reply indexes read back; unreadable parts are skipped.
fn replies_from_sql(text: &str) -> Vec<u32> {
    let mut list: Vec<u32> = text
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    list.sort_unstable();
    list.dedup();
    list
}

/// Creates `path` with mode 0600 if it does not exist, and takes group and
/// world access away if it does.
fn prepare_file(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::store_with("create the database file", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::store_with("read the database file mode", e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::store_with("restrict the database file mode", e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the store at `path`, creating or
    /// checking the schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        prepare_file(path)?;
        let conn = Connection::open(path).map_err(db("open the database"))?;
        Self::from_connection(conn)
    }

    /// A store in a private in-memory database (lost on drop); for tests.
    pub fn open_in_memory() -> Result<Self, Error> {
        let conn = Connection::open_in_memory().map_err(db("open the database"))?;
        Self::from_connection(conn)
    }

    /// Configures the connection and brings the schema to the current
    /// version.
    fn from_connection(mut conn: Connection) -> Result<Self, Error> {
        // WAL keeps readers off the writer's back and makes each commit one
        // append; FULL syncs the WAL on every commit, so a commit that
        // returned is on disk.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(db("enable WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db("set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db("set the busy timeout"))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("create the schema"))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db("read the schema version"))?;
        if !(0..=SCHEMA_VERSION).contains(&version) {
            return Err(Error::newer_schema());
        }
        for step in MIGRATIONS
            .iter()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(step).map_err(db("migrate the schema"))?;
        }
        if version != SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(db("migrate the schema"))?;
        }
        tx.commit().map_err(db("create the schema"))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    fn run<T, F>(&self, operation: &'static str, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = conn
                    .lock()
                    .map_err(|_| Error::store("lock the database connection"))?;
                f(&mut conn)
            })
            .await
            .map_err(|e| Error::store_with(operation, e))?
        })
    }

    /// Runs `f` in an immediate transaction after checking the lease fence.
    fn fenced<T, F>(&self, lease: &Lease, operation: &'static str, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        let lease = lease.clone();
        self.run(operation, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(operation))?;
            check_fence(&tx, &lease, operation)?;
            let out = f(&tx)?;
            tx.commit().map_err(db(operation))?;
            Ok(out)
        })
    }
}

/// Fails with a fenced error unless `lease` is the account's current lease.
fn check_fence(tx: &Transaction<'_>, lease: &Lease, operation: &'static str) -> Result<(), Error> {
    let row: Option<(Option<String>, i64)> = tx
        .query_row(
            "SELECT owner, epoch FROM accounts WHERE account = ?1",
            [lease.account.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db(operation))?;
    match row {
        Some((Some(owner), epoch)) if owner == lease.owner && epoch as u64 == lease.epoch => Ok(()),
        _ => Err(Error::fenced(operation)),
    }
}

/// Reads a journal row.
fn journal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    let replies: String = r.get(7)?;
    Ok(JournalEntry {
        key: JournalKey(r.get::<_, i64>(0)? as u64),
        message_id: r.get::<_, Option<i64>>(1)?.map(id_from_sql),
        sender: r.get(2)?,
        json: r.get(3)?,
        received_at_ms: r.get(4)?,
        attempts: r.get::<_, i64>(5)?.clamp(0, i64::from(u32::MAX)) as u32,
        last_error: r.get(6)?,
        accepted_replies: replies_from_sql(&replies),
    })
}

/// Reads the one nullable text column that `sql` selects from the row of
/// `account`: `None` when the account is unknown or the value is NULL.
fn account_text(
    conn: &Connection,
    sql: &str,
    account: &AccountId,
    operation: &'static str,
) -> Result<Option<String>, Error> {
    let value: Option<Option<String>> = conn
        .query_row(sql, [account.as_str()], |r| r.get(0))
        .optional()
        .map_err(db(operation))?;
    Ok(value.flatten())
}

/// The body of [`Store::commit_batch`], inside the fenced transaction.
fn commit_in(
    tx: &Transaction<'_>,
    lease: &Lease,
    batch: &InboundBatch,
) -> rusqlite::Result<CommitOutcome> {
    let account = lease.account.as_str();
    let (mut next_key, mut next_seen): (i64, i64) = tx.query_row(
        "SELECT next_key, next_seen FROM accounts WHERE account = ?1",
        [account],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut outcome = CommitOutcome::default();
    {
        let mut seen = tx.prepare_cached(
            "INSERT OR IGNORE INTO seen_ids (account, id, seq) VALUES (?1, ?2, ?3)",
        )?;
        let mut journal = tx.prepare_cached(
            "INSERT INTO journal (account, key, message_id, sender, json, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut context = tx.prepare_cached(
            "INSERT INTO contexts (account, user, token, seen_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (account, user) DO UPDATE SET token = excluded.token, seen_at = excluded.seen_at",
        )?;
        for message in &batch.messages {
            if let Some(id) = message.message_id {
                next_seen += 1;
                if seen.execute(params![account, id_to_sql(id), next_seen])? == 0 {
                    outcome.duplicates += 1;
                    continue;
                }
            }
            next_key += 1;
            journal.execute(params![
                account,
                next_key,
                message.message_id.map(id_to_sql),
                message.sender,
                message.json,
                batch.now_ms
            ])?;
            if let Some(token) = message.context_token.as_ref().filter(|t| !t.is_empty()) {
                context.execute(params![
                    account,
                    message.sender,
                    token.expose_secret(),
                    batch.now_ms
                ])?;
            }
            outcome.accepted.push(rules::new_entry(
                key_from_sql(next_key),
                message,
                batch.now_ms,
            ));
        }
    }
    tx.execute(
        "DELETE FROM seen_ids WHERE account = ?1 AND seq <= ?2",
        params![account, evict_through(next_seen, batch.id_window)],
    )?;
    let cursor = batch.cursor.as_deref().filter(|c| !c.is_empty());
    tx.execute(
        "UPDATE accounts SET next_key = ?2, next_seen = ?3, cursor = COALESCE(?4, cursor) \
         WHERE account = ?1",
        params![account, next_key, next_seen, cursor],
    )?;
    Ok(outcome)
}

impl Store for SqliteStore {
    fn claim<'a>(
        &'a self,
        account: &'a AccountId,
        owner: &'a str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Lease> {
        let account = account.clone();
        let owner = owner.to_owned();
        self.run("claim the account", move |conn| {
            let op = "claim the account";
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            tx.execute(
                "INSERT OR IGNORE INTO accounts (account) VALUES (?1)",
                [account.as_str()],
            )
            .map_err(db(op))?;
            let (current, epoch, expires): (Option<String>, i64, i64) = tx
                .query_row(
                    "SELECT owner, epoch, expires_at FROM accounts WHERE account = ?1",
                    [account.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(db(op))?;
            let epoch = match rules::claim_epoch(current.as_deref(), expires, &owner, now_ms)? {
                ClaimEpoch::Keep => epoch,
                ClaimEpoch::Bump => epoch + 1,
            };
            let expires_at_ms = now_ms.saturating_add(ttl_ms);
            tx.execute(
                "UPDATE accounts SET owner = ?2, epoch = ?3, expires_at = ?4 WHERE account = ?1",
                params![account.as_str(), owner, epoch, expires_at_ms],
            )
            .map_err(db(op))?;
            tx.commit().map_err(db(op))?;
            Ok(Lease {
                account,
                owner,
                epoch: epoch as u64,
                expires_at_ms,
            })
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl_ms: i64, now_ms: i64) -> StoreFuture<'a, Lease> {
        let renewed = Lease {
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            ..lease.clone()
        };
        self.fenced(lease, "renew the lease", move |tx| {
            tx.execute(
                "UPDATE accounts SET expires_at = ?2 WHERE account = ?1",
                params![renewed.account.as_str(), renewed.expires_at_ms],
            )
            .map_err(db("renew the lease"))?;
            Ok(renewed)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        let account = lease.account.clone();
        self.fenced(lease, "release the lease", move |tx| {
            tx.execute(
                "UPDATE accounts SET expires_at = 0 WHERE account = ?1",
                [account.as_str()],
            )
            .map_err(db("release the lease"))?;
            Ok(())
        })
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<AccountSummary>> {
        self.run("list accounts", |conn| {
            let op = "list accounts";
            let mut stmt = conn
                .prepare(
                    "SELECT a.account, a.owner, a.epoch, a.expires_at, \
                     (SELECT COUNT(*) FROM journal j WHERE j.account = a.account), \
                     (SELECT COUNT(*) FROM dead_letters d WHERE d.account = a.account) \
                     FROM accounts a ORDER BY a.account",
                )
                .map_err(db(op))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .map_err(db(op))?;
            let mut list = Vec::new();
            for row in rows {
                let (id, owner, epoch, expires, pending, dead) = row.map_err(db(op))?;
                list.push(AccountSummary {
                    account: AccountId::new(id)?,
                    owner,
                    epoch: epoch as u64,
                    expires_at_ms: expires,
                    pending: pending as u64,
                    dead_letters: dead as u64,
                });
            }
            Ok(list)
        })
    }

    fn cursor<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<String>> {
        let account = account.clone();
        self.run("read the cursor", move |conn| {
            let cursor = account_text(
                conn,
                "SELECT cursor FROM accounts WHERE account = ?1",
                &account,
                "read the cursor",
            )?;
            Ok(cursor.filter(|c| !c.is_empty()))
        })
    }

    fn commit_batch<'a>(
        &'a self,
        lease: &'a Lease,
        batch: &'a InboundBatch,
    ) -> StoreFuture<'a, CommitOutcome> {
        let owned_lease = lease.clone();
        let batch = batch.clone();
        self.fenced(lease, "commit batch", move |tx| {
            commit_in(tx, &owned_lease, &batch).map_err(db("commit batch"))
        })
    }

    fn pending<'a>(
        &'a self,
        account: &'a AccountId,
        after: Option<JournalKey>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<JournalEntry>> {
        let account = account.clone();
        self.run("read the journal", move |conn| {
            let op = "read the journal";
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {JOURNAL_COLUMNS} FROM journal WHERE account = ?1 AND key > ?2 \
                     ORDER BY key LIMIT ?3"
                ))
                .map_err(db(op))?;
            let after = after.map_or(0, key_to_sql);
            let rows = stmt
                .query_map(
                    params![account.as_str(), after, limit_to_sql(limit)],
                    journal_row,
                )
                .map_err(db(op))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db(op))
        })
    }

    fn acknowledge<'a>(&'a self, lease: &'a Lease, key: JournalKey) -> StoreFuture<'a, bool> {
        let account = lease.account.clone();
        self.fenced(lease, "acknowledge", move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM journal WHERE account = ?1 AND key = ?2",
                    params![account.as_str(), key_to_sql(key)],
                )
                .map_err(db("acknowledge"))?;
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
        let account = lease.account.clone();
        let error = error.to_owned();
        self.fenced(lease, "record a failure", move |tx| {
            let op = "record a failure";
            let attempts: Option<i64> = tx
                .query_row(
                    "UPDATE journal SET attempts = attempts + 1, last_error = ?3 \
                     WHERE account = ?1 AND key = ?2 RETURNING attempts",
                    params![account.as_str(), key_to_sql(key), error],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db(op))?;
            let Some(attempts) = attempts else {
                return Ok(FailureOutcome::Missing);
            };
            let outcome = rules::after_failure(count(attempts), max_attempts);
            if let FailureOutcome::Retry { .. } = outcome {
                return Ok(outcome);
            }
            tx.execute(
                "INSERT OR REPLACE INTO dead_letters \
                 (account, key, message_id, sender, json, received_at, failed_at, attempts, last_error) \
                 SELECT account, key, message_id, sender, json, received_at, ?3, attempts, ?4 \
                 FROM journal WHERE account = ?1 AND key = ?2",
                params![account.as_str(), key_to_sql(key), now_ms, error],
            )
            .map_err(db(op))?;
            tx.execute(
                "DELETE FROM journal WHERE account = ?1 AND key = ?2",
                params![account.as_str(), key_to_sql(key)],
            )
            .map_err(db(op))?;
            Ok(outcome)
        })
    }

    fn record_reply<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        index: u32,
    ) -> StoreFuture<'a, ()> {
        let account = lease.account.clone();
        self.fenced(lease, "record a reply", move |tx| {
            let op = "record a reply";
            let current: Option<String> = tx
                .query_row(
                    "SELECT replies FROM journal WHERE account = ?1 AND key = ?2",
                    params![account.as_str(), key_to_sql(key)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db(op))?;
            if let Some(current) = current {
                let mut list = replies_from_sql(&current);
                if let Err(at) = list.binary_search(&index) {
                    list.insert(at, index);
                    tx.execute(
                        "UPDATE journal SET replies = ?3 WHERE account = ?1 AND key = ?2",
                        params![account.as_str(), key_to_sql(key), replies_to_sql(&list)],
                    )
                    .map_err(db(op))?;
                }
            }
            Ok(())
        })
    }

    fn is_seen<'a>(&'a self, account: &'a AccountId, message_id: u64) -> StoreFuture<'a, bool> {
        let account = account.clone();
        self.run("check an id", move |conn| {
            conn.query_row(
                "SELECT 1 FROM seen_ids WHERE account = ?1 AND id = ?2",
                params![account.as_str(), id_to_sql(message_id)],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db("check an id"))
        })
    }

    fn dead_letters<'a>(
        &'a self,
        account: &'a AccountId,
        limit: usize,
    ) -> StoreFuture<'a, Vec<DeadLetter>> {
        let account = account.clone();
        self.run("list dead letters", move |conn| {
            let op = "list dead letters";
            let mut stmt = conn
                .prepare(
                    "SELECT key, message_id, sender, json, received_at, failed_at, attempts, last_error \
                     FROM dead_letters WHERE account = ?1 ORDER BY key LIMIT ?2",
                )
                .map_err(db(op))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![account.as_str(), limit], |r| {
                    Ok(DeadLetter {
                        key: JournalKey(r.get::<_, i64>(0)? as u64),
                        message_id: r.get::<_, Option<i64>>(1)?.map(id_from_sql),
                        sender: r.get(2)?,
                        json: r.get(3)?,
                        received_at_ms: r.get(4)?,
                        failed_at_ms: r.get(5)?,
                        attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                        last_error: r.get(7)?,
                    })
                })
                .map_err(db(op))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db(op))
        })
    }

    fn requeue<'a>(&'a self, account: &'a AccountId, key: JournalKey) -> StoreFuture<'a, bool> {
        let account = account.clone();
        self.run("requeue a dead letter", move |conn| {
            let op = "requeue a dead letter";
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            let moved = tx
                .execute(
                    "INSERT OR IGNORE INTO journal (account, key, message_id, sender, json, received_at) \
                     SELECT account, key, message_id, sender, json, received_at \
                     FROM dead_letters WHERE account = ?1 AND key = ?2",
                    params![account.as_str(), key_to_sql(key)],
                )
                .map_err(db(op))?;
            tx.execute(
                "DELETE FROM dead_letters WHERE account = ?1 AND key = ?2",
                params![account.as_str(), key_to_sql(key)],
            )
            .map_err(db(op))?;
            tx.commit().map_err(db(op))?;
            Ok(moved > 0)
        })
    }

    fn context<'a>(
        &'a self,
        account: &'a AccountId,
        user: &'a str,
    ) -> StoreFuture<'a, Option<ContextRecord>> {
        let account = account.clone();
        let user = user.to_owned();
        self.run("read a context token", move |conn| {
            conn.query_row(
                "SELECT token, seen_at FROM contexts WHERE account = ?1 AND user = ?2",
                params![account.as_str(), user],
                |r| {
                    Ok(ContextRecord {
                        token: ContextToken::new(r.get::<_, String>(0)?),
                        seen_at_ms: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db("read a context token"))
        })
    }

    fn spend_budget<'a>(
        &'a self,
        lease: &'a Lease,
        kind: &'a BudgetKind,
        wanted: u32,
        limit: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, BudgetOutcome> {
        let account = lease.account.clone();
        let kind = kind.clone();
        self.fenced(lease, "spend budget", move |tx| {
            let op = "spend budget";
            let account = account.as_str();
            match kind {
                BudgetKind::Reply { key } => {
                    let used: Option<i64> = tx
                        .query_row(
                            "SELECT budget_used FROM journal WHERE account = ?1 AND key = ?2",
                            params![account, key_to_sql(key)],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db(op))?;
                    // A key no longer journaled has no row, and no budget left.
                    let (outcome, save) = rules::spend_reply(used.map(count), wanted, limit);
                    if let Some(n) = save {
                        tx.execute(
                            "UPDATE journal SET budget_used = ?3 WHERE account = ?1 AND key = ?2",
                            params![account, key_to_sql(key), n],
                        )
                        .map_err(db(op))?;
                    }
                    Ok(outcome)
                }
                BudgetKind::Push { window_ms } => {
                    let stored = tx
                        .query_row(
                            "SELECT push_started, push_used FROM accounts WHERE account = ?1",
                            [account],
                            |r| {
                                Ok(PushWindow {
                                    started_at_ms: r.get(0)?,
                                    used: count(r.get(1)?),
                                })
                            },
                        )
                        .map_err(db(op))?;
                    let (outcome, save) = rules::spend_push(stored, window_ms, wanted, limit, now_ms);
                    if let Some(window) = save {
                        tx.execute(
                            "UPDATE accounts SET push_started = ?2, push_used = ?3 WHERE account = ?1",
                            params![account, window.started_at_ms, window.used],
                        )
                        .map_err(db(op))?;
                    }
                    Ok(outcome)
                }
            }
        })
    }

    fn throttle<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<ThrottleRecord>> {
        let account = account.clone();
        self.run("read the throttle state", move |conn| {
            let row: Option<ThrottleColumns> = conn
                .query_row(
                    "SELECT throttle_since, throttle_probe, throttle_failed FROM accounts \
                     WHERE account = ?1",
                    [account.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db("read the throttle state"))?;
            Ok(row.and_then(throttle_from_sql))
        })
    }

    fn set_throttle<'a>(
        &'a self,
        lease: &'a Lease,
        record: Option<ThrottleRecord>,
    ) -> StoreFuture<'a, ()> {
        let account = lease.account.clone();
        let (since, probe, failed) = throttle_to_sql(record);
        self.fenced(lease, "save the throttle state", move |tx| {
            tx.execute(
                "UPDATE accounts SET throttle_since = ?2, throttle_probe = ?3, throttle_failed = ?4 \
                 WHERE account = ?1",
                params![account.as_str(), since, probe, failed],
            )
            .map_err(db("save the throttle state"))?;
            Ok(())
        })
    }

    fn put_credentials<'a>(
        &'a self,
        account: &'a AccountId,
        credentials: &'a AccountCredentials,
    ) -> StoreFuture<'a, ()> {
        let account = account.clone();
        let credentials = credentials.clone();
        self.run("store an account", move |conn| {
            conn.execute(
                "INSERT INTO accounts (account, credentials) VALUES (?1, ?2) \
                 ON CONFLICT (account) DO UPDATE SET credentials = excluded.credentials",
                params![account.as_str(), credentials.expose_secret()],
            )
            .map_err(db("store an account"))?;
            Ok(())
        })
    }

    fn credentials<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> StoreFuture<'a, Option<AccountCredentials>> {
        let account = account.clone();
        self.run("read an account", move |conn| {
            let json = account_text(
                conn,
                "SELECT credentials FROM accounts WHERE account = ?1",
                &account,
                "read an account",
            )?;
            Ok(json.map(AccountCredentials::new))
        })
    }

    fn remove_account<'a>(&'a self, account: &'a AccountId, now_ms: i64) -> StoreFuture<'a, bool> {
        let account = account.clone();
        self.run("remove an account", move |conn| {
            let op = "remove an account";
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            let lease: Option<(Option<String>, i64)> = tx
                .query_row(
                    "SELECT owner, expires_at FROM accounts WHERE account = ?1",
                    [account.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db(op))?;
            let Some((owner, expires)) = lease else {
                return Ok(false);
            };
            rules::check_removable(owner.as_deref(), expires, now_ms)?;
            for table in [
                "journal",
                "dead_letters",
                "seen_ids",
                "contexts",
                "accounts",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE account = ?1"),
                    [account.as_str()],
                )
                .map_err(db(op))?;
            }
            tx.commit().map_err(db(op))?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Writes a version 1 file, as this crate wrote it before account
    /// files existed, with one claimed account that has a cursor.
    fn version_one_file(path: &Path) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(SCHEMA_V1).expect("schema");
        conn.execute(
            "INSERT INTO accounts (account, owner, epoch, expires_at, cursor) \
             VALUES ('a@im.bot', 'runner-a', 3, 5000, 'c7')",
            [],
        )
        .expect("row");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
    }

    #[tokio::test]
    async fn a_version_one_file_is_migrated_and_keeps_its_accounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        version_one_file(&path);
        let store = SqliteStore::open(&path).expect("the old file opens");
        let a = AccountId::new("a@im.bot").expect("id");
        assert_eq!(
            store.cursor(&a).await.expect("cursor").as_deref(),
            Some("c7")
        );
        assert_eq!(store.credentials(&a).await.expect("read"), None);
        let lease = store
            .claim(&a, "runner-a", 1_000, 4_000)
            .await
            .expect("claim");
        assert_eq!(lease.epoch, 3, "the migration keeps the live lease");
        store
            .put_credentials(&a, &AccountCredentials::new(r#"{"token":"tok"}"#))
            .await
            .expect("add");
        drop(store);
        let conn = Connection::open(&path).expect("reopen");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        drop(conn);
        let again = SqliteStore::open(&path).expect("a migrated file opens again");
        assert!(again.credentials(&a).await.expect("read").is_some());
    }

    #[test]
    fn a_file_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("version");
        drop(conn);
        let err = SqliteStore::open(&path).expect_err("refused");
        assert!(err.is_newer_schema(), "{err}");
    }

    #[tokio::test]
    async fn a_file_holding_account_files_stays_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bots.db");
        let store = SqliteStore::open(&path).expect("open");
        let a = AccountId::new("a@im.bot").expect("id");
        store
            .put_credentials(&a, &AccountCredentials::new(r#"{"token":"tok"}"#))
            .await
            .expect("add");
        // The database and its WAL and index files, while the store is open.
        let mut files = 0;
        for file in std::fs::read_dir(dir.path()).expect("list") {
            let file = file.expect("entry").path();
            let mode = std::fs::metadata(&file).expect("mode").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", file.display());
            files += 1;
        }
        assert!(files >= 2, "the WAL file exists beside the database");
        let printed = format!("{store:?} {:?}", store.credentials(&a).await);
        assert!(!printed.contains("tok"), "{printed}");
    }
}
