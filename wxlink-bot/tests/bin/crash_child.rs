//! A small runner process for wxlink-bot's process tests (SIGKILL crash
//! and two-runner lease tests); not meant for users.
//!
//! Reads one account per stdin line, `ID BASE_URL TOKEN` (tokens never go
//! on the command line, which other users can read), runs them all on one
//! host over the SQLite store named by the first argument, and answers
//! every message with `echo: <message id>`. It prints `started ID EPOCH`
//! when it holds an account's lease, and `leased ID` and exits 3 when
//! `--fail-if-leased` is given and another runner holds one. It runs until
//! killed or until stdin's sender closes and Ctrl-C arrives.

use std::io::{BufRead, Write};
use std::time::Duration;

use wxlink_bot::backoff::BackoffPolicy;
use wxlink_bot::store::{AccountId, SqliteStore};
use wxlink_bot::{AccountConfig, AccountOptions, EventKind, Host, Incoming};
use wxlink_client::WxLinkClient;
use wxlink_proto::BotToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let store = args
        .next()
        .ok_or("usage: crash_child STORE [--fail-if-leased]")?;
    let fail_if_leased = args.any(|a| a == "--fail-if-leased");
    let host = Host::builder(SqliteStore::open(&store)?).build();
    let mut events = host.events();
    let options = AccountOptions::default()
        .pace(Duration::from_millis(10))
        .lease_ttl(Duration::from_millis(1000))
        .retry_delay(Duration::from_millis(50))
        .wait_for_lease(!fail_if_leased)
        .notify(false)
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ));
    let mut lines = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            break;
        }
        lines.push(line);
    }
    for line in lines {
        let mut parts = line.split_whitespace();
        let (Some(id), Some(url), Some(token)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "bad account line: {}",
                line.split_whitespace().next().unwrap_or("")
            )
            .into());
        };
        let config = AccountConfig::new(
            AccountId::new(id)?,
            WxLinkClient::builder()
                .base_url(url)
                .token(BotToken::new(token)),
        )
        .options(options.clone());
        let added = host
            .add_account(config, |incoming: Incoming| async move {
                let id = incoming.message_id().unwrap_or_default();
                incoming.reply(&format!("echo: {id}")).await
            })
            .await;
        match added {
            Ok(_) => {}
            Err(err) if err.is_leased() => {
                println!("leased {id}");
                std::process::exit(3);
            }
            Err(err) => return Err(err.into()),
        }
    }
    let mut out = std::io::stdout();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => {
                let Ok(event) = event else { continue };
                if let EventKind::Started { epoch } = event.kind {
                    writeln!(out, "started {} {epoch}", event.account)?;
                    out.flush()?;
                }
            }
        }
    }
    host.shutdown().await;
    Ok(())
}
