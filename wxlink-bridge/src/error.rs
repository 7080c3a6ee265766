//! The crate's one error type, [`Error`], opaque with predicates.
//!
//! The kind is private: callers tell cases apart with the predicates
//! ([`Error::is_timeout`], [`Error::is_refused`], [`Error::status`], …),
//! and an application's own [`Agent`](crate::Agent),
//! [`Outbox`](crate::Outbox) or [`HistoryStore`](crate::HistoryStore)
//! builds its failures with the public constructors
//! ([`Error::agent`], [`Error::unreadable`], [`Error::timeout`],
//! [`Error::io`], [`Error::store`], [`Error::send`], [`Error::refused`],
//! [`Error::media_refused`]). New kinds can then be added without
//! breaking a caller's `match`.

use std::fmt;
use std::time::Duration;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as far as the engine and the metrics tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The agent did not answer within its time.
    Timeout,
    /// The agent's endpoint answered with an HTTP status that is not a
    /// success; [`Error::status`] has it.
    Status,
    /// The agent answered something that cannot be read as a reply
    /// (not JSON, the wrong shape, an empty answer).
    Unreadable,
    /// The agent could not be reached or the connection broke.
    Transport,
    /// A local command could not be started, or its pipes failed.
    Process,
    /// The configuration is incomplete or contradicts itself.
    Config,
    /// Reading or writing a local file failed.
    Io,
    /// A storage backend (conversation history, runtime store) failed.
    Store,
    /// A reply could not be sent to the user.
    Send,
    /// The runtime refused to send by policy (the reply budget is used up,
    /// the user has not written within the reply window); trying again
    /// does not help.
    Refused,
    /// The reply names media the bridge refuses to send (outside the
    /// media directory, a URL to a forbidden address).
    MediaRefused,
}

/// The error of every fallible call in `wxlink-bridge`.
///
/// `Display` is a short lowercase phrase; the cause, when there is one, is in
/// [`source`](std::error::Error::source). No error ever holds an API key,
/// a bearer token or a context token.
pub struct Error {
    kind: Kind,
    message: String,
    status: Option<u16>,
    source: Option<Source>,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: Kind,
        message: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            source: Some(source.into()),
        }
    }

    pub(crate) fn status_code(status: u16, message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Status,
            message: message.into(),
            status: Some(status),
            source: None,
        }
    }

    /// The agent gave no answer within `after`. The engine builds this one
    /// when its own time limit runs out; an [`Agent`](crate::Agent) with a
    /// shorter limit of its own may return it too.
    pub fn timeout(after: Duration) -> Self {
        Self::new(
            Kind::Timeout,
            format!("agent gave no answer within {} ms", after.as_millis()),
        )
    }

    /// The backend of an [`Agent`](crate::Agent) could not be reached or
    /// broke off (a connection, a stream, a client library that failed),
    /// with its cause. [`is_transport`](Self::is_transport) holds.
    pub fn agent(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::with_source(Kind::Transport, message, source)
    }

    /// An unreadable answer: what an [`Agent`](crate::Agent) implementation
    /// returns when its backend answered something it cannot use.
    pub fn unreadable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unreadable, message)
    }

    /// Reading or writing a local file failed, with its cause: for an
    /// [`Agent`](crate::Agent) that works on the turn's files.
    pub fn io(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::with_source(Kind::Io, message, source)
    }

    /// A storage backend failed, with its cause: for an application's own
    /// [`HistoryStore`](crate::HistoryStore).
    pub fn store(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::with_source(Kind::Store, message, source)
    }

    /// A reply could not be sent, with its cause: for an application's own
    /// [`Outbox`](crate::Outbox).
    pub fn send(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::with_source(Kind::Send, message, source)
    }

    /// The runtime refuses to send by policy (a budget is used up, the
    /// user must write first): for an [`Outbox`](crate::Outbox). The engine
    /// does not send the rest of the reply again but holds it for `/more`.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    /// The outbox refuses one media file (a forbidden address, a file that
    /// cannot be read or uploaded): for an [`Outbox`](crate::Outbox). The
    /// engine sends its notice in the file's place and goes on.
    pub fn media_refused(message: impl Into<String>) -> Self {
        Self::new(Kind::MediaRefused, message)
    }

    /// What went wrong, for the engine and the metrics labels.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The HTTP status the agent's endpoint answered with, when that is the
    /// failure.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether the same call may succeed when tried again: a timeout, a
    /// transport failure, and an HTTP status of 429 or 5xx are; the
    /// configuration, an unreadable answer, a refusal and the other kinds
    /// are not, or cannot be told apart from a lasting failure.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            Kind::Timeout | Kind::Transport => true,
            Kind::Status => self
                .status
                .is_some_and(|s| s == 429 || (500..600).contains(&s)),
            Kind::Unreadable
            | Kind::Process
            | Kind::Config
            | Kind::Io
            | Kind::Store
            | Kind::Send
            | Kind::Refused
            | Kind::MediaRefused => false,
        }
    }
}

