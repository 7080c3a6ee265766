//! One runner of a scale-out over PostgreSQL: the accounts kept in a
//! [`PostgresStore`] divided among every runner process that shares it.
//!
//! Every third of the lease period, and as soon as another runner's lease
//! may have run out, a [`Runner`]:
//!
//! 1. records its heartbeat and claims free or expired accounts up to its
//!    fair share, `ceil(accounts / live runners)`
//!    ([`PostgresStore::claim_share`]), and starts each claimed account on
//!    its [`Host`] from the account file kept in the store;
//! 2. when more runners have joined and it holds more than its share,
//!    stops that many accounts, releasing their leases for the newcomers.
//!
//! Each running account renews its own lease every third of the period and
//! starts a poll only when the poll ends before the lease does; a renewal
//! the fence refuses, or one that fails until the lease runs out, stops
//! the account at once, and the runner then drops it (another runner holds
//! it, or will). A runner stopped cleanly gives up its leases and its place
//! among the live runners, so that the others take its accounts at once.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use wxlink_client::{AccountRecord, WxLinkClient};

use crate::error::Error;
use crate::events::EventKind;
use crate::handler::Handler;
use crate::host::{AccountConfig, Host};
use crate::options::AccountOptions;
use crate::store::postgres::ShareOutcome;
use crate::store::{AccountId, Lease, PostgresStore, Store};

/// Runs this process's share of the accounts in a [`PostgresStore`].
pub struct Runner {
    host: Host,
    store: Arc<PostgresStore>,
    handler: Arc<dyn Handler>,
    options: AccountOptions,
    stale_after: Duration,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.host.owner())
            .field("lease_ttl", &self.options.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner over `store` that starts each account of its share on
    /// `host` (built over the same store) with `handler` and `options`
    /// (`options.lease_ttl` is the lease period of the whole scale-out).
    ///
    /// Fails when `host` runs over another store than `store`.
    pub fn new(
        host: Host,
        store: Arc<PostgresStore>,
        handler: Arc<dyn Handler>,
        options: AccountOptions,
    ) -> Result<Self, Error> {
        let same = std::ptr::addr_eq(Arc::as_ptr(&host.store()), Arc::as_ptr(&store));
        if !same {
            return Err(Error::invalid(
                "the runner's host must run over the runner's PostgresStore",
            ));
        }
        // A runner missing a whole lease period of heartbeats is gone (a
        // round that starts or stops many accounts may delay one).
        let stale_after = options.lease_ttl;
        Ok(Self {
            host,
            store,
            handler,
            options: options.wait_for_lease(false),
            stale_after,
        })
    }

    /// The host the accounts run on (its events, handles, dead letters).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Runs until `stop` resolves, then stops every account, releases
    /// their leases and leaves the live runners.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        let mut events = self.host.events();
        let tick = self.options.lease_ttl / 3;
        let mut next = tokio::time::Instant::now();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                event = events.recv() => match event {
                    Ok(event) if matches!(event.kind, EventKind::LeaseLost) => {
                        self.drop_account(&event.account).await;
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
                () = tokio::time::sleep_until(next) => {
                    next = tokio::time::Instant::now() + tick;
                    match self.balance().await {
                        Ok(outcome) => {
                            // Claim again as soon as another runner's lease
                            // may have run out or a runner gone stale, not
                            // up to a third of the period later: that is
                            // the takeover time after a crash.
                            if let Some(at) = outcome.next_change_ms {
                                let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                                let soon = tokio::time::Instant::now()
                                    + Duration::from_millis(wait)
                                    + CLAIM_SLACK;
                                next = next.min(soon);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(owner = self.host.owner(), error = %err, "claiming a share failed");
                        }
                    }
                }
            }
        }
        self.host.shutdown().await;
        self.store.retire_runner(self.host.owner()).await?;
        Ok(())
    }

    /// One round: heartbeat, claim up to the share, start what was
    /// claimed, give back what is beyond the share.
    pub async fn balance(&self) -> Result<ShareOutcome, Error> {
        let owner = self.host.owner().to_owned();
        let outcome = self
            .store
            .claim_share(
                &owner,
                ms(self.options.lease_ttl),
                ms(self.stale_after),
                now_ms(),
            )
            .await?;
        tracing::debug!(
            owner,
            claimed = outcome.claimed.len(),
            held = outcome.held,
            share = outcome.share,
            live = outcome.live_runners,
            next_change_ms = ?outcome.next_change_ms,
            "claimed a share"
        );
        // The claimed accounts start side by side: one after another, a
        // takeover of many accounts would wait on each one's store reads.
        let starts = outcome.claimed.iter().map(|lease| async move {
            if let Err(err) = self.start(lease).await {
                tracing::warn!(account = %lease.account, error = %err, "starting a claimed account failed");
                let _ = self.store.release(lease).await;
            }
        });
        futures_util::future::join_all(starts).await;
        let excess = usize::try_from(outcome.excess()).unwrap_or(usize::MAX);
        if excess > 0 {
            // Give back the newest names first; which ones does not matter
            // as long as every runner's count is right.
            // They stop at once, not one after another: each lets its poll
            // in flight end and journals its batch first.
            let running: BTreeSet<AccountId> = self.host.account_ids().into_iter().collect();
            let drops = running.iter().rev().take(excess).map(|id| {
                tracing::info!(account = %id, "handing the account to a newer runner");
                self.drop_account(id)
            });
            futures_util::future::join_all(drops).await;
        }
        Ok(outcome)
    }

    /// Starts a claimed account from its account file in the store.
    async fn start(&self, lease: &Lease) -> Result<(), Error> {
        if self.host.account(&lease.account).is_some() {
            return Ok(());
        }
        let credentials = self
            .store
            .credentials(&lease.account)
            .await?
            .ok_or_else(|| {
                Error::invalid(format!(
                    "account {} has no account file in the store",
                    lease.account
                ))
            })?;
        let record: AccountRecord =
            serde_json::from_str(credentials.expose_secret()).map_err(|e| {
                Error::invalid(format!(
                    "the account file of {} is not valid: {e}",
                    lease.account
                ))
            })?;
        let mut builder = WxLinkClient::builder()
            .base_url(record.base_url.clone())
            .token(record.token.clone());
        if let Some(cdn) = record.cdn_base_url.clone() {
            builder = builder.cdn_base_url(cdn);
        }
        let config =
            AccountConfig::new(lease.account.clone(), builder).options(self.options.clone());
        self.host
            .add_account_arc(config, Arc::clone(&self.handler))
            .await?;
        Ok(())
    }

    /// Stops an account on this runner (its lease is released if still
    /// held); an account not running here is fine.
    async fn drop_account(&self, id: &AccountId) {
        if self.host.account(id).is_some()
            && let Err(err) = self.host.remove_account(id).await
        {
            tracing::debug!(account = %id, error = %err, "removing the account failed");
        }
    }
}

/// How long after a lease's expiry (by this runner's clock) a claim for it
/// runs: a little later, so that small clock differences between runners
/// do not make the claim come a moment too early and find nothing.
const CLAIM_SLACK: Duration = Duration::from_millis(20);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
