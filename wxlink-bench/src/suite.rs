//! `wxlink-bench suite [--quick]`: every performance target of DESIGN.md,
//! each figure beside its ceiling as a ratio. `cargo xtask bench` builds
//! and runs it and prints its rows as a table.
//!
//! Two kinds of ceiling are measured on this machine, so that a reader sees
//! how close to the limit we are without trusting an absolute time:
//!
//! - single-core `openssl speed -evp aes-128-ecb` and `-evp md5` (MD5 is
//!   serial, so it bounds an upload end to end);
//! - a bare keep-alive HTTP POST (hyper, no SDK) to the same simulator,
//!   `wxlink-bench bare-post`, the ceiling of a small call. It sends the
//!   same bytes as the SDK (the request headers and the same body with its
//!   `base_info`), so the simulator does the same work for both and the
//!   ratio is the SDK's own cost.
//!
//! Our figures come from this binary's own load subcommands, each run as a
//! child process against a standalone simulator (`wxlink sim`, a separate
//! child process, started fresh for every measurement so that the messages
//! it records never pile up), from `wxlink-bench media` and `wxlink-bench
//! bridge`, and from the examples of `wxlink-bot` that have not moved here
//! yet. Budgets such as
//! "< 64 MiB" are shown in the ceiling column; their ratio is the share of
//! the budget used. Memory figures are the client process's own: peak RSS is
//! `VmHWM` of the `wxlink-bench upload` process, and memory per idle long poll is
//! that process's RSS while the polls are held minus its RSS after one
//! warm-up poll, divided by the polls held. The simulator's memory is not
//! part of either; its peak is shown separately.
//!
//! Nothing here runs in CI or in tests: only the parsing is unit-tested,
//! never a time. Every figure is printed as a [`report::Row`] JSON line and
//! every remark as a note (see [`report`]); progress goes to stderr.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::report::{self, Goal as ReportGoal};

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// How much work each measurement does.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// Whether this is the `--quick` smoke run.
    quick: bool,
    /// `send-text` and `bare-post` calls per run.
    send_count: u64,
    /// Warm-up calls before each of those runs.
    send_warmup: u64,
    /// Runs of each small-call measurement; the median is reported.
    send_runs: usize,
    /// Payload size of the throughput upload.
    upload_size: u64,
    /// Uploads in the throughput run; the median upload is reported.
    upload_count: u64,
    /// Payload size of the peak-RSS upload.
    rss_upload_size: u64,
    /// `(polls held at once, hold time in ms)` for each idle-poll row.
    polls: [(u64, u64); 2],
    /// The longest one load run may take before it is killed.
    timeout: Duration,
}

impl Plan {
    /// The DESIGN.md measurements.
    fn full() -> Self {
        Self {
            quick: false,
            send_count: 20_000,
            send_warmup: 1_000,
            send_runs: 3,
            upload_size: 256 * MIB,
            upload_count: 3,
            rss_upload_size: 1024 * MIB,
            polls: [(1_000, 3_000), (10_000, 5_000)],
            timeout: Duration::from_secs(600),
        }
    }

    /// A smoke run: the same rows with small counts and sizes.
    fn quick() -> Self {
        Self {
            quick: true,
            send_count: 2_000,
            send_warmup: 200,
            send_runs: 3,
            upload_size: 32 * MIB,
            upload_count: 1,
            rss_upload_size: 128 * MIB,
            polls: [(200, 1_000), (1_000, 1_500)],
            timeout: Duration::from_secs(120),
        }
    }
}

