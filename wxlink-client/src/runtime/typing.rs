//! [`TypingGuard`]: keeps "typing…" alive while the bot works on a reply.
//!
//! The guard's task fetches the user's typing ticket through the config
//! cache, sends `sendtyping(status=1)`, repeats it every keep-alive interval
//! (5 s, ILINK.md §8.4) and sends `status=2` when the guard is finished or
//! dropped. With an empty ticket it makes no calls at all, as the official
//! client does. Every failure is logged and swallowed: typing never fails a
//! reply.
//!
//! [`TypingGuard::reply`] and [`TypingGuard::finish_after`] end typing on
//! the reply itself: the keep-alives stop (a keep-alive in flight is waited
//! for) before the reply leaves, and the cancel goes out as soon as it has
//! been sent, so no "typing…" call reaches the server after the reply but
//! the cancel.

use std::future::IntoFuture;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxlink_proto::TypingTicket;

use super::bot::BotRuntime;
use super::error::RuntimeError;

/// How the guard's task is told to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Stop the keep-alives and send the cancel.
    Cancel,
    /// Stop the keep-alives and hand the ticket back, so that the guard
    /// sends the cancel after the reply.
    HandOver,
}

/// Keeps the typing indicator on for one user while it lives.
///
/// Created by [`BotRuntime::typing`]. Answer through the guard with
/// [`reply`](Self::reply) (or wrap any other send, such as a media reply,
/// in [`finish_after`](Self::finish_after)) to end typing exactly when the
/// reply is sent; or call [`finish`](Self::finish) after sending to wait for
/// the cancel to go out, or just drop the guard to cancel in the
/// background.
pub struct TypingGuard {
    stop: Option<oneshot::Sender<Stop>>,
    task: Option<JoinHandle<Option<TypingTicket>>>,
    runtime: BotRuntime,
    user: String,
}

impl std::fmt::Debug for TypingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypingGuard")
            .field("user", &self.user)
            .field("active", &self.task.is_some())
            .finish_non_exhaustive()
    }
}

impl TypingGuard {
    /// Spawns the typing task. Outside a Tokio runtime the guard does
    /// nothing.
    pub(crate) fn start(runtime: BotRuntime, user: &str) -> Self {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("typing guard created outside a tokio runtime; no typing calls");
            return Self {
                stop: None,
                task: None,
                runtime,
                user: user.to_owned(),
            };
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = handle.spawn(run(runtime.clone(), user.to_owned(), stop_rx));
        Self {
            stop: Some(stop_tx),
            task: Some(task),
            runtime,
            user: user.to_owned(),
        }
    }

    /// The user this guard shows "typing…" to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// How long to wait for the task: a typing call in flight, then the
    /// cancel, each bounded by the call timeout.
    fn join_limit(&self) -> Duration {
        self.runtime.inner.options.call_timeout.saturating_mul(2)
    }

