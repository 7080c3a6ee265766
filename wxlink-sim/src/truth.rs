//! The simulator's ground truth about inbound delivery: for every message
//! injected into an account, how often the server handed it out and how
//! often it lost it through an injected fault. A test compares what its
//! client handled with this to tell the client's losses and double
//! handling from the server's own.

use std::collections::BTreeMap;

use serde::Serialize;

/// What happened to one injected message, as far as the server knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Fate {
    /// Answers of `getupdates` that carried it and reached the client
    /// (a stalled answer counts: a patient client gets it).
    pub delivered: u32,
    /// Times the server took it off the queue and then lost the answer
    /// through an injected fault (`LoseResponse`, `TruncatedBody`).
    pub lost: u32,
    /// Extra copies queued by a `Duplicate` fault.
    pub copies: u32,
}

/// Per-account bookkeeping behind [`GroundTruth`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Truth {
    messages: BTreeMap<u64, Fate>,
}

impl Truth {
    /// A message was queued.
    pub(crate) fn injected(&mut self, id: u64) {
        self.messages.entry(id).or_default();
    }

    /// A batch carrying `id` was answered (`lost`: and its answer lost).
    pub(crate) fn handed_out(&mut self, id: u64, lost: bool) {
        let fate = self.messages.entry(id).or_default();
        if lost {
            fate.lost = fate.lost.saturating_add(1);
        } else {
            fate.delivered = fate.delivered.saturating_add(1);
        }
    }

    /// A copy of `id` was queued for a later re-delivery.
    pub(crate) fn copied(&mut self, id: u64) {
        let fate = self.messages.entry(id).or_default();
        fate.copies = fate.copies.saturating_add(1);
    }

    /// A public copy.
    pub(crate) fn snapshot(&self) -> GroundTruth {
        GroundTruth {
            messages: self.messages.clone(),
        }
    }
}

/// The server's view of one account's inbound delivery, from
/// [`Account::ground_truth`](crate::Account::ground_truth) (and
/// `GET /_sim/truth?bot_id=…`).
///
/// ```
/// # use wxlink_sim::GroundTruth;
/// // A client that handled message 1 twice and never saw 2:
/// # fn check(truth: GroundTruth) {
/// let verdict = truth.judge([1, 1]);
/// assert!(verdict.handled_twice.contains(&1));
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroundTruth {
    /// Every message injected since the start or the last reset, by id.
    pub messages: BTreeMap<u64, Fate>,
}

impl GroundTruth {
    /// How many distinct messages were injected.
    pub fn injected(&self) -> usize {
        self.messages.len()
    }

    /// Ids delivered at least once.
    pub fn delivered(&self) -> Vec<u64> {
        self.ids(|f| f.delivered > 0)
    }

    /// Ids the server lost through its own injected fault and never
    /// delivered: no client could have handled them.
    pub fn lost_by_server(&self) -> Vec<u64> {
        self.ids(|f| f.delivered == 0 && f.lost > 0)
    }

    /// Ids the server delivered more than once (a client should handle
    /// them once all the same).
    pub fn duplicated(&self) -> Vec<u64> {
        self.ids(|f| f.delivered > 1)
    }

    /// Ids neither delivered nor lost yet: still queued, or waiting for a
    /// re-delivery.
    pub fn undelivered(&self) -> Vec<u64> {
        self.ids(|f| f.delivered == 0 && f.lost == 0)
    }

    /// Compares the ids a client handled (one entry per time it handled
    /// one) with what the server delivered.
    pub fn judge(&self, handled: impl IntoIterator<Item = u64>) -> Verdict {
        let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
        for id in handled {
            *seen.entry(id).or_default() += 1;
        }
        Verdict {
            lost_by_client: self
                .delivered()
                .into_iter()
                .filter(|id| !seen.contains_key(id))
                .collect(),
            handled_twice: seen
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(id, _)| *id)
                .collect(),
            never_delivered: seen
                .keys()
                .copied()
                .filter(|id| self.messages.get(id).is_none_or(|f| f.delivered == 0))
                .collect(),
            lost_by_server: self.lost_by_server(),
        }
    }

    fn ids(&self, pick: impl Fn(&Fate) -> bool) -> Vec<u64> {
        self.messages
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(id, _)| *id)
            .collect()
    }
}

/// What [`GroundTruth::judge`] found; every list is sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verdict {
    /// Delivered by the server at least once, never handled: the client
    /// lost them.
    pub lost_by_client: Vec<u64>,
    /// Handled more than once, whether or not the server delivered them
    /// twice.
    pub handled_twice: Vec<u64>,
    /// Handled although the server never delivered them (a bug in the test
    /// or the client).
    pub never_delivered: Vec<u64>,
    /// Lost by the server's own injected fault; not the client's fault.
    pub lost_by_server: Vec<u64>,
}

impl Verdict {
    /// Whether the client lost nothing and handled nothing twice.
    pub fn is_clean(&self) -> bool {
        self.lost_by_client.is_empty()
            && self.handled_twice.is_empty()
            && self.never_delivered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_separates_the_clients_losses_from_the_servers() {
        let mut t = Truth::default();
        for id in 1..=5 {
            t.injected(id);
        }
        t.handed_out(1, false);
        t.handed_out(2, false);
        t.handed_out(2, false);
        t.handed_out(3, true);
        t.handed_out(4, false);
        let truth = t.snapshot();
        assert_eq!(truth.duplicated(), [2]);
        assert_eq!(truth.lost_by_server(), [3]);
        assert_eq!(truth.undelivered(), [5]);
        let v = truth.judge([1, 2, 2, 9]);
        assert_eq!(v.lost_by_client, [4]);
        assert_eq!(v.handled_twice, [2]);
        assert_eq!(v.never_delivered, [9]);
        assert!(!v.is_clean());
        assert!(truth.judge([1, 2, 4]).is_clean());
    }
}
