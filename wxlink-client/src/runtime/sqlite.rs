//! [`SqliteStore`]: the default, crash-safe [`Store`], one SQLite file.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a committed
//! transaction survives a crash or a power cut. The schema carries its
//! version in `PRAGMA user_version`; opening a file written by a newer
//! version of this crate fails instead of guessing.
//!
//! Message ids are 64-bit unsigned, SQLite integers are 64-bit signed: ids
//! are stored bit-cast to `i64` and cast back on the way out, so every id up
//! to `u64::MAX` round-trips exactly.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use wxlink_proto::ContextToken;

use super::store::{
    CommitOutcome, ContextRecord, InboundBatch, JournalEntry, JournalKey, Store, StoreError,
    TurnRecord,
};

/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 1;

/// The schema, created in one transaction on first open.
const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE journal (
    key         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER,
    sender      TEXT NOT NULL,
    json        TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE seen_ids (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      INTEGER NOT NULL UNIQUE,
    seen_at INTEGER NOT NULL
);
CREATE TABLE fingerprints (
    fp      TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE TABLE contexts (
    user    TEXT PRIMARY KEY,
    token   TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE TABLE turns (
    user       TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    sent       INTEGER NOT NULL
);
";

/// A [`Store`] in one SQLite file (bundled SQLite; no system library).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// Maps a rusqlite error into a [`StoreError`] for `operation`.
fn db(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |err| StoreError::with_source(operation, err)
}

/// A message id as SQLite stores it (bit-cast, see the module docs).
fn id_to_sql(id: u64) -> i64 {
    id as i64
}

/// A message id read back from SQLite.
fn id_from_sql(id: i64) -> u64 {
    id as u64
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, creating or checking the
    /// schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db("open the database"))?;
        Self::from_connection(conn)
    }

    /// A store in a private in-memory database (lost on drop); for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(db("open the database"))?;
        Self::from_connection(conn)
    }

    /// Configures the connection and brings the schema to the current
    /// version.
    fn from_connection(mut conn: Connection) -> Result<Self, StoreError> {
        // WAL keeps readers off the writer's back and makes each commit one
        // append; FULL syncs the WAL on every commit, so a commit that
        // returned is on disk.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(db("enable WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db("set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db("set the busy timeout"))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db("read the schema version"))?;
        match version {
            0 => {
                let tx = conn.transaction().map_err(db("create the schema"))?;
                tx.execute_batch(SCHEMA).map_err(db("create the schema"))?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(db("create the schema"))?;
                tx.commit().map_err(db("create the schema"))?;
            }
            SCHEMA_VERSION => {}
            _ => return Err(StoreError::new("open a store written by a newer version")),
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Locks the connection; a poisoned lock is an error, not a panic.
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::new("lock the database"))
    }
}

/// The body of [`SqliteStore::commit_batch`], inside its transaction.
fn commit_in(tx: &Transaction<'_>, batch: &InboundBatch) -> rusqlite::Result<CommitOutcome> {
    let now = batch.now_ms;
    let mut outcome = CommitOutcome::default();
    if let Some(ttl) = batch.dedupe.fingerprint_ttl_ms {
        tx.execute(
            "DELETE FROM fingerprints WHERE seen_at <= ?1",
            params![now.saturating_sub(ttl)],
        )?;
    }
    for message in &batch.messages {
        if let Some(id) = message.message_id {
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM seen_ids WHERE id = ?1",
                    params![id_to_sql(id)],
                    |row| row.get(0),
                )
                .optional()?;
            if seen.is_some() {
                outcome.duplicates += 1;
                continue;
            }
            tx.execute(
                "INSERT INTO seen_ids (id, seen_at) VALUES (?1, ?2)",
                params![id_to_sql(id), now],
            )?;
        }
        if let Some(token) = &message.context_token {
            tx.execute(
                "INSERT INTO contexts (user, token, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET token = excluded.token, seen_at = excluded.seen_at",
                params![message.sender, token.expose_secret(), now],
            )?;
        }
        if let (Some(ttl), Some(fp)) = (batch.dedupe.fingerprint_ttl_ms, &message.fingerprint) {
            let seen_at: Option<i64> = tx
                .query_row(
                    "SELECT seen_at FROM fingerprints WHERE fp = ?1",
                    params![fp],
                    |row| row.get(0),
                )
                .optional()?;
            if seen_at.is_some_and(|seen| now - seen < ttl) {
                outcome.duplicates += 1;
                continue;
            }
            tx.execute(
                "INSERT INTO fingerprints (fp, seen_at) VALUES (?1, ?2)
                 ON CONFLICT(fp) DO UPDATE SET seen_at = excluded.seen_at",
                params![fp, now],
            )?;
        }
        tx.execute(
            "INSERT INTO journal (message_id, sender, json, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                message.message_id.map(id_to_sql),
                message.sender,
                message.json,
                now
            ],
        )?;
        let key = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO turns (user, started_at, sent) VALUES (?1, ?2, 0)
             ON CONFLICT(user) DO UPDATE SET started_at = excluded.started_at, sent = 0",
            params![message.sender, now],
        )?;
        outcome.accepted.push(JournalEntry {
            key: JournalKey(key.unsigned_abs()),
            message_id: message.message_id,
            sender: message.sender.clone(),
            json: message.json.clone(),
            received_at_ms: now,
        });
    }
    // Keep only the newest `id_window` ids.
    let window = i64::try_from(batch.dedupe.id_window.max(1)).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM seen_ids WHERE seq <= (SELECT MAX(seq) FROM seen_ids) - ?1",
        params![window],
    )?;
    if let Some(cursor) = batch.cursor.as_deref().filter(|c| !c.is_empty()) {
        set_cursor_in(tx, cursor)?;
    }
    Ok(outcome)
}

