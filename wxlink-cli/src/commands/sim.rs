//! `wxlink sim`: the simulator as a standalone server.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use wxlink_sim::{CdnStorage, Simulator};

use crate::cli::SimArgs;

/// Starts the simulator, prints its addresses as one JSON line and serves
/// until Ctrl-C (or SIGTERM).
pub async fn run(args: &SimArgs) -> Result<ExitCode> {
    // Load tests hold thousands of connections open at once.
    wxlink_sim::harness::raise_open_file_limit();
    let mut builder = Simulator::builder()
        .port(args.port)
        .hold(Duration::from_millis(args.hold_ms))
        .record_limit(args.record_limit)
        .request_log_limit(args.record_limit)
        .accounts(usize::try_from(args.accounts).unwrap_or(1));
    if args.cdn_digest_only {
        builder = builder.cdn_storage(CdnStorage::DigestOnly);
    }
    let sim = builder
        .start()
        .await
        .with_context(|| format!("cannot start the simulator on port {}", args.port))?;
    let accounts = sim.accounts();
    if let Some(path) = &args.tokens_file {
        wxlink_sim::write_tokens_file(path, accounts.iter().map(|a| a.token()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let line = json!({
        "base_url": sim.base_url(),
        "cdn_base_url": sim.cdn_base_url(),
        "redirect_base_url": sim.redirect_base_url(),
        "tls_root_der_base64": STANDARD.encode(sim.tls_root_der()),
        "token": sim.token().expose_secret(),
        "bot_id": sim.bot_id(),
        "user_id": sim.user_id(),
        "accounts": accounts.iter().map(|a| json!({
            "token": a.token().expose_secret(),
            "bot_id": a.bot_id(),
            "user_id": a.user_id(),
        })).collect::<Vec<_>>(),
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    eprintln!(
        "simulator running at {}; press Ctrl-C to stop",
        sim.base_url()
    );
    wxlink_sim::shutdown_signal().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
