//! [`Handler`]: what the host calls for each inbound message.

use std::future::Future;
use std::pin::Pin;

use crate::incoming::Incoming;

/// The error a handler returns: anything that is an error. The runtime
/// records its text (with its causes) as the attempt's last error.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'static>>;

/// Handles one inbound message.
///
/// `Ok` acknowledges the message (it leaves the journal); an error (or a
/// panic) counts a failed attempt: the message is tried again after
/// [`AccountOptions::retry_delay`](crate::AccountOptions::retry_delay),
/// and after [`AccountOptions::max_attempts`](crate::AccountOptions::max_attempts)
/// it becomes a dead letter. One user's messages are handled one at a
/// time, in order; different users' concurrently.
///
/// Any `Fn(Incoming) -> impl Future<Output = Result<(), E>>` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Handles `incoming`.
    fn handle(&self, incoming: Incoming) -> HandlerFuture;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<HandlerError> + 'static,
{
    fn handle(&self, incoming: Incoming) -> HandlerFuture {
        let fut = self(incoming);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
