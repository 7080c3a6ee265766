//! The contract every [`Store`] keeps, as a suite any implementation can
//! run (feature `test-util`).
//!
//! Each case is a public async function that takes a fresh, empty store and
//! panics when the store breaks the contract. [`store_conformance_tests!`]
//! turns all of them into `#[tokio::test]`s for one store:
//!
//! ```ignore
//! async fn fresh(_case: &'static str) -> Option<std::sync::Arc<dyn wxlink_bot::store::Store>> {
//!     Some(std::sync::Arc::new(wxlink_bot::store::MemoryStore::new()))
//! }
//! wxlink_bot::store_conformance_tests!(fresh);
//! ```
//!
//! The factory gets the case's name and returns `None` to skip it (a
//! backend that is not available on this machine, reported by the factory
//! itself).
//!
//! [`store_conformance_tests!`]: crate::store_conformance_tests

use std::sync::Arc;

use wxlink_proto::ContextToken;

use super::{
    AccountCredentials, AccountId, BudgetKind, BudgetOutcome, CommitOutcome, FailureOutcome,
    InboundBatch, InboundMessage, JournalKey, Lease, Store, ThrottleRecord,
};

/// A lease period used throughout, in ms.
const TTL: i64 = 1_000;

/// The start time of every case, in ms since the Unix epoch.
const T0: i64 = 1_000_000;

/// The account most cases use.
fn account(name: &str) -> AccountId {
    AccountId::new(name).expect("a valid account id")
}

/// A text message from `sender` with `id` and an optional context token.
pub fn message(id: Option<u64>, sender: &str, token: Option<&str>) -> InboundMessage {
    InboundMessage {
        message_id: id,
        sender: sender.into(),
        context_token: token.map(ContextToken::new),
        json: format!(r#"{{"message_id":{},"from":"{sender}"}}"#, id.unwrap_or(0)),
    }
}

/// A batch of `messages` with `cursor` at `now_ms`, window 10 000.
pub fn batch(cursor: Option<&str>, messages: Vec<InboundMessage>, now_ms: i64) -> InboundBatch {
    InboundBatch {
        cursor: cursor.map(str::to_owned),
        messages,
        now_ms,
        id_window: 10_000,
    }
}

/// Commits `messages` under `lease` at [`T0`] without a cursor; the
/// commit must succeed.
async fn commit(store: &dyn Store, lease: &Lease, messages: Vec<InboundMessage>) -> CommitOutcome {
    store
        .commit_batch(lease, &batch(None, messages, T0))
        .await
        .expect("commit")
}

/// Claims `name` for `owner` at `now`.
async fn claim(store: &dyn Store, name: &str, owner: &str, now: i64) -> Lease {
    store
        .claim(&account(name), owner, TTL, now)
        .await
        .expect("the claim succeeds")
}

/// A first claim registers the account with epoch 1; claiming again while
/// the lease is live is a renewal that keeps the epoch.
pub async fn claim_registers_the_account_and_renewal_keeps_the_epoch(store: Arc<dyn Store>) {
    let store = &*store;
    let first = claim(store, "a@im.bot", "runner-a", T0).await;
    assert_eq!(first.epoch, 1);
    assert_eq!(first.expires_at_ms, T0 + TTL);
    let again = claim(store, "a@im.bot", "runner-a", T0 + 10).await;
    assert_eq!(again.epoch, 1, "a claim by the holder is a renewal");
    assert_eq!(again.expires_at_ms, T0 + 10 + TTL);
    let renewed = store.renew(&again, TTL, T0 + 20).await.expect("renew");
    assert_eq!((renewed.epoch, renewed.expires_at_ms), (1, T0 + 20 + TTL));
    let list = store.accounts().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].account, account("a@im.bot"));
    assert_eq!(list[0].owner.as_deref(), Some("runner-a"));
    assert_eq!((list[0].epoch, list[0].expires_at_ms), (1, T0 + 20 + TTL));
}

