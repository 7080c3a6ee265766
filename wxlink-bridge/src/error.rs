//! The crate's one error type, [`Error`], opaque with predicates.

use std::fmt;
use std::time::Duration;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as far as a caller needs to tell cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
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
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    source: Option<Source>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
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
            kind: ErrorKind::Status,
            message: message.into(),
            status: Some(status),
            source: None,
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("agent gave no answer within {} ms", after.as_millis()),
        )
    }

    /// An unreadable answer: what an [`Agent`](crate::Agent) implementation
    /// returns when its backend answered something it cannot use.
    pub fn unreadable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreadable, message)
    }

    /// A failure of an application's own agent or store, with its cause.
    pub fn other(kind: ErrorKind, message: impl Into<String>, source: impl Into<Source>) -> Self {
        Self::with_source(kind, message, source)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the agent ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the agent's answer could not be read.
    pub fn is_unreadable(&self) -> bool {
        self.kind == ErrorKind::Unreadable
    }

    /// Whether the configuration is at fault.
    pub fn is_config(&self) -> bool {
        self.kind == ErrorKind::Config
    }

    /// The HTTP status the agent's endpoint answered with, when that is the
    /// failure.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
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
        assert_eq!(err.kind(), ErrorKind::Status);
        assert!(Error::unreadable("not json").is_unreadable());
    }
}