    /// Cancels typing and waits (at most the call timeout, plus the time a
    /// pending start call may need) until the cancel has been sent.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Cancel);
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(self.join_limit(), task).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::debug!(error = %err, "typing task failed"),
                Err(_) => tracing::debug!("typing cancel did not finish in time"),
            }
        }
    }

    /// Sends `text` to the guard's user through
    /// [`BotRuntime::send_to`] (remembered context token, send budget,
    /// chunking) and ends typing with it: the keep-alives stop before the
    /// reply leaves and the cancel is sent as soon as the reply has been,
    /// whether or not it succeeded. Returns once the cancel has gone out.
    ///
    /// ```no_run
    /// # async fn run(bot: wxlink_client::runtime::BotRuntime, delivery: wxlink_client::runtime::Delivery) -> Result<(), wxlink_client::runtime::RuntimeError> {
    /// let typing = bot.typing(delivery.sender());
    /// let answer = format!("you said: {}", delivery.text().unwrap_or("(media)"));
    /// typing.reply(&answer).await?;
    /// delivery.ack().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reply(self, text: &str) -> Result<(), RuntimeError> {
        let runtime = self.runtime.clone();
        let user = self.user.clone();
        self.finish_after(async move { runtime.send_to(&user, text).await })
            .await
    }

    /// Runs `send` (any reply: a media reply of the runtime, a chunked
    /// text, a call on the client) and ends typing with it, as
    /// [`reply`](Self::reply) does: keep-alives stop first, the cancel goes
    /// out right after `send` completes. Returns what `send` returned.
    ///
    /// Keep-alives stop for the whole of `send`, so during a long upload the
    /// indicator may fade before the reply arrives; it never shows again
    /// after it.
    ///
    /// ```no_run
    /// # async fn run(bot: wxlink_client::runtime::BotRuntime, delivery: wxlink_client::runtime::Delivery) -> Result<(), wxlink_client::runtime::RuntimeError> {
    /// let typing = bot.typing(delivery.sender());
    /// let reply = bot
    ///     .reply_media_from_path(&delivery, "./chart.png")
    ///     .caption("the chart");
    /// typing.finish_after(reply).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn finish_after<F: IntoFuture>(mut self, send: F) -> F::Output {
        let ticket = self.hand_over().await;
        let output = send.into_future().await;
        if let Some(ticket) = ticket {
            let limit = self.runtime.inner.options.call_timeout;
            cancel(&self.runtime, &self.user, ticket, limit).await;
        }
        output
    }

    /// Stops the keep-alives and takes the ticket back from the task when
    /// typing was started (so a cancel is owed).
    async fn hand_over(&mut self) -> Option<TypingTicket> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::HandOver);
        }
        let task = self.task.take()?;
        match tokio::time::timeout(self.join_limit(), task).await {
            Ok(Ok(ticket)) => ticket,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "typing task failed");
                None
            }
            Err(_) => {
                tracing::debug!("typing keep-alive did not stop in time");
                None
            }
        }
    }
}

impl Drop for TypingGuard {
    fn drop(&mut self) {
        // The task sees the signal and sends the cancel on its own.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Cancel);
        }
    }
}

/// The guard's task: start, keep alive, then cancel, or hand the ticket
/// back when the guard sends the cancel itself after a reply.
async fn run(
    runtime: BotRuntime,
    user: String,
    mut stop: oneshot::Receiver<Stop>,
) -> Option<TypingTicket> {
    let options = &runtime.inner.options;
    let call_timeout = options.call_timeout;
    let keepalive = options.typing_keepalive.max(Duration::from_millis(10));

    let ticket = tokio::select! {
        ticket = runtime.typing_ticket(&user) => ticket,
        // Typing never started, so there is nothing to cancel.
        _ = &mut stop => return None,
    };
    if ticket.is_empty() {
        tracing::debug!(user, "no typing ticket; typing indicator skipped");
        return None;
    }
    let api = &runtime.inner.api;
    let how = loop {
        let call = api.send_typing(user.clone(), ticket.clone(), true);
        match tokio::time::timeout(call_timeout, call).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!(user, error = %err, "sendtyping failed"),
            Err(_) => tracing::debug!(user, "sendtyping timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(keepalive) => {}
            // A dropped sender (the guard is gone) means cancel.
            how = &mut stop => break how.unwrap_or(Stop::Cancel),
        }
    };
    match how {
        Stop::HandOver => Some(ticket),
        Stop::Cancel => {
            cancel(&runtime, &user, ticket, call_timeout).await;
            None
        }
    }
}

/// Sends `sendtyping(status=2)`; failures are only logged.
async fn cancel(runtime: &BotRuntime, user: &str, ticket: TypingTicket, limit: Duration) {
    let call = runtime
        .inner
        .api
        .send_typing(user.to_owned(), ticket, false);
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(user, error = %err, "cancelling typing failed"),
        Err(_) => tracing::warn!(user, "cancelling typing timed out"),
    }
}
