//! The standalone simulator: starts it on 127.0.0.1, prints one JSON line
//! `{"base_url":…,"cdn_base_url":…,"redirect_base_url":…,
//! "tls_root_der_base64":…,"token":…,"accounts":[{"token":…,"bot_id":…,
//! "user_id":…},…]}` and serves until Ctrl-C. `token` is the first
//! account's; `--accounts N` starts N accounts, and `--tokens-file FILE`
//! also writes their tokens to FILE, one a line (readable by the owner
//! only), for load tools.
//! `tls_root_der_base64` is the CA certificate (standard base64 of its DER)
//! a client trusts to reach the redirect listener, which speaks TLS unless
//! `--redirect-plain-http` is given.
//!
//! Usage: `wxlink-sim [--port N] [--hold-ms N] [--qr-hold-ms N] [--seed N]
//! [--cdn-memory-limit BYTES | --digest-only] [--full-upload-url]
//! [--record-limit N] [--request-log-limit N] [--cdn-object-limit N]
//! [--redirect-plain-http] [--accounts N] [--tokens-file FILE]`.
//! Drive it through the JSON control endpoints under `/_sim/`. The limits
//! bound the record logs and the CDN's upload slots and stored objects
//! (10 000 entries each by default) so a long load test does not grow the
//! process; `GET /_sim/counts` has the all-time record totals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use wxlink_sim::{CdnStorage, Simulator, UploadUrlMode};

const USAGE: &str = "usage: wxlink-sim [--port N] [--hold-ms N] [--qr-hold-ms N] [--seed N] \
                     [--cdn-memory-limit BYTES | --digest-only] [--full-upload-url] \
                     [--record-limit N] [--request-log-limit N] [--cdn-object-limit N] \
                     [--redirect-plain-http] [--accounts N] [--tokens-file FILE]";

fn parse_args() -> Result<(wxlink_sim::SimBuilder, Option<PathBuf>), String> {
    let mut builder = Simulator::builder();
    let mut tokens_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--tokens-file" {
            let path = args.next().ok_or("--tokens-file needs a value")?;
            tokens_file = Some(PathBuf::from(path));
            continue;
        }
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|_| format!("{name} needs a number"))
        };
        builder = match arg.as_str() {
            "--port" => {
                let port = u16::try_from(value("--port")?)
                    .map_err(|_| "--port is too large".to_owned())?;
                builder.port(port)
            }
            "--hold-ms" => builder.hold(Duration::from_millis(value("--hold-ms")?)),
            "--qr-hold-ms" => builder.qr_hold(Duration::from_millis(value("--qr-hold-ms")?)),
            "--seed" => builder.seed(value("--seed")?),
            "--cdn-memory-limit" => builder.cdn_storage(CdnStorage::Spill {
                memory_limit: value("--cdn-memory-limit")?,
            }),
            "--digest-only" => builder.cdn_storage(CdnStorage::DigestOnly),
            "--full-upload-url" => builder.upload_url_mode(UploadUrlMode::FullUrl),
            "--record-limit" => builder.record_limit(count(value("--record-limit")?)?),
            "--request-log-limit" => {
                builder.request_log_limit(count(value("--request-log-limit")?)?)
            }
            "--cdn-object-limit" => builder.cdn_object_limit(count(value("--cdn-object-limit")?)?),
            "--redirect-plain-http" => builder.redirect_tls(false),
            "--accounts" => match count(value("--accounts")?)? {
                0 => return Err("--accounts needs at least 1".to_owned()),
                n => builder.accounts(n),
            },
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        };
    }
    Ok((builder, tokens_file))
}

/// A count given on the command line, as a `usize`.
fn count(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (builder, tokens_file) = match parse_args() {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let sim = match builder.start().await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("wxlink-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let accounts = sim.accounts();
    if let Some(path) = &tokens_file {
        let tokens = accounts.iter().map(|a| a.token());
        if let Err(e) = wxlink_sim::write_tokens_file(path, tokens) {
            eprintln!("wxlink-sim: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let line = serde_json::json!({
        "base_url": sim.base_url(),
        "cdn_base_url": sim.cdn_base_url(),
        "redirect_base_url": sim.redirect_base_url(),
        "tls_root_der_base64": STANDARD.encode(sim.tls_root_der()),
        "token": sim.token().expose_secret(),
        "accounts": accounts.iter().map(|a| serde_json::json!({
            "token": a.token().expose_secret(),
            "bot_id": a.bot_id(),
            "user_id": a.user_id(),
        })).collect::<Vec<_>>(),
    });
    println!("{line}");
    wxlink_sim::shutdown_signal().await;
    // Shutting down drops the state, which removes spilled CDN files.
    sim.shutdown().await;
    drop(sim);
    ExitCode::SUCCESS
}