/// Runs the ceilings and every benchmark and prints the rows.
pub fn run(quick: bool) -> Result<ExitCode> {
    let plan = if quick { Plan::quick() } else { Plan::full() };
    let started = Instant::now();
    let load_before = load_average();
    eprintln!(
        "wxlink-bench suite{}: {} cores, load average {}",
        if plan.quick { " --quick" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before.as_deref().unwrap_or("unknown"),
    );

    let aes_ceiling = openssl_speed("aes-128-ecb")?;
    let md5_ceiling = openssl_speed("md5")?;
    report::Row::new("ceiling: aes-128-ecb, one core", aes_ceiling, "MB/s")
        .command("openssl speed -evp aes-128-ecb -seconds 2")
        .print();
    report::Row::new("ceiling: md5, one core", md5_ceiling, "MB/s")
        .command("openssl speed -evp md5 -seconds 2")
        .print();

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut failures = Vec::new();

    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let dir = exe.parent().context("this binary lies in no directory")?;
    let bench = Bench {
        exe: exe.clone(),
        bin: dir.join("wxlink"),
        scratch: dir.join("wxlink-bench-scratch"),
        timeout: plan.timeout,
    };
    if !bench.bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p wxlink-cli` (cargo xtask bench does)",
            bench.bin.display()
        );
    }
    std::fs::create_dir_all(&bench.scratch)
        .with_context(|| format!("cannot create {}", bench.scratch.display()))?;

    let send = format!(
        "wxlink-bench send-text|bare-post --count {} --concurrency 1|32 --warmup {}, {} runs each",
        plan.send_count, plan.send_warmup, plan.send_runs
    );
    match send_text_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r.into_iter().map(|t| t.into_row(&send))),
        Err(e) => failures.push(failed("send_text", &send, &e, &mut rows)),
    }
    let up = format!(
        "wxlink-bench upload --size {} --count {}",
        plan.upload_size, plan.upload_count
    );
    match upload_rows(&bench, &plan, md5_ceiling) {
        Ok(r) => rows.extend(r.into_iter().map(|t| t.into_row(&up))),
        Err(e) => failures.push(failed("upload throughput", &up, &e, &mut rows)),
    }
    let rss = format!(
        "wxlink-bench upload --size {} --count 1",
        plan.rss_upload_size
    );
    match rss_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r.into_row(&rss)),
        Err(e) => failures.push(failed("upload peak RSS", &rss, &e, &mut rows)),
    }
    // Each poll over HTTP/1.1 holds a connection of its own; over h2c every
    // poll shares one connection. Both are shown.
    for h2c in [false, true] {
        for (count, hold_ms) in plan.polls {
            let poll = format!(
                "wxlink-bench poll --count {count} --hold-ms {hold_ms}{}",
                if h2c { " --h2c" } else { "" }
            );
            match poll_row(&bench, count, hold_ms, h2c, &mut notes) {
                Ok(r) => rows.push(r.into_row(&poll)),
                Err(e) => failures.push(failed(
                    &format!("idle polls x{count}{}", protocol_label(h2c)),
                    &poll,
                    &e,
                    &mut rows,
                )),
            }
        }
    }
    // The simulator itself: its cost per send and its memory with many
    // idle accounts polling, so a reader sees it is not the bottleneck.
    let cap = format!(
        "wxlink-bench send-text --count {} --concurrency 32, the simulator's CPU time",
        plan.send_count
    );
    match sim_capacity_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r.into_row(&cap)),
        Err(e) => failures.push(failed("simulator capacity", &cap, &e, &mut rows)),
    }
    let sim_idle = "wxlink sim --accounts N, its RSS while every account polls";
    match sim_idle_accounts_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r.into_row(sim_idle)),
        Err(e) => failures.push(failed("simulator idle accounts", sim_idle, &e, &mut rows)),
    }
    let idle = format!(
        "wxlink-bench idle-accounts --count {} [--h2c | --messages {}]",
        plan.polls[1].0,
        2 * plan.polls[1].0
    );
    match idle_account_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r.into_iter().map(|t| t.into_row(&idle))),
        Err(e) => failures.push(failed("idle accounts", &idle, &e, &mut rows)),
    }
    let media = "wxlink-bench media";
    match media_rows(&bench, aes_ceiling, md5_ceiling) {
        Ok(r) => rows.extend(r.into_iter().map(|t| t.into_row(media))),
        Err(e) => failures.push(failed("media", media, &e, &mut rows)),
    }
    let store = format!("wxlink-bench store {}", store_args(&plan).join(" "));
    match store_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("store", &store, &e, &mut rows)),
    }
    let takeover = format!("wxlink-bench takeover {}", takeover_args(&plan).join(" "));
    match takeover_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("takeover", &takeover, &e, &mut rows)),
    }
    let bridge = "wxlink-bench bridge";
    match bridge_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("bridge", bridge, &e, &mut rows)),
    }

    for row in &rows {
        row.print();
    }
    for text in &notes {
        report::note(text);
    }
    report::note(&format!(
        "load average before {}, after {}; {:.0} s in all",
        load_before.as_deref().unwrap_or("unknown"),
        load_average().as_deref().unwrap_or("unknown"),
        started.elapsed().as_secs_f64()
    ));
    if !failures.is_empty() {
        eprintln!(
            "{} measurement(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a failed group: a row that says so, and the message.
fn failed(what: &str, command: &str, error: &anyhow::Error, rows: &mut Vec<report::Row>) -> String {
    eprintln!("wxlink-bench suite: {what} failed: {error:#}");
    rows.push(report::Row::failed(what, command));
    format!("  {what}: {error:#}")
}

/// The first three fields of `/proc/loadavg` (Linux only).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

// ---------------------------------------------------------------------------
// Running the simulator and the load subcommands.

/// What `wxlink sim` prints on its first line.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct SimInfo {
    /// API base URL.
    base_url: String,
    /// CDN base URL.
    cdn_base_url: String,
    /// The bot token the simulator accepts.
    token: String,
    /// The simulated user, the recipient of every send.
    user_id: String,
}

/// A running `wxlink sim` child process, killed when dropped (also when a
/// measurement fails or panics).
struct Simulator {
    /// The child process.
    child: Child,
    /// Its addresses and token.
    info: SimInfo,
    /// Kept open so the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Simulator {
    /// Starts `wxlink sim` for load tests and reads its first line. Its
    /// stderr goes to `log`.
    fn start(bin: &Path, log: &Path) -> Result<Self> {
        Self::start_args(
            bin,
            log,
            &["sim", "--hold-ms", "35000", "--cdn-digest-only"],
        )
    }

    /// Starts `wxlink <args>` (a `sim` command line) and reads its first
    /// line.
    fn start_args(bin: &Path, log: &Path, args: &[&str]) -> Result<Self> {
        let stderr =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(args)
            .env_remove("WXLINK_ACCOUNT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {} sim", bin.display()))?;
        let mut stdout = match child.stdout.take() {
            Some(out) => BufReader::new(out),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the simulator's stdout was not captured");
            }
        };
        // From here on the guard owns the child, so every early return
        // below kills it.
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let mut sim = Self {
            child,
            info: SimInfo {
                base_url: String::new(),
                cdn_base_url: String::new(),
                token: String::new(),
                user_id: String::new(),
            },
            _stdout: stdout,
        };
        read.context("cannot read the simulator's first line")?;
        if line.trim().is_empty() {
            bail!(
                "the simulator exited before printing its addresses; see {}",
                log.display()
            );
        }
        sim.info = serde_json::from_str(line.trim())
            .context("the simulator's first line is not the expected JSON")?;
        Ok(sim)
    }

    /// The simulator's own peak RSS so far, in bytes (Linux only).
    fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        parse_vm_hwm(&status)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where and how the load subcommands run.
struct Bench {
    /// This binary, which runs each load subcommand as a child process.
    exe: PathBuf,
    /// The release `wxlink` binary beside it, for `wxlink sim`.
    bin: PathBuf,
    /// A directory for the output files of child processes.
    scratch: PathBuf,
    /// The longest one run may take.
    timeout: Duration,
}

/// What one load run reported, and the simulator's peak RSS.
struct Measured {
    /// The rows the run printed, as one object of name → value.
    report: Value,
    /// The simulator's own peak RSS during the run, in bytes.
    sim_peak_rss: Option<u64>,
}

impl Bench {
    /// Starts a fresh simulator and runs `wxlink-bench <args> --to USER`
    /// against it; returns the figures printed.
    fn measure(&self, args: &[String]) -> Result<Measured> {
        let sim = Simulator::start(&self.bin, &self.scratch.join("sim.log"))?;
        eprintln!("  wxlink-bench {}", args.join(" "));
        let report = self.run_bench(&sim, args)?;
        Ok(Measured {
            report,
            sim_peak_rss: sim.peak_rss_bytes(),
        })
    }

    /// Runs one load subcommand within the timeout and reads its rows.
    fn run_bench(&self, sim: &Simulator, args: &[String]) -> Result<Value> {
        let out_path = self.scratch.join("bench.out");
        let err_path = self.scratch.join("bench.err");
        let out = File::create(&out_path)?;
        let err = File::create(&err_path)?;
        let mut child = Command::new(&self.exe)
            .args(args)
            .args(["--to", &sim.info.user_id])
            .env_remove("WXLINK_ACCOUNT")
            .env("WXLINK_BASE_URL", &sim.info.base_url)
            .env("WXLINK_CDN_BASE_URL", &sim.info.cdn_base_url)
            .env("WXLINK_TOKEN", &sim.info.token)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "wxlink-bench {} took longer than {:?} and was killed",
                    args.join(" "),
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let report = rows_as_object(&report::parse_rows(&stdout));
        match report {
            Some(report) if status.success() => Ok(report),
            _ => bail!(
                "wxlink-bench {} exited with {status}\nstdout: {}\nstderr: {}",
                args.join(" "),
                stdout.trim(),
                tail(&stderr, 20)
            ),
        }
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Rows as one JSON object of name → value (a failed figure is `null`),
/// so a run's figures read like the reports of the examples; `None`
/// without rows.
fn rows_as_object(rows: &[report::Row]) -> Option<Value> {
    if rows.is_empty() {
        return None;
    }
    let fields = rows
        .iter()
        .map(|r| (r.name.clone(), r.value.map_or(Value::Null, Value::from)))
        .collect();
    Some(Value::Object(fields))
}

/// A number field of a load report.
fn field(report: &Value, name: &str) -> Result<f64> {
    report
        .get(name)
        .and_then(Value::as_f64)
        .with_context(|| format!("the report has no number `{name}`: {report}"))
}

/// The median of `xs`; `None` when empty. An even count averages the two
/// middle values.
fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// Reads the `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line.trim_start_matches("VmHWM:").split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then(|| value * 1024)
}

/// Formats an optional byte count in MiB.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / MIB as f64),
    )
}

