//! The `wxlink` command line tool.
//!
//! `wxlink demo` runs an echo bot against the embedded simulator; `sim`,
//! `login`, `send`, `listen` and `typing` talk to any server that
//! follows the iLink protocol (the real service or a simulator). Results go
//! to stdout, logs and progress to stderr. Exit codes: 0 success, 1 failure,
//! 2 usage error (reported by clap).

// A user-facing binary has no `unsafe` at all: unlike the workspace's
// `deny`, `forbid` cannot be lifted by an `#[allow]` further in.
#![forbid(unsafe_code)]

mod account;
mod cli;
mod commands;
mod cursor;
mod demo;
mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with code 2.
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Sends tracing output to stderr: `-v` (info), `-vv` (debug) and `-vvv`
/// (trace) win over `RUST_LOG`, which wins over the default (warnings).
fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Prints an error and its causes on stderr, with the remedy for an expired
/// session.
fn report(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if commands::is_session_expired(err) {
        eprintln!(
            "The bot's session has expired (iLink error -14). Run `wxlink login` again to get a new token."
        );
    }
}
