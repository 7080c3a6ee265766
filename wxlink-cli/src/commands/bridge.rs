//! `wxlink bridge`: bot accounts answered by an AI agent, on the runtime.
//!
//! The agent and the accounts come from `--config bridge.toml` (see
//! `wxlink_bridge::config`), or, for a quick start, from
//! `--openai-base-url URL --model NAME` and the global account options.
//! Secrets come from environment variables only.
//!
//! The store is a SQLite file (`--store`, default `wxlink-bridge.db`). Its
//! accounts are those of the configuration's `[[account]]` tables; without
//! any, those whose account files the store keeps (when the store keeps
//! account records); without those, the global account (`--account`,
//! `WXLINK_TOKEN`…). A `postgres://` URL makes this process one runner of
//! a scale-out: the accounts come from the store (`wxlink accounts add`),
//! claimed with leases and shared fairly with every other runner on the
//! same store (`wxlink_bot::runner`), and each claimed account's turns run
//! through this process's bridge.
//!
//! Reply URLs reach public addresses only, unless `--allow-private-reply-urls`
//! (or `[bridge] allow_private_urls = true`) lets them reach loopback,
//! private, link-local and cloud metadata addresses too.
//!
//! `/healthz` and `/metrics` are served on loopback with `--listen`.
//! Ctrl-C stops taking messages, lets the turns in flight finish for up to
//! `--grace` seconds, and leaves the rest journaled for the next start (or,
//! on PostgreSQL, for another runner).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wxlink_bot::runner::Runner;
use wxlink_bot::store::postgres::PostgresOptions;
use wxlink_bot::store::{AccountId, PostgresStore, SqliteStore, Store};
use wxlink_bot::{AccountConfig, AccountOptions, EventKind, Host};
use wxlink_bridge::config::{AgentConfig, BridgeConfig};
use wxlink_bridge::runtime::Bridge;
use wxlink_bridge::{
    Agent, AgentRouter, Health, MediaEndpoint, Metrics, Secret, SendEndpoint, serve_ops,
};
use wxlink_client::AccountRecord;
use wxlink_proto::BotToken;

use crate::account;
use crate::cli::{BridgeArgs, GlobalArgs};

