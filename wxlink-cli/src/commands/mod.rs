//! The commands of `wxlink`, one module each.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{Cli, Command};

/// Runs the parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let _ = &cli.global;
    match cli.command {
        Command::Demo(_)
        | Command::Sim(_)
        | Command::Login(_)
        | Command::Send(_)
        | Command::Listen(_)
        | Command::Typing(_)
        | Command::Bench(_) => bail!("this command is not built yet"),
    }
}

/// Whether an error (or any of its causes) is an iLink session expiry (-14).
pub fn is_session_expired(_err: &anyhow::Error) -> bool {
    false
}
