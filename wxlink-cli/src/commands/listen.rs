//! `wxlink listen`: long-poll and print each inbound message as JSON.
//!
//! The loop follows the official one (docs/protocol.md, "Long polling"):
//! `notifystart` first, then polls; a failed poll waits 2 s, or 30 s after
//! three failures in a row; a session expiry (`-14`) stops the command, because
//! only a new login can fix it. Each batch is printed (and its media
//! downloaded) before the cursor is saved, so a crash in between repeats output
//! rather than losing it on our side.
//!
//! With `--once` the command waits for one batch of inbound messages: empty
//! polls and transient failures (a dropped connection, a timeout, a 5xx) are
//! ridden out with the same backoff, and only a session expiry or a
//! permanent error (a refused request, a bad URL) fails it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use wxlink_client::{AccountRecord, WxLinkClient};
use wxlink_proto::{MessageItemType, MessageType, WeixinMessage};

use wxlink_bot::store::{AccountId, SqliteStore, Store};
use wxlink_bot::{AccountConfig, EventKind, Host, Incoming};
use wxlink_proto::BotToken;

use crate::account::Account;
use crate::cli::{GlobalArgs, ListenArgs};
use crate::cursor;

/// Runs the listener until Ctrl-C (or after one poll with `--once`).
pub async fn run(client: &WxLinkClient, args: &ListenArgs) -> Result<ExitCode> {
    let mut cursor = match &args.cursor_file {
        Some(path) => cursor::load(path)
            .with_context(|| format!("cannot read the cursor file {}", path.display()))?,
        None => String::new(),
    };
    if let Some(dir) = &args.download_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the download directory {}", dir.display()))?;
    }
    // Presence calls are best effort (docs/protocol.md, "Presence").
    if let Err(e) = client.notify_start().await {
        tracing::warn!(error = %e, "notifystart failed; polling anyway");
    }

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut failures = 0u32;
    let result = loop {
        let polled = tokio::select! {
            r = client.poll(cursor.clone()).send() => r,
            _ = &mut ctrl_c => break Ok(()),
        };
        let batch = match polled {
            Ok(batch) => batch,
            Err(e) if e.is_session_expired() || (args.once && is_permanent(&e)) => {
                break Err(anyhow::Error::new(e).context("polling for messages failed"));
            }
            Err(e) => {
                failures += 1;
                let pause = if failures >= wxlink_proto::consts::POLL_FAILURES_BEFORE_LONG_BACKOFF {
                    failures = 0;
                    Duration::from_millis(wxlink_proto::consts::POLL_LONG_BACKOFF_MS)
                } else {
                    Duration::from_millis(wxlink_proto::consts::POLL_BACKOFF_MS)
                };
                tracing::warn!(error = %e, retry_in = ?pause, "poll failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    _ = &mut ctrl_c => break Ok(()),
                }
            }
        };
        failures = 0;
        let mut printed = 0usize;
        for msg in batch.messages() {
            if msg.message_type == Some(MessageType::Bot) {
                // The bot's own messages echoed back are not inbound
                // (docs/protocol.md, "Inbound messages").
                continue;
            }
            printed += 1;
            let downloaded = match &args.download_dir {
                Some(dir) => download_media(client, msg, dir).await,
                None => Vec::new(),
            };
            print_line(msg, &downloaded, None)?;
        }
        // An unchanged cursor (an empty poll) needs no write.
        if let Some(path) = args
            .cursor_file
            .as_ref()
            .filter(|path| batch.next_cursor != cursor || !path.exists())
        {
            cursor::save(path, &batch.next_cursor)
                .with_context(|| format!("cannot save the cursor file {}", path.display()))?;
        }
        cursor = batch.next_cursor;
        if args.once && printed > 0 {
            break Ok(());
        }
    };
    if let Err(e) = client.notify_stop().await {
        tracing::debug!(error = %e, "notifystop failed");
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Runs the listener on the bot runtime with a SQLite store until Ctrl-C:
/// each poll is journaled with its cursor before anything is printed,
/// repeats are dropped by id, and a message is acknowledged only after its
/// line was written, so a crash replays what was not printed yet.
///
/// `account` is the account the flags, environment or account file name.
/// When none was named (`no_account` holds why) the store's own accounts
/// run instead, as `wxlink accounts add` keeps them, each line carrying an
/// `account` field as with a PostgreSQL store; a store with no account
/// files fails with `no_account`'s error.
pub async fn run_on_store(
    account: Result<Account>,
    global: &GlobalArgs,
    store: &Path,
    args: &ListenArgs,
) -> Result<ExitCode> {
    if let Some(dir) = &args.download_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the download directory {}", dir.display()))?;
    }
    let path = store;
    let store = SqliteStore::open(path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let named = global.account.is_some() || global.token.is_some();
    let (accounts, from_store) = match account {
        Ok(account) => {
            let id = AccountId::new(
                account
                    .account_id
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            )?;
            let builder = WxLinkClient::builder()
                .base_url(account.base_url.clone())
                .cdn_base_url(account.cdn_base_url.clone())
                .token(BotToken::new(account.token.clone()));
            (vec![(id, builder)], false)
        }
        Err(no_account) if !named => {
            let stored = stored_accounts(&store).await?;
            if stored.is_empty() {
                return Err(no_account.context(format!(
                    "the store {} keeps no account files either (add one with `wxlink accounts add`)",
                    path.display()
                )));
            }
            (stored, true)
        }
        Err(e) => return Err(e),
    };
    let mut host = Host::builder(store).concurrency(accounts.len().clamp(1, 64));
    if let Some(transport) = super::transport(global)? {
        host = host.transport(transport);
    }
    let host = host.build();
    let mut events = host.events();
    for (id, builder) in accounts {
        let builder = builder.allow_insecure_http(global.allow_insecure_http);
        let download_dir = args.download_dir.clone();
        let tag = from_store.then(|| id.to_string());
        host.add_account(
            AccountConfig::new(id.clone(), builder),
            move |incoming: Incoming| {
                let dir = download_dir.clone();
                let tag = tag.clone();
                async move {
                    let downloaded = match &dir {
                        Some(dir) => {
                            download_media(&incoming.client(), incoming.message(), dir).await
                        }
                        None => Vec::new(),
                    };
                    // A failed write (a closed pipe) keeps the message journaled.
                    print_line(incoming.message(), &downloaded, tag.as_deref())
                        .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
                }
            },
        )
        .await
        .with_context(|| format!("cannot start listening for {id} on the store"))?;
    }
    let code = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break ExitCode::SUCCESS,
            event = events.recv() => match event {
                Ok(event) if event.kind == EventKind::SessionExpired && from_store => {
                    // The other accounts keep running, as with a PostgreSQL store.
                    eprintln!(
                        "warning: the session of {} expired (-14); add a new account file with `wxlink accounts add`",
                        event.account
                    );
                }
                Ok(event) if event.kind == EventKind::SessionExpired => {
                    eprintln!("error: the session expired (-14); log in again with `wxlink login`");
                    break ExitCode::from(2);
                }
                Ok(event) => tracing::debug!(kind = ?event.kind, "runtime event"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break ExitCode::FAILURE,
            },
        }
    };
    host.shutdown().await;
    Ok(code)
}

