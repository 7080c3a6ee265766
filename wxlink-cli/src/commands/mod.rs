//! The commands of `wxlink`, one module each, and what they share: the
//! client built from the resolved account and the session-expiry check.

pub mod accounts;
pub mod bridge;
mod dead_letters;
mod listen;
mod login;
mod send;
mod sim;
mod typing;

use std::process::ExitCode;

use anyhow::{Context, Result};
use wxlink_client::{ClientBuilder, WxLinkClient};
use wxlink_proto::BotToken;
use wxlink_transport::{HttpsTransport, TransportOptions};

use crate::account::{self, Account};
use crate::cli::{Cli, Command, GlobalArgs};

/// Runs the parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    match &cli.command {
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Login(args) => login::run(global, args).await,
        Command::Send(args) => {
            let account = account::resolve(global)?;
            send::run(&client_for(&account, global)?, args).await
        }
        Command::Listen(args) if args.store.as_deref().is_some_and(accounts::is_postgres) => {
            let url = args.store.as_deref().unwrap_or(std::path::Path::new(""));
            accounts::listen(global, url, args).await
        }
        Command::Accounts(args) => accounts::run(args).await,
        Command::Listen(args) => match &args.store {
            // With no account named, a store runs the accounts it keeps.
            Some(store) => {
                listen::run_on_store(account::resolve(global), global, store, args).await
            }
            None => {
                let account = account::resolve(global)?;
                listen::run(&client_for(&account, global)?, args).await
            }
        },
        Command::DeadLetters(args) => dead_letters::run(args).await,
        Command::Bridge(args) => bridge::run(global, args).await,
        Command::Typing(args) => {
            let account = account::resolve(global)?;
            typing::run(&client_for(&account, global)?, args).await
        }
    }
}

/// Builds the client for an account with the transport the global flags ask
/// for.
pub fn client_for(account: &Account, global: &GlobalArgs) -> Result<WxLinkClient> {
    client_builder(global)?
        .base_url(account.base_url.clone())
        .cdn_base_url(account.cdn_base_url.clone())
        .token(BotToken::new(account.token.clone()))
        .build()
        .context("cannot set up the iLink client")
}

/// A client builder with the transport the global flags ask for: `--h2c`
/// speaks HTTP/2 without TLS to a plain `http://` server so that every call
/// shares one connection, and `--ca-cert` trusts one more CA.
pub fn client_builder(global: &GlobalArgs) -> Result<ClientBuilder> {
    let mut builder = WxLinkClient::builder();
    if let Some(transport) = transport(global)? {
        builder = builder.transport(transport);
    }
    Ok(builder.allow_insecure_http(global.allow_insecure_http))
}

/// The transport the global flags ask for, `None` for the default.
pub fn transport(global: &GlobalArgs) -> Result<Option<HttpsTransport>> {
    if global.h2c || global.ca_cert.is_some() {
        let mut options = TransportOptions::default();
        options.http2_prior_knowledge = global.h2c;
        if let Some(path) = &global.ca_cert {
            options
                .extra_root_certificates
                .push(read_certificate(path)?);
        }
        // Only an unusable extra root makes the options fail.
        let transport = HttpsTransport::try_with_options(options).with_context(|| {
            let path = global
                .ca_cert
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            format!("cannot use the CA certificate in {}", path.display())
        })?;
        return Ok(Some(transport));
    }
    Ok(None)
}

/// Reads one certificate as DER, from a DER file or the first
/// `CERTIFICATE` block of a PEM file.
fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path)
        .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
    let Some(text) = std::str::from_utf8(&raw)
        .ok()
        .filter(|t| t.contains("-----BEGIN"))
    else {
        return Ok(raw);
    };
    pem_certificate(text).with_context(|| {
        format!(
            "{} is a PEM file without a readable CERTIFICATE block",
            path.display()
        )
    })
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
fn pem_certificate(text: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(text.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// Whether an error (or any of its causes) is an iLink session expiry (-14).
pub fn is_session_expired(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<wxlink_client::Error>()
            .is_some_and(wxlink_client::Error::is_session_expired)
    })
}