// ---------------------------------------------------------------------------
// The measurements.

/// Figures of the small-call runs at one concurrency, one entry per run.
#[derive(Debug, Default)]
struct SmallCalls {
    /// Requests per second.
    rps: Vec<f64>,
    /// Median latency, ms.
    p50: Vec<f64>,
    /// 99th percentile latency, ms.
    p99: Vec<f64>,
}

impl SmallCalls {
    /// Adds one run's report.
    fn push(&mut self, report: &Value) -> Result<()> {
        self.rps.push(field(report, "requests_per_s")?);
        self.p50.push(field(report, "p50_ms")?);
        self.p99.push(field(report, "p99_ms")?);
        Ok(())
    }

    /// Median requests/s, p50 and p99 over the runs.
    fn medians(&self) -> Option<(f64, f64, f64)> {
        Some((
            median(self.rps.clone())?,
            median(self.p50.clone())?,
            median(self.p99.clone())?,
        ))
    }
}

/// `send_text` at 1 and 32 in flight beside a bare POST, and the p99 row.
/// The SDK and the bare POST alternate run by run, so load from other work
/// on the machine falls on both alike.
fn send_text_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<Target>> {
    eprintln!(
        "\nsend_text vs bare POST: {} runs of {} calls",
        plan.send_runs, plan.send_count
    );
    let mut rows = Vec::new();
    for concurrency in [1u64, 32] {
        let (mut sdk, mut bare) = (SmallCalls::default(), SmallCalls::default());
        for _ in 0..plan.send_runs {
            for (kind, figures) in [("bare-post", &mut bare), ("send-text", &mut sdk)] {
                let args = vec![
                    kind.to_owned(),
                    "--count".to_owned(),
                    plan.send_count.to_string(),
                    "--concurrency".to_owned(),
                    concurrency.to_string(),
                    "--warmup".to_owned(),
                    plan.send_warmup.to_string(),
                ];
                figures.push(&bench.measure(&args)?.report)?;
            }
        }
        let (sdk_rps, sdk_p50, sdk_p99) = sdk.medians().context("no send-text runs")?;
        let (bare_rps, bare_p50, bare_p99) = bare.medians().context("no bare-post runs")?;
        notes.push(format!(
            "{concurrency} in flight, medians of {} runs: send_text {sdk_rps:.0} req/s p50 {sdk_p50:.3} ms p99 {sdk_p99:.3} ms; \
             bare POST {bare_rps:.0} req/s p50 {bare_p50:.3} ms p99 {bare_p99:.3} ms; send_text runs {:?} req/s",
            plan.send_runs,
            sdk.rps.iter().map(|r| r.round()).collect::<Vec<_>>()
        ));
        rows.push(Target {
            target: format!("send_text, {concurrency} in flight"),
            ours: Figure::new(sdk_rps, "req/s", ""),
            ceiling: Figure::new(bare_rps, "req/s", "bare POST"),
            goal: Goal::AtLeast(0.9, "≥ 90% of a bare POST"),
        });
        if concurrency == 32 {
            rows.push(Target {
                target: "send_text, 32 in flight, p99".to_owned(),
                ours: Figure::new(sdk_p99, "ms", "p99"),
                ceiling: Figure::new(2.0 * sdk_p50, "ms", "2x p50"),
                goal: Goal::Below(1.0, "p99 < 2x p50"),
            });
            // The same spread of the ceiling itself, so a reader sees how
            // much of a missed p99 goal is the server and the machine.
            rows.push(Target {
                target: "bare POST, 32 in flight, p99 (reference)".to_owned(),
                ours: Figure::new(bare_p99, "ms", "p99"),
                ceiling: Figure::new(2.0 * bare_p50, "ms", "2x p50"),
                goal: Goal::Info,
            });
        }
    }
    Ok(rows)
}

