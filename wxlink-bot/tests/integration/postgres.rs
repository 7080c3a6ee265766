//! PostgresStore on a real, throwaway PostgreSQL server (wxlink-pgtest):
//! migrations, fair-share claims with `SKIP LOCKED`, account records, and
//! secrets kept out of errors.

use std::time::Duration;

use tokio_postgres::NoTls;
use wxlink_bot::store::postgres::{PostgresOptions, migrate};
use wxlink_bot::store::{AccountCredentials, AccountId, InboundBatch, PostgresStore, Store};
use wxlink_pgtest::PgDatabase;

/// A fresh database on the shared server, or `None` (reported) without
/// PostgreSQL binaries.
pub async fn fresh_database(test: &'static str) -> Option<PgDatabase> {
    let server = wxlink_pgtest::shared_or_skip(test)?;
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .expect("the blocking task runs")
        .expect("a fresh database");
    Some(db)
}

/// A store on a fresh database.
pub async fn fresh_store(test: &'static str) -> Option<PostgresStore> {
    let db = fresh_database(test).await?;
    Some(
        PostgresStore::connect(db.url().expose())
            .await
            .expect("connect to the throwaway server"),
    )
}

/// A plain driver connection, for looking behind the store's back.
async fn raw(db: &PgDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db.url().expose(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

fn account(i: usize) -> AccountId {
    AccountId::new(format!("bot{i:03}@im.bot")).expect("a valid id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_when_two_runners_start_at_once() {
    let Some(db) =
        fresh_database("migrations_apply_once_even_when_two_runners_start_at_once").await
    else {
        return;
    };
    let url = db.url().expose().to_owned();
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let a = a.expect("the first runner starts");
    b.expect("the second runner starts too");
    let client = raw(&db).await;
    let rows = client
        .query(
            "SELECT version FROM wxlink_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read the versions");
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected, "each migration is recorded once");
    assert_eq!(
        a.schema_version().await.expect("version"),
        migrate::latest_version()
    );
    // A later start applies nothing and keeps the data.
    let lease = a
        .claim(&account(1), "runner-a", 60_000, 1_000)
        .await
        .expect("claim");
    let again = PostgresStore::connect(&url).await.expect("a restart");
    let list = again.accounts().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].epoch, lease.epoch);
}