/// Writes the cursor row.
fn set_cursor_in(conn: &Connection, cursor: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('cursor', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![cursor],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn cursor(&self) -> Result<Option<String>, StoreError> {
        self.lock()?
            .query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(db("read the cursor"))
    }

    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        if cursor.is_empty() {
            return Ok(());
        }
        set_cursor_in(&*self.lock()?, cursor).map_err(db("save the cursor"))
    }

    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(db("commit a batch"))?;
        // Dropping the transaction on error rolls it back.
        let outcome = commit_in(&tx, batch).map_err(db("commit a batch"))?;
        tx.commit().map_err(db("commit a batch"))?;
        Ok(outcome)
    }

    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT key, message_id, sender, json, received_at FROM journal ORDER BY key")
            .map_err(db("read the journal"))?;
        let rows = stmt
            .query_map([], |row| {
                let key: i64 = row.get(0)?;
                let id: Option<i64> = row.get(1)?;
                Ok(JournalEntry {
                    key: JournalKey(key.unsigned_abs()),
                    message_id: id.map(id_from_sql),
                    sender: row.get(2)?,
                    json: row.get(3)?,
                    received_at_ms: row.get(4)?,
                })
            })
            .map_err(db("read the journal"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read the journal"))
    }

    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError> {
        let Ok(key) = i64::try_from(key.0) else {
            return Ok(false);
        };
        let removed = self
            .lock()?
            .execute("DELETE FROM journal WHERE key = ?1", params![key])
            .map_err(db("acknowledge a message"))?;
        Ok(removed > 0)
    }

    fn is_seen(&self, message_id: u64) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .lock()?
            .query_row(
                "SELECT 1 FROM seen_ids WHERE id = ?1",
                params![id_to_sql(message_id)],
                |row| row.get(0),
            )
            .optional()
            .map_err(db("read the seen ids"))?;
        Ok(found.is_some())
    }

    fn context(&self, user: &str) -> Result<Option<ContextRecord>, StoreError> {
        self.lock()?
            .query_row(
                "SELECT token, seen_at FROM contexts WHERE user = ?1",
                params![user],
                |row| {
                    Ok(ContextRecord {
                        token: ContextToken::new(row.get::<_, String>(0)?),
                        seen_at_ms: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db("read a context token"))
    }

    fn set_context(&self, user: &str, record: &ContextRecord) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "INSERT INTO contexts (user, token, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET token = excluded.token, seen_at = excluded.seen_at",
                params![user, record.token.expose_secret(), record.seen_at_ms],
            )
            .map_err(db("save a context token"))?;
        Ok(())
    }

    fn turn(&self, user: &str) -> Result<Option<TurnRecord>, StoreError> {
        self.lock()?
            .query_row(
                "SELECT started_at, sent FROM turns WHERE user = ?1",
                params![user],
                |row| {
                    Ok(TurnRecord {
                        started_at_ms: row.get(0)?,
                        sent: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(db("read a send budget"))
    }

    fn set_turn(&self, user: &str, record: &TurnRecord) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "INSERT INTO turns (user, started_at, sent) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user) DO UPDATE SET started_at = excluded.started_at, sent = excluded.sent",
                params![user, record.started_at_ms, record.sent],
            )
            .map_err(db("save a send budget"))?;
        Ok(())
    }
}
