//! [`MemoryStore`]: a [`Store`] that keeps everything in memory.
//!
//! It forgets everything when the process exits, so it suits tests and bots
//! that accept losing unacknowledged messages on a restart. It implements the
//! same rules as [`SqliteStore`](super::SqliteStore), so tests written against
//! one hold for the other.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::store::{
    CommitOutcome, ContextRecord, InboundBatch, JournalEntry, JournalKey, Store, StoreError,
    TurnRecord,
};

/// An in-memory [`Store`]; cheap to create, lost on exit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// The state behind the lock.
#[derive(Debug, Default)]
struct Inner {
    cursor: Option<String>,
    next_key: u64,
    journal: BTreeMap<u64, JournalEntry>,
    seen_ids: HashSet<u64>,
    seen_order: VecDeque<u64>,
    fingerprints: HashMap<String, i64>,
    contexts: HashMap<String, ContextRecord>,
    turns: HashMap<String, TurnRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state. A poisoned lock (a panic while holding it) is an
    /// error rather than a second panic.
    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new("lock the memory store"))
    }
}

impl Inner {
    /// Remembers `id` as seen and forgets the oldest ids beyond `window`.
    fn remember_id(&mut self, id: u64, window: usize) {
        if self.seen_ids.insert(id) {
            self.seen_order.push_back(id);
        }
        while self.seen_order.len() > window.max(1) {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_ids.remove(&old);
            }
        }
    }
}

impl Store for MemoryStore {
    fn cursor(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock()?.cursor.clone())
    }

    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        if !cursor.is_empty() {
            self.lock()?.cursor = Some(cursor.to_owned());
        }
        Ok(())
    }

    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError> {
        let mut guard = self.lock()?;
        // Nothing below can fail, so mutating in place keeps the batch
        // all-or-nothing, as the SQLite store's transaction does.
        let next = &mut *guard;
        let mut outcome = CommitOutcome::default();
        let now = batch.now_ms;
        if let Some(ttl) = batch.dedupe.fingerprint_ttl_ms {
            next.fingerprints.retain(|_, seen| now - *seen < ttl);
        }
        for message in &batch.messages {
            if let Some(id) = message.message_id {
                if next.seen_ids.contains(&id) {
                    outcome.duplicates += 1;
                    continue;
                }
                next.remember_id(id, batch.dedupe.id_window);
            }
            if let Some(token) = &message.context_token {
                next.contexts.insert(
                    message.sender.clone(),
                    ContextRecord {
                        token: token.clone(),
                        seen_at_ms: now,
                    },
                );
            }
            if let (Some(ttl), Some(fp)) = (batch.dedupe.fingerprint_ttl_ms, &message.fingerprint) {
                let fresh = next
                    .fingerprints
                    .get(fp)
                    .is_some_and(|seen| now - *seen < ttl);
                if fresh {
                    outcome.duplicates += 1;
                    continue;
                }
                next.fingerprints.insert(fp.clone(), now);
            }
            next.next_key += 1;
            let entry = JournalEntry {
                key: JournalKey(next.next_key),
                message_id: message.message_id,
                sender: message.sender.clone(),
                json: message.json.clone(),
                received_at_ms: now,
            };
            next.journal.insert(next.next_key, entry.clone());
            next.turns.insert(
                message.sender.clone(),
                TurnRecord {
                    started_at_ms: now,
                    sent: 0,
                },
            );
            outcome.accepted.push(entry);
        }
        if let Some(cursor) = batch.cursor.as_deref().filter(|c| !c.is_empty()) {
            next.cursor = Some(cursor.to_owned());
        }
        Ok(outcome)
    }

    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(self.lock()?.journal.values().cloned().collect())
    }

    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError> {
        Ok(self.lock()?.journal.remove(&key.0).is_some())
    }

    fn is_seen(&self, message_id: u64) -> Result<bool, StoreError> {
        Ok(self.lock()?.seen_ids.contains(&message_id))
    }

    fn context(&self, user: &str) -> Result<Option<ContextRecord>, StoreError> {
        Ok(self.lock()?.contexts.get(user).cloned())
    }

    fn set_context(&self, user: &str, record: &ContextRecord) -> Result<(), StoreError> {
        self.lock()?
            .contexts
            .insert(user.to_owned(), record.clone());
        Ok(())
    }

    fn turn(&self, user: &str) -> Result<Option<TurnRecord>, StoreError> {
        Ok(self.lock()?.turns.get(user).copied())
    }

    fn set_turn(&self, user: &str, record: &TurnRecord) -> Result<(), StoreError> {
        self.lock()?.turns.insert(user.to_owned(), *record);
        Ok(())
    }
}
