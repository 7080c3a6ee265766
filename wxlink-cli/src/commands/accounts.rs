//! `wxlink accounts add|list|remove --store URL` and `wxlink listen --store
//! postgres://…`: the accounts a store keeps for its runners.
//!
//! The store URL decides the backend: `postgres://` or `postgresql://` is
//! a PostgreSQL store shared by several runner processes; anything else
//! (optionally `sqlite:` first) is the path of a SQLite file. Both keep
//! the account files, for `wxlink listen --store` (and `wxlink bridge
//! --store`) to start the accounts from.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wxlink_bot::runner::Runner;
use wxlink_bot::store::postgres::PostgresOptions;
use wxlink_bot::store::{AccountCredentials, AccountId, PostgresStore, SqliteStore, Store};
use wxlink_bot::{AccountOptions, EventKind, Host, Incoming};
use wxlink_client::AccountRecord;

use crate::cli::{AccountsAction, AccountsArgs, GlobalArgs, ListenArgs};

/// Whether a store argument names a PostgreSQL store.
pub fn is_postgres(store: &Path) -> bool {
    store
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Opens the store a URL names.
async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if is_postgres(Path::new(url)) {
        let store = PostgresStore::connect(url)
            .await
            .context("cannot open the PostgreSQL store")?;
        return Ok(Arc::new(store));
    }
    let path = url.strip_prefix("sqlite:").unwrap_or(url);
    let store = SqliteStore::open(path).with_context(|| format!("cannot open the store {path}"))?;
    Ok(Arc::new(store))
}

/// Runs `wxlink accounts`.
pub async fn run(args: &AccountsArgs) -> Result<ExitCode> {
    match &args.action {
        AccountsAction::Add {
            store,
            account_id,
            files,
        } => {
            if account_id.is_some() && files.len() > 1 {
                bail!("--id names one account; give one file with it");
            }
            // Every file is read before the store is touched, so that a bad
            // one adds nothing.
            let mut records = Vec::with_capacity(files.len());
            for file in files {
                let record = AccountRecord::load(file)
                    .with_context(|| format!("cannot read the account file {}", file.display()))?;
                let id = account_id
                    .clone()
                    .or_else(|| record.account_id.clone())
                    .with_context(|| {
                        format!(
                            "the account file {} has no account_id; give one with --id",
                            file.display()
                        )
                    })?;
                let id = AccountId::new(id)?;
                let json = serde_json::to_string(&record).context("cannot encode the account")?;
                records.push((id, json));
            }
            let store = open(store).await?;
            for (id, json) in records {
                store
                    .put_credentials(&id, &AccountCredentials::new(json))
                    .await
                    .with_context(|| format!("cannot add account {id}"))?;
                println!("added {id}");
            }
        }
        AccountsAction::List { store } => {
            let store = open(store).await?;
            let now = now_ms();
            for a in store.accounts().await.context("cannot list the accounts")? {
                let live = a.owner.is_some() && a.expires_at_ms > now;
                let line = serde_json::json!({
                    "account": a.account.as_str(),
                    "lease_holder": a.owner.filter(|_| live),
                    "epoch": a.epoch,
                    "lease_expires_at_ms": Some(a.expires_at_ms).filter(|_| live),
                    "pending": a.pending,
                    "dead_letters": a.dead_letters,
                });
                println!("{line}");
            }
        }
        AccountsAction::Remove { store, account_id } => {
            let id = AccountId::new(account_id.clone())?;
            let store = open(store).await?;
            let removed = store
                .remove_account(&id, now_ms())
                .await
                .with_context(|| format!("cannot remove account {id}"))?;
            if !removed {
                bail!("there is no account {id} in the store");
            }
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `wxlink listen --store postgres://…`: one runner of the
/// scale-out, printing each message of its share of the accounts as one
/// JSON line (acknowledged once printed) until Ctrl-C.
pub async fn listen(global: &GlobalArgs, url: &Path, args: &ListenArgs) -> Result<ExitCode> {
    let url = url.to_str().context("the store URL is not valid UTF-8")?;
    let ttl = Duration::from_millis(args.lease_ttl_ms.unwrap_or(30_000));
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
    let mut builder = Host::builder_arc(dyn_store).concurrency(64);
    if let Some(transport) = super::transport(global)? {
        builder = builder.transport(transport);
    }
    if let Some(owner) = &args.owner {
        builder = builder.owner(owner.clone());
    }
    let host = builder.build();
    let options = AccountOptions::default().lease_ttl(ttl);
    let handler = Arc::new(|incoming: Incoming| async move {
        let mut value = serde_json::to_value(incoming.message())?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "account".to_owned(),
                serde_json::Value::String(incoming.account().to_string()),
            );
        }
        let line = format!("{value}\n");
        // A failed write (a closed pipe) keeps the message journaled.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    });
    let runner = Runner::new(host.clone(), store, handler, options)?;
    let mut events = host.events();
    let expired = async move {
        loop {
            match events.recv().await {
                Ok(event) => match event.kind {
                    EventKind::SessionExpired => {
                        eprintln!(
                            "warning: the session of {} expired (-14); add a new account file with `wxlink accounts add`",
                            event.account
                        );
                    }
                    EventKind::Started { epoch } => {
                        eprintln!("started {} {epoch}", event.account);
                    }
                    EventKind::LeaseLost => eprintln!("lost {}", event.account),
                    EventKind::Stopped => eprintln!("stopped {}", event.account),
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    };
    let printer = tokio::spawn(expired);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = runner.run(stop).await;
    printer.abort();
    result.context("the runner stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
