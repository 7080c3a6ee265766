//! The decisions of the [`Store`](super::Store) contract that every backend
//! makes the same way, kept here once so that the memory, SQLite and
//! PostgreSQL stores cannot drift apart.
//!
//! Each backend reads the state it needs (in its own transaction), asks a
//! function here what to do, and writes the answer back. Nothing here
//! touches storage, and times are the caller's milliseconds since the Unix
//! epoch, as everywhere in the store (docs/architecture.md, "Leases and
//! fencing").

use crate::error::Error;

use super::{BudgetOutcome, FailureOutcome, InboundMessage, JournalEntry, JournalKey};

/// What [`Store::claim`](super::Store::claim) does to the epoch of a lease
/// it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClaimEpoch {
    /// The claimer still holds an unexpired lease: the claim is a renewal
    /// and the epoch stays.
    Keep,
    /// The lease is free, expired, released or another owner's expired
    /// one: the epoch grows by one, fencing out the previous holder.
    Bump,
}

/// Whether a lease expiring at `expires_at_ms` is still live at `now_ms`.
fn live(expires_at_ms: i64, now_ms: i64) -> bool {
    expires_at_ms > now_ms
}

/// The claim rule: whether `owner` may take the lease now held by
/// `current` until `expires_at_ms`, and what happens to the epoch.
///
/// Fails with [`Error::leased`] while another owner's lease is live.
pub(super) fn claim_epoch(
    current: Option<&str>,
    expires_at_ms: i64,
    owner: &str,
    now_ms: i64,
) -> Result<ClaimEpoch, Error> {
    match current {
        Some(current) if live(expires_at_ms, now_ms) && current != owner => {
            Err(Error::leased(current, expires_at_ms))
        }
        Some(_) if live(expires_at_ms, now_ms) => Ok(ClaimEpoch::Keep),
        _ => Ok(ClaimEpoch::Bump),
    }
}

/// The rule of [`Store::remove_account`](super::Store::remove_account): an
/// account may go unless `owner` holds a lease on it that is live at
/// `now_ms`, which fails with [`Error::leased`].
pub(super) fn check_removable(
    owner: Option<&str>,
    expires_at_ms: i64,
    now_ms: i64,
) -> Result<(), Error> {
    match owner {
        Some(owner) if live(expires_at_ms, now_ms) => Err(Error::leased(owner, expires_at_ms)),
        _ => Ok(()),
    }
}

/// The journal entry a new inbound `message` becomes under `key`: no
/// attempts, no error, no replies accepted yet.
pub(super) fn new_entry(key: JournalKey, message: &InboundMessage, now_ms: i64) -> JournalEntry {
    JournalEntry {
        key,
        message_id: message.message_id,
        sender: message.sender.clone(),
        json: message.json.clone(),
        received_at_ms: now_ms,
        attempts: 0,
        last_error: None,
        accepted_replies: Vec::new(),
    }
}

/// The rule of [`Store::record_failure`](super::Store::record_failure) once
/// the entry has failed `attempts` times: it stays for another attempt
/// until the count reaches `max_attempts` (at least one), then it is
/// dead-lettered.
pub(super) fn after_failure(attempts: u32, max_attempts: u32) -> FailureOutcome {
    if attempts < max_attempts.max(1) {
        FailureOutcome::Retry { attempts }
    } else {
        FailureOutcome::DeadLettered { attempts }
    }
}

/// Takes `count` sends on top of `used` if that leaves at most `limit`.
fn take(used: u32, count: u32, limit: u32) -> Option<u32> {
    used.checked_add(count).filter(|n| *n <= limit)
}

/// The reply budget of one journal entry (`BudgetKind::Reply`): `used` is
/// the entry's count, `None` when the entry is no longer journaled (it has
/// no budget left). Returns the outcome and, when granted, the count to
/// save.
pub(super) fn spend_reply(
    used: Option<u32>,
    count: u32,
    limit: u32,
) -> (BudgetOutcome, Option<u32>) {
    let Some(used) = used else {
        return (
            BudgetOutcome::Exhausted {
                used: 0,
                resets_at_ms: None,
            },
            None,
        );
    };
    match take(used, count, limit) {
        Some(n) => (BudgetOutcome::Granted { used: n }, Some(n)),
        None => (
            BudgetOutcome::Exhausted {
                used,
                resets_at_ms: None,
            },
            None,
        ),
    }
}

/// An account's push window as stored: when it started and how many
/// pushes it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PushWindow {
    /// When the window started, in ms since the Unix epoch.
    pub(super) started_at_ms: i64,
    /// Pushes taken in it.
    pub(super) used: u32,
}

