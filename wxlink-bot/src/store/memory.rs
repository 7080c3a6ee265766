//! [`MemoryStore`]: the [`Store`] in memory, for tests and for bots that
//! may forget everything on restart.
//!
//! It follows the trait's contract exactly (leases, fencing, dead letters),
//! so a test against it says what a durable store does, minus durability.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::error::Error;

use super::rules::{self, ClaimEpoch, PushWindow};
use super::{
    AccountCredentials, AccountId, AccountSummary, BudgetKind, BudgetOutcome, CommitOutcome,
    ContextRecord, DeadLetter, FailureOutcome, InboundBatch, JournalEntry, JournalKey, Lease,
    Store, StoreFuture, ThrottleRecord,
};

/// The lease columns of one account.
#[derive(Debug, Default, Clone)]
struct LeaseState {
    owner: Option<String>,
    epoch: u64,
    expires_at_ms: i64,
}

/// Everything the store keeps for one account.
#[derive(Debug, Default)]
struct AccountState {
    lease: LeaseState,
    cursor: Option<String>,
    next_key: u64,
    journal: BTreeMap<JournalKey, JournalEntry>,
    dead: BTreeMap<JournalKey, DeadLetter>,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    contexts: HashMap<String, ContextRecord>,
    /// Replies used per journal entry.
    replies: HashMap<JournalKey, u32>,
    push: PushWindow,
    throttle: Option<ThrottleRecord>,
    /// The account file `wxlink accounts add` keeps, if any.
    credentials: Option<AccountCredentials>,
}

/// A [`Store`] held in memory; cheap to create, lost on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    accounts: Mutex<HashMap<AccountId, AccountState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The locked map; a poisoned lock is a store failure, never a panic.
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<AccountId, AccountState>>, Error> {
        self.accounts
            .lock()
            .map_err(|_| Error::store("lock the in-memory store"))
    }

    /// Runs `f` on the account of `lease` if the lease is current.
    fn fenced<T>(
        &self,
        lease: &Lease,
        operation: &'static str,
        f: impl FnOnce(&mut AccountState) -> T,
    ) -> Result<T, Error> {
        let mut map = self.lock()?;
        let state = map
            .get_mut(&lease.account)
            .ok_or_else(|| Error::fenced(operation))?;
        if state.lease.owner.as_deref() != Some(lease.owner.as_str())
            || state.lease.epoch != lease.epoch
        {
            return Err(Error::fenced(operation));
        }
        Ok(f(state))
    }

    /// Runs `f` on `account` (registered or not) for a read.
    fn read<T>(
        &self,
        account: &AccountId,
        f: impl FnOnce(Option<&AccountState>) -> T,
    ) -> Result<T, Error> {
        let map = self.lock()?;
        Ok(f(map.get(account)))
    }
}

