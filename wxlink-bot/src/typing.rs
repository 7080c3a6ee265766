//! [`TypingGuard`]: keeps "typing…" alive while the bot works on a reply.
//!
//! The guard's task fetches the user's typing ticket through the per-user
//! config cache (so `getconfig` is not called on every turn), sends
//! `sendtyping(status=1)`, repeats it every keep-alive interval (5 s by
//! default) and sends the cancel when the guard is finished or dropped.
//! With an empty ticket it makes no typing calls at all. Every failure is
//! logged and swallowed: typing never fails a reply.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wxlink_proto::TypingTicket;

use crate::config_cache::Lookup;
use crate::shared::Shared;

/// Keeps the typing indicator on for one user while it lives.
pub struct TypingGuard {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    shown: tokio::sync::watch::Receiver<bool>,
    user: String,
}

impl std::fmt::Debug for TypingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypingGuard")
            .field("user", &self.user)
            .field("active", &self.task.is_some())
            .finish()
    }
}

/// The typing ticket of `user`, through the config cache.
async fn ticket(shared: &Shared, user: &str) -> TypingTicket {
    let lookup = match shared.config.lock() {
        Ok(cache) => cache.lookup(user, Instant::now()),
        Err(_) => return TypingTicket::default(),
    };
    if let Lookup::Cached(ticket) = lookup {
        return ticket;
    }
    let context = shared.context_for(user).await.ok();
    let result = shared
        .client()
        .get_config(user.to_owned())
        .context_token(context)
        .send()
        .await;
    let Ok(mut cache) = shared.config.lock() else {
        return TypingTicket::default();
    };
    match result {
        Ok(resp) => {
            let ticket = resp.typing_ticket.unwrap_or_default();
            cache.record_success(user, ticket, Instant::now(), &mut rand::rng())
        }
        Err(err) => {
            tracing::debug!(user, error = %err, "getconfig failed; typing ticket from cache");
            cache.record_failure(user, Instant::now())
        }
    }
}

impl TypingGuard {
    /// Starts typing for `user` in the background.
    pub(crate) fn start(shared: Arc<Shared>, user: String) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (shown_tx, shown) = tokio::sync::watch::channel(false);
        let who = user.clone();
        let task = tokio::spawn(async move {
            let ticket = ticket(&shared, &who).await;
            if ticket.is_empty() {
                let _ = shown_tx.send(true);
                return;
            }
            let every = shared
                .options
                .typing_keepalive
                .max(std::time::Duration::from_millis(10));
            loop {
                let call = shared
                    .client()
                    .send_typing(who.clone())
                    .ticket(ticket.clone());
                if let Err(err) = call.send().await {
                    tracing::debug!(user = %who, error = %err, "sendtyping failed");
                }
                let _ = shown_tx.send(true);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = &mut stopped => break,
                }
            }
            let cancel = shared.client().cancel_typing(who.clone()).ticket(ticket);
            if let Err(err) = cancel.send().await {
                tracing::debug!(user = %who, error = %err, "cancelling typing failed");
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
            shown,
            user,
        }
    }

    /// Waits until the first `sendtyping` was answered (successfully or
    /// not), or at once when there is no typing ticket for the user, so
    /// that a caller can make sure "typing…" went out before it works.
    pub async fn shown(&mut self) {
        // The sender is dropped only when the task ended, which also means
        // nothing more will be shown.
        let _ = self.shown.wait_for(|shown| *shown).await;
    }

    /// Stops typing and waits until the cancel went out.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TypingGuard {
    fn drop(&mut self) {
        // The task sends the cancel on its own once told to stop.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
