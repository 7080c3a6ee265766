//! The store contract, checked on MemoryStore and SqliteStore alike, and
//! what only the SQLite file does (mode 0600, sharing one file).

use std::sync::Arc;

use wxlink_bot::store::{
    AccountId, BudgetKind, BudgetOutcome, FailureOutcome, InboundBatch, InboundMessage, JournalKey,
    MemoryStore, SqliteStore, Store, ThrottleRecord,
};
use wxlink_proto::ContextToken;

fn id(name: &str) -> AccountId {
    AccountId::new(name).unwrap()
}

fn message(id: u64, sender: &str) -> InboundMessage {
    InboundMessage {
        message_id: Some(id),
        sender: sender.into(),
        context_token: Some(ContextToken::new(format!("ctx-{id}"))),
        json: format!(r#"{{"message_id":{id},"from_user_id":"{sender}"}}"#),
    }
}

fn batch(cursor: &str, messages: Vec<InboundMessage>) -> InboundBatch {
    InboundBatch {
        cursor: Some(cursor.into()),
        messages,
        now_ms: 1_000,
        id_window: 100,
    }
}

/// Every store, fresh.
fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("sqlite", Arc::new(SqliteStore::open_in_memory().unwrap())),
    ]
}

#[tokio::test]
async fn a_lease_is_exclusive_until_it_expires_and_each_takeover_bumps_the_epoch() {
    for (name, store) in stores() {
        let a = id("bot-a");
        let first = store.claim(&a, "runner-1", 1_000, 0).await.unwrap();
        assert_eq!(first.epoch, 1, "{name}");
        // The same owner again is a renewal: same epoch.
        let again = store.claim(&a, "runner-1", 1_000, 10).await.unwrap();
        assert_eq!(again.epoch, 1, "{name}");
        let err = store.claim(&a, "runner-2", 1_000, 500).await.unwrap_err();
        assert!(err.is_leased(), "{name}: {err:?}");
        // After the expiry the other runner takes over with a new epoch.
        let second = store.claim(&a, "runner-2", 1_000, 1_011).await.unwrap();
        assert_eq!(second.epoch, 2, "{name}");
        // The old lease can no longer renew, release or write.
        assert!(
            store
                .renew(&first, 1_000, 1_020)
                .await
                .unwrap_err()
                .is_fenced(),
            "{name}"
        );
        assert!(
            store.release(&first).await.unwrap_err().is_fenced(),
            "{name}"
        );
        let refused = store
            .commit_batch(&first, &batch("c1", vec![message(1, "u")]))
            .await
            .unwrap_err();
        assert!(refused.is_fenced(), "{name}");
        assert!(
            store.pending(&a, None, 10).await.unwrap().is_empty(),
            "{name}: fenced commit wrote"
        );
        assert_eq!(store.cursor(&a).await.unwrap(), None, "{name}");
        // A release lets anyone claim at once.
        store.release(&second).await.unwrap();
        let third = store.claim(&a, "runner-1", 1_000, 1_030).await.unwrap();
        assert_eq!(third.epoch, 3, "{name}");
        let list = store.accounts().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].owner.as_deref(), Some("runner-1"), "{name}");
        assert_eq!(list[0].epoch, 3, "{name}");
    }
}