/// Another runner gets the typed "leased" error while the lease is live,
/// and the account with a higher epoch once it expired.
pub async fn a_live_lease_refuses_other_runners_until_it_expires(store: Arc<dyn Store>) {
    let store = &*store;
    let a = claim(store, "a@im.bot", "runner-a", T0).await;
    let err = store
        .claim(&account("a@im.bot"), "runner-b", TTL, T0 + TTL - 1)
        .await
        .expect_err("leased by runner-a");
    assert!(err.is_leased(), "{err}");
    assert_eq!(
        err.leased_by(),
        Some(("runner-a", a.expires_at_ms)),
        "expected leased, got {err:?}"
    );
    let b = claim(store, "a@im.bot", "runner-b", T0 + TTL).await;
    assert_eq!(b.epoch, a.epoch + 1);
    // The old holder coming back is a new claim too: it cannot reuse epoch 1.
    let err = store
        .claim(&account("a@im.bot"), "runner-a", TTL, T0 + TTL + 1)
        .await
        .expect_err("now leased by runner-b");
    assert!(err.is_leased());
}

/// A runner whose lease was taken over writes nothing: every fenced method
/// fails with the fenced error and the state is the new holder's.
pub async fn a_lost_lease_is_fenced_out_of_every_write(store: Arc<dyn Store>) {
    let store = &*store;
    let old = claim(store, "a@im.bot", "runner-a", T0).await;
    store
        .commit_batch(
            &old,
            &batch(Some("c1"), vec![message(Some(1), "u", Some("t1"))], T0),
        )
        .await
        .expect("commit while current");
    let new = claim(store, "a@im.bot", "runner-b", T0 + TTL).await;
    let key = JournalKey(1);
    let a = account("a@im.bot");
    let fenced = [
        store
            .commit_batch(
                &old,
                &batch(
                    Some("c2"),
                    vec![message(Some(2), "u", Some("t2"))],
                    T0 + TTL,
                ),
            )
            .await
            .err(),
        store.acknowledge(&old, key).await.err(),
        store
            .record_failure(&old, key, "boom", 3, T0 + TTL)
            .await
            .err(),
        store.record_reply(&old, key, 0).await.err(),
        store
            .spend_budget(&old, &BudgetKind::Reply { key }, 1, 10, T0 + TTL)
            .await
            .err(),
        store
            .set_throttle(
                &old,
                Some(ThrottleRecord {
                    since_ms: 1,
                    next_probe_ms: 2,
                    failed_probes: 0,
                }),
            )
            .await
            .err(),
        store.renew(&old, TTL, T0 + TTL).await.err(),
        store.release(&old).await.err(),
    ];
    for (i, err) in fenced.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("fenced write #{i} succeeded"));
        assert!(err.is_fenced(), "write #{i}: {err}");
    }
    assert_eq!(
        store.cursor(&a).await.expect("cursor").as_deref(),
        Some("c1")
    );
    let pending = store.pending(&a, None, 10).await.expect("pending");
    assert_eq!(pending.len(), 1, "the stale commit journaled nothing");
    assert!(pending[0].accepted_replies.is_empty() && pending[0].attempts == 0);
    assert!(!store.is_seen(&a, 2).await.expect("is_seen"));
    let token = store
        .context(&a, "u")
        .await
        .expect("context")
        .expect("a token");
    assert_eq!(token.token.expose_secret(), "t1");
    assert_eq!(store.throttle(&a).await.expect("throttle"), None);
    // The new holder is unaffected.
    assert!(store.acknowledge(&new, key).await.expect("acknowledge"));
}

/// A released lease can be claimed at once by another runner; releasing it
/// again is fenced.
pub async fn release_hands_the_account_over_at_once(store: Arc<dyn Store>) {
    let store = &*store;
    let a = claim(store, "a@im.bot", "runner-a", T0).await;
    store.release(&a).await.expect("release");
    let b = claim(store, "a@im.bot", "runner-b", T0 + 1).await;
    assert_eq!(b.epoch, a.epoch + 1);
    assert!(store.release(&a).await.expect_err("lost").is_fenced());
    let list = store.accounts().await.expect("list");
    assert_eq!(list[0].owner.as_deref(), Some("runner-b"));
}

