//! [`Error`]: the crate's one error type, opaque, with predicates.
//!
//! Callers ask questions instead of matching variants:
//! [`is_session_expired`](Error::is_session_expired),
//! [`is_throttled`](Error::is_throttled), [`is_leased`](Error::is_leased),
//! [`is_fenced`](Error::is_fenced), [`is_store`](Error::is_store),
//! [`is_budget_exhausted`](Error::is_budget_exhausted),
//! [`is_user_must_write_first`](Error::is_user_must_write_first),
//! [`may_have_been_sent`](Error::may_have_been_sent) and
//! [`is_retryable`](Error::is_retryable). The cause (a facade error, a
//! store backend's error) stays reachable through `source()`.
//!
//! Store failures are kinds of this error too, so that a
//! [`Store`](crate::store::Store) and the runtime above it fail the same
//! way. A store implementation builds them with [`Error::store`],
//! [`Error::store_with`], [`Error::leased`], [`Error::fenced`],
//! [`Error::invalid_store_argument`] and [`Error::newer_schema`], as the
//! trait's contract documents (docs/architecture.md, "Leases and
//! fencing").

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

/// The boxed cause a store backend failure carries.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The store's backend failed at `op` (I/O, SQL, a lost connection);
    /// the cause, if any, is the error's source.
    Store { op: &'static str },
    /// The account is leased by another runner whose lease has not
    /// expired.
    Leased { owner: String, expires_at_ms: i64 },
    /// The store refused the write `op` because the caller's lease is no
    /// longer the account's current one.
    Fenced { op: &'static str },
    /// The store was written by a newer version of this crate.
    NewerSchema,
    /// A facade call failed.
    Client(wxlink_client::Error),
    /// The account is not (or no longer) running in this host.
    UnknownAccount(String),
    /// The host or the account was shut down.
    Stopped,
    /// A bad argument or option; `store` when a store refused it (an empty
    /// account id, a store that keeps no account records).
    Invalid {
        what: Cow<'static, str>,
        store: bool,
    },
}

/// Why a runtime or store operation failed. Opaque: use the predicates.
///
/// One pointer wide; the kind and the cause live behind it.
pub struct Error {
    inner: Box<Inner>,
}

/// The kind and, for a store backend failure, its cause.
struct Inner {
    kind: Kind,
    source: Option<BoxError>,
}

impl Error {
    /// Wraps a kind.
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            inner: Box::new(Inner { kind, source: None }),
        }
    }

    /// A bad argument or option of the runtime; `what` says what to do
    /// instead.
    pub(crate) fn invalid(what: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Invalid {
            what: what.into(),
            store: false,
        })
    }

    /// A store backend failure of `op` (a short lowercase phrase that
    /// follows "store failed to", such as `"commit batch"`), with no
    /// further cause. Retryable.
    pub fn store(op: &'static str) -> Self {
        Self::new(Kind::Store { op })
    }

    /// A store backend failure of `op` caused by `source` (the driver's or
    /// the file system's error), reachable through `source()`. Retryable.
    ///
    /// `source` is printed by `Debug`, so it must not hold a secret: bind
    /// tokens as query parameters instead of formatting them into
    /// statements, as the crate's stores do.
    pub fn store_with(
        op: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: Kind::Store { op },
                source: Some(source.into()),
            }),
        }
    }

    /// The account is leased by `owner`, another runner, until
    /// `expires_at_ms` (ms since the Unix epoch): what
    /// [`Store::claim`](crate::store::Store::claim) and
    /// [`Store::remove_account`](crate::store::Store::remove_account) fail
    /// with while that lease is live.
    pub fn leased(owner: impl Into<String>, expires_at_ms: i64) -> Self {
        Self::new(Kind::Leased {
            owner: owner.into(),
            expires_at_ms,
        })
    }

    /// The write `op` (a short lowercase phrase that follows "store refused
    /// to", such as `"acknowledge"`) was refused by the lease fence: the
    /// caller's lease is no longer the account's current one.
    pub fn fenced(op: &'static str) -> Self {
        Self::new(Kind::Fenced { op })
    }

    /// A store refused an argument (an empty account id, a call it does not
    /// support); `what` says what to do instead.
    pub fn invalid_store_argument(what: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Invalid {
            what: what.into(),
            store: true,
        })
    }

    /// The store's schema is newer than this code: it was written by a
    /// newer version of this crate and is not written to.
    pub fn newer_schema() -> Self {
        Self::new(Kind::NewerSchema)
    }

    /// True when the server said the session expired (`-14`): a new QR
    /// login is needed, and [`Host::update_token`](crate::Host::update_token)
    /// resumes the account with the new token.
    pub fn is_session_expired(&self) -> bool {
        match &self.inner.kind {
            Kind::SessionExpired => true,
            Kind::Client(e) => e.is_session_expired(),
            _ => false,
        }
    }

    /// True when the bot is throttled (a `-2` the runtime read as the
    /// server's burst throttle): nothing was sent.
    pub fn is_throttled(&self) -> bool {
        matches!(&self.inner.kind, Kind::Throttled { .. })
    }

    /// When a throttled bot will next probe, if this is a throttle error.
    pub fn next_probe(&self) -> Option<SystemTime> {
        match &self.inner.kind {
            Kind::Throttled { next_probe, .. } => Some(*next_probe),
            _ => None,
        }
    }

    /// When the throttle began, if this is a throttle error.
    pub fn throttled_since(&self) -> Option<SystemTime> {
        match &self.inner.kind {
            Kind::Throttled { since, .. } => Some(*since),
            _ => None,
        }
    }

    /// True when the account is leased by another runner.
    pub fn is_leased(&self) -> bool {
        matches!(&self.inner.kind, Kind::Leased { .. })
    }

    /// The other runner's owner name and when its lease expires (ms since
    /// the Unix epoch), if the account is leased by another runner.
    pub fn leased_by(&self) -> Option<(&str, i64)> {
        match &self.inner.kind {
            Kind::Leased {
                owner,
                expires_at_ms,
            } => Some((owner, *expires_at_ms)),
            _ => None,
        }
    }

    /// True when a write was refused because this runner lost the lease.
    pub fn is_fenced(&self) -> bool {
        matches!(&self.inner.kind, Kind::Fenced { .. })
    }

    /// True when the store was written by a newer version of this crate
    /// and is refused.
    pub fn is_newer_schema(&self) -> bool {
        matches!(&self.inner.kind, Kind::NewerSchema)
    }

    /// True when an argument or option was unusable, the runtime's or a
    /// store's (a store that keeps no account records refuses its account
    /// calls this way). Trying again with the same input fails again.
    pub fn is_invalid(&self) -> bool {
        matches!(&self.inner.kind, Kind::Invalid { .. })
    }

    /// True when the reply budget of the turn, or the push budget, is used
    /// up; nothing was sent.
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(&self.inner.kind, Kind::BudgetExhausted { .. })
    }

    /// True when no context token is recent enough: the user must write
    /// first. Nothing was sent.
    pub fn is_user_must_write_first(&self) -> bool {
        matches!(&self.inner.kind, Kind::UserMustWriteFirst)
    }

    /// True when the bounded queue of held sends was full.
    pub fn is_queue_full(&self) -> bool {
        matches!(&self.inner.kind, Kind::QueueFull)
    }

    /// True when the account or host was stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(&self.inner.kind, Kind::Stopped)
    }

    /// True when the store failed or refused: a backend failure, a fenced
    /// write, a lease held by another runner, a newer schema or an
    /// argument the store refused.
    pub fn is_store(&self) -> bool {
        match &self.inner.kind {
            Kind::Store { .. } | Kind::Leased { .. } | Kind::Fenced { .. } | Kind::NewerSchema => {
                true
            }
            Kind::Invalid { store, .. } => *store,
            _ => false,
        }
    }

    /// Whether the server may have acted on the request, so that sending it
    /// again could deliver a message twice.
    pub fn may_have_been_sent(&self) -> bool {
        match &self.inner.kind {
            Kind::Client(e) => e.may_have_been_sent(),
            _ => false,
        }
    }

    /// Whether trying the same thing again later may succeed: transient
    /// network failures, a store backend failure, a full queue. Not a
    /// throttle (wait for the probe), an expired session, a used-up
    /// budget, bad input, or a store that refused (a fenced write, a lease
    /// held by another runner, a newer schema, an argument it refused).
    pub fn is_retryable(&self) -> bool {
        match &self.inner.kind {
            Kind::Client(e) => {
                !e.is_session_expired()
                    && e.api_status().is_none()
                    && e.transport().is_some_and(|t| {
                        t.is_timeout()
                            || t.is_connect()
                            || t.status().is_some_and(|s| s.is_server_error())
                    })
            }
            Kind::Store { .. } | Kind::QueueFull => true,
            _ => false,
        }
    }

    /// The facade error inside, if a facade call failed.
    pub fn client_error(&self) -> Option<&wxlink_client::Error> {
        match &self.inner.kind {
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
        // The facade's errors hold no token. Store causes (SQL, I/O) never
        // carry a context token either: tokens are bound as query
        // parameters, never formatted into statements.
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::SessionExpired => f.write_str("session expired; a new qr login is needed"),
            Kind::Throttled { .. } => f.write_str("bot is throttled by the server; sends are held"),
            Kind::BudgetExhausted { used, limit, push } => {
                let what = if *push { "push" } else { "reply" };
                write!(f, "{what} budget is used up ({used} of {limit})")
            }
            Kind::UserMustWriteFirst => f.write_str("the user must write first"),
            Kind::QueueFull => f.write_str("send queue is full"),
            Kind::Store { op } => write!(f, "store failed to {op}"),
            Kind::Leased { owner, .. } => {
                write!(f, "account is leased by another runner ({owner})")
            }
            Kind::Fenced { op } => write!(f, "store refused to {op}: the lease was lost"),
            Kind::NewerSchema => f.write_str("store was written by a newer version of wxlink"),
            Kind::Client(_) => f.write_str("api call failed"),
            Kind::UnknownAccount(id) => write!(f, "account {id} is not running in this host"),
            Kind::Stopped => f.write_str("runtime stopped"),
            Kind::Invalid { what, store: false } => write!(f, "invalid argument: {what}"),
            Kind::Invalid { what, store: true } => write!(f, "invalid store argument: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            Kind::Client(e) => Some(e),
            _ => self
                .inner
                .source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
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
    use std::error::Error as _;

    use super::*;

    #[test]
    fn predicates_answer_for_their_kind_only() {
        let leased = Error::leased("other", 1);
        assert!(leased.is_leased() && !leased.is_fenced() && !leased.is_retryable());
        let fenced = Error::fenced("acknowledge");
        assert!(fenced.is_fenced() && !fenced.is_leased());
        let backend = Error::store("commit batch");
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

    #[test]
    fn store_kinds_answer_their_own_predicates() {
        let leased = Error::leased("runner-2", 42);
        assert_eq!(leased.leased_by(), Some(("runner-2", 42)));
        assert!(leased.is_store() && !leased.is_invalid() && !leased.is_newer_schema());
        let fenced = Error::fenced("acknowledge");
        assert!(fenced.is_store() && fenced.leased_by().is_none());
        let newer = Error::newer_schema();
        assert!(newer.is_newer_schema() && newer.is_store());
        assert!(!newer.is_leased() && !newer.is_fenced() && !newer.is_invalid());
        let refused = Error::invalid_store_argument("this store keeps no account records");
        assert!(refused.is_invalid() && refused.is_store());
        assert!(!refused.is_leased() && !refused.is_fenced() && !refused.is_newer_schema());
        let option = Error::invalid("no queue");
        assert!(option.is_invalid() && !option.is_store());
        let backend = Error::store_with("commit batch", std::io::Error::other("disk full"));
        assert!(backend.is_store() && !backend.is_invalid() && backend.leased_by().is_none());
    }

    #[test]
    fn only_a_store_backend_failure_is_retryable() {
        assert!(Error::store("commit batch").is_retryable());
        assert!(Error::store_with("commit batch", "disk full").is_retryable());
        for refused in [
            Error::fenced("acknowledge"),
            Error::leased("runner-2", 1),
            Error::invalid_store_argument("use a non-empty account id"),
            Error::newer_schema(),
            Error::invalid("no queue"),
        ] {
            assert!(!refused.is_retryable(), "{refused}");
        }
    }

    #[test]
    fn store_errors_say_what_happened_and_keep_the_cause() {
        let backend = Error::store_with("commit batch", std::io::Error::other("disk full"));
        assert_eq!(backend.to_string(), "store failed to commit batch");
        assert_eq!(
            backend.source().map(ToString::to_string).as_deref(),
            Some("disk full")
        );
        let bare = Error::store("lock the in-memory store");
        assert_eq!(bare.to_string(), "store failed to lock the in-memory store");
        assert!(bare.source().is_none());
        assert_eq!(
            Error::leased("runner-2", 10).to_string(),
            "account is leased by another runner (runner-2)"
        );
        assert_eq!(
            Error::fenced("acknowledge").to_string(),
            "store refused to acknowledge: the lease was lost"
        );
        assert_eq!(
            Error::invalid_store_argument("use a non-empty account id").to_string(),
            "invalid store argument: use a non-empty account id"
        );
        assert_eq!(
            Error::invalid("no queue").to_string(),
            "invalid argument: no queue"
        );
        assert_eq!(
            Error::newer_schema().to_string(),
            "store was written by a newer version of wxlink"
        );
    }

    #[test]
    fn the_error_is_one_pointer_wide() {
        // Store methods return it on every call; the kind and the cause
        // live behind the one box.
        assert_eq!(size_of::<Error>(), size_of::<usize>());
    }

    #[test]
    fn debug_shows_the_store_operation_and_cause() {
        let printed = format!(
            "{:?}",
            Error::store_with("commit batch", std::io::Error::other("disk full"))
        );
        assert!(printed.contains("commit batch"), "{printed}");
        assert!(printed.contains("disk full"), "{printed}");
    }
}