/// The accounts whose account files `store` keeps, ready to start.
async fn stored_accounts(
    store: &SqliteStore,
) -> Result<Vec<(AccountId, wxlink_client::ClientBuilder)>> {
    let mut list = Vec::new();
    for summary in store
        .accounts()
        .await
        .context("cannot list the store's accounts")?
    {
        let id = summary.account;
        let Some(file) = store
            .credentials(&id)
            .await
            .with_context(|| format!("cannot read the account file of {id}"))?
        else {
            continue;
        };
        let record: AccountRecord = serde_json::from_str(file.expose_secret()).map_err(|e| {
            anyhow::anyhow!("the account file of {id} in the store is not valid: {e}")
        })?;
        let mut builder = WxLinkClient::builder()
            .base_url(record.base_url.clone())
            .token(record.token.clone());
        if let Some(cdn) = record.cdn_base_url.clone() {
            builder = builder.cdn_base_url(cdn);
        }
        list.push((id, builder));
    }
    Ok(list)
}

/// Whether a failed poll cannot succeed by waiting: the session expired,
/// the server refused the request itself (a 4xx other than 408 and 429), or
/// the request could not be built. Timeouts, connection failures, 5xx
/// answers, business errors and undecodable bodies are transient.
fn is_permanent(e: &wxlink_client::Error) -> bool {
    if e.is_session_expired() || e.is_insecure_url() {
        return true;
    }
    let Some(t) = e.transport() else {
        // Errors of the facade itself (a missing token, a bad argument).
        return true;
    };
    if let Some(status) = t.status() {
        return status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429;
    }
    t.is_invalid_url() || t.is_invalid_request()
}