/// A lease that expired without anyone else claiming it is still current:
/// its holder may write and renew.
pub async fn an_expired_lease_nobody_took_still_writes(store: Arc<dyn Store>) {
    let store = &*store;
    let a = claim(store, "a@im.bot", "runner-a", T0).await;
    let late = T0 + 10 * TTL;
    store
        .commit_batch(
            &a,
            &batch(Some("c"), vec![message(Some(1), "u", None)], late),
        )
        .await
        .expect("commit after expiry");
    let renewed = store
        .renew(&a, TTL, late)
        .await
        .expect("renew after expiry");
    assert_eq!(renewed.epoch, a.epoch);
}

/// A batch journals its messages and saves its cursor together; keys grow
/// in server order; an empty or absent cursor keeps the saved one.
pub async fn commit_journals_messages_and_saves_the_cursor_together(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    assert_eq!(store.cursor(&a).await.expect("cursor"), None);
    let out = store
        .commit_batch(
            &lease,
            &batch(
                Some("c1"),
                vec![message(Some(10), "u1", None), message(None, "u2", None)],
                T0,
            ),
        )
        .await
        .expect("commit");
    assert_eq!(out.duplicates, 0);
    let keys: Vec<_> = out.accepted.iter().map(|e| e.key).collect();
    assert_eq!(out.accepted.len(), 2);
    assert!(keys[0] < keys[1], "keys grow in arrival order: {keys:?}");
    assert_eq!(out.accepted[0].message_id, Some(10));
    assert_eq!(out.accepted[1].message_id, None);
    assert_eq!(
        store.cursor(&a).await.expect("cursor").as_deref(),
        Some("c1")
    );
    for cursor in [Some(""), None] {
        store
            .commit_batch(&lease, &batch(cursor, vec![], T0 + 1))
            .await
            .expect("commit");
        assert_eq!(
            store.cursor(&a).await.expect("cursor").as_deref(),
            Some("c1")
        );
    }
    let pending = store.pending(&a, None, 10).await.expect("pending");
    assert_eq!(
        pending, out.accepted,
        "the journal holds what the commit returned"
    );
    assert_eq!(pending[0].received_at_ms, T0);
    assert_eq!(pending[0].json, message(Some(10), "u1", None).json);
}

/// Exact ids are dropped as duplicates within a batch and across batches;
/// messages without an id always pass; the window keeps the newest ids.
pub async fn duplicate_ids_are_dropped_and_the_window_keeps_the_newest(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let out = commit(
        store,
        &lease,
        vec![
            message(Some(1), "u", None),
            message(Some(1), "u", None),
            message(None, "u", None),
            message(None, "u", None),
        ],
    )
    .await;
    assert_eq!((out.accepted.len(), out.duplicates), (3, 1));
    let out = commit(
        store,
        &lease,
        vec![message(Some(1), "u", None), message(Some(2), "u", None)],
    )
    .await;
    assert_eq!((out.accepted.len(), out.duplicates), (1, 1));
    assert!(store.is_seen(&a, 1).await.expect("seen") && store.is_seen(&a, 2).await.expect("seen"));
    assert!(!store.is_seen(&a, 3).await.expect("seen"));
    // A window of 2: after ids 3 and 4, id 1 and 2 are forgotten.
    let mut small = batch(
        None,
        vec![message(Some(3), "u", None), message(Some(4), "u", None)],
        T0,
    );
    small.id_window = 2;
    store.commit_batch(&lease, &small).await.expect("commit");
    assert!(!store.is_seen(&a, 1).await.expect("seen"));
    assert!(store.is_seen(&a, 4).await.expect("seen"));
    let again = commit(store, &lease, vec![message(Some(1), "u", None)]).await;
    assert_eq!(
        again.accepted.len(),
        1,
        "an id past the window is new again"
    );
}

/// The full 64-bit id range round-trips.
pub async fn the_largest_message_ids_round_trip(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let ids = [u64::MAX, 1 << 63, (1 << 63) - 1];
    let out = commit(
        store,
        &lease,
        ids.iter().map(|i| message(Some(*i), "u", None)).collect(),
    )
    .await;
    assert_eq!(out.accepted.len(), 3);
    let pending = store.pending(&a, None, 10).await.expect("pending");
    let got: Vec<_> = pending.iter().map(|e| e.message_id).collect();
    assert_eq!(got, ids.iter().map(|i| Some(*i)).collect::<Vec<_>>());
    assert!(store.is_seen(&a, u64::MAX).await.expect("seen"));
}

