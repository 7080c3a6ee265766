//! [`RuntimeError`]: why a runtime operation failed.

use std::time::Duration;

use super::api::ApiError;
use super::budget::ContextProblem;
use super::store::StoreError;

/// Why the update stream ended or a runtime send was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The server said the session expired (`-14`): the token is no longer
    /// valid and a new QR login is needed (ILINK.md §6.4). The update stream
    /// ends with this error unless it was told to pause instead.
    #[error("session expired; a new qr login is needed")]
    SessionExpired,
    /// The session expired and the runtime is pausing for the configured
    /// time before polling again; sends are refused until then.
    #[error("session paused after expiry")]
    SessionPaused {
        /// How long the pause still lasts.
        remaining: Duration,
    },
    /// No message from this user is recent enough to reply: the bot cannot
    /// start a conversation, and messages more than 24 h after the user's
    /// latest one are dropped by the server (ILINK.md §8.3).
    #[error("the user must write first")]
    UserMustWriteFirst {
        /// The user.
        user: String,
        /// Whether the context is missing or too old.
        problem: ContextProblem,
    },
    /// This turn's send budget is used up: the server allows only about ten
    /// bot messages per user message and then refuses sends for minutes
    /// (ILINK.md §6.3). A new message from the user starts a new turn.
    #[error("send budget for this turn is used up")]
    RateLimited {
        /// The user.
        user: String,
        /// Messages already sent in this turn.
        sent: u32,
        /// The budget per turn.
        limit: u32,
    },
    /// The message has no sender to reply to.
    #[error("message has no sender")]
    NoSender,
    /// The store failed.
    #[error("runtime store failed")]
    Store(#[from] StoreError),
    /// A journal entry could not be read back as a message.
    #[error("journal entry is not a valid message")]
    CorruptEntry(#[source] serde_json::Error),
    /// An API call failed (other than with `-14`); the facade's error says
    /// how, including whether the message may have been sent.
    #[error("api call failed")]
    Api(#[source] crate::Error),
    /// A blocking store task could not run (the runtime is shutting down).
    #[error("store task failed")]
    TaskFailed(#[source] tokio::task::JoinError),
}

impl RuntimeError {
    /// True for [`RuntimeError::SessionExpired`] and
    /// [`RuntimeError::SessionPaused`]: the application should start a new
    /// QR login.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, Self::SessionExpired | Self::SessionPaused { .. })
    }
}

impl From<ApiError> for RuntimeError {
    fn from(err: ApiError) -> Self {
        if err.session_expired {
            Self::SessionExpired
        } else {
            Self::Api(err.source)
        }
    }
}
