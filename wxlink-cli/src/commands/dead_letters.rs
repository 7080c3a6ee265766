//! `wxlink dead-letters list|requeue --store FILE`: the messages a bot
//! runtime gave up on.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wxlink_bot::store::{AccountId, JournalKey, SqliteStore, Store};
use wxlink_proto::WeixinMessage;

use crate::cli::{DeadLettersAction, DeadLettersArgs};

/// Runs the subcommand.
pub async fn run(args: &DeadLettersArgs) -> Result<ExitCode> {
    match &args.action {
        DeadLettersAction::List {
            store,
            account_id,
            limit,
        } => {
            let store = open(store)?;
            let accounts = match account_id {
                Some(id) => vec![AccountId::new(id.clone())?],
                None => store
                    .accounts()
                    .await?
                    .into_iter()
                    .map(|a| a.account)
                    .collect(),
            };
            let mut out = std::io::stdout().lock();
            for account in accounts {
                for dead in store.dead_letters(&account, *limit).await? {
                    // The JSON holds the context token; only the text is shown.
                    let text = serde_json::from_str::<WeixinMessage>(&dead.json)
                        .ok()
                        .and_then(|m| first_text(&m));
                    let line = serde_json::json!({
                        "account": account.as_str(),
                        "key": dead.key.0,
                        "message_id": dead.message_id.map(|id| id.to_string()),
                        "sender": dead.sender,
                        "attempts": dead.attempts,
                        "last_error": dead.last_error,
                        "received_at_ms": dead.received_at_ms,
                        "failed_at_ms": dead.failed_at_ms,
                        "text": text,
                    });
                    serde_json::to_writer(&mut out, &line)?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        DeadLettersAction::Requeue {
            store,
            account_id,
            key,
        } => {
            let store = open(store)?;
            let account = AccountId::new(account_id.clone())?;
            if !store.requeue(&account, JournalKey(*key)).await? {
                bail!(
                    "account {account} has no dead letter with key {key}; `wxlink dead-letters list` shows them"
                );
            }
            eprintln!("re-queued {key} of {account}; it is handled on the account's next start");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Opens an existing store (never creates an empty one by mistake).
fn open(path: &std::path::Path) -> Result<SqliteStore> {
    if !path.exists() {
        bail!("the store {} does not exist", path.display());
    }
    SqliteStore::open(path).with_context(|| format!("cannot open the store {}", path.display()))
}

/// The first text item's text.
fn first_text(message: &WeixinMessage) -> Option<String> {
    message
        .item_list
        .iter()
        .find_map(|i| i.text_item.as_ref()?.text.clone())
}
