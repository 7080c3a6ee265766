//! The error type of the simulator's own API: [`SimError`], opaque, with
//! predicates.

use std::fmt;

/// A boxed cause.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, kept private so that the set can grow.
#[derive(Debug)]
enum Kind {
    Bind,
    Timeout,
    UnknownEndpoint(String),
    UnknownAccount(String),
    InvalidInput(String),
    Tls,
    Http,
    Status { status: u16, body: String },
}

/// An error of the simulator's own API (never of the simulated protocol,
/// which answers on the wire). Opaque: ask with the predicates; the cause,
/// when there is one, is in [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct SimError {
    kind: Kind,
    source: Option<Source>,
}

impl SimError {
    fn new(kind: Kind) -> Self {
        Self { kind, source: None }
    }

    /// A loopback listener could not be bound.
    pub(crate) fn bind(source: std::io::Error) -> Self {
        Self {
            kind: Kind::Bind,
            source: Some(source.into()),
        }
    }

    /// A `wait_for_*` helper ran out of time.
    pub(crate) fn timeout() -> Self {
        Self::new(Kind::Timeout)
    }

    /// A fault named an endpoint the simulator does not serve.
    pub(crate) fn unknown_endpoint(name: impl Into<String>) -> Self {
        Self::new(Kind::UnknownEndpoint(name.into()))
    }

    /// No account has this bot id.
    pub(crate) fn unknown_account(bot_id: impl Into<String>) -> Self {
        Self::new(Kind::UnknownAccount(bot_id.into()))
    }

    /// An argument was not usable; `what` says which and why.
    pub(crate) fn invalid_input(what: impl Into<String>) -> Self {
        Self::new(Kind::InvalidInput(what.into()))
    }

    /// The redirect listener's certificate or TLS setup failed.
    pub(crate) fn tls(source: impl Into<Source>) -> Self {
        Self {
            kind: Kind::Tls,
            source: Some(source.into()),
        }
    }

    /// A request of the [`PlainClient`](crate::harness::PlainClient) could
    /// not be sent, or its answer broke off.
    pub(crate) fn http(source: impl Into<Source>) -> Self {
        Self {
            kind: Kind::Http,
            source: Some(source.into()),
        }
    }

    /// A [`PlainClient::get`](crate::harness::PlainClient::get) was
    /// answered with `status`, not a success; `body` is its answer as text.
    pub(crate) fn status(status: u16, body: impl Into<String>) -> Self {
        Self::new(Kind::Status {
            status,
            body: body.into(),
        })
    }

    /// True when a loopback listener could not be bound.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, Kind::Bind)
    }

    /// True when a `wait_for_*` helper ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// True when a fault named an endpoint the simulator does not serve;
    /// [`name`](Self::name) has the name.
    pub fn is_unknown_endpoint(&self) -> bool {
        matches!(self.kind, Kind::UnknownEndpoint(_))
    }

    /// True when no account has the bot id (it was deleted, or never
    /// existed); [`name`](Self::name) has the id.
    pub fn is_unknown_account(&self) -> bool {
        matches!(self.kind, Kind::UnknownAccount(_))
    }

    /// True when an argument was not usable.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.kind, Kind::InvalidInput(_))
    }

    /// True when the redirect listener's TLS setup failed.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls)
    }

    /// True when a request of the
    /// [`PlainClient`](crate::harness::PlainClient) could not be sent or
    /// its answer broke off; the cause is in
    /// [`source`](std::error::Error::source).
    pub fn is_http(&self) -> bool {
        matches!(self.kind, Kind::Http)
    }

    /// The HTTP status a
    /// [`PlainClient::get`](crate::harness::PlainClient::get) was answered
    /// with, when that is the failure.
    pub fn http_status(&self) -> Option<u16> {
        match self.kind {
            Kind::Status { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The endpoint name or bot id that was not known, for those errors.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            Kind::UnknownEndpoint(name) | Kind::UnknownAccount(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bind => f.write_str("cannot bind a loopback listener"),
            Kind::Timeout => f.write_str("timed out waiting for the simulator"),
            Kind::UnknownEndpoint(name) => write!(f, "unknown endpoint name {name:?}"),
            Kind::UnknownAccount(id) => write!(f, "unknown account {id:?}"),
            Kind::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Kind::Tls => f.write_str("cannot set up tls for the redirect listener"),
            Kind::Http => f.write_str("http request failed"),
            Kind::Status { status, body } => write!(f, "http get answered {status}: {body}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn each_error_answers_only_its_own_predicate_and_keeps_its_cause() {
        let bind = SimError::bind(std::io::Error::other("address in use"));
        assert!(bind.is_bind() && !bind.is_timeout());
        assert_eq!(bind.to_string(), "cannot bind a loopback listener");
        assert_eq!(bind.source().unwrap().to_string(), "address in use");
        let account = SimError::unknown_account("bot-9");
        assert!(account.is_unknown_account() && !account.is_unknown_endpoint());
        assert_eq!(account.name(), Some("bot-9"));
        assert_eq!(account.to_string(), "unknown account \"bot-9\"");
        let endpoint = SimError::unknown_endpoint("sendmesage");
        assert!(endpoint.is_unknown_endpoint() && endpoint.source().is_none());
        assert_eq!(endpoint.name(), Some("sendmesage"));
        let timeout = SimError::timeout();
        assert!(timeout.is_timeout() && timeout.name().is_none());
        let invalid = SimError::invalid_input("count must be at least 1");
        assert!(invalid.is_invalid_input());
        assert_eq!(
            invalid.to_string(),
            "invalid input: count must be at least 1"
        );
        assert!(SimError::tls(std::io::Error::other("bad key")).is_tls());
        let http = SimError::http(std::io::Error::other("connection refused"));
        assert!(http.is_http() && http.http_status().is_none());
        assert_eq!(http.to_string(), "http request failed");
        assert_eq!(http.source().unwrap().to_string(), "connection refused");
        let status = SimError::status(404, "not found");
        assert!(!status.is_http() && status.source().is_none());
        assert_eq!(status.http_status(), Some(404));
        assert_eq!(status.to_string(), "http get answered 404: not found");
    }
}
