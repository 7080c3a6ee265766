//! `wxlink login`: QR login drawn in the terminal, account saved as JSON.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use wxlink_client::{AccountRecord, LoginCallbacks, LoginOptions, LoginOutcome, LoginState};
use wxlink_proto::BotToken;

use crate::account::{self, DEFAULT_ACCOUNT_FILE};
use crate::cli::{GlobalArgs, LoginArgs};
use crate::ui;

/// Runs the login and writes the account file.
pub async fn run(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitCode> {
    let out = args
        .out
        .clone()
        .or_else(|| global.account.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ACCOUNT_FILE));
    let base_url = global
        .base_url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| wxlink_proto::consts::DEFAULT_BASE_URL.to_owned());

    // A bot already saved at the destination is offered to the server, which
    // can then answer "already connected" instead of binding a second bot.
    let local_tokens: Vec<BotToken> = account::read_file(&out)
        .ok()
        .and_then(|f| f.token)
        .map(BotToken::new)
        .into_iter()
        .collect();

    let options = LoginOptions::new()
        .client(super::client_builder(global)?)
        .base_url(base_url.clone())
        .local_tokens(local_tokens)
        .deadline(Duration::from_secs(args.timeout.max(1)));
    eprintln!("Logging in at {base_url}.");
    let outcome = wxlink_client::login_with_qr(options, TerminalLogin)
        .await
        .context("login failed")?;
    match outcome {
        LoginOutcome::Confirmed(result) => {
            let mut record: AccountRecord = result.to_account();
            if let Some(cdn) = global.cdn_base_url.clone().filter(|c| !c.trim().is_empty()) {
                record = record.with_cdn_base_url(cdn);
            }
            record
                .save(&out)
                .with_context(|| format!("cannot write the account file {}", out.display()))?;
            println!(
                "Logged in as {} (user {}). Account saved to {} (mode 0600).",
                record.account_id.as_deref().unwrap_or("?"),
                record.user_id.as_deref().unwrap_or("?"),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LoginOutcome::AlreadyConnected => {
            println!(
                "This bot is already connected; keeping the account in {}.",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Login callbacks for a terminal: draws each QR code, reports each step
/// once and reads the pairing code from stdin.
#[derive(Debug, Default)]
pub struct TerminalLogin;

impl LoginCallbacks for TerminalLogin {
    fn on_qr(&mut self, url: &str) {
        ui::print_qr(url);
    }

    fn on_status(&mut self, state: &LoginState) {
        if let Some(text) = ui::login_status(state) {
            eprintln!("login: {text}");
        }
    }

    async fn verify_code(&mut self, retry: bool) -> Option<String> {
        let prompt = if retry {
            "Wrong code. Enter the number shown on your phone: "
        } else {
            "Enter the number shown on your phone: "
        };
        tokio::task::spawn_blocking(move || read_line(prompt))
            .await
            .ok()
            .flatten()
    }
}

/// Prompts on stderr and reads one line from stdin; `None` at end of input.
fn read_line(prompt: &str) -> Option<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("{prompt}(reading from stdin)");
    }
    let mut line = String::new();
    match stdin.lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()).filter(|l| !l.is_empty()),
    }
}
