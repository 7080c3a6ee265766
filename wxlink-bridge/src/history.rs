//! Per-user conversation history for agents that need it (the
//! OpenAI-compatible backend), behind a small storage trait.
//!
//! [`HistoryStore`] is what the bridge needs of a store: load a user's
//! entries, append a turn's entries within [`HistoryLimits`], clear them on
//! `/reset`. [`MemoryHistory`] keeps them in memory; a persistent store
//! implements the same trait.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::agent::BoxFuture;
use crate::error::{Error, Kind};

/// Who said a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// The user.
    User,
    /// The agent.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Who said it.
    pub role: Role,
    /// What was said (text only; images are not kept).
    pub content: String,
}

impl HistoryEntry {
    /// An entry.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// How much history is kept per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryLimits {
    /// The most user turns kept (default 20); 0 keeps no history.
    pub max_turns: usize,
    /// The most characters kept over all entries (default 24 000).
    pub max_chars: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        Self {
            max_turns: 20,
            max_chars: 24_000,
        }
    }
}

impl HistoryLimits {
    /// Limits of `max_turns` turns and `max_chars` characters.
    pub fn new(max_turns: usize, max_chars: usize) -> Self {
        Self {
            max_turns,
            max_chars,
        }
    }

    /// Drops the oldest entries until both limits hold. Whole turns go
    /// together: the history always starts with a user entry.
    pub fn trim(&self, entries: &mut VecDeque<HistoryEntry>) {
        let mut turns = entries.iter().filter(|e| e.role == Role::User).count();
        let mut chars: usize = entries.iter().map(|e| e.content.chars().count()).sum();
        while !entries.is_empty() && (turns > self.max_turns || chars > self.max_chars) {
            // Drop one whole turn: its user entry and what answered it.
            if let Some(first) = entries.pop_front() {
                chars -= first.content.chars().count();
                if first.role == Role::User {
                    turns -= 1;
                }
            }
            while entries.front().is_some_and(|e| e.role != Role::User) {
                if let Some(e) = entries.pop_front() {
                    chars -= e.content.chars().count();
                }
            }
        }
    }
}

/// Where conversation history lives, keyed by account and user. A backend
/// that fails returns [`Error::store`].
pub trait HistoryStore: Send + Sync + 'static {
    /// The user's entries, oldest first.
    fn load<'a>(
        &'a self,
        account: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>, Error>>;

    /// Appends a turn's entries and trims the user's history to `limits`.
    fn append<'a>(
        &'a self,
        account: &'a str,
        user: &'a str,
        entries: Vec<HistoryEntry>,
        limits: HistoryLimits,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Forgets the user's history.
    fn clear<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>>;
}

/// History in memory: lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    map: Mutex<HashMap<(String, String), VecDeque<HistoryEntry>>>,
}

impl MemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<(String, String), VecDeque<HistoryEntry>>) -> T,
    ) -> Result<T, Error> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| Error::new(Kind::Store, "the history lock is poisoned"))?;
        Ok(f(&mut map))
    }
}

impl HistoryStore for MemoryHistory {
    fn load<'a>(
        &'a self,
        account: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>, Error>> {
        let result = self.with(|map| {
            map.get(&(account.to_owned(), user.to_owned()))
                .map(|d| d.iter().cloned().collect())
                .unwrap_or_default()
        });
        Box::pin(async move { result })
    }

    fn append<'a>(
        &'a self,
        account: &'a str,
        user: &'a str,
        entries: Vec<HistoryEntry>,
        limits: HistoryLimits,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let result = self.with(|map| {
            let list = map
                .entry((account.to_owned(), user.to_owned()))
                .or_default();
            list.extend(entries);
            limits.trim(list);
        });
        Box::pin(async move { result })
    }

    fn clear<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let result = self.with(|map| {
            map.remove(&(account.to_owned(), user.to_owned()));
        });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(n: usize, len: usize) -> [HistoryEntry; 2] {
        [
            HistoryEntry::new(Role::User, format!("q{n}{}", "x".repeat(len))),
            HistoryEntry::new(Role::Assistant, format!("a{n}")),
        ]
    }

    #[test]
    fn trim_keeps_the_newest_whole_turns() {
        let mut d: VecDeque<_> = (0..5).flat_map(|n| turn(n, 0)).collect();
        HistoryLimits::new(2, 1000).trim(&mut d);
        let contents: Vec<_> = d.iter().map(|e| e.content.as_str()).collect();
        assert_eq!(contents, ["q3", "a3", "q4", "a4"]);
    }

    #[test]
    fn trim_respects_the_character_bound() {
        let mut d: VecDeque<_> = (0..3).flat_map(|n| turn(n, 10)).collect();
        // Each turn is 13 + 2 = 15 characters.
        HistoryLimits::new(10, 31).trim(&mut d);
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].content, format!("q1{}", "x".repeat(10)));
        HistoryLimits::new(10, 5).trim(&mut d);
        assert!(d.is_empty());
    }

    #[tokio::test]
    async fn memory_history_appends_trims_and_clears_per_user() {
        let h = MemoryHistory::new();
        let limits = HistoryLimits::new(1, 100);
        h.append("a", "u", turn(0, 0).to_vec(), limits)
            .await
            .unwrap_or(());
        h.append("a", "u", turn(1, 0).to_vec(), limits)
            .await
            .unwrap_or(());
        h.append("a", "v", turn(9, 0).to_vec(), limits)
            .await
            .unwrap_or(());
        let u = h.load("a", "u").await.unwrap_or_default();
        assert_eq!(u, turn(1, 0).to_vec());
        h.clear("a", "u").await.unwrap_or(());
        assert!(h.load("a", "u").await.unwrap_or_default().is_empty());
        assert_eq!(h.load("a", "v").await.unwrap_or_default().len(), 2);
    }
}