/// Runs the bridge until Ctrl-C.
pub async fn run(global: &GlobalArgs, args: &BridgeArgs) -> Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => BridgeConfig::load(path)
            .with_context(|| format!("cannot use the configuration {}", path.display()))?,
        None => BridgeConfig::default(),
    };
    if let (Some(base_url), Some(model)) = (&args.openai_base_url, &args.model) {
        let key_set = std::env::var(&args.api_key_env).is_ok_and(|v| !v.is_empty());
        config.agent = Some(AgentConfig::Openai {
            base_url: base_url.clone(),
            model: model.clone(),
            api_key_env: key_set.then(|| args.api_key_env.clone()),
            system_prompt: args.system_prompt.clone(),
            stream: true,
            images: false,
            history_turns: None,
            history_chars: None,
        });
    }
    let Some(agent_config) = config.agent.clone() else {
        bail!(
            "no agent: give --config FILE with an [agent] table, or --openai-base-url URL --model NAME"
        );
    };
    let env = |name: &str| std::env::var(name).ok();
    let agent = agent_config.build(&env)?;
    let store_spec = args
        .store
        .clone()
        .or(config.store.clone())
        .unwrap_or_else(|| "wxlink-bridge.db".to_owned());
    if is_postgres(&store_spec) {
        return run_scale_out(global, args, &config, agent, &store_spec).await;
    }
    let store = Arc::new(
        SqliteStore::open(&store_spec)
            .with_context(|| format!("cannot open the store {store_spec}"))?,
    );

    // The accounts: those of the configuration, else those the store
    // keeps, else the global account.
    let mut accounts: Vec<(AccountConfig, Option<AgentConfig>)> = Vec::new();
    let kept = if config.accounts.is_empty() {
        stored_accounts(store.as_ref()).await?
    } else {
        Vec::new()
    };
    if !kept.is_empty() {
        for (id, record) in kept {
            // The store's id wins over the file's (`wxlink accounts add --id`).
            let mut builder = super::client_builder(global)?
                .base_url(record.base_url.clone())
                .token(record.token.clone());
            if let Some(cdn) = record.cdn_base_url.clone() {
                builder = builder.cdn_base_url(cdn);
            }
            eprintln!("bridge: account {id} from the store");
            accounts.push((AccountConfig::new(id, builder), None));
        }
    } else if config.accounts.is_empty() {
        let resolved = account::resolve(global)?;
        let id = resolved
            .account_id
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let builder = super::client_builder(global)?
            .base_url(resolved.base_url.clone())
            .cdn_base_url(resolved.cdn_base_url.clone())
            .token(BotToken::new(resolved.token.clone()));
        accounts.push((AccountConfig::new(AccountId::new(id)?, builder), None));
    } else {
        for entry in &config.accounts {
            let record = AccountRecord::load(&entry.file)
                .with_context(|| format!("cannot read the account {}", entry.file.display()))?;
            let account = AccountConfig::from_record(&record)
                .with_context(|| format!("cannot use the account {}", entry.file.display()))?;
            accounts.push((account, entry.agent.clone()));
        }
    }
    let ids: Vec<String> = accounts
        .iter()
        .map(|(c, _)| c.id().as_str().to_owned())
        .collect();
    let mut router = AgentRouter::new(agent);
    for ((_, own), id) in accounts.iter().zip(&ids) {
        if let Some(own) = own {
            router = router.account(id.clone(), own.build(&env)?);
        }
    }
    let agent: Arc<dyn Agent> = Arc::new(router);

    let store: Arc<dyn Store> = store;
    let host = host_builder(global, args, store)?.build();
    let engine = config.engine_options(&ids);
    let inbound_dir = inbound_dir();
    let metrics = Arc::new(Metrics::new());
    let mut options = config.bridge_options(engine, &inbound_dir, args.allow_private_reply_urls);
    if let Some(endpoint) = media_endpoint(&config).await? {
        options = options.media_endpoint(endpoint);
    }
    let bridge = Bridge::with_metrics(host.clone(), agent, options, metrics.clone());
    let attempts = config.bridge.attempts.unwrap_or(3);
    for (account, _) in accounts {
        let id = account.id().as_str().to_owned();
        bridge
            .add_account(
                account,
                AccountOptions::default()
                    .max_attempts(attempts)
                    .wait_for_lease(true),
            )
            .await
            .with_context(|| format!("cannot start account {id}"))?;
        eprintln!("bridge: account {id} started");
    }

    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _endpoints = serve_endpoints(args, &config, &host, &bridge, &metrics, &stopping).await?;
    let logger = log_events(&host, &metrics);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    eprintln!("bridge: stopping; turns in flight get {} s", args.grace);
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    bridge.shutdown(Duration::from_secs(args.grace)).await;
    logger.abort();
    let _ = std::fs::remove_dir_all(&inbound_dir);
    Ok(ExitCode::SUCCESS)
}

