//! The store contract, checked against both `MemoryStore` and `SqliteStore`.
#![allow(clippy::unwrap_used)]

use wxlink_client::runtime::store::fingerprint;
use wxlink_client::runtime::{
    ContextRecord, DedupeSettings, InboundBatch, InboundMessage, JournalKey, MemoryStore,
    SqliteStore, Store, TurnRecord,
};
use wxlink_proto::ContextToken;

/// Runs `check` against a memory store, an in-memory SQLite store and a
/// SQLite file.
fn for_each_store(check: impl Fn(&dyn Store)) {
    check(&MemoryStore::new());
    check(&SqliteStore::open_in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    check(&SqliteStore::open(dir.path().join("state.db")).unwrap());
}

fn msg(id: u64, sender: &str, text: &str) -> InboundMessage {
    InboundMessage {
        message_id: Some(id),
        sender: sender.to_owned(),
        fingerprint: Some(fingerprint(sender, text)),
        context_token: Some(ContextToken::new(format!("ctx-{id}"))),
        json: format!(r#"{{"message_id":{id},"text":"{text}"}}"#),
    }
}

fn batch(cursor: &str, messages: Vec<InboundMessage>, now_ms: i64) -> InboundBatch {
    InboundBatch {
        cursor: Some(cursor.to_owned()),
        messages,
        now_ms,
        dedupe: DedupeSettings::default(),
    }
}

#[test]
fn batch_journals_messages_and_advances_the_cursor_together() {
    for_each_store(|store| {
        assert_eq!(store.cursor().unwrap(), None);
        let out = store
            .commit_batch(&batch("c1", vec![msg(1, "a", "x"), msg(2, "b", "y")], 10))
            .unwrap();
        assert_eq!(out.accepted.len(), 2);
        assert_eq!(out.duplicates, 0);
        assert_eq!(store.cursor().unwrap().as_deref(), Some("c1"));
        let journal = store.unacknowledged().unwrap();
        let ids: Vec<_> = journal.iter().map(|e| e.message_id).collect();
        assert_eq!(ids, [Some(1), Some(2)]);
        assert_eq!(journal[0].sender, "a");
        assert_eq!(journal[0].json, r#"{"message_id":1,"text":"x"}"#);
        assert!(journal[0].key < journal[1].key, "keys follow arrival order");
    });
}

#[test]
fn acknowledged_messages_leave_the_journal_in_any_order() {
    for_each_store(|store| {
        let out = store
            .commit_batch(&batch(
                "c1",
                vec![msg(1, "a", "x"), msg(2, "a", "y"), msg(3, "a", "z")],
                10,
            ))
            .unwrap();
        assert!(store.acknowledge(out.accepted[1].key).unwrap());
        assert!(
            !store.acknowledge(out.accepted[1].key).unwrap(),
            "second ack is a no-op"
        );
        let left: Vec<_> = store
            .unacknowledged()
            .unwrap()
            .iter()
            .map(|e| e.message_id)
            .collect();
        assert_eq!(left, [Some(1), Some(3)]);
        assert!(!store.acknowledge(JournalKey(9_999)).unwrap());
    });
}

#[test]
fn ids_above_two_to_the_63_round_trip_exactly() {
    for_each_store(|store| {
        let ids = [
            u64::MAX,
            (1 << 63) + 1,
            1 << 63,
            7_423_198_823_477_151_811,
            0,
        ];
        let messages = ids
            .iter()
            .map(|&id| msg(id, "a", &id.to_string()))
            .collect();
        store.commit_batch(&batch("c", messages, 1)).unwrap();
        let back: Vec<_> = store
            .unacknowledged()
            .unwrap()
            .iter()
            .map(|e| e.message_id.unwrap())
            .collect();
        assert_eq!(back, ids);
        for id in ids {
            assert!(store.is_seen(id).unwrap());
        }
        assert!(!store.is_seen(u64::MAX - 1).unwrap());
        assert!(!store.is_seen(i64::MAX as u64).unwrap());
    });
}

#[test]
fn repeated_ids_are_dropped_across_batches_and_within_one() {
    for_each_store(|store| {
        store
            .commit_batch(&batch("c1", vec![msg(5, "a", "x")], 1))
            .unwrap();
        let out = store
            .commit_batch(&batch(
                "c2",
                vec![msg(5, "a", "x"), msg(6, "a", "y"), msg(6, "a", "y")],
                2,
            ))
            .unwrap();
        assert_eq!(out.duplicates, 2);
        let accepted: Vec<_> = out.accepted.iter().map(|e| e.message_id).collect();
        assert_eq!(accepted, [Some(6)]);
        assert_eq!(store.unacknowledged().unwrap().len(), 2);
        assert_eq!(store.cursor().unwrap().as_deref(), Some("c2"));
    });
}

#[test]
fn the_id_window_is_bounded_and_keeps_the_newest() {
    for_each_store(|store| {
        let mut b = batch("c", (1..=5).map(|i| msg(i, "a", "t")).collect(), 1);
        b.dedupe.id_window = 3;
        store.commit_batch(&b).unwrap();
        assert!(!store.is_seen(1).unwrap());
        assert!(!store.is_seen(2).unwrap());
        assert!(store.is_seen(3).unwrap());
        assert!(store.is_seen(5).unwrap());
    });
}

#[test]
fn fingerprint_window_drops_resends_under_new_ids_within_the_ttl() {
    for_each_store(|store| {
        let dedupe = DedupeSettings {
            fingerprint_ttl_ms: Some(300_000),
            ..DedupeSettings::default()
        };
        let mut first = batch("c1", vec![msg(1, "a", "hello")], 1_000);
        first.dedupe = dedupe;
        store.commit_batch(&first).unwrap();

        // The same text from the same sender under a new id, 10 s later.
        let mut resend = batch(
            "c2",
            vec![msg(2, "a", "hello"), msg(3, "b", "hello")],
            11_000,
        );
        resend.dedupe = dedupe;
        let out = store.commit_batch(&resend).unwrap();
        assert_eq!(out.duplicates, 1);
        assert_eq!(
            out.accepted[0].message_id,
            Some(3),
            "another sender is not a duplicate"
        );
        // The re-send still refreshes the context token.
        assert_eq!(
            store.context("a").unwrap().unwrap().token,
            ContextToken::new("ctx-2")
        );

        // After the TTL the same text is new again.
        let mut later = batch("c3", vec![msg(4, "a", "hello")], 1_000 + 300_000);
        later.dedupe = dedupe;
        assert_eq!(store.commit_batch(&later).unwrap().accepted.len(), 1);
    });
}

#[test]
fn without_the_fingerprint_window_identical_texts_are_kept() {
    for_each_store(|store| {
        store
            .commit_batch(&batch("c", vec![msg(1, "a", "ok"), msg(2, "a", "ok")], 1))
            .unwrap();
        assert_eq!(store.unacknowledged().unwrap().len(), 2);
    });
}

#[test]
fn new_messages_record_context_and_start_a_turn() {
    for_each_store(|store| {
        store
            .set_turn(
                "a",
                &TurnRecord {
                    started_at_ms: 1,
                    sent: 7,
                },
            )
            .unwrap();
        store
            .commit_batch(&batch("c", vec![msg(1, "a", "x")], 50))
            .unwrap();
        let ctx = store.context("a").unwrap().unwrap();
        assert_eq!(ctx.token, ContextToken::new("ctx-1"));
        assert_eq!(ctx.seen_at_ms, 50);
        assert_eq!(
            store.turn("a").unwrap(),
            Some(TurnRecord {
                started_at_ms: 50,
                sent: 0
            })
        );
        // A duplicate does not reset the turn or roll the token back.
        store
            .set_turn(
                "a",
                &TurnRecord {
                    started_at_ms: 50,
                    sent: 3,
                },
            )
            .unwrap();
        store
            .commit_batch(&batch("c2", vec![msg(1, "a", "x")], 60))
            .unwrap();
        assert_eq!(store.turn("a").unwrap().unwrap().sent, 3);
        assert_eq!(store.context("a").unwrap().unwrap().seen_at_ms, 50);
        assert_eq!(store.context("nobody").unwrap(), None);
        assert_eq!(store.turn("nobody").unwrap(), None);
    });
}

#[test]
fn contexts_and_turns_can_be_set_directly() {
    for_each_store(|store| {
        let record = ContextRecord {
            token: ContextToken::new("tok"),
            seen_at_ms: 42,
        };
        store.set_context("u", &record).unwrap();
        assert_eq!(store.context("u").unwrap(), Some(record));
        let turn = TurnRecord {
            started_at_ms: 9,
            sent: 2,
        };
        store.set_turn("u", &turn).unwrap();
        assert_eq!(store.turn("u").unwrap(), Some(turn));
    });
}

#[test]
fn empty_cursors_never_overwrite_a_saved_one() {
    for_each_store(|store| {
        store.set_cursor("keep").unwrap();
        store.set_cursor("").unwrap();
        store.commit_batch(&batch("", vec![], 1)).unwrap();
        assert_eq!(store.cursor().unwrap().as_deref(), Some("keep"));
        let mut b = batch("x", vec![], 1);
        b.cursor = None;
        store.commit_batch(&b).unwrap();
        assert_eq!(store.cursor().unwrap().as_deref(), Some("keep"));
    });
}

#[test]
fn sqlite_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let out = store
            .commit_batch(&batch(
                "c9",
                vec![msg(u64::MAX, "a", "x"), msg(2, "a", "y")],
                5,
            ))
            .unwrap();
        store.acknowledge(out.accepted[1].key).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.cursor().unwrap().as_deref(), Some("c9"));
    let left: Vec<_> = store
        .unacknowledged()
        .unwrap()
        .iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(left, [Some(u64::MAX)]);
    assert!(store.is_seen(2).unwrap());
    assert_eq!(
        store.context("a").unwrap().unwrap().token,
        ContextToken::new("ctx-2")
    );
    // New entries get keys after the old ones, even after the last was removed.
    let out = store
        .commit_batch(&batch("c10", vec![msg(3, "a", "z")], 6))
        .unwrap();
    assert!(out.accepted[0].key > JournalKey(2));
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite_version_bump(&path);
        drop(conn);
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Marks the database at `path` as written by a future schema version,
/// through a second store handle's raw SQL (none is public, so this opens
/// the file with the bundled SQLite directly).
fn rusqlite_version_bump(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    conn
}
