//! Helpers shared by the test modules: simulators, accounts, waiting.

use std::future::Future;
use std::time::Duration;

use wxlink_bot::backoff::BackoffPolicy;
use wxlink_bot::store::AccountId;
use wxlink_bot::{AccountConfig, AccountOptions, Event, EventKind};
use wxlink_client::WxLinkClient;
use wxlink_sim::Simulator;

/// A simulator whose idle polls return after 200 ms.
pub async fn sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(200))
        .start()
        .await
        .unwrap()
}

/// Options scaled down for tests: no pacing wait to speak of, short
/// retries and leases.
pub fn fast() -> AccountOptions {
    AccountOptions::default()
        .pace(Duration::from_millis(5))
        .retry_delay(Duration::from_millis(50))
        .lease_ttl(Duration::from_secs(2))
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
}

/// The store name of `sim`'s bot: its bot id and port, since every
/// simulator calls its bot the same.
pub fn account_id(sim: &Simulator) -> AccountId {
    let url = sim.base_url();
    let port = url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    AccountId::new(format!("{}:{port}", sim.bot_id())).unwrap()
}

/// The account of `sim`'s bot.
pub fn account(sim: &Simulator, options: AccountOptions) -> AccountConfig {
    AccountConfig::new(
        account_id(sim),
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .token(sim.token()),
    )
    .options(options)
}

/// Waits (at most `within`) for an event of `account` that `pick` accepts.
pub async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    account: &AccountId,
    within: Duration,
    pick: impl Fn(&EventKind) -> bool,
) -> EventKind {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no matching event for {account} within {within:?}"));
        match event {
            Ok(e) if &e.account == account && pick(&e.kind) => return e.kind,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("event stream ended: {e}"),
        }
    }
}

/// Polls `check` every 20 ms until it is true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}