#[tokio::test]
async fn a_batch_journals_new_messages_with_the_cursor_and_drops_repeated_ids() {
    for (name, store) in stores() {
        let a = id("bot-a");
        let b = id("bot-b");
        let la = store.claim(&a, "r", 10_000, 0).await.unwrap();
        let lb = store.claim(&b, "r", 10_000, 0).await.unwrap();
        let out = store
            .commit_batch(
                &la,
                &batch(
                    "c1",
                    vec![message(1, "u1"), message(2, "u2"), message(1, "u1")],
                ),
            )
            .await
            .unwrap();
        assert_eq!(out.accepted.len(), 2, "{name}");
        assert_eq!(out.duplicates, 1, "{name}");
        let again = store
            .commit_batch(&la, &batch("c2", vec![message(2, "u2"), message(3, "u1")]))
            .await
            .unwrap();
        assert_eq!(again.accepted.len(), 1, "{name}");
        assert_eq!(again.duplicates, 1, "{name}");
        // Accounts are separate: the same id is new for bot-b.
        let other = store
            .commit_batch(&lb, &batch("x", vec![message(1, "u1")]))
            .await
            .unwrap();
        assert_eq!(other.accepted.len(), 1, "{name}");
        assert_eq!(
            store.cursor(&a).await.unwrap().as_deref(),
            Some("c2"),
            "{name}"
        );
        assert_eq!(
            store.cursor(&b).await.unwrap().as_deref(),
            Some("x"),
            "{name}"
        );
        // The journal pages in key order.
        let page1 = store.pending(&a, None, 2).await.unwrap();
        let page2 = store.pending(&a, Some(page1[1].key), 2).await.unwrap();
        let ids: Vec<_> = page1.iter().chain(&page2).map(|e| e.message_id).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3)], "{name}");
        assert!(
            store.is_seen(&a, 3).await.unwrap() && !store.is_seen(&a, 4).await.unwrap(),
            "{name}"
        );
        let ctx = store.context(&a, "u1").await.unwrap().unwrap();
        assert_eq!(ctx.token.expose_secret(), "ctx-3", "{name}");
        // Acknowledged entries leave; a second ack says so.
        assert!(
            store.acknowledge(&la, page1[0].key).await.unwrap(),
            "{name}"
        );
        assert!(
            !store.acknowledge(&la, page1[0].key).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store.pending(&a, None, 10).await.unwrap().len(),
            2,
            "{name}"
        );
    }
}

#[tokio::test]
async fn failures_are_counted_then_dead_lettered_and_a_requeue_brings_the_entry_back() {
    for (name, store) in stores() {
        let a = id("bot-a");
        let lease = store.claim(&a, "r", 10_000, 0).await.unwrap();
        store
            .commit_batch(&lease, &batch("c", vec![message(7, "u")]))
            .await
            .unwrap();
        let key = store.pending(&a, None, 1).await.unwrap()[0].key;
        assert_eq!(
            store
                .record_failure(&lease, key, "boom 1", 3, 5)
                .await
                .unwrap(),
            FailureOutcome::Retry { attempts: 1 },
            "{name}"
        );
        store
            .record_failure(&lease, key, "boom 2", 3, 6)
            .await
            .unwrap();
        let entry = &store.pending(&a, None, 1).await.unwrap()[0];
        assert_eq!(
            (entry.attempts, entry.last_error.as_deref()),
            (2, Some("boom 2")),
            "{name}"
        );
        assert_eq!(
            store
                .record_failure(&lease, key, "boom 3", 3, 7)
                .await
                .unwrap(),
            FailureOutcome::DeadLettered { attempts: 3 },
            "{name}"
        );
        assert!(
            store.pending(&a, None, 10).await.unwrap().is_empty(),
            "{name}"
        );
        let dead = store.dead_letters(&a, 10).await.unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!(
            (dead[0].key, dead[0].attempts, dead[0].last_error.as_str()),
            (key, 3, "boom 3"),
            "{name}"
        );
        assert_eq!(dead[0].message_id, Some(7), "{name}");
        assert!(store.requeue(&a, key).await.unwrap(), "{name}");
        assert!(!store.requeue(&a, key).await.unwrap(), "{name}");
        let back = &store.pending(&a, None, 10).await.unwrap()[0];
        assert_eq!((back.key, back.attempts), (key, 0), "{name}");
        assert!(
            store.dead_letters(&a, 10).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            store
                .record_failure(&lease, JournalKey(999), "x", 3, 0)
                .await
                .unwrap(),
            FailureOutcome::Missing,
            "{name}"
        );
    }
}

