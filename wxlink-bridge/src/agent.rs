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
/// implementation only answers once or fails with an [`Error`]:
/// [`Error::agent`] when its backend cannot be reached or breaks off,
/// [`Error::unreadable`] for an answer it cannot use, [`Error::io`] when a
/// file of the turn cannot be read or written.
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

/// One agent per account, with a default for the others.
///
/// ```
/// use std::sync::Arc;
/// use wxlink_bridge::{Agent, AgentRouter, Error, FnAgent, Reply, Turn};
///
/// let default = Arc::new(FnAgent::new(|_t: Turn| async { Ok::<_, Error>(Reply::text("a")) }));
/// let special = Arc::new(FnAgent::new(|_t: Turn| async { Ok::<_, Error>(Reply::text("b")) }));
/// let router = AgentRouter::new(default).account("bot-2@im.bot", special);
/// # let _ = router.name();
/// ```
pub struct AgentRouter {
    default: Arc<dyn Agent>,
    by_account: std::collections::HashMap<String, Arc<dyn Agent>>,
}

impl std::fmt::Debug for AgentRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRouter")
            .field("default", &self.default.name())
            .field("accounts", &self.by_account.len())
            .finish()
    }
}

impl AgentRouter {
    /// Routes every account to `default`.
    pub fn new(default: Arc<dyn Agent>) -> Self {
        Self {
            default,
            by_account: std::collections::HashMap::new(),
        }
    }

    /// Routes `account` to `agent`.
    #[must_use]
    pub fn account(mut self, account: impl Into<String>, agent: Arc<dyn Agent>) -> Self {
        self.by_account.insert(account.into(), agent);
        self
    }

    fn pick(&self, account: &str) -> &Arc<dyn Agent> {
        self.by_account.get(account).unwrap_or(&self.default)
    }
}

impl Agent for AgentRouter {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        self.pick(&turn.account).respond(turn)
    }

    fn reset<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.pick(account).reset(account, user)
    }

    fn name(&self) -> &str {
        self.default.name()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn the_router_picks_the_account_agent_or_the_default() {
        let a: Arc<dyn Agent> = Arc::new(FnAgent::new(|_t: Turn| async {
            Ok::<_, Error>(Reply::text("a"))
        }));
        let b: Arc<dyn Agent> = Arc::new(FnAgent::new(|_t: Turn| async {
            Ok::<_, Error>(Reply::text("b"))
        }));
        let router = AgentRouter::new(a).account("two", b);
        let one = router
            .respond(&Turn::new("one", "u", 1, "x"))
            .await
            .unwrap();
        let two = router
            .respond(&Turn::new("two", "u", 1, "x"))
            .await
            .unwrap();
        assert_eq!(one.text.as_deref(), Some("a"));
        assert_eq!(two.text.as_deref(), Some("b"));
    }
}