/// Runs the bridge as one runner of a scale-out on the PostgreSQL store at
/// `url` until Ctrl-C.
async fn run_scale_out(
    global: &GlobalArgs,
    args: &BridgeArgs,
    config: &BridgeConfig,
    agent: Arc<dyn Agent>,
    url: &str,
) -> Result<ExitCode> {
    if !config.accounts.is_empty() {
        bail!(
            "with a postgres:// store the accounts come from the store (wxlink accounts add); \
             remove the [[account]] tables from the configuration"
        );
    }
    let ttl = Duration::from_millis(args.lease_ttl_ms.unwrap_or(30_000).max(300));
    // A runner frozen inside a transaction must not keep its rows locked
    // for longer than a third of the lease.
    let pg = PostgresOptions::default()
        .pool_size(16)
        .idle_in_transaction_timeout((ttl / 3).max(Duration::from_millis(100)));
    let store = Arc::new(
        PostgresStore::connect_with(url, pg)
            .await
            .context("cannot open the PostgreSQL store")?,
    );
    let dyn_store: Arc<dyn Store> = store.clone();
    let host = host_builder(global, args, dyn_store)?.build();
    let inbound_dir = inbound_dir();
    let metrics = Arc::new(Metrics::new());
    let mut options = config.bridge_options(
        config.engine_options(&[]),
        &inbound_dir,
        args.allow_private_reply_urls,
    );
    if let Some(endpoint) = media_endpoint(config).await? {
        options = options.media_endpoint(endpoint);
    }
    let bridge = Bridge::with_metrics(
        host.clone(),
        Arc::new(AgentRouter::new(agent)),
        options,
        metrics.clone(),
    );
    let options = AccountOptions::default()
        .max_attempts(config.bridge.attempts.unwrap_or(3))
        .lease_ttl(ttl);
    let runner = Runner::new(host.clone(), store, bridge.handler(&options), options)?;
    eprintln!("bridge: runner {} on the PostgreSQL store", host.owner());
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _endpoints = serve_endpoints(args, config, &host, &bridge, &metrics, &stopping).await?;
    let logger = log_events(&host, &metrics);
    let grace = Duration::from_secs(args.grace);
    let engine = bridge.engine().clone();
    let flag = stopping.clone();
    let stop = async move {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!(
            "bridge: stopping; turns in flight get {} s",
            grace.as_secs()
        );
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        // The runner keeps its leases until the turns in flight are done
        // (or the grace is over); then it stops every account and hands
        // them to the other runners.
        let _ = tokio::time::timeout(grace, engine.idle()).await;
    };
    let result = runner.run(stop).await;
    logger.abort();
    let _ = std::fs::remove_dir_all(&inbound_dir);
    result.context("the runner stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

/// The media endpoint of `[server] media_endpoint`, serving inbound media
/// at loopback URLs, when configured.
async fn media_endpoint(config: &BridgeConfig) -> Result<Option<Arc<MediaEndpoint>>> {
    let Some(addr) = config.server.media_endpoint else {
        return Ok(None);
    };
    let var = config
        .server
        .media_token_env
        .clone()
        .unwrap_or_else(|| "WXLINK_BRIDGE_MEDIA_TOKEN".to_owned());
    let token = Secret::from_env(&var)?;
    let endpoint = MediaEndpoint::serve(addr, token).await?;
    eprintln!(
        "bridge: inbound media on http://{}/media/",
        endpoint.local_addr()
    );
    Ok(Some(Arc::new(endpoint)))
}

/// Whether a store argument names a PostgreSQL store.
fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// Where this process downloads inbound media.
fn inbound_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wxlink-bridge-{}", std::process::id()))
}

/// The host over `store`, with the transport the global flags ask for and
/// the runner name of `--owner`.
fn host_builder(
    global: &GlobalArgs,
    args: &BridgeArgs,
    store: Arc<dyn Store>,
) -> Result<wxlink_bot::HostBuilder> {
    let mut builder = Host::builder_arc(store);
    if let Some(transport) = super::transport(global)? {
        builder = builder.transport(transport);
    }
    if let Some(owner) = &args.owner {
        builder = builder.owner(owner.clone());
    }
    Ok(builder)
}

/// The accounts whose account files `store` keeps; none when it keeps no
/// account records.
async fn stored_accounts(store: &dyn Store) -> Result<Vec<(AccountId, AccountRecord)>> {
    let summaries = store
        .accounts()
        .await
        .context("cannot list the store's accounts")?;
    let mut out = Vec::new();
    for summary in summaries {
        let credentials = match store.credentials(&summary.account).await {
            Ok(Some(credentials)) => credentials,
            Ok(None) => continue,
            // A store without account records refuses the call as an
            // invalid argument; any other failure is the store's and ends
            // the start-up.
            Err(err) if err.is_invalid() => {
                tracing::debug!(error = %err, "the store keeps no account records");
                return Ok(Vec::new());
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot read the account file of {}", summary.account)
                });
            }
        };
        let record: AccountRecord = serde_json::from_str(credentials.expose_secret())
            .with_context(|| {
                format!(
                    "the account file of {} in the store is not valid",
                    summary.account
                )
            })?;
        out.push((summary.account, record));
    }
    Ok(out)
}