/// The newest non-empty context token per sender is kept.
pub async fn the_newest_context_token_per_sender_is_kept(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    commit(
        store,
        &lease,
        vec![
            message(Some(1), "u1", Some("old")),
            message(Some(2), "u1", Some("new")),
            message(Some(3), "u2", Some("other")),
        ],
    )
    .await;
    store
        .commit_batch(
            &lease,
            &batch(None, vec![message(Some(4), "u1", Some(""))], T0 + 5),
        )
        .await
        .expect("commit");
    let u1 = store
        .context(&a, "u1")
        .await
        .expect("context")
        .expect("a token");
    assert_eq!((u1.token.expose_secret(), u1.seen_at_ms), ("new", T0));
    let u2 = store
        .context(&a, "u2")
        .await
        .expect("context")
        .expect("a token");
    assert_eq!(u2.token.expose_secret(), "other");
    assert!(store.context(&a, "u3").await.expect("context").is_none());
}

/// The backlog pages by key; acknowledging removes an entry once.
pub async fn the_backlog_pages_by_key_and_acknowledges_once(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let out = commit(
        store,
        &lease,
        (1..=5).map(|i| message(Some(i), "u", None)).collect(),
    )
    .await;
    let keys: Vec<_> = out.accepted.iter().map(|e| e.key).collect();
    let page = store.pending(&a, None, 2).await.expect("page");
    assert_eq!(page.iter().map(|e| e.key).collect::<Vec<_>>(), keys[..2]);
    let page = store.pending(&a, Some(keys[1]), 2).await.expect("page");
    assert_eq!(page.iter().map(|e| e.key).collect::<Vec<_>>(), keys[2..4]);
    assert!(store.acknowledge(&lease, keys[2]).await.expect("ack"));
    assert!(!store.acknowledge(&lease, keys[2]).await.expect("ack twice"));
    let rest = store.pending(&a, Some(keys[1]), 10).await.expect("page");
    assert_eq!(
        rest.iter().map(|e| e.key).collect::<Vec<_>>(),
        vec![keys[3], keys[4]]
    );
    assert_eq!(store.accounts().await.expect("list")[0].pending, 4);
}

/// Failures count up; at the limit the entry moves to the dead letters,
/// leaves the backlog, and can be re-queued under its old key.
pub async fn failures_dead_letter_at_the_limit_and_requeue(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let out = commit(store, &lease, vec![message(Some(7), "u", None)]).await;
    let key = out.accepted[0].key;
    for n in 1..3 {
        let got = store
            .record_failure(&lease, key, &format!("e{n}"), 3, T0 + n)
            .await;
        assert_eq!(
            got.expect("record"),
            FailureOutcome::Retry { attempts: n as u32 }
        );
    }
    let pending = store.pending(&a, None, 10).await.expect("pending");
    assert_eq!(
        (pending[0].attempts, pending[0].last_error.as_deref()),
        (2, Some("e2"))
    );
    let got = store
        .record_failure(&lease, key, "e3", 3, T0 + 9)
        .await
        .expect("record");
    assert_eq!(got, FailureOutcome::DeadLettered { attempts: 3 });
    assert!(
        store
            .pending(&a, None, 10)
            .await
            .expect("pending")
            .is_empty()
    );
    let dead = store.dead_letters(&a, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].key, dead[0].message_id, dead[0].attempts),
        (key, Some(7), 3)
    );
    assert_eq!(
        (dead[0].last_error.as_str(), dead[0].failed_at_ms),
        ("e3", T0 + 9)
    );
    let summary = &store.accounts().await.expect("list")[0];
    assert_eq!((summary.pending, summary.dead_letters), (0, 1));
    assert_eq!(
        store
            .record_failure(&lease, key, "gone", 3, T0)
            .await
            .expect("record"),
        FailureOutcome::Missing
    );
    assert!(store.requeue(&a, key).await.expect("requeue"));
    assert!(!store.requeue(&a, key).await.expect("requeue twice"));
    let back = store.pending(&a, None, 10).await.expect("pending");
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].key, back[0].attempts, back[0].last_error.as_deref()),
        (key, 0, None)
    );
    assert!(
        store
            .dead_letters(&a, 10)
            .await
            .expect("dead letters")
            .is_empty()
    );
}

