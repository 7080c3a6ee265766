//! [`Error`]: the crate's one error type, opaque, with predicates.
//!
//! Callers ask questions instead of matching variants:
//! [`is_session_expired`](Error::is_session_expired),
//! [`is_throttled`](Error::is_throttled), [`is_leased`](Error::is_leased),
//! [`is_fenced`](Error::is_fenced),
//! [`is_budget_exhausted`](Error::is_budget_exhausted),
//! [`is_user_must_write_first`](Error::is_user_must_write_first),
//! [`may_have_been_sent`](Error::may_have_been_sent) and
//! [`is_retryable`](Error::is_retryable). The cause (a facade error, a
//! store error) stays reachable through `source()`.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::store::StoreError;

/// What went wrong, kept private so that the set can grow.
#[derive(Debug)]
pub(crate) enum Kind {
    /// The server answered `-14` for this account.
    SessionExpired,
    /// Every send of this bot is held back after a `-2` throttle.
    Throttled {
        since: SystemTime,
        next_probe: SystemTime,
    },
    /// The reply budget of the user's turn, or the push budget, is used up.
    BudgetExhausted { used: u32, limit: u32, push: bool },
    /// No context token recent enough to reply.
    UserMustWriteFirst,
    /// The queue of sends waiting for the throttle or the budget is full.
    QueueFull,
    /// The store failed, refused a write (fenced) or the account is leased.
    Store(StoreError),
    /// A facade call failed.
    Client(wxlink_client::Error),
    /// The account is not (or no longer) running in this host.
    UnknownAccount(String),
    /// The host or the account was shut down.
    Stopped,
    /// A bad argument or option.
    Invalid(String),
}

/// Why a runtime operation failed. Opaque: use the predicates.
pub struct Error {
    kind: Box<Kind>,
}

impl Error {
    /// Wraps a kind.
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self::new(Kind::Invalid(what.into()))
    }

    /// True when the server said the session expired (`-14`): a new QR
    /// login is needed, and [`Host::update_token`](crate::Host::update_token)
    /// resumes the account with the new token.
    pub fn is_session_expired(&self) -> bool {
        match &*self.kind {
            Kind::SessionExpired => true,
            Kind::Client(e) => e.is_session_expired(),
            _ => false,
        }
    }

    /// True when the bot is throttled (a `-2` the runtime read as the
    /// server's burst throttle): nothing was sent.
    pub fn is_throttled(&self) -> bool {
        matches!(&*self.kind, Kind::Throttled { .. })
    }

    /// When a throttled bot will next probe, if this is a throttle error.
    pub fn next_probe(&self) -> Option<SystemTime> {
        match &*self.kind {
            Kind::Throttled { next_probe, .. } => Some(*next_probe),
            _ => None,
        }
    }

    /// When the throttle began, if this is a throttle error.
    pub fn throttled_since(&self) -> Option<SystemTime> {
        match &*self.kind {
            Kind::Throttled { since, .. } => Some(*since),
            _ => None,
        }
    }

    /// True when the account is leased by another runner.
    pub fn is_leased(&self) -> bool {
        matches!(&*self.kind, Kind::Store(e) if e.is_leased())
    }

    /// True when a write was refused because this runner lost the lease.
    pub fn is_fenced(&self) -> bool {
        matches!(&*self.kind, Kind::Store(e) if e.is_fenced())
    }

    /// True when the reply budget of the turn, or the push budget, is used
    /// up; nothing was sent.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(&*self.kind, Kind::BudgetExhausted { .. })
    }

    /// True when no context token is recent enough: the user must write
    /// first. Nothing was sent.
    pub fn is_user_must_write_first(&self) -> bool {
        matches!(&*self.kind, Kind::UserMustWriteFirst)
    }

    /// True when the bounded queue of held sends was full.
    pub fn is_queue_full(&self) -> bool {
        matches!(&*self.kind, Kind::QueueFull)
    }

    /// True when the account or host was stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(&*self.kind, Kind::Stopped)
    }

    /// True when the store failed (including fenced writes and leases).
    pub fn is_store(&self) -> bool {
        matches!(&*self.kind, Kind::Store(_))
    }

    /// Whether the server may have acted on the request, so that sending it
    /// again could deliver a message twice.
    pub fn may_have_been_sent(&self) -> bool {
        match &*self.kind {
            Kind::Client(e) => e.may_have_been_sent(),
            _ => false,
        }
    }

    /// Whether trying the same thing again later may succeed: transient
    /// network and store failures, a full queue. Not a throttle (wait for
    /// the probe), an expired session, a used-up budget or bad input.
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            Kind::Client(e) => {
                !e.is_session_expired()
                    && e.api_status().is_none()
                    && e.transport().is_some_and(|t| {
                        t.is_timeout()
                            || t.is_connect()
                            || t.status().is_some_and(|s| s.is_server_error())
                    })
            }
            Kind::Store(e) => !e.is_fenced() && !e.is_leased(),
            Kind::QueueFull => true,
            _ => false,
        }
    }

    /// The facade error inside, if a facade call failed.
    pub fn client_error(&self) -> Option<&wxlink_client::Error> {
        match &*self.kind {
            Kind::Client(e) => Some(e),
            _ => None,
        }
    }

    /// How long until a throttle probe, from now; `None` if not throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        self.next_probe()
            .map(|t| t.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the facade's nor the store's errors hold a token.
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::SessionExpired => f.write_str("session expired; a new qr login is needed"),
            Kind::Throttled { .. } => f.write_str("bot is throttled by the server; sends are held"),
            Kind::BudgetExhausted { used, limit, push } => {
                let what = if *push { "push" } else { "reply" };
                write!(f, "{what} budget is used up ({used} of {limit})")
            }
            Kind::UserMustWriteFirst => f.write_str("the user must write first"),
            Kind::QueueFull => f.write_str("send queue is full"),
            Kind::Store(_) => f.write_str("runtime store failed"),
            Kind::Client(_) => f.write_str("api call failed"),
            Kind::UnknownAccount(id) => write!(f, "account {id} is not running in this host"),
            Kind::Stopped => f.write_str("runtime stopped"),
            Kind::Invalid(what) => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            Kind::Store(e) => Some(e),
            Kind::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::new(Kind::Store(e))
    }
}

impl From<wxlink_client::Error> for Error {
    fn from(e: wxlink_client::Error) -> Self {
        // A `-14` keeps its cause: `is_session_expired` looks through it.
        Self::new(Kind::Client(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_answer_for_their_kind_only() {
        let leased = Error::from(StoreError::leased("other", 1));
        assert!(leased.is_leased() && !leased.is_fenced() && !leased.is_retryable());
        let fenced = Error::from(StoreError::fenced("acknowledge"));
        assert!(fenced.is_fenced() && !fenced.is_leased());
        let backend = Error::from(StoreError::new("commit batch"));
        assert!(backend.is_retryable() && backend.is_store());
        let throttled = Error::new(Kind::Throttled {
            since: SystemTime::UNIX_EPOCH,
            next_probe: SystemTime::UNIX_EPOCH,
        });
        assert!(throttled.is_throttled() && !throttled.may_have_been_sent());
        assert!(throttled.next_probe().is_some());
        let expired = Error::new(Kind::SessionExpired);
        assert!(expired.is_session_expired() && !expired.is_retryable());
        assert_eq!(
            Error::new(Kind::BudgetExhausted {
                used: 10,
                limit: 10,
                push: false
            })
            .to_string(),
            "reply budget is used up (10 of 10)"
        );
    }
}