/// Upload throughput beside the MD5 ceiling: the median of the uploads of
/// one run (`size / p50`).
fn upload_rows(bench: &Bench, plan: &Plan, md5_ceiling: f64) -> Result<Vec<Target>> {
    eprintln!(
        "\nupload throughput: {} x {} MiB",
        plan.upload_count,
        plan.upload_size / MIB
    );
    let args = vec![
        "upload".to_owned(),
        "--size".to_owned(),
        plan.upload_size.to_string(),
        "--count".to_owned(),
        plan.upload_count.to_string(),
    ];
    let report = bench.measure(&args)?.report;
    let mbs = median_upload_mb_per_s(&report)?;
    Ok(vec![Target {
        target: format!("upload {} MiB, end to end", plan.upload_size / MIB),
        ours: Figure::new(mbs, "MB/s", ""),
        ceiling: Figure::new(md5_ceiling, "MB/s", "MD5"),
        goal: Goal::AtLeast(0.7, "≥ 70% of the MD5 ceiling"),
    }])
}

/// The median upload's MB/s: `size_bytes / p50_ms` (the per-upload
/// latencies are what `wxlink-bench upload` keeps).
fn median_upload_mb_per_s(report: &Value) -> Result<f64> {
    let size = field(report, "size_bytes")?;
    let p50_ms = field(report, "p50_ms")?;
    if p50_ms <= 0.0 {
        bail!("the upload report has no positive p50: {report}");
    }
    Ok(size / 1e6 / (p50_ms / 1000.0))
}

/// Peak RSS of the client while uploading the large file.
fn rss_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Target> {
    eprintln!("\nupload peak RSS: 1 x {} MiB", plan.rss_upload_size / MIB);
    let args = vec![
        "upload".to_owned(),
        "--size".to_owned(),
        plan.rss_upload_size.to_string(),
        "--count".to_owned(),
        "1".to_owned(),
    ];
    let measured = bench.measure(&args)?;
    let report = &measured.report;
    let peak = field(report, "peak_rss_bytes")?;
    notes.push(format!(
        "upload of {} MiB: peak RSS is VmHWM of the `wxlink-bench upload` process; {:.1} MB/s; the simulator's own peak RSS {} (not counted)",
        plan.rss_upload_size / MIB,
        field(report, "mb_per_s").unwrap_or(f64::NAN),
        mib(measured.sim_peak_rss),
    ));
    Ok(Target {
        target: format!("peak RSS, {} MiB upload", plan.rss_upload_size / MIB),
        ours: Figure::new(peak / MIB as f64, "MiB", ""),
        ceiling: Figure::new(64.0, "MiB", "budget"),
        goal: Goal::Below(1.0, "< 64 MiB for any size"),
    })
}

/// How a poll row names its protocol.
fn protocol_label(h2c: bool) -> &'static str {
    if h2c { " (h2c)" } else { " (HTTP/1.1)" }
}

/// Memory per idle long poll with `count` polls held at once, over h2c (one
/// shared connection) or HTTP/1.1 (a connection per poll).
fn poll_row(
    bench: &Bench,
    count: u64,
    hold_ms: u64,
    h2c: bool,
    notes: &mut Vec<String>,
) -> Result<Target> {
    let label = protocol_label(h2c);
    eprintln!("\nidle long polls{label}: {count} held for {hold_ms} ms");
    let mut args = vec![
        "poll".to_owned(),
        "--count".to_owned(),
        count.to_string(),
        "--hold-ms".to_owned(),
        hold_ms.to_string(),
    ];
    if h2c {
        args.push("--h2c".to_owned());
    }
    let measured = bench.measure(&args)?;
    let report = &measured.report;
    let kib = field(report, "kib_per_poll")?;
    let held = field(report, "held")?;
    let baseline = field(report, "baseline_rss_bytes")?;
    let during = field(report, "rss_bytes")?;
    notes.push(format!(
        "{count} idle polls{label}: ({} RSS while {held} polls were held − {} after one warm-up poll) / {held} = {kib:.1} KiB per poll, \
         client process only; the simulator (another process) peaked at {}, not counted",
        mib(Some(during as u64)),
        mib(Some(baseline as u64)),
        mib(measured.sim_peak_rss),
    ));
    if held < count as f64 {
        bail!("only {held} of {count} polls were held: {report}");
    }
    Ok(Target {
        target: format!("idle long polls, {count}{label}"),
        ours: Figure::new(kib, "KiB/poll", ""),
        ceiling: Figure::new(16.0, "KiB/poll", "budget"),
        goal: Goal::Below(1.0 + 1e-9, "≤ 16 KiB per poll"),
    })
}

