//! `wxlink-bench takeover`: the time until a SIGKILLed runner's accounts
//! are polled again by the runner that survives it.
//!
//! Each run starts a fresh database on a throwaway PostgreSQL (started by
//! wxlink-pgtest on loopback), a simulator with `--accounts` accounts on
//! loopback, adds every account with one `wxlink accounts add`, and starts
//! two `wxlink listen` runners that share them through their leases. Once
//! both hold some accounts, runner `r1` gets a SIGKILL; the run's figure
//! is the time from the kill until the last of the accounts it held is
//! polled again (the simulator's poll records tell when each poll
//! started). The median and the maximum over `--runs` runs are reported;
//! they include the lease expiry, the survivor's claim interval, the
//! account's start and its first request.
//!
//! Without PostgreSQL server binaries the rows have no value and a note
//! says why.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use wxlink_sim::Simulator;

use crate::report::{self, Row};

/// The flags of `wxlink-bench takeover`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runs; the median and the maximum are reported.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub runs: u64,
    /// The runners' lease period, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(300..=60_000))]
    pub lease_ttl_ms: u64,
    /// Simulated accounts shared by the two runners.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=200))]
    pub accounts: u64,
    /// The `wxlink` binary (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    pub wxlink: Option<PathBuf>,
}

impl Args {
    /// The command line that reproduces these figures.
    fn command(&self) -> String {
        format!(
            "wxlink-bench takeover --runs {} --lease-ttl-ms {} --accounts {}",
            self.runs, self.lease_ttl_ms, self.accounts
        )
    }
}

/// The name of a row: `what` is `median` or `max`.
pub fn row_name(what: &str, ttl_ms: u64, runs: u64) -> String {
    format!("takeover after SIGKILL, {ttl_ms} ms lease, {what} of {runs}")
}