/// The push budget (`BudgetKind::Push`): a window of `window_ms` starts
/// afresh with the first push at or after the stored one's end. Returns the
/// outcome and, when granted, the window to save.
pub(super) fn spend_push(
    stored: PushWindow,
    window_ms: i64,
    count: u32,
    limit: u32,
    now_ms: i64,
) -> (BudgetOutcome, Option<PushWindow>) {
    let mut window = stored;
    if now_ms >= window.started_at_ms.saturating_add(window_ms) {
        window = PushWindow {
            started_at_ms: now_ms,
            used: 0,
        };
    }
    match take(window.used, count, limit) {
        Some(n) => (
            BudgetOutcome::Granted { used: n },
            Some(PushWindow { used: n, ..window }),
        ),
        None => (
            BudgetOutcome::Exhausted {
                used: window.used,
                resets_at_ms: Some(window.started_at_ms.saturating_add(window_ms)),
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_keeps_the_epoch_only_for_the_live_holder() {
        assert_eq!(claim_epoch(None, 0, "a", 10).ok(), Some(ClaimEpoch::Bump));
        assert_eq!(
            claim_epoch(Some("a"), 20, "a", 10).ok(),
            Some(ClaimEpoch::Keep)
        );
        assert_eq!(
            claim_epoch(Some("a"), 10, "a", 10).ok(),
            Some(ClaimEpoch::Bump),
            "a lease expiring now is expired"
        );
        assert_eq!(
            claim_epoch(Some("b"), 10, "a", 10).ok(),
            Some(ClaimEpoch::Bump)
        );
        let err = claim_epoch(Some("b"), 20, "a", 10).expect_err("b's lease is live");
        assert_eq!(err.leased_by(), Some(("b", 20)));
    }

    #[test]
    fn an_account_with_a_live_lease_is_not_removable() {
        assert!(check_removable(None, 20, 10).is_ok());
        assert!(check_removable(Some("a"), 10, 10).is_ok());
        let err = check_removable(Some("a"), 20, 10).expect_err("live");
        assert_eq!(err.leased_by(), Some(("a", 20)));
    }

    #[test]
    fn failures_dead_letter_at_the_limit_and_at_least_after_one() {
        assert_eq!(after_failure(1, 3), FailureOutcome::Retry { attempts: 1 });
        assert_eq!(
            after_failure(3, 3),
            FailureOutcome::DeadLettered { attempts: 3 }
        );
        assert_eq!(
            after_failure(1, 0),
            FailureOutcome::DeadLettered { attempts: 1 }
        );
    }

    #[test]
    fn a_reply_budget_grants_up_to_the_limit_and_never_renews() {
        assert_eq!(
            spend_reply(Some(8), 2, 10),
            (BudgetOutcome::Granted { used: 10 }, Some(10))
        );
        assert_eq!(
            spend_reply(Some(9), 2, 10),
            (
                BudgetOutcome::Exhausted {
                    used: 9,
                    resets_at_ms: None
                },
                None
            )
        );
        assert_eq!(
            spend_reply(Some(u32::MAX), 1, u32::MAX),
            (
                BudgetOutcome::Exhausted {
                    used: u32::MAX,
                    resets_at_ms: None
                },
                None
            ),
            "an overflowing count is refused"
        );
        assert_eq!(
            spend_reply(None, 1, 10),
            (
                BudgetOutcome::Exhausted {
                    used: 0,
                    resets_at_ms: None
                },
                None
            )
        );
    }

    #[test]
    fn a_push_window_restarts_with_the_first_push_after_its_end() {
        let stored = PushWindow {
            started_at_ms: 100,
            used: 5,
        };
        assert_eq!(
            spend_push(stored, 50, 1, 5, 120),
            (
                BudgetOutcome::Exhausted {
                    used: 5,
                    resets_at_ms: Some(150)
                },
                None
            )
        );
        assert_eq!(
            spend_push(stored, 50, 2, 5, 150),
            (
                BudgetOutcome::Granted { used: 2 },
                Some(PushWindow {
                    started_at_ms: 150,
                    used: 2
                })
            )
        );
        assert_eq!(
            spend_push(PushWindow::default(), 50, 1, 5, 10),
            (
                BudgetOutcome::Granted { used: 1 },
                Some(PushWindow {
                    started_at_ms: 0,
                    used: 1
                })
            ),
            "the zero window is still open at 10 ms"
        );
    }
}