/// Prints one message as a JSON line, with a `downloaded` field listing the
/// files its media was saved to and, when given, an `account` field.
fn print_line(msg: &WeixinMessage, downloaded: &[PathBuf], account: Option<&str>) -> Result<()> {
    let mut value = serde_json::to_value(msg).context("cannot encode a message as JSON")?;
    if let (Some(obj), Some(account)) = (value.as_object_mut(), account) {
        obj.insert(
            "account".to_owned(),
            serde_json::Value::String(account.to_owned()),
        );
    }
    if let Some(obj) = value.as_object_mut().filter(|_| !downloaded.is_empty()) {
        obj.insert(
            "downloaded".to_owned(),
            downloaded
                .iter()
                .map(|p| serde_json::Value::String(p.display().to_string()))
                .collect(),
        );
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Downloads and decrypts the media items of `msg` into `dir`; failures are
/// logged and skipped so that one bad item does not stop the listener.
async fn download_media(client: &WxLinkClient, msg: &WeixinMessage, dir: &Path) -> Vec<PathBuf> {
    let mut saved = Vec::new();
    let id = msg.message_id.unwrap_or_default();
    for (i, item) in msg.item_list.iter().enumerate() {
        let (kind, name) = match item.item_type {
            Some(MessageItemType::Image) => ("image", None),
            Some(MessageItemType::Video) => ("video", None),
            Some(MessageItemType::Voice) => ("voice", None),
            Some(MessageItemType::File) => (
                "file",
                item.file_item.as_ref().and_then(|f| f.file_name.clone()),
            ),
            _ => continue,
        };
        // A file keeps its own (sanitised) name after the message id; other
        // media are named by kind. The extension follows the content.
        let stem = match name.as_deref().map(safe_file_name) {
            Some(n) if !n.is_empty() => format!("{id}-{i}-{n}"),
            _ => format!("{id}-{i}-{kind}"),
        };
        let path = dir.join(&stem);
        match client.download_media_to(item, &path).await {
            Ok(file) if name.is_none() => {
                // Name kind-only media after the type found in the plaintext.
                let ext = wxlink_media::kind::extension_for_mime(&file.mime);
                match ext.map(|e| dir.join(format!("{stem}.{e}"))) {
                    Some(typed) if std::fs::rename(&path, &typed).is_ok() => saved.push(typed),
                    _ => saved.push(path),
                }
            }
            Ok(_) => saved.push(path),
            Err(e) => tracing::warn!(
                "cannot download the {kind} of message {id}: {:#}",
                anyhow::Error::new(e)
            ),
        }
    }
    saved
}

/// Keeps a sender-chosen file name from escaping the download directory:
/// path separators and control characters become `_`, and leading dots go.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    cleaned.trim_start_matches('.').chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_the_directory() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("report 2.pdf"), "report 2.pdf");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("a\nb"), "a_b");
    }
}
