//! The standalone simulator: starts it on 127.0.0.1, prints one JSON line
//! `{"base_url":…,"cdn_base_url":…,"token":…}` and serves until Ctrl-C.
//!
//! Usage: `wxlink-sim [--port N] [--hold-ms N] [--seed N]`. Drive it
//! through the JSON control endpoints under `/_sim/`.

use std::process::ExitCode;
use std::time::Duration;

use wxlink_sim::Simulator;

const USAGE: &str = "usage: wxlink-sim [--port N] [--hold-ms N] [--seed N]";

fn parse_args() -> Result<wxlink_sim::SimBuilder, String> {
    let mut builder = Simulator::builder();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
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
            "--seed" => builder.seed(value("--seed")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        };
    }
    Ok(builder)
}

#[tokio::main]
async fn main() -> ExitCode {
    let builder = match parse_args() {
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
    let line = serde_json::json!({
        "base_url": sim.base_url(),
        "cdn_base_url": sim.cdn_base_url(),
        "token": sim.token().expose_secret(),
    });
    println!("{line}");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
