//! [`TypingGuard`]: keeps "typing…" alive while the bot works on a reply.
//!
//! The guard's task fetches the user's typing ticket through the config
//! cache, sends `sendtyping(status=1)`, repeats it every keep-alive interval
//! (5 s, ILINK.md §8.4) and sends `status=2` when the guard is finished or
//! dropped. With an empty ticket it makes no calls at all, as the official
//! client does. Every failure is logged and swallowed: typing never fails a
//! reply.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::bot::BotRuntime;

/// Keeps the typing indicator on for one user while it lives.
///
/// Created by [`BotRuntime::typing`]. Call [`finish`](Self::finish) after
/// sending the reply to wait for the cancel to go out, or just drop the
/// guard to cancel in the background.
#[derive(Debug)]
pub struct TypingGuard {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    call_timeout: Duration,
}

impl TypingGuard {
    /// Spawns the typing task. Outside a Tokio runtime the guard does
    /// nothing.
    pub(crate) fn start(runtime: BotRuntime, user: &str) -> Self {
        let call_timeout = runtime.inner.options.call_timeout;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("typing guard created outside a tokio runtime; no typing calls");
            return Self {
                stop: None,
                task: None,
                call_timeout,
            };
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = handle.spawn(run(runtime, user.to_owned(), stop_rx));
        Self {
            stop: Some(stop_tx),
            task: Some(task),
            call_timeout,
        }
    }

    /// Cancels typing and waits (at most the call timeout, plus the time a
    /// pending start call may need) until the cancel has been sent.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Allow a start call in flight to finish, then the cancel.
            let limit = self.call_timeout * 2;
            match tokio::time::timeout(limit, task).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::debug!(error = %err, "typing task failed"),
                Err(_) => tracing::debug!("typing cancel did not finish in time"),
            }
        }
    }
}

impl Drop for TypingGuard {
    fn drop(&mut self) {
        // The task sees the closed channel and sends the cancel on its own.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The guard's task: start, keep alive, cancel.
async fn run(runtime: BotRuntime, user: String, mut stop: oneshot::Receiver<()>) {
    let options = &runtime.inner.options;
    let call_timeout = options.call_timeout;
    let keepalive = options.typing_keepalive.max(Duration::from_millis(10));

    let ticket = tokio::select! {
        ticket = runtime.typing_ticket(&user) => ticket,
        _ = &mut stop => return,
    };
    if ticket.is_empty() {
        tracing::debug!(user, "no typing ticket; typing indicator skipped");
        return;
    }
    let api = &runtime.inner.api;
    loop {
        let call = api.send_typing(user.clone(), ticket.clone(), true);
        match tokio::time::timeout(call_timeout, call).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!(user, error = %err, "sendtyping failed"),
            Err(_) => tracing::debug!(user, "sendtyping timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(keepalive) => {}
            _ = &mut stop => break,
        }
    }
    let cancel = api.send_typing(user.clone(), ticket, false);
    match tokio::time::timeout(call_timeout, cancel).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(user, error = %err, "cancelling typing failed"),
        Err(_) => tracing::warn!(user, "cancelling typing timed out"),
    }
}