/// Memory per idle account of the bot runtime: one `wxlink-bot` host with
/// as many accounts as the largest idle-poll row holds polls, each
/// long-polling its own token of one multi-account simulator, over
/// HTTP/1.1 (a connection per poll) and h2c (one shared connection); and,
/// over HTTP/1.1, the host's CPU per dispatched message. This binary's
/// `idle-accounts` subcommand takes the figures.
fn idle_account_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<Target>> {
    let count = plan.polls[1].0;
    let messages = 2 * count;
    eprintln!("\nidle accounts (wxlink-bot host): {count} accounts, each with its own token");
    let mut rows = Vec::new();
    for (h2c, budget) in [(false, 24.0), (true, 16.0)] {
        let tokens_path = bench.scratch.join("idle-tokens.txt");
        let tokens_arg = tokens_path.to_string_lossy().into_owned();
        let accounts = (count + 1).to_string();
        let sim = Simulator::start_args(
            &bench.bin,
            &bench.scratch.join("sim-idle.log"),
            &[
                "sim",
                "--hold-ms",
                "300000",
                "--cdn-digest-only",
                "--record-limit",
                "1000",
                "--accounts",
                &accounts,
                "--tokens-file",
                &tokens_arg,
            ],
        )?;
        let mut cmd = Command::new(&bench.exe);
        cmd.args(["idle-accounts", "--count", &count.to_string()])
            .env("WXLINK_BASE_URL", &sim.info.base_url)
            .env("WXLINK_TOKENS", &tokens_path)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        if h2c {
            cmd.arg("--h2c");
        } else {
            cmd.args(["--messages", &messages.to_string()]);
        }
        eprintln!(
            "  wxlink-bench idle-accounts --count {count}{}",
            if h2c {
                " --h2c".to_owned()
            } else {
                format!(" --messages {messages}")
            }
        );
        let out = cmd
            .output()
            .context("cannot run wxlink-bench idle-accounts")?;
        let output = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wxlink-bench idle-accounts exited with {}: {output}",
                out.status
            );
        }
        for line in output.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let Some(note) = v.get("note").and_then(Value::as_str)
            {
                notes.push(note.to_owned());
            }
        }
        notes.push(format!(
            "the simulator of the idle accounts{} peaked at {} (not counted); the previous one-account runtime measured 55 KiB per account, 38 KiB with one shared transport (HTTP/1.1)",
            protocol_label(h2c),
            mib(sim.peak_rss_bytes())
        ));
        for row in report::parse_rows(&output) {
            let Some(value) = row.value else { continue };
            if row.name.starts_with("idle accounts") {
                rows.push(Target {
                    target: row.name,
                    ours: Figure::new(value, "KiB/account", ""),
                    ceiling: Figure::new(budget, "KiB/account", "budget"),
                    goal: Goal::Below(
                        1.0 + 1e-9,
                        if h2c {
                            "≤ 16 KiB per account"
                        } else {
                            "≤ 24 KiB per account"
                        },
                    ),
                });
            } else {
                rows.push(Target {
                    target: row.name,
                    ours: Figure::new(value, "µs/message", ""),
                    ceiling: Figure::new(f64::NAN, "", "no previous figure"),
                    goal: Goal::Info,
                });
            }
        }
    }
    Ok(rows)
}

/// The agent bridge's own overhead per turn with a zero-latency agent
/// (the engine alone, and the whole bridge on a host against an in-process
/// simulator), beside the 2 ms budget, and 1,000 conversations across 100
/// accounts at once (100 across 10 with --quick), which must all be
/// answered once with no error: `wxlink-bench bridge`, whose rows and
/// notes pass through.
fn bridge_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<report::Row>> {
    let (turns, accounts, users) = if plan.quick {
        ("100", "10", "10")
    } else {
        ("500", "100", "10")
    };
    eprintln!("\nwxlink-bench bridge --turns {turns} --accounts {accounts} --users {users}");
    let out = Command::new(&bench.exe)
        .args([
            "bridge",
            "--turns",
            turns,
            "--accounts",
            accounts,
            "--users",
            users,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run wxlink-bench bridge")?;
    let output = String::from_utf8_lossy(&out.stdout);
    notes.extend(output.lines().filter_map(|line| {
        let value: Value = serde_json::from_str(line.trim()).ok()?;
        Some(value.get("note")?.as_str()?.to_owned())
    }));
    if !out.status.success() {
        bail!("wxlink-bench bridge exited with {}:\n{output}", out.status);
    }
    let rows = report::parse_rows(&output);
    if rows.is_empty() {
        bail!("wxlink-bench bridge printed no rows:\n{output}");
    }
    Ok(rows)
}

/// The `wxlink-bench media` figures beside their OpenSSL ceilings. Each is
/// the median of repeated runs (the subcommand says how many on stderr,
/// which is passed through).
fn media_rows(bench: &Bench, aes_ceiling: f64, md5_ceiling: f64) -> Result<Vec<Target>> {
    eprintln!("\nwxlink-bench media (medians of repeated runs):");
    let out = Command::new(&bench.exe)
        .arg("media")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run wxlink-bench media")?;
    let output = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wxlink-bench media exited with {}", out.status);
    }
    let figures = report::parse_rows(&output);
    if figures.is_empty() {
        bail!("wxlink-bench media printed no rows:\n{output}");
    }
    Ok(figures
        .into_iter()
        .filter_map(|row| Some((row.name, row.value?)))
        .map(|(name, ours)| media_row(&name, ours, aes_ceiling, md5_ceiling))
        .collect())
}

/// The flags of `wxlink-bench store` in this plan: fewer batches and
/// takeover runs with `--quick`.
fn store_args(plan: &Plan) -> Vec<&'static str> {
    if plan.quick {
        vec!["--batches", "100", "--runs", "3"]
    } else {
        vec!["--batches", "500", "--runs", "5"]
    }
}