/// Accepted reply indexes are kept ascending, each once.
pub async fn accepted_replies_are_recorded_once_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let out = commit(store, &lease, vec![message(Some(1), "u", None)]).await;
    let key = out.accepted[0].key;
    for index in [2, 0, 2, 1] {
        store
            .record_reply(&lease, key, index)
            .await
            .expect("record a reply");
    }
    store
        .record_reply(&lease, JournalKey(999), 0)
        .await
        .expect("a missing entry is fine");
    let entry = &store.pending(&a, None, 1).await.expect("pending")[0];
    assert_eq!(entry.accepted_replies, vec![0, 1, 2]);
}

/// The reply budget belongs to one journal entry: it never grants part of
/// a request, another entry's count is separate, a handled (acknowledged)
/// entry has none left, and a requeued dead letter starts again from 0.
pub async fn the_reply_budget_belongs_to_one_entry(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let accepted = commit(
        store,
        &lease,
        vec![message(Some(1), "u", None), message(Some(2), "u", None)],
    )
    .await
    .accepted;
    let (first, second) = (accepted[0].key, accepted[1].key);
    let reply = BudgetKind::Reply { key: first };
    let spend = |n| store.spend_budget(&lease, &reply, n, 3, T0);
    assert_eq!(
        spend(2).await.expect("spend"),
        BudgetOutcome::Granted { used: 2 }
    );
    assert_eq!(
        spend(2).await.expect("spend"),
        BudgetOutcome::Exhausted {
            used: 2,
            resets_at_ms: None
        }
    );
    assert_eq!(
        spend(1).await.expect("spend"),
        BudgetOutcome::Granted { used: 3 }
    );
    // The same user's next message has its own budget.
    assert_eq!(
        store
            .spend_budget(&lease, &BudgetKind::Reply { key: second }, 3, 3, T0)
            .await
            .expect("spend"),
        BudgetOutcome::Granted { used: 3 }
    );
    // A handled message has no budget left.
    store.acknowledge(&lease, first).await.expect("acknowledge");
    assert_eq!(
        spend(1).await.expect("spend"),
        BudgetOutcome::Exhausted {
            used: 0,
            resets_at_ms: None
        }
    );
    // A dead letter requeued starts from 0 again.
    store
        .record_failure(&lease, second, "boom", 1, T0)
        .await
        .expect("dead-letter");
    assert!(store.requeue(&a, second).await.expect("requeue"));
    assert_eq!(
        store
            .spend_budget(&lease, &BudgetKind::Reply { key: second }, 1, 3, T0)
            .await
            .expect("spend"),
        BudgetOutcome::Granted { used: 1 }
    );
}

/// The push budget counts per fixed window that starts with the first push
/// after the previous window ended.
pub async fn the_push_budget_counts_per_window(store: Arc<dyn Store>) {
    let store = &*store;
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    let push = BudgetKind::Push { window_ms: 100 };
    let spend = |n, now| store.spend_budget(&lease, &push, n, 2, now);
    assert_eq!(
        spend(1, T0).await.expect("spend"),
        BudgetOutcome::Granted { used: 1 }
    );
    assert_eq!(
        spend(1, T0 + 50).await.expect("spend"),
        BudgetOutcome::Granted { used: 2 }
    );
    assert_eq!(
        spend(1, T0 + 99).await.expect("spend"),
        BudgetOutcome::Exhausted {
            used: 2,
            resets_at_ms: Some(T0 + 100)
        }
    );
    assert_eq!(
        spend(2, T0 + 100).await.expect("spend"),
        BudgetOutcome::Granted { used: 2 }
    );
    // A limit of 0 grants nothing.
    let none = store
        .spend_budget(&lease, &push, 1, 0, T0 + 500)
        .await
        .expect("spend");
    assert!(
        matches!(none, BudgetOutcome::Exhausted { used: 0, .. }),
        "{none:?}"
    );
}