/// The loopback endpoints the configuration and flags ask for: `/healthz`
/// and `/metrics`, and the send endpoint for webhooks answering later.
/// They are served while the returned guards live.
async fn serve_endpoints(
    args: &BridgeArgs,
    config: &BridgeConfig,
    host: &Host,
    bridge: &Bridge,
    metrics: &Arc<Metrics>,
    stopping: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(Option<impl Sized>, Option<impl Sized>)> {
    let listen = args.listen.or(config.server.listen);
    let ops = match listen {
        Some(addr) => {
            let host = host.clone();
            let stopping = stopping.clone();
            let metrics_for_health = metrics.clone();
            let server = serve_ops(
                addr,
                metrics.clone(),
                Arc::new(move || health(&host, &stopping, &metrics_for_health)),
            )
            .await?;
            eprintln!(
                "bridge: /healthz and /metrics on http://{}",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };
    let send = match config.server.send_endpoint {
        Some(addr) => {
            let var = config
                .server
                .send_token_env
                .clone()
                .unwrap_or_else(|| "WXLINK_BRIDGE_SEND_TOKEN".to_owned());
            let token = Secret::from_env(&var)?;
            let endpoint = SendEndpoint::serve(addr, token, bridge.reply_sink()).await?;
            eprintln!("bridge: send endpoint on {}", endpoint.url());
            Some(endpoint)
        }
        None => None,
    };
    Ok((ops, send))
}

/// Logs the host's events and keeps the throttle gauge current, until the
/// returned task is aborted.
fn log_events(host: &Host, metrics: &Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    let mut events = host.events();
    let (event_host, event_metrics) = (host.clone(), metrics.clone());
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if matches!(
                event.kind,
                EventKind::Throttled { .. } | EventKind::ThrottleLifted
            ) {
                let throttled = event_host
                    .account_ids()
                    .iter()
                    .filter_map(|id| event_host.account(id))
                    .filter(|handle| handle.throttled().is_some())
                    .count();
                event_metrics.set_throttled_accounts(i64::try_from(throttled).unwrap_or(i64::MAX));
            }
            match &event.kind {
                EventKind::SessionExpired => eprintln!(
                    "bridge: account {}: session expired; log in again (wxlink login)",
                    event.account
                ),
                EventKind::DeadLettered {
                    message_id, error, ..
                } => eprintln!(
                    "bridge: account {}: message {message_id:?} dead-lettered: {error}",
                    event.account
                ),
                EventKind::Started { epoch } => {
                    eprintln!("bridge: account {} running (epoch {epoch})", event.account);
                }
                EventKind::LeaseLost => eprintln!("bridge: account {} lost", event.account),
                EventKind::Stopped => eprintln!("bridge: account {} stopped", event.account),
                other => tracing::info!(account = %event.account, event = ?other, "bridge event"),
            }
        }
    })
}

/// The health report from the host's accounts.
fn health(host: &Host, stopping: &std::sync::atomic::AtomicBool, metrics: &Metrics) -> Health {
    let mut report = Health::default();
    let ids = host.account_ids();
    report.accounts = ids.len();
    for id in &ids {
        if let Some(handle) = host.account(id) {
            if handle.is_session_expired() {
                report.session_expired += 1;
            }
            if handle.throttled().is_some() {
                report.throttled += 1;
            }
        }
    }
    metrics.set_throttled_accounts(i64::try_from(report.throttled).unwrap_or(i64::MAX));
    report.stopping = stopping.load(std::sync::atomic::Ordering::Relaxed);
    report
}