/// The `wxlink-bench store` rows, as it prints them: batch commits of
/// PostgresStore beside SqliteStore, and the store's takeover time beside
/// its lease period (without PostgreSQL binaries, those rows have no value
/// and say why).
fn store_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<report::Row>> {
    child_rows(bench, "store", &store_args(plan), notes)
}

/// The arguments of `wxlink-bench takeover` in this plan.
fn takeover_args(plan: &Plan) -> Vec<&'static str> {
    if plan.quick {
        vec!["--runs", "2", "--accounts", "4"]
    } else {
        vec!["--runs", "5", "--accounts", "8"]
    }
}

/// The `wxlink-bench takeover` rows: how long a SIGKILLed runner's accounts
/// wait until another runner polls them, median and maximum, beside the
/// lease (without PostgreSQL binaries, the rows have no value and say why).
fn takeover_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<report::Row>> {
    child_rows(bench, "takeover", &takeover_args(plan), notes)
}

/// Runs `wxlink-bench <sub> <args>` and returns the rows it printed; its
/// notes go under the table.
fn child_rows(
    bench: &Bench,
    sub: &str,
    args: &[&str],
    notes: &mut Vec<String>,
) -> Result<Vec<report::Row>> {
    eprintln!(
        "\nwxlink-bench {sub} {} (a throwaway PostgreSQL on loopback):",
        args.join(" ")
    );
    let out = Command::new(&bench.exe)
        .arg(sub)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run wxlink-bench {sub}"))?;
    let output = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wxlink-bench {sub} exited with {}", out.status);
    }
    let rows = report::parse_rows(&output);
    if rows.is_empty() {
        bail!("wxlink-bench {sub} printed no rows:\n{output}");
    }
    // Notes (no PostgreSQL binaries) belong under the table.
    for line in output.lines() {
        if let Some(text) = serde_json::from_str::<Value>(line.trim())
            .ok()
            .and_then(|v| v.get("note").and_then(Value::as_str).map(str::to_owned))
        {
            notes.push(text);
        }
    }
    Ok(rows)
}

/// One `wxlink-bench media` figure as a row: encryption beside AES, everything
/// else beside MD5, which bounds both the digest pass and a whole upload.
/// Only the uploads have a DESIGN.md goal.
fn media_row(name: &str, ours: f64, aes_ceiling: f64, md5_ceiling: f64) -> Target {
    let ceiling = if name.starts_with("encrypt") {
        Figure::new(aes_ceiling, "MB/s", "aes-128-ecb")
    } else {
        Figure::new(md5_ceiling, "MB/s", "MD5")
    };
    let goal = if name.contains("upload") {
        Goal::AtLeast(0.7, "≥ 70% of the MD5 ceiling")
    } else {
        Goal::Info
    };
    Target {
        target: media_target(name),
        ours: Figure::new(ours, "MB/s", ""),
        ceiling,
        goal,
    }
}

/// The row title of a `wxlink-bench media` figure.
///
/// Both encryption figures sit beside the `openssl speed -evp aes-128-ecb`
/// ceiling, but only the streaming `encrypt` is the headline: it runs the
/// upload path over 256 MiB that no cache holds, so it is what an upload
/// gets. `encrypt_cached` repeats one cache-resident chunk, as `openssl
/// speed` does; it is the like-for-like cipher comparison and is shown for
/// reference: it leaves memory bandwidth out, so it reads higher than any
/// upload can reach.
fn media_target(name: &str) -> String {
    match name {
        "encrypt" => "media encrypt, streaming (headline)".to_owned(),
        "encrypt_cached" => "media encrypt_cached, one hot chunk (reference)".to_owned(),
        _ => format!("media {name}"),
    }
}

/// Runs `openssl speed -evp <algo> -seconds 2` and returns the throughput of
/// the largest block size in MB/s (10^6 bytes per second).
fn openssl_speed(algo: &str) -> Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", algo, "-seconds", "2"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .with_context(|| format!("`openssl speed -evp {algo}` failed; is openssl installed?"))?;
    let out = String::from_utf8_lossy(&out.stdout);
    parse_openssl_speed(&out, algo)
        .with_context(|| format!("could not read the `openssl speed -evp {algo}` table:\n{out}"))
}

/// Reads the last column of the result row of `openssl speed` output. The
/// numbers are in 1000s of bytes per second with a `k` suffix, so the value
/// divided by 1000 is MB/s.
fn parse_openssl_speed(out: &str, algo: &str) -> Option<f64> {
    let row = out.lines().rev().find(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(algo))
    })?;
    let last = row.split_whitespace().last()?;
    let kilobytes: f64 = last.trim_end_matches('k').parse().ok()?;
    Some(kilobytes / 1000.0)
}

// ---------------------------------------------------------------------------
// The rows.

/// A measured or ceiling value with its unit and an optional label.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    /// The number.
    value: f64,
    /// Its unit.
    unit: &'static str,
    /// What it is, e.g. "bare POST" (may be empty).
    label: &'static str,
}

impl Figure {
    /// A figure.
    fn new(value: f64, unit: &'static str, label: &'static str) -> Self {
        Self { value, unit, label }
    }
}

