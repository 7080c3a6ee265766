//! The sends of one account through its gate: the `impl Shared` block that
//! applies the server's limits (docs/architecture.md, "Send limits") as
//! `limits` describes them: [`Shared::paced_send`] paces the sends, holds
//! them while the bot is throttled and turns a `-2` read as the throttle
//! into the throttle state; [`Shared::reserve`] takes sends from a reply or
//! push budget; both wait in the bounded refusal queue when
//! [`OnRefusal::Queue`] is set.
//!
//! It sits above the account's state (`Shared`), which it acts on, and
//! `limits`, whose gate and rules it uses; `limits` itself holds no
//! account state, so `Shared` can hold a `Limiter` without a cycle. The
//! replies in `incoming` and the pushes of the host call these methods.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use wxlink_client::WxLinkClient;

use crate::error::{Error, Kind};
use crate::events::EventKind;
use crate::limits::{is_throttle, rejection, throttled};
use crate::options::{OnRefusal, ms, now_ms, system_time};
use crate::shared::Shared;
use crate::store::{BudgetKind, BudgetOutcome, ThrottleRecord};

/// A place in the refusal queue; leaves it on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Joins the refusal queue if the policy allows waiting.
    fn enter_queue(&self) -> Result<QueueSlot<'_>, Error> {
        let OnRefusal::Queue(max) = self.options.on_refusal else {
            return Err(Error::invalid("no queue"));
        };
        let queued = &self.limiter.queued;
        if queued.fetch_add(1, Ordering::SeqCst) >= max {
            queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::new(Kind::QueueFull));
        }
        Ok(QueueSlot(queued))
    }

    /// Waits until the throttle allows a probe (queue mode) or fails.
    async fn wait_out_throttle(&self) -> Result<(), Error> {
        let mut slot = None;
        loop {
            let Some(record) = self.limiter.throttle() else {
                return Ok(());
            };
            let now = now_ms();
            if now >= record.next_probe_ms {
                return Ok(());
            }
            if slot.is_none() {
                if self.options.on_refusal == OnRefusal::Fail {
                    return Err(throttled(&record));
                }
                slot = Some(self.enter_queue()?);
            }
            let wait = Duration::from_millis((record.next_probe_ms - now).unsigned_abs());
            self.sleep_or_stop(wait.min(Duration::from_secs(60)))
                .await?;
        }
    }

    /// Takes `count` sends from `budget`, waiting when the policy says to.
    pub(crate) async fn reserve(&self, budget: &BudgetKind, count: u32) -> Result<(), Error> {
        self.check_session()?;
        self.wait_out_throttle().await?;
        let (limit, push) = match budget {
            BudgetKind::Reply { .. } => (self.options.reply_budget, false),
            _ => (self.options.push_budget, true),
        };
        let refused = |used| Error::new(Kind::BudgetExhausted { used, limit, push });
        if count > limit {
            // It can never fit: waiting would wait for ever.
            return Err(refused(0));
        }
        let mut slot = None;
        loop {
            let lease = self.lease()?;
            match self
                .store
                .spend_budget(&lease, budget, count, limit, now_ms())
                .await?
            {
                BudgetOutcome::Granted { .. } => return Ok(()),
                BudgetOutcome::Exhausted { used, resets_at_ms } => {
                    // A push window renews at its end; a message's reply
                    // budget never does, so waiting for it would be waiting
                    // for ever: it is refused even in queue mode.
                    let Some(resets_at_ms) = resets_at_ms else {
                        return Err(refused(used));
                    };
                    if slot.is_none() {
                        if self.options.on_refusal == OnRefusal::Fail {
                            return Err(refused(used));
                        }
                        slot = Some(self.enter_queue()?);
                    }
                    let wait =
                        Duration::from_millis((resets_at_ms - now_ms()).max(1).unsigned_abs());
                    self.sleep_or_stop(wait.min(Duration::from_secs(60)))
                        .await?;
                }
            }
        }
    }

    /// Sends one message through the bot's gate: paced, in order, held
    /// while throttled, and turning a `-2` into the throttle state.
    pub(crate) async fn paced_send<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnOnce(WxLinkClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, wxlink_client::Error>>,
    {
        self.check_session()?;
        let mut gate = loop {
            let gate = self.limiter.gate.lock().await;
            // A throttle that began while this send waited for the gate
            // holds it too; only one send at a time may be the probe.
            match self.limiter.throttle() {
                Some(record) if now_ms() < record.next_probe_ms => {
                    drop(gate);
                    self.wait_out_throttle().await?;
                }
                _ => break gate,
            }
        };
        if let Some(last) = *gate {
            let due = last + self.options.pace;
            if Instant::now() < due {
                tokio::time::sleep_until(due).await;
            }
        }
        *gate = Some(Instant::now());
        let probing = self.limiter.throttle();
        let result = call(self.client()).await;
        match result {
            Ok(value) => {
                if probing.is_some() {
                    self.limiter.set_throttle(None);
                    if let Ok(lease) = self.lease()
                        && let Err(err) = self.store.set_throttle(&lease, None).await
                    {
                        tracing::warn!(account = %self.id, error = %err, "saving the lifted throttle failed");
                    }
                    self.emit(EventKind::ThrottleLifted);
                }
                Ok(value)
            }
            Err(err) if is_throttle(rejection(&err).as_ref()) => {
                let now = now_ms();
                let record = match probing {
                    Some(old) => {
                        let failed = old.failed_probes.saturating_add(1);
                        ThrottleRecord {
                            since_ms: old.since_ms,
                            next_probe_ms: now.saturating_add(self.cooldown(failed)),
                            failed_probes: failed,
                        }
                    }
                    None => ThrottleRecord {
                        since_ms: now,
                        next_probe_ms: now.saturating_add(self.cooldown(0)),
                        failed_probes: 0,
                    },
                };
                tracing::warn!(
                    account = %self.id,
                    errmsg = err.api_status().and_then(|s| s.errmsg.as_deref()).unwrap_or(""),
                    guess = %rejection(&err).map(|g| g.to_string()).unwrap_or_default(),
                    failed_probes = record.failed_probes,
                    "sendmessage answered -2; holding every send of this bot"
                );
                self.limiter.set_throttle(Some(record));
                if let Ok(lease) = self.lease()
                    && let Err(e) = self.store.set_throttle(&lease, Some(record)).await
                {
                    tracing::warn!(account = %self.id, error = %e, "saving the throttle failed");
                }
                self.emit(EventKind::Throttled {
                    since: system_time(record.since_ms),
                    next_probe: system_time(record.next_probe_ms),
                    failed_probes: record.failed_probes,
                });
                Err(throttled(&record))
            }
            Err(err) => {
                if err.is_session_expired() {
                    self.mark_session_expired();
                }
                if let Some(guess) = rejection(&err) {
                    tracing::warn!(
                        account = %self.id,
                        errmsg = err.api_status().and_then(|s| s.errmsg.as_deref()).unwrap_or(""),
                        guess = %guess,
                        "sendmessage answered -2; not the bot-wide throttle, other sends go on"
                    );
                }
                Err(Error::from(err))
            }
        }
    }

    /// The cool-down after `failed_probes` failed probes: the first one
    /// doubled that many times, capped.
    fn cooldown(&self, failed_probes: u32) -> i64 {
        let first = self.options.throttle_cooldown;
        let max = self.options.max_throttle_cooldown.max(first);
        let factor = 2u32.saturating_pow(failed_probes.min(20));
        ms(first.saturating_mul(factor).min(max))
    }
}