#[tokio::test]
async fn accepted_replies_budgets_and_the_throttle_are_kept_per_account() {
    for (name, store) in stores() {
        let a = id("bot-a");
        let lease = store.claim(&a, "r", 10_000, 0).await.unwrap();
        store
            .commit_batch(&lease, &batch("c", vec![message(1, "u")]))
            .await
            .unwrap();
        let key = store.pending(&a, None, 1).await.unwrap()[0].key;
        store.record_reply(&lease, key, 2).await.unwrap();
        store.record_reply(&lease, key, 0).await.unwrap();
        store.record_reply(&lease, key, 2).await.unwrap();
        assert_eq!(
            store.pending(&a, None, 1).await.unwrap()[0].accepted_replies,
            [0, 2],
            "{name}"
        );

        // Each message has its own reply budget.
        let reply = BudgetKind::Reply { key };
        assert_eq!(
            store.spend_budget(&lease, &reply, 8, 10, 0).await.unwrap(),
            BudgetOutcome::Granted { used: 8 },
            "{name}"
        );
        assert_eq!(
            store.spend_budget(&lease, &reply, 3, 10, 0).await.unwrap(),
            BudgetOutcome::Exhausted {
                used: 8,
                resets_at_ms: None
            },
            "{name}"
        );
        store
            .commit_batch(&lease, &batch("c2", vec![message(2, "u")]))
            .await
            .unwrap();
        let next = store.pending(&a, Some(key), 1).await.unwrap()[0].key;
        let other = BudgetKind::Reply { key: next };
        assert_eq!(
            store.spend_budget(&lease, &other, 10, 10, 0).await.unwrap(),
            BudgetOutcome::Granted { used: 10 },
            "{name}"
        );
        // A handled message has no budget left.
        store.acknowledge(&lease, key).await.unwrap();
        assert_eq!(
            store.spend_budget(&lease, &reply, 1, 10, 0).await.unwrap(),
            BudgetOutcome::Exhausted {
                used: 0,
                resets_at_ms: None
            },
            "{name}"
        );

        let push = BudgetKind::Push { window_ms: 1_000 };
        assert_eq!(
            store
                .spend_budget(&lease, &push, 2, 2, 5_000)
                .await
                .unwrap(),
            BudgetOutcome::Granted { used: 2 },
            "{name}"
        );
        assert_eq!(
            store
                .spend_budget(&lease, &push, 1, 2, 5_500)
                .await
                .unwrap(),
            BudgetOutcome::Exhausted {
                used: 2,
                resets_at_ms: Some(6_000)
            },
            "{name}"
        );
        assert_eq!(
            store
                .spend_budget(&lease, &push, 1, 2, 6_000)
                .await
                .unwrap(),
            BudgetOutcome::Granted { used: 1 },
            "{name}"
        );

        let record = ThrottleRecord {
            since_ms: 1,
            next_probe_ms: 2,
            failed_probes: 1,
        };
        store.set_throttle(&lease, Some(record)).await.unwrap();
        assert_eq!(store.throttle(&a).await.unwrap(), Some(record), "{name}");
        assert_eq!(store.throttle(&id("other")).await.unwrap(), None, "{name}");
        store.set_throttle(&lease, None).await.unwrap();
        assert_eq!(store.throttle(&a).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn message_ids_round_trip_up_to_u64_max_and_the_window_forgets_the_oldest() {
    for (name, store) in stores() {
        let a = id("bot-a");
        let lease = store.claim(&a, "r", 10_000, 0).await.unwrap();
        let mut b = batch(
            "c",
            vec![message(u64::MAX, "u"), message(1, "u"), message(2, "u")],
        );
        b.id_window = 2;
        store.commit_batch(&lease, &b).await.unwrap();
        let ids: Vec<_> = store
            .pending(&a, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.message_id)
            .collect();
        assert_eq!(ids, [Some(u64::MAX), Some(1), Some(2)], "{name}");
        assert!(
            !store.is_seen(&a, u64::MAX).await.unwrap(),
            "{name}: window of 2 kept the oldest id"
        );
        assert!(store.is_seen(&a, 2).await.unwrap(), "{name}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_private_shared_by_handles_and_survives_reopening() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bots.db");
    let one = SqliteStore::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let two = SqliteStore::open(&path).unwrap();
    let a = id("bot-a");
    let lease = one.claim(&a, "runner-1", 60_000, 0).await.unwrap();
    // A second handle on the file (another process, in effect) is refused.
    assert!(
        two.claim(&a, "runner-2", 60_000, 10)
            .await
            .unwrap_err()
            .is_leased()
    );
    one.commit_batch(&lease, &batch("c9", vec![message(5, "u")]))
        .await
        .unwrap();
    drop((one, two));
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.cursor(&a).await.unwrap().as_deref(), Some("c9"));
    assert_eq!(reopened.pending(&a, None, 10).await.unwrap().len(), 1);
    // A world-readable file is made private on open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