/// The throttle state is saved, read back and cleared.
pub async fn the_throttle_state_round_trips(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    assert_eq!(store.throttle(&a).await.expect("throttle"), None);
    let record = ThrottleRecord {
        since_ms: T0,
        next_probe_ms: T0 + 3_600_000,
        failed_probes: 2,
    };
    store
        .set_throttle(&lease, Some(record))
        .await
        .expect("save");
    assert_eq!(store.throttle(&a).await.expect("throttle"), Some(record));
    store.set_throttle(&lease, None).await.expect("clear");
    assert_eq!(store.throttle(&a).await.expect("throttle"), None);
}

/// Accounts are independent: journals, cursors, ids, tokens and leases.
pub async fn accounts_keep_separate_state(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (account("a@im.bot"), account("b@im.bot"));
    let la = claim(store, "a@im.bot", "runner-a", T0).await;
    let lb = claim(store, "b@im.bot", "runner-b", T0).await;
    store
        .commit_batch(
            &la,
            &batch(Some("ca"), vec![message(Some(1), "u", Some("ta"))], T0),
        )
        .await
        .expect("commit a");
    let out = store
        .commit_batch(
            &lb,
            &batch(Some("cb"), vec![message(Some(1), "u", Some("tb"))], T0),
        )
        .await
        .expect("commit b");
    assert_eq!(
        out.accepted.len(),
        1,
        "the same id on another account is new"
    );
    assert_eq!(
        store.cursor(&a).await.expect("cursor").as_deref(),
        Some("ca")
    );
    assert_eq!(
        store.cursor(&b).await.expect("cursor").as_deref(),
        Some("cb")
    );
    let tb = store
        .context(&b, "u")
        .await
        .expect("context")
        .expect("token");
    assert_eq!(tb.token.expose_secret(), "tb");
    // A lease on one account does not fence the other.
    assert!(
        store
            .acknowledge(&la, out.accepted[0].key)
            .await
            .expect("ack on a")
    );
    assert_eq!(store.pending(&b, None, 10).await.expect("pending").len(), 1);
    let names: Vec<_> = store
        .accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.account)
        .collect();
    assert_eq!(names, vec![a, b]);
}