/// A DESIGN.md goal on the ratio ours / ceiling, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// The ratio must be at least this.
    AtLeast(f64, &'static str),
    /// The ratio must stay below this.
    Below(f64, &'static str),
    /// No goal: shown for information.
    Info,
}

/// One target of the suite: our figure beside its ceiling, and the goal.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    /// What is measured.
    target: String,
    /// Our figure.
    ours: Figure,
    /// The ceiling or budget it is compared with.
    ceiling: Figure,
    /// The goal on ours / ceiling.
    goal: Goal,
}

impl Target {
    /// The target as a report row, reproduced by `command`.
    fn into_row(self, command: &str) -> report::Row {
        let row = report::Row::new(self.target, self.ours.value, self.ours.unit)
            .label(self.ours.label)
            .command(command);
        let row = if self.ceiling.value.is_finite() || !self.ceiling.label.is_empty() {
            row.against(self.ceiling.value, self.ceiling.unit, self.ceiling.label)
        } else {
            row
        };
        match self.goal {
            Goal::AtLeast(min, text) => row.goal(ReportGoal::AtLeast(min, text)),
            Goal::Below(max, text) => row.goal(ReportGoal::Below(max, text)),
            Goal::Info => row,
        }
    }
}

/// The simulator's CPU time so far (user + system), in seconds, from
/// `/proc/PID/stat`. Linux counts it in clock ticks of 1/100 s (`USER_HZ`,
/// 100 on every mainstream configuration).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; fields follow it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A process's current resident set size, in bytes (Linux only).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.trim_start_matches("VmRSS:").split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then(|| value * 1024)
}

