//! The commands of `wxlink`, one module each, and what they share: the
//! client built from the resolved account and the session-expiry check.

mod bench;
mod listen;
mod login;
mod send;
mod sim;
mod typing;

pub use login::{describe as describe_login_state, print_qr};

use std::process::ExitCode;

use anyhow::{Context, Result};
use wxlink_client::WxLinkClient;
use wxlink_proto::BotToken;
use wxlink_transport::{HttpsTransport, TransportOptions};

use crate::account::{self, Account};
use crate::cli::{Cli, Command};

/// Runs the parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    match &cli.command {
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Login(args) => login::run(global, args).await,
        Command::Send(args) => {
            let account = account::resolve(global)?;
            send::run(&client_for(&account, global.h2c)?, args).await
        }
        Command::Listen(args) => {
            let account = account::resolve(global)?;
            listen::run(&client_for(&account, global.h2c)?, args).await
        }
        Command::Typing(args) => {
            let account = account::resolve(global)?;
            typing::run(&client_for(&account, global.h2c)?, args).await
        }
        Command::Bench(args) => {
            let account = account::resolve(global)?;
            bench::run(&account, &client_for(&account, global.h2c)?, args).await
        }
    }
}

/// Builds the client for an account; `h2c` speaks HTTP/2 without TLS to a
/// plain `http://` server so that every call shares one connection.
pub fn client_for(account: &Account, h2c: bool) -> Result<WxLinkClient> {
    let mut builder = WxLinkClient::builder();
    if h2c {
        let mut options = TransportOptions::default();
        options.http2_prior_knowledge = true;
        builder = builder.transport(HttpsTransport::with_options(options));
    }
    builder
        .base_url(account.base_url.clone())
        .cdn_base_url(account.cdn_base_url.clone())
        .token(BotToken::new(account.token.clone()))
        .build()
        .context("cannot set up the iLink client")
}

/// Whether an error (or any of its causes) is an iLink session expiry (-14).
pub fn is_session_expired(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<wxlink_client::Error>()
            .is_some_and(wxlink_client::Error::is_session_expired)
    })
}
