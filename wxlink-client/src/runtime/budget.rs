//! The per-turn send budget and the reply window: checks made before a send
//! leaves, so the bot fails early with a clear error instead of tripping the
//! server.
//!
//! - **Budget** (ILINK.md §6.3, §11 item 5): the server allows only about
//!   ten bot messages per inbound user message and answers `-2` for minutes
//!   after that. A *turn* starts with each new message from a user; the
//!   runtime counts sends within it, warns as the limit nears and then
//!   refuses (or, by option, waits for the user's next message).
//! - **Reply window** (ILINK.md §8.3): bot messages are delivered only within
//!   24 h of the user's latest message. A send with no context token, or one
//!   older than the window, is refused with an error saying the user must
//!   write first.

use std::time::Duration;

use super::store::{ContextRecord, TurnRecord};

/// What to do when a user's turn has used its whole budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenExhausted {
    /// Fail the send with [`RuntimeError::RateLimited`](super::RuntimeError::RateLimited).
    #[default]
    Fail,
    /// Hold the send until the user writes again (which starts a new turn).
    /// Wrap the call in a timeout if waiting forever is not acceptable.
    Queue,
}

/// The numbers of the send budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendBudgetPolicy {
    /// Bot messages allowed per inbound user message (about 10 on the real
    /// server).
    pub limit: u32,
    /// Log a warning when a send brings the count to this many or more.
    pub warn_at: u32,
    /// What to do once the limit is reached.
    pub when_exhausted: WhenExhausted,
}

impl Default for SendBudgetPolicy {
    fn default() -> Self {
        Self {
            limit: 10,
            warn_at: 8,
            when_exhausted: WhenExhausted::Fail,
        }
    }
}

impl SendBudgetPolicy {
    /// The default numbers with `when_exhausted` set.
    pub fn when_exhausted(mut self, when: WhenExhausted) -> Self {
        self.when_exhausted = when;
        self
    }

    /// The default numbers with a different `limit` (and the warning two
    /// sends before it).
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self.warn_at = limit.saturating_sub(2).max(1);
        self
    }
}

/// The outcome of asking the budget for one more send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetDecision {
    /// Send; the turn record to store is `next`. `warn` is true when the
    /// count has reached the warning level.
    Allow {
        /// The updated turn record.
        next: TurnRecord,
        /// Whether to log a warning.
        warn: bool,
    },
    /// The turn's budget is used up.
    Exhausted {
        /// How many messages were already sent in this turn.
        sent: u32,
    },
}

/// Asks the budget for one more send in the turn `current` (none: nothing
/// sent yet).
pub fn spend(policy: &SendBudgetPolicy, current: Option<TurnRecord>) -> BudgetDecision {
    let current = current.unwrap_or_default();
    if current.sent >= policy.limit {
        return BudgetDecision::Exhausted { sent: current.sent };
    }
    let next = TurnRecord {
        started_at_ms: current.started_at_ms,
        sent: current.sent + 1,
    };
    BudgetDecision::Allow {
        next,
        warn: next.sent >= policy.warn_at,
    }
}

/// The reply window: how long after a user's latest message the bot may
/// still write to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyWindow {
    /// The window (ILINK.md §8.3: 24 h).
    pub window: Duration,
}

impl Default for ReplyWindow {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Why a send was refused before it left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextProblem {
    /// No message from the user has been seen.
    Missing,
    /// The user's latest message is older than the window.
    Expired {
        /// How long ago the latest message was seen.
        age: Duration,
    },
}

impl ReplyWindow {
    /// Checks `record` at `now_ms` (milliseconds since the Unix epoch).
    pub fn check<'a>(
        &self,
        record: Option<&'a ContextRecord>,
        now_ms: i64,
    ) -> Result<&'a ContextRecord, ContextProblem> {
        let Some(record) = record.filter(|r| !r.token.is_empty()) else {
            return Err(ContextProblem::Missing);
        };
        let age_ms = now_ms.saturating_sub(record.seen_at_ms).max(0);
        let age = Duration::from_millis(age_ms.unsigned_abs());
        if age >= self.window {
            return Err(ContextProblem::Expired { age });
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxlink_proto::ContextToken;

    #[test]
    fn allows_ten_sends_per_turn_warning_from_the_eighth() {
        let policy = SendBudgetPolicy::default();
        let mut turn = None;
        let mut warnings = Vec::new();
        for n in 1..=10 {
            match spend(&policy, turn) {
                BudgetDecision::Allow { next, warn } => {
                    assert_eq!(next.sent, n);
                    if warn {
                        warnings.push(n);
                    }
                    turn = Some(next);
                }
                BudgetDecision::Exhausted { .. } => panic!("send {n} refused"),
            }
        }
        assert_eq!(warnings, [8, 9, 10]);
        assert_eq!(spend(&policy, turn), BudgetDecision::Exhausted { sent: 10 });
    }

    #[test]
    fn reply_window_refuses_missing_and_day_old_context() {
        let window = ReplyWindow::default();
        assert_eq!(window.check(None, 0), Err(ContextProblem::Missing));
        let day_ms = 86_400_000;
        let record = ContextRecord {
            token: ContextToken::new("t"),
            seen_at_ms: 1_000,
        };
        assert!(window.check(Some(&record), 1_000 + day_ms - 1).is_ok());
        assert_eq!(
            window.check(Some(&record), 1_000 + day_ms),
            Err(ContextProblem::Expired {
                age: Duration::from_secs(86_400)
            })
        );
        let empty = ContextRecord {
            token: ContextToken::new(""),
            seen_at_ms: 1_000,
        };
        assert_eq!(
            window.check(Some(&empty), 1_000),
            Err(ContextProblem::Missing)
        );
    }
}