/// Runs the measurement and prints its rows.
pub fn run(args: &Args) -> Result<ExitCode> {
    let bin = match &args.wxlink {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot find this binary's path")?
            .parent()
            .context("this binary lies in no directory")?
            .join("wxlink"),
    };
    if !bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p wxlink-cli` or pass --wxlink",
            bin.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    for row in rt.block_on(measure(args, &bin))? {
        row.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes the figures; no PostgreSQL binaries leaves the rows without one.
async fn measure(args: &Args, bin: &Path) -> Result<Vec<Row>> {
    let command = args.command();
    let server = match wxlink_pgtest::PgServer::start() {
        Ok(server) => server,
        Err(err @ wxlink_pgtest::PgTestError::NoBinaries { .. }) => {
            report::note(&format!("takeover: no figures: {err}"));
            return Ok(["median", "max"]
                .into_iter()
                .map(|what| {
                    Row::new(row_name(what, args.lease_ttl_ms, args.runs), f64::NAN, "ms")
                        .label("no PostgreSQL binaries")
                        .command(&command)
                })
                .collect());
        }
        Err(err) => return Err(err).context("cannot start a throwaway PostgreSQL server"),
    };
    let mut times = Vec::new();
    for run in 0..args.runs {
        let ms = one_run(&server, bin, args).await?;
        eprintln!("takeover: run {} of {}: {ms:.0} ms", run + 1, args.runs);
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let max = times.last().copied().unwrap_or(f64::NAN);
    Ok([("median", median), ("max", max)]
        .into_iter()
        .map(|(what, value)| {
            Row::new(row_name(what, args.lease_ttl_ms, args.runs), value, "ms")
                .against(args.lease_ttl_ms as f64, "ms", "lease")
                .command(&command)
        })
        .collect())
}

/// Starts one `wxlink listen` runner named `owner`; it dies with its handle.
fn runner(bin: &Path, url: &str, owner: &str, ttl_ms: u64) -> Result<Child> {
    Command::new(bin)
        .env_remove("WXLINK_ACCOUNT")
        .env_remove("WXLINK_TOKEN")
        .env("RUST_LOG", "warn")
        .args(["listen", "--store", url, "--owner", owner])
        .args(["--lease-ttl-ms", &ttl_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} listen", bin.display()))
}

/// `wxlink accounts list`: the accounts each owner holds a lease on.
async fn holders(bin: &Path, url: &str) -> Result<Vec<(String, Option<String>)>> {
    let out = Command::new(bin)
        .args(["accounts", "list", "--store", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run wxlink accounts list")?;
    if !out.status.success() {
        bail!(
            "wxlink accounts list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8(out.stdout).context("wxlink accounts list wrote no UTF-8")?;
    text.lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).context("wxlink accounts list wrote a bad line")?;
            let account = v["account"]
                .as_str()
                .context("a listed account has no name")?
                .to_owned();
            Ok((account, v["lease_holder"].as_str().map(str::to_owned)))
        })
        .collect()
}

/// One run: milliseconds from the kill of `r1` until the last of its
/// accounts is polled again.
async fn one_run(server: &wxlink_pgtest::PgServer, bin: &Path, args: &Args) -> Result<f64> {
    let db = server
        .create_database()
        .context("cannot create a database")?;
    let url = db.url().expose().to_owned();
    let n = usize::try_from(args.accounts).context("too many accounts")?;
    let sim = Simulator::builder()
        .hold(Duration::from_secs(1))
        .accounts(n)
        .start()
        .await
        .context("cannot start the simulator")?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut files = Vec::new();
    let mut accounts = Vec::new();
    for (i, account) in sim.accounts().into_iter().enumerate() {
        let id = format!("bench{i:03}@im.bot");
        let file = dir.path().join(format!("{i}.json"));
        let json = serde_json::json!({
            "token": account.token().expose_secret(),
            "base_url": sim.base_url(),
            "account_id": id,
        });
        std::fs::write(&file, json.to_string())
            .with_context(|| format!("cannot write {}", file.display()))?;
        files.push(file);
        accounts.push((id, account));
    }
    let added = Command::new(bin)
        .args(["accounts", "add", "--store", &url])
        .args(&files)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run wxlink accounts add")?;
    if !added.status.success() {
        bail!(
            "wxlink accounts add failed: {}",
            String::from_utf8_lossy(&added.stderr).trim()
        );
    }
    let ttl = Duration::from_millis(args.lease_ttl_ms);
    let mut r1 = runner(bin, &url, "r1", args.lease_ttl_ms)?;
    let _r2 = runner(bin, &url, "r2", args.lease_ttl_ms)?;
    // Until every account is leased and both runners hold some.
    let start = Instant::now();
    let orphans: HashSet<String> = loop {
        let listed = holders(bin, &url).await?;
        let of = |owner: &str| {
            listed
                .iter()
                .filter(|(_, h)| h.as_deref() == Some(owner))
                .map(|(a, _)| a.clone())
                .collect::<HashSet<_>>()
        };
        let (one, two) = (of("r1"), of("r2"));
        if !one.is_empty() && !two.is_empty() && one.len() + two.len() == n {
            break one;
        }
        if start.elapsed() > ttl * 10 + Duration::from_secs(20) {
            bail!(
                "the runners held {} and {} of {n} accounts long after they started",
                one.len(),
                two.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let each runner poll its accounts before the kill.
    tokio::time::sleep(Duration::from_millis(500)).await;
    r1.start_kill().context("cannot SIGKILL runner r1")?;
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    // The first poll of an orphan that starts after the kill is the
    // survivor's: the killed runner can start no request.
    loop {
        let mut last = Duration::ZERO;
        let mut waiting = 0;
        for (id, account) in &accounts {
            if !orphans.contains(id) {
                continue;
            }
            match account.polls().iter().find(|p| p.started > killed_at) {
                Some(poll) => {
                    last = last.max(poll.started.duration_since(killed_at).unwrap_or_default());
                }
                None => waiting += 1,
            }
        }
        if waiting == 0 {
            return Ok(last.as_secs_f64() * 1000.0);
        }
        if killed.elapsed() > ttl * 10 + Duration::from_secs(20) {
            bail!(
                "{waiting} of the killed runner's {} accounts were never polled again",
                orphans.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_names_the_kill_its_lease_and_its_runs() {
        let name = row_name("max", 3000, 3);
        assert!(name.contains("SIGKILL"), "{name}");
        assert!(name.contains("3000 ms lease"), "{name}");
        assert!(name.contains("max of 3"), "{name}");
    }
}
