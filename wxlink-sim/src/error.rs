//! The error type of the simulator's own API.

/// Errors of the simulator's own API (never of the simulated protocol,
/// which answers on the wire).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A listener could not be bound.
    #[error("cannot bind a loopback listener")]
    Bind(#[source] std::io::Error),
    /// A `wait_for_*` helper ran out of time.
    #[error("timed out waiting for the simulator")]
    Timeout,
    /// A fault named an endpoint the simulator does not serve.
    #[error("unknown endpoint name {0:?}")]
    UnknownEndpoint(String),
    /// No account has this bot id (it was deleted, or never existed).
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    /// An argument was not usable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The redirect listener's certificate or TLS setup could not be made.
    #[error("cannot set up tls for the redirect listener")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
}
