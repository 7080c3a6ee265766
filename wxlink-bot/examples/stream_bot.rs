//! An echo bot on the runtime's host, with a typing indicator, a SQLite
//! state file and a clean Ctrl-C.
//!
//! ```text
//! # against a simulator started here, exiting after 3 echoes:
//! cargo run -p wxlink-bot --example stream_bot -- bot.db --sim --max 3
//! # against any iLink server (a running `wxlink sim`, for example):
//! cargo run -p wxlink-bot --example stream_bot -- bot.db --base-url http://127.0.0.1:8080 --token TOKEN
//! # with the account file a QR login saved:
//! cargo run -p wxlink-bot --example stream_bot -- bot.db --account account.json
//! ```
//!
//! Stop it with Ctrl-C: the long poll is aborted, `notifystop` is sent, the
//! lease is released and every message that was not answered yet stays in
//! `bot.db`, to be answered first on the next start.

use std::error::Error;
use std::time::Duration;

use wxlink_bot::store::{AccountId, SqliteStore};
use wxlink_bot::{AccountConfig, EventKind, Host, Incoming};
use wxlink_client::{AccountRecord, WxLinkClient};
use wxlink_proto::BotToken;

/// Where the bot connects.
enum Target {
    /// A simulator started by this example.
    Sim,
    /// A server by URL and token.
    Server { base_url: String, token: String },
    /// A saved account file.
    Account(String),
}

/// The command line.
struct Args {
    store: String,
    target: Target,
    max: Option<usize>,
}

const USAGE: &str = "usage: stream_bot <store.db> (--sim | --base-url URL --token TOKEN | --account FILE) [--max N]";

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let store = args.next().ok_or(USAGE)?;
    let (mut sim, mut base_url, mut token, mut account, mut max) = (false, None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--sim" => sim = true,
            "--base-url" => base_url = Some(value()?),
            "--token" => token = Some(value()?),
            "--account" => account = Some(value()?),
            "--max" => max = Some(value()?.parse().map_err(|_| "--max needs a number")?),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let target = match (sim, base_url, token, account) {
        (true, None, None, None) => Target::Sim,
        (false, Some(base_url), Some(token), None) => Target::Server { base_url, token },
        (false, None, None, Some(file)) => Target::Account(file),
        _ => return Err(USAGE.to_owned()),
    };
    Ok(Args { store, target, max })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = parse_args()?;

    // Keep the simulator alive for the whole run when there is one.
    let mut simulator = None;
    let config = match &args.target {
        Target::Sim => {
            let sim = wxlink_sim::Simulator::builder()
                .hold(Duration::from_secs(2))
                .start()
                .await?;
            let builder = WxLinkClient::builder()
                .base_url(sim.base_url())
                .token(sim.token());
            let config = AccountConfig::new(AccountId::new(sim.bot_id())?, builder);
            simulator = Some(sim);
            config
        }
        Target::Server { base_url, token } => AccountConfig::new(
            AccountId::new("bot")?,
            WxLinkClient::builder()
                .base_url(base_url.clone())
                .token(BotToken::new(token.clone())),
        ),
        Target::Account(file) => AccountConfig::from_record(&AccountRecord::load(file)?)?,
    };
    if let Some(sim) = &simulator {
        // Somebody to talk to: a user who writes every half second.
        let sim = sim.clone();
        tokio::spawn(async move {
            for n in 1.. {
                // Random ids keep a store reused across runs from taking
                // them for messages it has already seen.
                let message =
                    wxlink_sim::InboundMessage::text(sim.user_id(), format!("hello #{n}"))
                        .message_id(rand::random());
                sim.inject_message(message);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    let host = Host::builder(SqliteStore::open(&args.store)?).build();
    let mut events = host.events();
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    host.add_account(config, move |incoming: Incoming| {
        let answered = answered_tx.clone();
        async move {
            let text = incoming.text().unwrap_or("(no text)").to_owned();
            tracing::info!(from = incoming.sender(), replay = incoming.is_replay(), %text, "message");
            // "Think" for a moment with the typing indicator on.
            let typing = incoming.typing();
            tokio::time::sleep(Duration::from_millis(300)).await;
            incoming.reply(&format!("echo: {text}")).await?;
            typing.finish().await;
            // Returning Ok acknowledges the message: a crash before this
            // line means it is answered again after a restart, without the
            // echo the server already accepted.
            let _ = answered.send(());
            Ok::<(), wxlink_bot::Error>(())
        }
    })
    .await?;

    let mut answered = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("Ctrl-C: stopping");
                break;
            }
            Ok(event) = events.recv() => {
                if event.kind == EventKind::SessionExpired {
                    eprintln!("the session expired: log in again (wxlink login)");
                    host.shutdown().await;
                    std::process::exit(2);
                }
                tracing::info!(account = %event.account, kind = ?event.kind, "event");
            }
            Some(()) = answered_rx.recv() => {
                answered += 1;
                if args.max.is_some_and(|max| answered >= max) {
                    break;
                }
            }
        }
    }
    host.shutdown().await;
    tracing::info!(answered, "bye");
    Ok(())
}