/// Wraps a ready result in the trait's future.
fn ready<'a, T: Send + 'a>(result: Result<T, Error>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

/// The claim rule of the trait ([`rules::claim_epoch`]), applied to one
/// account's lease columns.
fn claim_lease(
    state: &mut LeaseState,
    account: &AccountId,
    owner: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Lease, Error> {
    let step = rules::claim_epoch(state.owner.as_deref(), state.expires_at_ms, owner, now_ms)?;
    if step == ClaimEpoch::Bump {
        state.epoch += 1;
    }
    state.owner = Some(owner.to_owned());
    state.expires_at_ms = now_ms.saturating_add(ttl_ms);
    Ok(Lease {
        account: account.clone(),
        owner: owner.to_owned(),
        epoch: state.epoch,
        expires_at_ms: state.expires_at_ms,
    })
}

impl Store for MemoryStore {
    fn claim<'a>(
        &'a self,
        account: &'a AccountId,
        owner: &'a str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreFuture<'a, Lease> {
        let result = self.lock().and_then(|mut map| {
            let state = map.entry(account.clone()).or_default();
            claim_lease(&mut state.lease, account, owner, ttl_ms, now_ms)
        });
        ready(result)
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl_ms: i64, now_ms: i64) -> StoreFuture<'a, Lease> {
        ready(self.fenced(lease, "renew the lease", |state| {
            state.lease.expires_at_ms = now_ms.saturating_add(ttl_ms);
            Lease {
                expires_at_ms: state.lease.expires_at_ms,
                ..lease.clone()
            }
        }))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        ready(self.fenced(lease, "release the lease", |state| {
            state.lease.expires_at_ms = 0;
        }))
    }

    fn accounts(&self) -> StoreFuture<'_, Vec<AccountSummary>> {
        let result = self.lock().map(|map| {
            let mut list: Vec<AccountSummary> = map
                .iter()
                .map(|(id, s)| AccountSummary {
                    account: id.clone(),
                    owner: s.lease.owner.clone(),
                    epoch: s.lease.epoch,
                    expires_at_ms: s.lease.expires_at_ms,
                    pending: s.journal.len() as u64,
                    dead_letters: s.dead.len() as u64,
                })
                .collect();
            list.sort_by(|a, b| a.account.cmp(&b.account));
            list
        });
        ready(result)
    }

    fn cursor<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<String>> {
        ready(self.read(account, |s| s.and_then(|s| s.cursor.clone())))
    }

    fn commit_batch<'a>(
        &'a self,
        lease: &'a Lease,
        batch: &'a InboundBatch,
    ) -> StoreFuture<'a, CommitOutcome> {
        ready(self.fenced(lease, "commit batch", |state| {
            let mut outcome = CommitOutcome::default();
            for message in &batch.messages {
                if let Some(id) = message.message_id {
                    if !state.seen.insert(id) {
                        outcome.duplicates += 1;
                        continue;
                    }
                    state.seen_order.push_back(id);
                }
                state.next_key += 1;
                let entry = rules::new_entry(JournalKey(state.next_key), message, batch.now_ms);
                state.journal.insert(entry.key, entry.clone());
                if let Some(token) = message.context_token.clone().filter(|t| !t.is_empty()) {
                    state.contexts.insert(
                        message.sender.clone(),
                        ContextRecord {
                            token,
                            seen_at_ms: batch.now_ms,
                        },
                    );
                }
                outcome.accepted.push(entry);
            }
            while state.seen_order.len() > batch.id_window {
                if let Some(old) = state.seen_order.pop_front() {
                    state.seen.remove(&old);
                }
            }
            if let Some(cursor) = batch.cursor.as_ref().filter(|c| !c.is_empty()) {
                state.cursor = Some(cursor.clone());
            }
            outcome
        }))
    }

    fn pending<'a>(
        &'a self,
        account: &'a AccountId,
        after: Option<JournalKey>,
        limit: usize,
    ) -> StoreFuture<'a, Vec<JournalEntry>> {
        ready(self.read(account, |s| {
            let Some(s) = s else { return Vec::new() };
            let start = after.map_or(0, |k| k.0.saturating_add(1));
            s.journal
                .range(JournalKey(start)..)
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect()
        }))
    }

    fn acknowledge<'a>(&'a self, lease: &'a Lease, key: JournalKey) -> StoreFuture<'a, bool> {
        ready(self.fenced(lease, "acknowledge", |state| {
            state.replies.remove(&key);
            state.journal.remove(&key).is_some()
        }))
    }

    fn record_failure<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        error: &'a str,
        max_attempts: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, FailureOutcome> {
        ready(self.fenced(lease, "record a failure", |state| {
            let Some(entry) = state.journal.get_mut(&key) else {
                return FailureOutcome::Missing;
            };
            entry.attempts = entry.attempts.saturating_add(1);
            entry.last_error = Some(error.to_owned());
            let attempts = entry.attempts;
            let outcome = rules::after_failure(attempts, max_attempts);
            if let FailureOutcome::Retry { .. } = outcome {
                return outcome;
            }
            state.replies.remove(&key);
            if let Some(entry) = state.journal.remove(&key) {
                state.dead.insert(
                    key,
                    DeadLetter {
                        key,
                        message_id: entry.message_id,
                        sender: entry.sender,
                        json: entry.json,
                        received_at_ms: entry.received_at_ms,
                        failed_at_ms: now_ms,
                        attempts,
                        last_error: error.to_owned(),
                    },
                );
            }
            outcome
        }))
    }

    fn record_reply<'a>(
        &'a self,
        lease: &'a Lease,
        key: JournalKey,
        index: u32,
    ) -> StoreFuture<'a, ()> {
        ready(self.fenced(lease, "record a reply", |state| {
            if let Some(entry) = state.journal.get_mut(&key)
                && let Err(at) = entry.accepted_replies.binary_search(&index)
            {
                entry.accepted_replies.insert(at, index);
            }
        }))
    }

    fn is_seen<'a>(&'a self, account: &'a AccountId, message_id: u64) -> StoreFuture<'a, bool> {
        ready(self.read(account, |s| s.is_some_and(|s| s.seen.contains(&message_id))))
    }

    fn dead_letters<'a>(
        &'a self,
        account: &'a AccountId,
        limit: usize,
    ) -> StoreFuture<'a, Vec<DeadLetter>> {
        ready(self.read(account, |s| {
            s.map(|s| s.dead.values().take(limit).cloned().collect())
                .unwrap_or_default()
        }))
    }

    fn requeue<'a>(&'a self, account: &'a AccountId, key: JournalKey) -> StoreFuture<'a, bool> {
        let result = self.lock().map(|mut map| {
            let Some(state) = map.get_mut(account) else {
                return false;
            };
            let Some(dead) = state.dead.remove(&key) else {
                return false;
            };
            state.journal.insert(
                key,
                JournalEntry {
                    key,
                    message_id: dead.message_id,
                    sender: dead.sender,
                    json: dead.json,
                    received_at_ms: dead.received_at_ms,
                    attempts: 0,
                    last_error: None,
                    accepted_replies: Vec::new(),
                },
            );
            true
        });
        ready(result)
    }

    fn context<'a>(
        &'a self,
        account: &'a AccountId,
        user: &'a str,
    ) -> StoreFuture<'a, Option<ContextRecord>> {
        ready(self.read(account, |s| s.and_then(|s| s.contexts.get(user).cloned())))
    }

    fn spend_budget<'a>(
        &'a self,
        lease: &'a Lease,
        kind: &'a BudgetKind,
        count: u32,
        limit: u32,
        now_ms: i64,
    ) -> StoreFuture<'a, BudgetOutcome> {
        ready(self.fenced(lease, "spend budget", |state| match kind {
            BudgetKind::Reply { key } => {
                // A key no longer journaled has no budget left.
                let used = state
                    .journal
                    .contains_key(key)
                    .then(|| state.replies.get(key).copied().unwrap_or(0));
                let (outcome, save) = rules::spend_reply(used, count, limit);
                if let Some(n) = save {
                    state.replies.insert(*key, n);
                }
                outcome
            }
            BudgetKind::Push { window_ms } => {
                let (outcome, save) =
                    rules::spend_push(state.push, *window_ms, count, limit, now_ms);
                if let Some(window) = save {
                    state.push = window;
                }
                outcome
            }
        }))
    }

    fn throttle<'a>(&'a self, account: &'a AccountId) -> StoreFuture<'a, Option<ThrottleRecord>> {
        ready(self.read(account, |s| s.and_then(|s| s.throttle)))
    }

    fn set_throttle<'a>(
        &'a self,
        lease: &'a Lease,
        record: Option<ThrottleRecord>,
    ) -> StoreFuture<'a, ()> {
        ready(self.fenced(lease, "save the throttle state", |state| {
            state.throttle = record;
        }))
    }

    fn put_credentials<'a>(
        &'a self,
        account: &'a AccountId,
        credentials: &'a AccountCredentials,
    ) -> StoreFuture<'a, ()> {
        ready(self.lock().map(|mut map| {
            map.entry(account.clone()).or_default().credentials = Some(credentials.clone());
        }))
    }

    fn credentials<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> StoreFuture<'a, Option<AccountCredentials>> {
        ready(self.read(account, |s| s.and_then(|s| s.credentials.clone())))
    }

    fn remove_account<'a>(&'a self, account: &'a AccountId, now_ms: i64) -> StoreFuture<'a, bool> {
        ready(self.lock().and_then(|mut map| {
            let Some(state) = map.get(account) else {
                return Ok(false);
            };
            rules::check_removable(
                state.lease.owner.as_deref(),
                state.lease.expires_at_ms,
                now_ms,
            )?;
            map.remove(account);
            Ok(true)
        }))
    }
}