/// Two runners racing for one account: exactly one wins each epoch.
pub async fn concurrent_claims_have_one_winner(store: Arc<dyn Store>) {
    let a = account("a@im.bot");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            store.claim(&a, &format!("runner-{i}"), TTL, T0).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("the task runs") {
            Ok(lease) => winners.push(lease),
            Err(e) => assert!(e.is_leased(), "{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].epoch, 1);
}

/// An account file added for the runners reads back as it was written
/// (the newest one wins), lists the account, leaves a lease alone, and
/// never prints its token.
pub async fn account_files_round_trip_without_printing_the_token(store: Arc<dyn Store>) {
    let store = &*store;
    let a = account("a@im.bot");
    assert_eq!(store.credentials(&a).await.expect("read"), None);
    let first = AccountCredentials::new(r#"{"token":"secret-one"}"#);
    store.put_credentials(&a, &first).await.expect("add");
    let names: Vec<_> = store
        .accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.account)
        .collect();
    assert_eq!(names, vec![a.clone()], "an added account is listed");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    assert_eq!(lease.epoch, 1, "an added account was never claimed");
    let second = AccountCredentials::new(r#"{"token":"secret-two"}"#);
    store.put_credentials(&a, &second).await.expect("replace");
    let read = store.credentials(&a).await.expect("read");
    assert_eq!(
        read.as_ref().map(AccountCredentials::expose_secret),
        Some(second.expose_secret())
    );
    let printed = format!("{read:?}");
    assert!(!printed.contains("secret"), "{printed}");
    // Replacing the file is no claim: the runner's lease still writes.
    store
        .renew(&lease, TTL, T0 + 10)
        .await
        .expect("the lease survives a new account file");
    let other = account("b@im.bot");
    claim(store, "b@im.bot", "runner-a", T0).await;
    assert_eq!(
        store.credentials(&other).await.expect("read"),
        None,
        "a claimed account without a file has none"
    );
}

/// Removing an account is refused while a runner's lease on it is live;
/// once the lease is released or has expired, it takes everything the
/// store kept for the account, and a second removal finds nothing.
pub async fn a_leased_account_is_not_removed_and_removal_takes_everything(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (account("a@im.bot"), account("b@im.bot"));
    assert!(
        !store.remove_account(&a, T0).await.expect("remove unknown"),
        "an unknown account is not there to remove"
    );
    store
        .put_credentials(&a, &AccountCredentials::new(r#"{"token":"t"}"#))
        .await
        .expect("add");
    let lease = claim(store, "a@im.bot", "runner-a", T0).await;
    store
        .commit_batch(
            &lease,
            &batch(Some("c1"), vec![message(Some(7), "u", Some("ctx"))], T0),
        )
        .await
        .expect("commit");
    let lb = claim(store, "b@im.bot", "runner-b", T0).await;
    store
        .commit_batch(
            &lb,
            &batch(Some("cb"), vec![message(Some(7), "u", None)], T0),
        )
        .await
        .expect("commit b");

    let err = store
        .remove_account(&a, T0 + 10)
        .await
        .expect_err("a live lease refuses removal");
    assert!(err.is_leased(), "{err}");
    assert_eq!(store.pending(&a, None, 10).await.expect("pending").len(), 1);
    assert!(store.credentials(&a).await.expect("read").is_some());

    // An expired lease no longer protects the account.
    assert!(
        store
            .remove_account(&a, T0 + TTL + 1)
            .await
            .expect("remove after expiry")
    );
    assert_eq!(store.credentials(&a).await.expect("read"), None);
    assert!(
        store
            .pending(&a, None, 10)
            .await
            .expect("pending")
            .is_empty()
    );
    assert_eq!(store.cursor(&a).await.expect("cursor"), None);
    assert!(!store.is_seen(&a, 7).await.expect("seen"));
    assert!(store.context(&a, "u").await.expect("context").is_none());
    assert!(!store.remove_account(&a, T0 + TTL + 1).await.expect("again"));

    // The other account is untouched; after a release it goes too.
    let names: Vec<_> = store
        .accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.account)
        .collect();
    assert_eq!(names, vec![b.clone()]);
    assert_eq!(store.pending(&b, None, 10).await.expect("pending").len(), 1);
    store.release(&lb).await.expect("release");
    assert!(store.remove_account(&b, T0 + 20).await.expect("remove b"));
    assert!(store.accounts().await.expect("list").is_empty());
}

/// Generates one `#[tokio::test]` per conformance case for the store that
/// `$fresh` (an `async fn(&'static str) -> Option<Arc<dyn Store>>`, given
/// the case's name) makes.
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        $crate::store_conformance_tests!(@cases $fresh;
            claim_registers_the_account_and_renewal_keeps_the_epoch,
            a_live_lease_refuses_other_runners_until_it_expires,
            a_lost_lease_is_fenced_out_of_every_write,
            release_hands_the_account_over_at_once,
            an_expired_lease_nobody_took_still_writes,
            commit_journals_messages_and_saves_the_cursor_together,
            duplicate_ids_are_dropped_and_the_window_keeps_the_newest,
            the_largest_message_ids_round_trip,
            the_newest_context_token_per_sender_is_kept,
            the_backlog_pages_by_key_and_acknowledges_once,
            failures_dead_letter_at_the_limit_and_requeue,
            accepted_replies_are_recorded_once_in_order,
            the_reply_budget_belongs_to_one_entry,
            the_push_budget_counts_per_window,
            the_throttle_state_round_trips,
            accounts_keep_separate_state,
            concurrent_claims_have_one_winner,
            account_files_round_trip_without_printing_the_token,
            a_leased_account_is_not_removed_and_removal_takes_everything,
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = $fresh(stringify!($case)).await {
                    $crate::store::conformance::$case(store).await;
                }
            }
        )*
    };
}