/// Declares one `is_*` predicate of [`Error`] per kind, each with its own
/// doc comment, so that the list of kinds a caller can tell apart reads as
/// one table.
macro_rules! kind_predicates {
    ($($(#[$doc:meta])+ $name:ident => $kind:ident,)+) => {
        impl Error {
            $(
                $(#[$doc])+
                pub fn $name(&self) -> bool {
                    self.kind == Kind::$kind
                }
            )+
        }
    };
}

kind_predicates! {
    /// Whether the agent ran out of time.
    is_timeout => Timeout,
    /// Whether the agent's answer could not be read.
    is_unreadable => Unreadable,
    /// Whether the agent could not be reached or its connection broke
    /// ([`Error::agent`]).
    is_transport => Transport,
    /// Whether a local command agent could not be started, or its pipes
    /// or its process failed.
    is_process => Process,
    /// Whether the configuration is at fault.
    is_config => Config,
    /// Whether reading or writing a local file failed ([`Error::io`]).
    is_io => Io,
    /// Whether a storage backend failed ([`Error::store`]).
    is_store => Store,
    /// Whether a reply could not be sent ([`Error::send`]); a refusal by
    /// policy is [`is_refused`](Self::is_refused) instead.
    is_send => Send,
    /// Whether the runtime refused to send by policy ([`Error::refused`]).
    is_refused => Refused,
    /// Whether a reply's media file was refused ([`Error::media_refused`]).
    is_media_refused => MediaRefused,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(status) = self.status {
            d.field("status", &status);
        }
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_follow_the_kind() {
        let err = Error::timeout(Duration::from_millis(1500));
        assert!(err.is_timeout());
        assert_eq!(err.to_string(), "agent gave no answer within 1500 ms");
        let err = Error::status_code(500, "agent answered HTTP 500");
        assert_eq!(err.status(), Some(500));
        assert_eq!(err.kind(), Kind::Status);
        assert!(Error::unreadable("not json").is_unreadable());
    }

    #[test]
    fn each_public_constructor_has_its_one_predicate_and_keeps_its_cause() {
        type Predicate = fn(&Error) -> bool;
        let io = || std::io::Error::other("disk gone");
        let cases: [(Error, Predicate); 8] = [
            (Error::timeout(Duration::from_secs(1)), Error::is_timeout),
            (
                Error::agent("cannot reach the model", io()),
                Error::is_transport,
            ),
            (Error::unreadable("not json"), Error::is_unreadable),
            (Error::io("cannot read the image", io()), Error::is_io),
            (
                Error::store("cannot load the history", io()),
                Error::is_store,
            ),
            (Error::send("cannot send a reply", io()), Error::is_send),
            (
                Error::refused("the reply budget is used up"),
                Error::is_refused,
            ),
            (
                Error::media_refused("a forbidden address"),
                Error::is_media_refused,
            ),
        ];
        let predicates: [Predicate; 11] = [
            Error::is_timeout,
            Error::is_transport,
            Error::is_unreadable,
            Error::is_io,
            Error::is_store,
            Error::is_send,
            Error::is_refused,
            Error::is_media_refused,
            Error::is_process,
            Error::is_config,
            |e| e.status().is_some(),
        ];
        for (err, own) in &cases {
            assert!(own(err), "{err:?}");
            // Display is the message alone; a cause stays in `source()`.
            assert!(!err.to_string().contains("disk gone"), "{err}");
            let cause = std::error::Error::source(err).map(ToString::to_string);
            let has_cause = !(err.is_timeout()
                || err.is_unreadable()
                || err.is_refused()
                || err.is_media_refused());
            assert_eq!(cause.is_some(), has_cause, "{err:?}");
            assert!(cause.is_none_or(|c| c == "disk gone"), "{err:?}");
            let holding = predicates.iter().filter(|p| p(err)).count();
            assert_eq!(holding, 1, "exactly one predicate holds for {err:?}");
        }
        assert_eq!(cases[1].0.to_string(), "cannot reach the model");
    }

    #[test]
    fn timeouts_transport_and_server_statuses_are_retryable() {
        let io = || std::io::Error::other("reset");
        assert!(Error::timeout(Duration::from_secs(1)).is_retryable());
        assert!(Error::agent("the stream broke off", io()).is_retryable());
        for status in [429, 500, 502, 503, 599] {
            assert!(
                Error::status_code(status, "busy").is_retryable(),
                "{status}"
            );
        }
        for status in [400, 401, 404, 413] {
            assert!(!Error::status_code(status, "no").is_retryable(), "{status}");
        }
        for err in [
            Error::new(Kind::Config, "no agent configured"),
            Error::new(Kind::Process, "the agent exited"),
            Error::unreadable("not json"),
            Error::refused("the reply budget is used up"),
            Error::media_refused("outside the media directory"),
            Error::io("cannot read the image", io()),
            Error::store("cannot load the history", io()),
            Error::send("cannot send a reply", io()),
        ] {
            assert!(!err.is_retryable(), "{err:?}");
        }
    }
}
