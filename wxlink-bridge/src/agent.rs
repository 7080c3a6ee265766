//! The [`Agent`] trait: a turn in, a reply out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::turn::{Reply, Turn};

/// A boxed, sendable future, as [`Agent`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that answers a user's turn: a language model behind an HTTP
/// API, a webhook, a local program, or the application's own code.
///
/// The bridge calls [`respond`](Self::respond) for one user at a time, in
/// order, and for different users concurrently, so an implementation must be
/// `Send + Sync`. The bridge enforces the time limit and retries; an
/// implementation only answers once or fails with an [`Error`] (use
/// [`Error::unreadable`] for an answer it cannot use).
///
/// ```
/// use wxlink_bridge::{Agent, BoxFuture, Error, Reply, Turn};
///
/// /// Answers every turn with its own text.
/// struct Echo;
///
/// impl Agent for Echo {
///     fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
///         Box::pin(async move { Ok(Reply::text(turn.text.clone())) })
///     }
/// }
/// ```
pub trait Agent: Send + Sync + 'static {
    /// Answers one turn.
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>>;

    /// Forgets what the agent remembers of this user's conversation
    /// (the user sent `/reset`). The default remembers nothing.
    fn reset<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (account, user);
        Box::pin(async { Ok(()) })
    }

    /// A short name for logs and metrics.
    fn name(&self) -> &str {
        "agent"
    }
}

impl<A: Agent + ?Sized> Agent for Arc<A> {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        (**self).respond(turn)
    }

    fn reset<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        (**self).reset(account, user)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

impl<A: Agent + ?Sized> Agent for Box<A> {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        (**self).respond(turn)
    }

    fn reset<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        (**self).reset(account, user)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

/// An agent from a closure returning a future; handy in tests and for
/// small embedded agents.
///
/// ```
/// use wxlink_bridge::{Agent, Error, FnAgent, Reply, Turn};
///
/// let agent = FnAgent::new(|turn: Turn| async move {
///     Ok::<_, Error>(Reply::text(turn.text.to_uppercase()))
/// });
/// assert_eq!(agent.name(), "fn");
/// ```
pub struct FnAgent<F> {
    f: F,
}

impl<F> FnAgent<F> {
    /// Wraps `f`, called with a clone of each turn.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> std::fmt::Debug for FnAgent<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnAgent").finish_non_exhaustive()
    }
}

impl<F, Fut> Agent for FnAgent<F>
where
    F: Fn(Turn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Error>> + Send + 'static,
{
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        Box::pin((self.f)(turn.clone()))
    }

    fn name(&self) -> &str {
        "fn"
    }
}