#[tokio::test]
async fn a_database_ahead_of_this_code_is_refused() {
    let Some(db) = fresh_database("a_database_ahead_of_this_code_is_refused").await else {
        return;
    };
    PostgresStore::connect(db.url().expose())
        .await
        .expect("first start");
    raw(&db)
        .await
        .execute(
            "INSERT INTO wxlink_schema_migrations (version, name) VALUES (9999, 'future')",
            &[],
        )
        .await
        .expect("pretend a newer version migrated");
    let err = PostgresStore::connect(db.url().expose())
        .await
        .expect_err("a newer schema is refused");
    assert!(err.is_newer_schema(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_take_their_fair_share_and_a_dead_runners_accounts_move() {
    let Some(store) =
        fresh_store("runners_take_their_fair_share_and_a_dead_runners_accounts_move").await
    else {
        return;
    };
    for i in 0..10 {
        store
            .put_credentials(&account(i), &AccountCredentials::new(r#"{"token":"x"}"#))
            .await
            .expect("add an account");
    }
    let (ttl, stale) = (1_000, 1_000);
    let a = store
        .claim_share("runner-a", ttl, stale, 10_000)
        .await
        .expect("a claims");
    assert_eq!((a.live_runners, a.accounts, a.share), (1, 10, 10));
    assert_eq!(a.claimed.len(), 10);
    assert!(a.claimed.iter().all(|l| l.epoch == 1));
    // A second runner joins: its share is 5, but every account is held.
    let b = store
        .claim_share("runner-b", ttl, stale, 10_100)
        .await
        .expect("b claims");
    assert_eq!((b.live_runners, b.share, b.claimed.len()), (2, 5, 0));
    // The first runner's next pass sees its excess and hands 5 over.
    let a2 = store
        .claim_share("runner-a", ttl, stale, 10_200)
        .await
        .expect("a again");
    assert_eq!((a2.held, a2.excess()), (10, 5));
    for lease in a.claimed.iter().take(5) {
        store.release(lease).await.expect("release");
    }
    let b2 = store
        .claim_share("runner-b", ttl, stale, 10_300)
        .await
        .expect("b again");
    assert_eq!(b2.claimed.len(), 5);
    assert!(b2.claimed.iter().all(|l| l.epoch == 2), "{:?}", b2.claimed);
    // Runner a dies: no heartbeat, its leases expire. Runner b alone takes
    // everything once they have expired, not before.
    let early = store
        .claim_share("runner-b", ttl, stale, 10_900)
        .await
        .expect("b");
    assert_eq!((early.live_runners, early.claimed.len()), (2, 0));
    for lease in &b2.claimed {
        store
            .renew(lease, ttl, 10_900)
            .await
            .expect("b renews its own");
    }
    let late = store
        .claim_share("runner-b", ttl, stale, 11_300)
        .await
        .expect("b");
    assert_eq!((late.live_runners, late.share), (1, 10));
    assert_eq!(late.claimed.len(), 5);
    assert_eq!(late.held, 10);
    // The dead runner's leases are fenced out.
    let stale_lease = &a.claimed[9];
    let err = store
        .commit_batch(
            stale_lease,
            &InboundBatch {
                cursor: Some("late".into()),
                messages: vec![],
                now_ms: 11_400,
                id_window: 10,
            },
        )
        .await
        .expect_err("fenced");
    assert!(err.is_fenced(), "{err}");
    assert_ne!(
        store
            .cursor(&stale_lease.account)
            .await
            .expect("cursor")
            .as_deref(),
        Some("late")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_skips_accounts_another_transaction_has_locked() {
    let Some(db) = fresh_database("a_claim_skips_accounts_another_transaction_has_locked").await
    else {
        return;
    };
    let store = PostgresStore::connect(db.url().expose())
        .await
        .expect("connect");
    for i in 0..3 {
        store
            .put_credentials(&account(i), &AccountCredentials::new("{}"))
            .await
            .expect("add");
    }
    let mut client = raw(&db).await;
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "SELECT 1 FROM wxlink_accounts WHERE account = $1 FOR UPDATE",
        &[&account(1).as_str()],
    )
    .await
    .expect("lock one account row");
    let share = tokio::time::timeout(
        Duration::from_secs(10),
        store.claim_share("runner-a", 1_000, 1_000, 5_000),
    )
    .await
    .expect("the claim does not wait for the lock")
    .expect("claim");
    let names: Vec<_> = share.claimed.iter().map(|l| l.account.clone()).collect();
    assert_eq!(names, vec![account(0), account(2)]);
    tx.rollback().await.expect("rollback");
    let rest = store
        .claim_share("runner-a", 1_000, 1_000, 5_001)
        .await
        .expect("claim");
    assert_eq!(rest.claimed.len(), 1);
    assert_eq!(rest.claimed[0].account, account(1));
}

#[tokio::test]
async fn account_records_round_trip_and_a_leased_account_is_not_removed() {
    let Some(store) =
        fresh_store("account_records_round_trip_and_a_leased_account_is_not_removed").await
    else {
        return;
    };
    let a = account(1);
    assert_eq!(store.credentials(&a).await.expect("read"), None);
    store
        .put_credentials(&a, &AccountCredentials::new(r#"{"token":"t1"}"#))
        .await
        .expect("add");
    store
        .put_credentials(&a, &AccountCredentials::new(r#"{"token":"t2"}"#))
        .await
        .expect("replace");
    assert_eq!(
        store
            .credentials(&a)
            .await
            .expect("read")
            .map(|c| c.expose_secret().to_owned())
            .as_deref(),
        Some(r#"{"token":"t2"}"#)
    );
    let printed = format!("{:?}", store.credentials(&a).await.expect("read"));
    assert!(!printed.contains("t2"), "{printed}");
    let lease = store.claim(&a, "runner-a", 1_000, 10).await.expect("claim");
    let err = store.remove_account(&a, 20).await.expect_err("leased");
    assert!(err.is_leased(), "{err}");
    store.release(&lease).await.expect("release");
    assert!(store.remove_account(&a, 30).await.expect("remove"));
    assert!(!store.remove_account(&a, 30).await.expect("remove again"));
    assert!(store.accounts().await.expect("list").is_empty());
}

#[tokio::test]
async fn the_url_password_stays_out_of_debug_and_errors() {
    let Some(db) = fresh_database("the_url_password_stays_out_of_debug_and_errors").await else {
        return;
    };
    let url = db.url().expose().to_owned();
    let password = url
        .split_once("wxlink:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(p, _)| p.to_owned())
        .expect("the URL has a password");
    let store = PostgresStore::connect(&url).await.expect("connect");
    let printed = format!("{store:?}");
    assert!(!printed.contains(&password), "{printed}");
    assert!(printed.contains(db.name()), "{printed}");
    let wrong = url.replace(&password, "not-the-password-123");
    let err = PostgresStore::connect_with(
        &wrong,
        PostgresOptions::default().connect_timeout(Duration::from_secs(5)),
    )
    .await
    .expect_err("a wrong password is refused");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("not-the-password-123"), "{text}");
    let bad = format!("postgres://wxlink:{password}@127.0.0.1:notaport/db");
    let err = PostgresStore::connect(&bad).await.expect_err("a bad URL");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&password), "{text}");
}
