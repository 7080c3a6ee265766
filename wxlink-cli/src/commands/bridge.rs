//! `wxlink bridge`: bot accounts answered by an AI agent, on the runtime.
//!
//! The agent and the accounts come from `--config bridge.toml` (see
//! `wxlink_bridge::config`), or, for a quick start, from
//! `--openai-base-url URL --model NAME` and the global account options.
//! Secrets come from environment variables only. The store is a SQLite
//! file (`--store`, default `wxlink-bridge.db`). `/healthz` and `/metrics`
//! are served on loopback with `--listen`. Ctrl-C stops taking messages,
//! lets the turns in flight finish for up to `--grace` seconds, and leaves
//! the rest journaled for the next start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use wxlink_bot::store::{AccountId, SqliteStore, Store};
use wxlink_bot::{AccountConfig, AccountOptions, EventKind, Host};
use wxlink_bridge::config::{AgentConfig, BridgeConfig};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{Agent, AgentRouter, Health, Metrics, Secret, SendEndpoint, serve_ops};
use wxlink_client::AccountRecord;
use wxlink_proto::BotToken;

use crate::account;
use crate::cli::GlobalArgs;

/// Options of `wxlink bridge`.
#[derive(Debug, Args, Clone)]
pub struct BridgeArgs {
    /// The configuration file (TOML): agent, accounts, turn settings, endpoints.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Quick start: an OpenAI-compatible endpoint's base URL (e.g. http://127.0.0.1:11434/v1).
    #[arg(long, value_name = "URL", requires = "model")]
    pub openai_base_url: Option<String>,

    /// Quick start: the model name.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Quick start: the environment variable holding the API key (none is sent when unset).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,

    /// Quick start: the system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// The store: a SQLite file (created with mode 0600).
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<String>,

    /// Serve /healthz and /metrics on this loopback address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// This runner's name in the store's leases. A bridge restarted under the same name takes its
    /// accounts back at once; under another name it waits until the old lease expires (30 s).
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,

    /// Seconds to let turns in flight finish on Ctrl-C.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
}

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

    // The accounts: those of the configuration, or the global account.
    let mut accounts: Vec<(AccountConfig, Option<AgentConfig>)> = Vec::new();
    if config.accounts.is_empty() {
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

    let store_spec = args
        .store
        .clone()
        .or(config.store.clone())
        .unwrap_or_else(|| "wxlink-bridge.db".to_owned());
    let store: Arc<dyn Store> =
        if store_spec.starts_with("postgres://") || store_spec.starts_with("postgresql://") {
            bail!("a postgres:// store needs a wxlink built with PostgreSQL support");
        } else {
            Arc::new(
                SqliteStore::open(&store_spec)
                    .with_context(|| format!("cannot open the store {store_spec}"))?,
            )
        };
    let mut builder = Host::builder_arc(store);
    if let Some(owner) = &args.owner {
        builder = builder.owner(owner.clone());
    }
    let host = builder.build();
    let engine = config.engine_options(&ids);
    let inbound_dir = std::env::temp_dir().join(format!("wxlink-bridge-{}", std::process::id()));
    let metrics = Arc::new(Metrics::new());
    let bridge = Bridge::with_metrics(
        host.clone(),
        agent,
        BridgeOptions::new(engine, &inbound_dir),
        metrics.clone(),
    );
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

    // Operations endpoints.
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listen = args.listen.or(config.server.listen);
    let _ops = match listen {
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
    let _send = match config.server.send_endpoint {
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

    // Log the host's events until Ctrl-C.
    let mut events = host.events();
    let (event_host, event_metrics) = (host.clone(), metrics.clone());
    let logger = tokio::spawn(async move {
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
                other => tracing::info!(account = %event.account, event = ?other, "bridge event"),
            }
        }
    });
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
