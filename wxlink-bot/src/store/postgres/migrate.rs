//! The PostgreSQL store's schema: embedded, versioned migrations and the
//! runner that applies them at start.
//!
//! Each migration is an SQL file in `wxlink-bot/migrations/`, compiled into
//! the binary. The versions applied are recorded in
//! `wxlink_schema_migrations`; a start applies the missing ones, in order,
//! in one transaction, and does nothing when the schema is current.
//!
//! Two runners starting at once against a new database must not both create
//! the tables. The migration transaction therefore first takes a
//! transaction-scoped advisory lock (`pg_advisory_xact_lock`): the second
//! runner waits for the first to commit and then finds nothing to do. The
//! lock ends with the transaction, so it pins no connection afterwards and
//! works behind a pooler in transaction mode.

use tokio_postgres::Client;

use crate::error::Error;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version; versions start at 1 and grow by one.
    pub version: i32,
    /// A short name, recorded beside the version.
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "reply budget per entry",
        sql: include_str!("../../../migrations/0002_reply_budget_per_entry.sql"),
    },
];

/// The key of the advisory lock held while migrating: the ASCII of
/// `wxlinkmg` read as a big-endian integer, unlikely to meet another
/// application's key.
const LOCK_KEY: i64 = 0x7778_6c69_6e6b_6d67;

/// The schema version this code writes and reads.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database behind `client` to [`latest_version`], applying the
/// missing migrations in one transaction. Returns the versions it applied
/// (empty when the schema was current). Fails with
/// [`Error::newer_schema`] when the database is ahead of this code.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, Error> {
    let op = "migrate the schema";
    let db = |e| Error::store_with(op, e);
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS wxlink_schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM wxlink_schema_migrations",
            &[],
        )
        .await
        .map_err(db)?;
    let current: i32 = row.try_get(0).map_err(db)?;
    if current > latest_version() {
        return Err(Error::newer_schema());
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(migration.sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO wxlink_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(db)?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(db)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_grow_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i32::try_from(i).expect("few migrations") + 1);
            assert!(!m.sql.trim().is_empty(), "migration {} is empty", m.name);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i32);
    }

    #[test]
    fn the_lock_key_spells_its_name() {
        assert_eq!(&LOCK_KEY.to_be_bytes(), b"wxlinkmg");
    }
}