/// How many `sendmessage` calls one core of the simulator can serve,
/// from its own CPU time during a `send_text` run at 32 in flight, beside
/// the client's rate in that run: the simulator is not the bottleneck when
/// its capacity is well above what the client reaches.
fn sim_capacity_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Target> {
    eprintln!(
        "
simulator capacity: send_text at 32 in flight"
    );
    let sim = Simulator::start(&bench.bin, &bench.scratch.join("sim-capacity.log"))?;
    let pid = sim.child.id();
    let before = cpu_seconds(pid).context("cannot read the simulator's CPU time")?;
    let args: Vec<String> = [
        "send-text",
        "--count",
        &plan.send_count.to_string(),
        "--concurrency",
        "32",
        "--warmup",
        &plan.send_warmup.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let report = bench.run_bench(&sim, &args)?;
    let after = cpu_seconds(pid).context("cannot read the simulator's CPU time")?;
    let client_rps = field(&report, "requests_per_s")?;
    let calls = (plan.send_count + plan.send_warmup) as f64;
    let cpu = (after - before).max(0.01);
    let capacity = calls / cpu;
    notes.push(format!(
        "simulator capacity: {calls:.0} sendmessage calls (32 in flight) took {cpu:.2} s of the simulator's CPU,          {:.1} µs each, so one simulator core serves {capacity:.0} req/s; the client reached {client_rps:.0} req/s",
        cpu * 1e6 / calls
    ));
    Ok(Target {
        target: "simulator capacity, sendmessage, 32 in flight".to_owned(),
        ours: Figure::new(capacity, "req/s", "per sim core"),
        ceiling: Figure::new(client_rps, "req/s", "client send_text"),
        goal: Goal::AtLeast(2.0, "≥ 2x the client's rate"),
    })
}

/// The simulator's RSS with one idle long poll held on each of many
/// accounts (10 000, or 1 000 with `--quick`), each on its own token and
/// connection, against the 200 MiB budget.
fn sim_idle_accounts_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Target> {
    use std::io::{Read as _, Write as _};
    let n: usize = if plan.quick { 1_000 } else { 10_000 };
    eprintln!(
        "
simulator: {n} idle long polls across {n} accounts"
    );
    let tokens_path = bench.scratch.join("sim-tokens.txt");
    let n_text = n.to_string();
    let tokens_arg = tokens_path.to_string_lossy().into_owned();
    let sim = Simulator::start_args(
        &bench.bin,
        &bench.scratch.join("sim-accounts.log"),
        &[
            "sim",
            "--hold-ms",
            "300000",
            "--cdn-digest-only",
            "--record-limit",
            "1000",
            "--accounts",
            &n_text,
            "--tokens-file",
            &tokens_arg,
        ],
    )?;
    let pid = sim.child.id();
    let tokens: Vec<String> = std::fs::read_to_string(&tokens_path)
        .with_context(|| format!("cannot read {}", tokens_path.display()))?
        .lines()
        .map(str::to_owned)
        .collect();
    if tokens.len() != n {
        bail!("the tokens file lists {} tokens, not {n}", tokens.len());
    }
    let addr = sim
        .info
        .base_url
        .strip_prefix("http://")
        .context("the simulator's base URL is not http://")?
        .to_owned();
    let idle = rss_bytes(pid).context("cannot read the simulator's RSS")?;
    let mut conns = Vec::with_capacity(n);
    for token in &tokens {
        let mut stream = std::net::TcpStream::connect(&addr).with_context(|| {
            format!(
                "connection {} of {n} failed (open file limit?)",
                conns.len() + 1
            )
        })?;
        let body = r#"{"get_updates_buf":""}"#;
        write!(
            stream,
            "POST /ilink/bot/getupdates HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        conns.push(stream);
    }
    // Wait until the simulator holds every poll.
    let deadline = Instant::now() + Duration::from_secs(60);
    let polls = loop {
        let mut stream = std::net::TcpStream::connect(&addr)?;
        write!(
            stream,
            "GET /_sim/polls HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let json = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
        let polls: Value = serde_json::from_str(json).unwrap_or_default();
        if polls["in_flight"].as_u64() == Some(n as u64) {
            break polls;
        }
        if Instant::now() >= deadline {
            bail!(
                "only {} of {n} polls were held after 60 s",
                polls["in_flight"]
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let held = rss_bytes(pid).context("cannot read the simulator's RSS")?;
    drop(conns);
    let concurrent = polls["concurrent_polls"].as_u64().unwrap_or(u64::MAX);
    if concurrent != 0 {
        bail!("{concurrent} polls overlapped on one token; each token polled once");
    }
    let mib_held = held as f64 / (1024.0 * 1024.0);
    notes.push(format!(
        "simulator with {n} accounts: RSS {} idle, {} with one poll held per account \
         ({:.1} KiB per held poll, {:.1} KiB per idle account); concurrent_polls 0",
        mib(Some(idle)),
        mib(Some(held)),
        held.saturating_sub(idle) as f64 / 1024.0 / n as f64,
        idle as f64 / 1024.0 / n as f64,
    ));
    Ok(Target {
        target: format!("simulator RSS, {n} idle polls on {n} accounts"),
        ours: Figure::new(mib_held, "MiB", "RSS"),
        ceiling: Figure::new(200.0, "MiB", "budget"),
        goal: Goal::Below(1.0, "< 200 MiB"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_largest_block_column_of_openssl_speed() {
        let out = "\
The 'numbers' are in 1000s of bytes per second processed.
type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes
md5              79040.91k   216897.09k   439228.87k   591619.77k   675831.73k   661880.83k
";
        let mbs = parse_openssl_speed(out, "md5").unwrap();
        assert!((mbs - 661.88083).abs() < 1e-6, "{mbs}");
        assert!(parse_openssl_speed(out, "aes-128-ecb").is_none());
    }

    #[test]
    fn streaming_encrypt_is_the_headline_beside_the_aes_ceiling() {
        let (aes, md5) = (8_000.0, 600.0);
        let streaming = media_row("encrypt", 4_000.0, aes, md5);
        assert!(streaming.target.contains("headline"), "{streaming:?}");
        assert_eq!(streaming.ceiling, Figure::new(aes, "MB/s", "aes-128-ecb"));
        assert_eq!(streaming.clone().into_row("c").ratio, Some(0.5));
        let cached = media_row("encrypt_cached", 9_000.0, aes, md5);
        assert!(cached.target.contains("reference"), "{cached:?}");
        assert!(!cached.target.contains("headline"), "{cached:?}");
        assert_eq!(cached.ceiling.label, "aes-128-ecb");
        let digest = media_row("md5", 580.0, aes, md5);
        assert_eq!(
            (digest.target.as_str(), digest.ceiling.label),
            ("media md5", "MD5")
        );
        assert_eq!(digest.goal, Goal::Info);
        let upload = media_row("upload_256mib", 450.0, aes, md5);
        assert_eq!(upload.ceiling.label, "MD5");
        assert_eq!(upload.into_row("c").met, Some(true));
    }

    #[test]
    fn the_quick_plan_is_smaller_than_the_full_one() {
        let quick = Plan::quick();
        assert!(quick.quick && quick.send_count < Plan::full().send_count);
        assert!(quick.rss_upload_size < Plan::full().rss_upload_size);
        assert_eq!(Plan::full().rss_upload_size, 1 << 30);
        assert_eq!(Plan::full().polls, [(1_000, 3_000), (10_000, 5_000)]);
    }

    #[test]
    fn reads_the_sim_line_and_the_rows_and_fields_of_a_run() {
        let sim: SimInfo = serde_json::from_str(
            r#"{"base_url":"http://127.0.0.1:1","bot_id":"b@im.bot","cdn_base_url":"http://127.0.0.1:1/c2c","token":"t","user_id":"u@im.wechat"}"#,
        )
        .unwrap();
        assert_eq!(sim.user_id, "u@im.wechat");

        let report: Value = serde_json::from_str(
            r#"{"bench":"send-text","requests_per_s":12000.5,"p50_ms":0.08,"p99_ms":0.3}"#,
        )
        .unwrap();
        assert_eq!(field(&report, "requests_per_s").unwrap(), 12000.5);
        assert!(field(&report, "mb_per_s").is_err());

        let rows = report::parse_rows(
            "progress\n{\"name\":\"p50_ms\",\"value\":0.08,\"unit\":\"ms\",\"command\":\"c\"}\n\
             {\"name\":\"p99_ms\",\"value\":null,\"unit\":\"ms\",\"command\":\"c\"}\n",
        );
        let from_rows = rows_as_object(&rows).unwrap();
        assert_eq!(field(&from_rows, "p50_ms").unwrap(), 0.08);
        assert!(field(&from_rows, "p99_ms").is_err());
        assert!(rows_as_object(&[]).is_none());

        let mut calls = SmallCalls::default();
        calls.push(&report).unwrap();
        assert!(
            calls
                .push(&serde_json::json!({"requests_per_s": 1}))
                .is_err()
        );
    }

    #[test]
    fn medians_of_odd_and_even_runs() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn the_median_upload_rate_comes_from_size_and_p50() {
        let report =
            serde_json::json!({"size_bytes": 268_435_456u64, "p50_ms": 500.0, "mb_per_s": 1.0});
        let mbs = median_upload_mb_per_s(&report).unwrap();
        assert!((mbs - 536.870912).abs() < 1e-9, "{mbs}");
        assert!(
            median_upload_mb_per_s(&serde_json::json!({"size_bytes": 1, "p50_ms": 0.0})).is_err()
        );
    }

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\twxlink\nVmPeak:\t 900 kB\nVmHWM:\t   2048 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1 kB\n"), None);
    }
}
