//! `cargo xtask bench [--quick]`: every performance target of DESIGN.md,
//! each figure beside its ceiling as a ratio.
//!
//! Two kinds of ceiling are measured on this machine, so that a reader sees
//! how close to the limit we are without trusting an absolute time:
//!
//! - single-core `openssl speed -evp aes-128-ecb` and `-evp md5` (MD5 is
//!   serial, so it bounds an upload end to end);
//! - a bare keep-alive HTTP POST (hyper, no SDK) to the same simulator,
//!   `wxlink bench bare-post`, the ceiling of a small call. It sends the
//!   same bytes as the SDK (the §2.1 headers and the same body with its
//!   `base_info`), so the simulator does the same work for both and the
//!   ratio is the SDK's own cost.
//!
//! Our figures come from the release `wxlink bench` against a standalone
//! simulator (`wxlink sim`, a separate child process, started fresh for
//! every measurement so that the messages it records never pile up), and
//! from the `media_bench` example of `wxlink-media`. Budgets such as
//! "< 64 MiB" are shown in the ceiling column; their ratio is the share of
//! the budget used. Memory figures are the client process's own: peak RSS is
//! `VmHWM` of the `wxlink bench` process, and memory per idle long poll is
//! that process's RSS while the polls are held minus its RSS after one
//! warm-up poll, divided by the polls held. The simulator's memory is not
//! part of either; its peak is shown separately.
//!
//! Nothing here runs in CI or in tests: only the parsing and the table are
//! unit-tested, never a time.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

/// The prefix of the machine-readable lines `media_bench` prints:
/// `wxlink-bench <name> <MB/s>`.
const LINE_PREFIX: &str = "wxlink-bench";

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// Usage of this command.
const USAGE: &str = "usage: cargo xtask bench [--quick]";

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
    /// The longest one `wxlink bench` may take before it is killed.
    timeout: Duration,
}

impl Plan {
    /// The plan for the command-line flags after `bench`.
    fn from_args(args: &[String]) -> Result<Self> {
        match args {
            [] => Ok(Self::full()),
            [flag] if flag == "--quick" => Ok(Self::quick()),
            _ => bail!("{USAGE}\n  --quick   smaller counts and sizes, for a smoke run"),
        }
    }

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

/// Runs the ceilings and every benchmark and prints the table.
pub fn run(sh: &Shell) -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let plan = Plan::from_args(&args)?;
    let started = Instant::now();
    let load_before = load_average();
    println!(
        "cargo xtask bench{}: {} cores, load average {}",
        if plan.quick { " --quick" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before.as_deref().unwrap_or("unknown"),
    );

    let aes_ceiling = openssl_speed(sh, "aes-128-ecb")?;
    let md5_ceiling = openssl_speed(sh, "md5")?;
    println!("ceilings (openssl speed, one core, largest block size):");
    println!("  aes-128-ecb  {aes_ceiling:>10.1} MB/s");
    println!("  md5          {md5_ceiling:>10.1} MB/s");

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut failures = Vec::new();

    println!("\nbuilding the release wxlink binary…");
    cmd!(sh, "cargo build --release --quiet -p wxlink-cli")
        .run()
        .context("building wxlink-cli in release mode failed")?;
    let root = crate::project_root();
    let bench = Bench {
        bin: target_dir(&root).join("release").join("wxlink"),
        scratch: target_dir(&root).join("xtask-bench"),
        timeout: plan.timeout,
    };
    std::fs::create_dir_all(&bench.scratch)
        .with_context(|| format!("cannot create {}", bench.scratch.display()))?;

    match send_text_rows(&bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("send_text", &e, &mut rows)),
    }
    match upload_rows(&bench, &plan, md5_ceiling) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("upload throughput", &e, &mut rows)),
    }
    match rss_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r),
        Err(e) => failures.push(failed("upload peak RSS", &e, &mut rows)),
    }
    // Each poll over HTTP/1.1 holds a connection of its own; over h2c (the
    // CLI's --h2c) every poll shares one connection. Both are shown.
    for h2c in [false, true] {
        for (count, hold_ms) in plan.polls {
            match poll_row(&bench, count, hold_ms, h2c, &mut notes) {
                Ok(r) => rows.push(r),
                Err(e) => failures.push(failed(
                    &format!("idle polls x{count}{}", protocol_label(h2c)),
                    &e,
                    &mut rows,
                )),
            }
        }
    }
    // The simulator itself: its cost per send and its memory with many
    // idle accounts polling, so a reader sees it is not the bottleneck.
    match sim_capacity_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r),
        Err(e) => failures.push(failed("simulator capacity", &e, &mut rows)),
    }
    match sim_idle_accounts_row(&bench, &plan, &mut notes) {
        Ok(r) => rows.push(r),
        Err(e) => failures.push(failed("simulator idle accounts", &e, &mut rows)),
    }
    match idle_account_rows(sh, &bench, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("idle accounts", &e, &mut rows)),
    }
    match media_rows(sh, aes_ceiling, md5_ceiling) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("media_bench", &e, &mut rows)),
    }
    match store_rows(sh) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("store_bench", &e, &mut rows)),
    }
    match bridge_rows(sh, &plan, &mut notes) {
        Ok(r) => rows.extend(r),
        Err(e) => failures.push(failed("bridge_bench", &e, &mut rows)),
    }

    println!();
    print!("{}", render_table(&rows));
    println!();
    for note in &notes {
        println!("- {note}");
    }
    println!(
        "- load average before {}, after {}; {:.0} s in all",
        load_before.as_deref().unwrap_or("unknown"),
        load_average().as_deref().unwrap_or("unknown"),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        bail!(
            "{} measurement(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// Records a failed group: a table row that says so, and the message.
fn failed(what: &str, error: &anyhow::Error, rows: &mut Vec<Row>) -> String {
    eprintln!("xtask bench: {what} failed: {error:#}");
    rows.push(Row::failed(what));
    format!("  {what}: {error:#}")
}

/// The cargo target directory.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The first three fields of `/proc/loadavg` (Linux only).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

// ---------------------------------------------------------------------------
// Running the simulator and `wxlink bench`.

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

/// Where and how `wxlink bench` runs.
struct Bench {
    /// The release `wxlink` binary.
    bin: PathBuf,
    /// A directory for the output files of child processes.
    scratch: PathBuf,
    /// The longest one run may take.
    timeout: Duration,
}

/// What one `wxlink bench` run reported, and the simulator's peak RSS.
struct Measured {
    /// The JSON object `wxlink bench` printed.
    report: Value,
    /// The simulator's own peak RSS during the run, in bytes.
    sim_peak_rss: Option<u64>,
}

impl Bench {
    /// Starts a fresh simulator and runs `wxlink bench <args> --to USER`
    /// against it; returns the JSON object printed.
    fn measure(&self, args: &[String]) -> Result<Measured> {
        let sim = Simulator::start(&self.bin, &self.scratch.join("sim.log"))?;
        println!("  wxlink bench {}", args.join(" "));
        let report = self.run_bench(&sim, args)?;
        Ok(Measured {
            report,
            sim_peak_rss: sim.peak_rss_bytes(),
        })
    }

    /// Runs one `wxlink bench` within the timeout and parses its output.
    fn run_bench(&self, sim: &Simulator, args: &[String]) -> Result<Value> {
        let out_path = self.scratch.join("bench.out");
        let err_path = self.scratch.join("bench.err");
        let out = File::create(&out_path)?;
        let err = File::create(&err_path)?;
        let mut child = Command::new(&self.bin)
            .arg("bench")
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
            .with_context(|| format!("cannot start {} bench", self.bin.display()))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "wxlink bench {} took longer than {:?} and was killed",
                    args.join(" "),
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let report = last_json_object(&stdout);
        match report {
            Some(report) if status.success() => Ok(report),
            _ => bail!(
                "wxlink bench {} exited with {status}\nstdout: {}\nstderr: {}",
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

/// The last line of `out` that is a JSON object.
fn last_json_object(out: &str) -> Option<Value> {
    out.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(Value::is_object)
}

/// A number field of a `wxlink bench` report.
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
fn send_text_rows(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    println!(
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
        rows.push(Row {
            target: format!("send_text, {concurrency} in flight"),
            ours: Figure::new(sdk_rps, "req/s", ""),
            ceiling: Figure::new(bare_rps, "req/s", "bare POST"),
            goal: Goal::AtLeast(0.9, "≥ 90% of a bare POST"),
        });
        if concurrency == 32 {
            rows.push(Row {
                target: "send_text, 32 in flight, p99".to_owned(),
                ours: Figure::new(sdk_p99, "ms", "p99"),
                ceiling: Figure::new(2.0 * sdk_p50, "ms", "2x p50"),
                goal: Goal::Below(1.0, "p99 < 2x p50"),
            });
            // The same spread of the ceiling itself, so a reader sees how
            // much of a missed p99 goal is the server and the machine.
            rows.push(Row {
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
fn upload_rows(bench: &Bench, plan: &Plan, md5_ceiling: f64) -> Result<Vec<Row>> {
    println!(
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
    Ok(vec![Row {
        target: format!("upload {} MiB, end to end", plan.upload_size / MIB),
        ours: Figure::new(mbs, "MB/s", ""),
        ceiling: Figure::new(md5_ceiling, "MB/s", "MD5"),
        goal: Goal::AtLeast(0.7, "≥ 70% of the MD5 ceiling"),
    }])
}

/// The median upload's MB/s: `size_bytes / p50_ms` (the per-upload
/// latencies are what `wxlink bench` keeps).
fn median_upload_mb_per_s(report: &Value) -> Result<f64> {
    let size = field(report, "size_bytes")?;
    let p50_ms = field(report, "p50_ms")?;
    if p50_ms <= 0.0 {
        bail!("the upload report has no positive p50: {report}");
    }
    Ok(size / 1e6 / (p50_ms / 1000.0))
}

/// Peak RSS of the client while uploading the large file.
fn rss_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Row> {
    println!("\nupload peak RSS: 1 x {} MiB", plan.rss_upload_size / MIB);
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
    let source = report
        .get("peak_rss_source")
        .and_then(Value::as_str)
        .unwrap_or("getrusage");
    notes.push(format!(
        "upload of {} MiB: peak RSS is {source} of the `wxlink bench` process{}; {:.1} MB/s; the simulator's own peak RSS {} (not counted)",
        plan.rss_upload_size / MIB,
        if source == "VmHWM" {
            ""
        } else {
            " (getrusage: may include the parent's peak)"
        },
        field(report, "mb_per_s").unwrap_or(f64::NAN),
        mib(measured.sim_peak_rss),
    ));
    Ok(Row {
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
) -> Result<Row> {
    let label = protocol_label(h2c);
    println!("\nidle long polls{label}: {count} held for {hold_ms} ms");
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
    Ok(Row {
        target: format!("idle long polls, {count}{label}"),
        ours: Figure::new(kib, "KiB/poll", ""),
        ceiling: Figure::new(16.0, "KiB/poll", "budget"),
        goal: Goal::Below(1.0 + 1e-9, "≤ 16 KiB per poll"),
    })
}

/// Memory per idle account of the bot runtime: one `wxlink-bot` host with
/// as many accounts as the largest idle-poll row holds polls, each
/// long-polling, over HTTP/1.1 (a connection per poll) and h2c (one shared
/// connection). The figure is the `idle_accounts` example's RSS with every
/// poll held, minus its RSS with one warm-up account polling, divided by
/// the accounts.
fn idle_account_rows(
    sh: &Shell,
    bench: &Bench,
    plan: &Plan,
    notes: &mut Vec<String>,
) -> Result<Vec<Row>> {
    let count = plan.polls[1].0;
    println!(
        "
idle accounts (wxlink-bot host): {count} accounts"
    );
    cmd!(
        sh,
        "cargo build --release --quiet -p wxlink-bot --example idle_accounts"
    )
    .run()
    .context("building the idle_accounts example failed")?;
    let bin = target_dir(&crate::project_root())
        .join("release")
        .join("examples")
        .join("idle_accounts");
    let mut rows = Vec::new();
    for (h2c, budget) in [(false, 24.0), (true, 16.0)] {
        let label = protocol_label(h2c);
        let sim = Simulator::start(&bench.bin, &bench.scratch.join("sim.log"))?;
        let out_path = bench.scratch.join("idle_accounts.out");
        let out = File::create(&out_path)?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--count", &count.to_string()])
            .env("WXLINK_BASE_URL", &sim.info.base_url)
            .env("WXLINK_TOKEN", &sim.info.token)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null());
        if h2c {
            cmd.arg("--h2c");
        }
        println!(
            "  idle_accounts --count {count}{}",
            if h2c { " --h2c" } else { "" }
        );
        let mut child = cmd.spawn().context("cannot start idle_accounts")?;
        let deadline = Instant::now() + bench.timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("idle_accounts took longer than {:?}", bench.timeout);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let Some(report) = last_json_object(&stdout).filter(|_| status.success()) else {
            bail!("idle_accounts exited with {status}: {}", stdout.trim());
        };
        let kib = field(&report, "kib_per_account")?;
        let held = field(&report, "held")?;
        notes.push(format!(
            "{count} idle accounts{label} on one wxlink-bot host: ({} RSS with {held} polls held − {} with one warm-up account) / {count} = {kib:.1} KiB per account; {}; the simulator peaked at {} (not counted); the previous one-account runtime measured 55 KiB per account, 38 KiB with one shared transport (HTTP/1.1)",
            mib(Some(field(&report, "rss_bytes")? as u64)),
            mib(Some(field(&report, "baseline_rss_bytes")? as u64)),
            if report.get("own_tokens").and_then(Value::as_bool) == Some(true) {
                "each account with its own token"
            } else {
                "every account polls the simulator's one token (the simulator has one bot)"
            },
            mib(sim.peak_rss_bytes()),
        ));
        if held < count as f64 {
            bail!("only {held} of {count} accounts were polling: {report}");
        }
        rows.push(Row {
            target: format!("idle accounts, {count}{label}"),
            ours: Figure::new(kib, "KiB/account", ""),
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
    }
    Ok(rows)
}

/// The agent bridge's own overhead per turn with a zero-latency agent
/// (the engine alone, and the whole bridge on a host against an in-process
/// simulator), beside the 2 ms budget, and 1,000 conversations across 100
/// accounts at once (100 / 10 with --quick), which must all be answered
/// once with no error.
fn bridge_rows(sh: &Shell, plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    let (turns, accounts, users) = if plan.quick {
        ("500", "10", "10")
    } else {
        ("2000", "100", "10")
    };
    println!(
        "\nbridge_bench (wxlink-bridge example): --turns {turns} --accounts {accounts} --users {users}"
    );
    let output = cmd!(
        sh,
        "cargo run --release --quiet -p wxlink-bridge --example bridge_bench -- --turns {turns} --accounts {accounts} --users {users}"
    )
    .read()
    .context("running the bridge_bench example failed")?;
    let report = last_json_object(&output).context("bridge_bench printed no JSON report")?;
    let engine = &report["engine"];
    let runtime = &report["runtime"];
    let concurrent = &report["concurrent"];
    let budget = || Figure::new(2000.0, "µs", "budget");
    let below = || Goal::Below(1.0 + 1e-9, "≤ 2 ms at the median");
    let mut rows = vec![
        Row {
            target: "bridge: delivered → agent called (engine, median)".into(),
            ours: Figure::new(field(engine, "in_us_median")?, "µs", ""),
            ceiling: budget(),
            goal: below(),
        },
        Row {
            target: "bridge: agent answer → first send (engine, median)".into(),
            ours: Figure::new(field(engine, "out_us_median")?, "µs", ""),
            ceiling: budget(),
            goal: below(),
        },
        Row {
            target: "bridge: CPU per turn (engine)".into(),
            ours: Figure::new(field(engine, "cpu_us_per_turn")?, "µs", ""),
            ceiling: budget(),
            goal: below(),
        },
        Row {
            target: "bridge on the host: delivered → agent called (median)".into(),
            ours: Figure::new(field(runtime, "in_us_median")?, "µs", ""),
            ceiling: budget(),
            goal: below(),
        },
        Row {
            target: "bridge on the host: agent answer → first sendmessage (median)".into(),
            ours: Figure::new(field(runtime, "out_us_median")?, "µs", ""),
            ceiling: budget(),
            goal: below(),
        },
    ];
    notes.push(format!(
        "bridge overhead, zero-latency agent: the engine alone (one thread, an outbox that sends nothing) {:.1} µs in / {:.1} µs out at the median (p99 {:.0} / {:.0} µs), {:.1} µs CPU per turn over {} turns; on a wxlink-bot host against the in-process simulator {:.0} µs from the handler call to the agent (this includes the awaited first sendtyping and its getconfig, two loopback calls) and {:.0} µs from the answer to the simulator receiving the sendmessage (one loopback call), p99 {:.0} / {:.0} µs",
        field(engine, "in_us_median")?,
        field(engine, "out_us_median")?,
        field(engine, "in_us_p99")?,
        field(engine, "out_us_p99")?,
        field(engine, "cpu_us_per_turn")?,
        field(engine, "turns")?,
        field(runtime, "in_us_median")?,
        field(runtime, "out_us_median")?,
        field(runtime, "in_us_p99")?,
        field(runtime, "out_us_p99")?,
    ));
    let complete = concurrent.get("complete").and_then(Value::as_bool) == Some(true);
    notes.push(format!(
        "bridge: {} conversations across {} accounts at once, pacing off: {} answered, {} sent twice, {} errors, in {:.0} ms",
        field(concurrent, "conversations")?,
        field(concurrent, "accounts")?,
        field(concurrent, "answered")?,
        field(concurrent, "twice")?,
        field(concurrent, "errors")?,
        field(concurrent, "wall_ms")?,
    ));
    rows.push(Row {
        target: format!(
            "bridge: {} conversations × {} accounts",
            field(concurrent, "conversations")?,
            accounts
        ),
        ours: Figure::new(field(concurrent, "wall_ms")?, "ms", ""),
        ceiling: Figure::new(f64::NAN, "", "no error"),
        goal: Goal::Info,
    });
    if !complete {
        bail!("not every conversation was answered exactly once without error: {concurrent}");
    }
    Ok(rows)
}

/// The `media_bench` figures beside their OpenSSL ceilings. Each is the
/// median of repeated runs (the example says how many in its output, which
/// is echoed here).
fn media_rows(sh: &Shell, aes_ceiling: f64, md5_ceiling: f64) -> Result<Vec<Row>> {
    println!("\nmedia_bench (wxlink-media example, medians of repeated runs):");
    let output = cmd!(
        sh,
        "cargo run --release --quiet -p wxlink-media --example media_bench"
    )
    .read()
    .context("running the media_bench example failed")?;
    for line in output.lines().filter(|l| !l.starts_with(LINE_PREFIX)) {
        println!("  {line}");
    }
    let figures = parse_bench_lines(&output);
    if figures.is_empty() {
        bail!("media_bench printed no `{LINE_PREFIX}` lines:\n{output}");
    }
    Ok(figures
        .into_iter()
        .map(|(name, ours)| media_row(&name, ours, aes_ceiling, md5_ceiling))
        .collect())
}

/// The `store_bench` figures (wxlink-bot example): batch commits of
/// PostgresStore beside SqliteStore, and the store's takeover time beside
/// its lease period.
fn store_rows(sh: &Shell) -> Result<Vec<Row>> {
    println!("\nstore_bench (wxlink-bot example, a throwaway PostgreSQL on loopback):");
    let output = cmd!(
        sh,
        "cargo run --release --quiet -p wxlink-bot --features postgres --example store_bench"
    )
    .read()
    .context("running the store_bench example failed")?;
    let figures: std::collections::HashMap<String, f64> =
        parse_bench_lines(&output).into_iter().collect();
    let get = |name: &str| {
        figures
            .get(name)
            .copied()
            .with_context(|| format!("store_bench printed no `{name}` line:\n{output}"))
    };
    let mut rows = Vec::new();
    for shape in ["1-account", "16-accounts"] {
        rows.push(Row {
            target: format!("store_bench commits/s, {shape}, PostgreSQL vs SQLite"),
            ours: Figure::new(
                get(&format!("store-commit-postgres-{shape}"))?,
                "batches/s",
                "",
            ),
            ceiling: Figure::new(
                get(&format!("store-commit-sqlite-{shape}"))?,
                "batches/s",
                "SQLite",
            ),
            goal: Goal::Info,
        });
    }
    for (what, name) in [
        ("median", "store-takeover-900ms-lease-median-ms"),
        ("max", "store-takeover-900ms-lease-max-ms"),
    ] {
        rows.push(Row {
            target: format!("store_bench takeover after a runner stops, {what} of 7"),
            ours: Figure::new(get(name)?, "ms", ""),
            ceiling: Figure::new(900.0, "ms", "lease"),
            goal: Goal::Info,
        });
    }
    Ok(rows)
}

/// One `media_bench` figure as a row: encryption beside AES, everything
/// else beside MD5, which bounds both the digest pass and a whole upload.
/// Only the uploads have a DESIGN.md goal.
fn media_row(name: &str, ours: f64, aes_ceiling: f64, md5_ceiling: f64) -> Row {
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
    Row {
        target: media_target(name),
        ours: Figure::new(ours, "MB/s", ""),
        ceiling,
        goal,
    }
}

/// The row title of a `media_bench` figure.
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
        "encrypt" => "media_bench encrypt, streaming (headline)".to_owned(),
        "encrypt_cached" => "media_bench encrypt_cached, one hot chunk (reference)".to_owned(),
        _ => format!("media_bench {name}"),
    }
}

/// Runs `openssl speed -evp <algo> -seconds 2` and returns the throughput of
/// the largest block size in MB/s (10^6 bytes per second).
fn openssl_speed(sh: &Shell, algo: &str) -> Result<f64> {
    let out = cmd!(sh, "openssl speed -evp {algo} -seconds 2")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("`openssl speed -evp {algo}` failed; is openssl installed?"))?;
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

/// Collects the `wxlink-bench <name> <MB/s>` lines of the example's output.
fn parse_bench_lines(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != LINE_PREFIX {
                return None;
            }
            let name = words.next()?.to_owned();
            let value = words.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The table.

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

    /// `12,345 req/s (bare POST)`.
    fn cell(&self) -> String {
        let number = if self.value.abs() >= 100.0 {
            group_thousands(self.value.round() as i64)
        } else if self.value.abs() >= 10.0 {
            format!("{:.1}", self.value)
        } else {
            format!("{:.2}", self.value)
        };
        if self.label.is_empty() {
            format!("{number} {}", self.unit)
        } else {
            format!("{number} {} ({})", self.unit, self.label)
        }
    }
}

/// `1234567` → `1,234,567`.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A DESIGN.md goal, stated on the ratio ours / ceiling.
#[derive(Debug, Clone, PartialEq)]
enum Goal {
    /// The ratio must be at least this.
    AtLeast(f64, &'static str),
    /// The ratio must stay below this.
    Below(f64, &'static str),
    /// No goal: shown for information.
    Info,
}

impl Goal {
    /// Whether `ratio` meets the goal; `None` without a goal.
    fn met(&self, ratio: f64) -> Option<bool> {
        match *self {
            Goal::AtLeast(min, _) => Some(ratio >= min),
            Goal::Below(max, _) => Some(ratio < max),
            Goal::Info => None,
        }
    }

    /// The goal as DESIGN.md words it.
    fn text(&self) -> &'static str {
        match self {
            Goal::AtLeast(_, t) | Goal::Below(_, t) => t,
            Goal::Info => "—",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// What is measured.
    target: String,
    /// Our figure.
    ours: Figure,
    /// The ceiling or budget it is compared with.
    ceiling: Figure,
    /// The goal on ours / ceiling.
    goal: Goal,
}

impl Row {
    /// A row for a measurement that failed (NaN figures print as such).
    fn failed(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            ours: Figure::new(f64::NAN, "", "failed"),
            ceiling: Figure::new(f64::NAN, "", ""),
            goal: Goal::Info,
        }
    }

    /// ours / ceiling; `None` when either is not a finite number or the
    /// ceiling is zero.
    fn ratio(&self) -> Option<f64> {
        let r = self.ours.value / self.ceiling.value;
        r.is_finite().then_some(r)
    }

    /// The cells: target, ours, ceiling, ratio, goal, met?
    fn cells(&self) -> [String; 6] {
        let ratio = self.ratio();
        let failed = !self.ours.value.is_finite();
        let met = match ratio.and_then(|r| self.goal.met(r)) {
            _ if failed => "FAILED",
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        };
        [
            self.target.clone(),
            if failed {
                "failed".to_owned()
            } else {
                self.ours.cell()
            },
            if failed {
                "—".to_owned()
            } else {
                self.ceiling.cell()
            },
            ratio.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", 100.0 * r)),
            self.goal.text().to_owned(),
            met.to_owned(),
        ]
    }
}

/// The rows as a Markdown table with aligned columns.
fn render_table(rows: &[Row]) -> String {
    let header = [
        "target",
        "ours",
        "ceiling",
        "ratio",
        "DESIGN.md goal",
        "met?",
    ]
    .map(str::to_owned);
    let body: Vec<[String; 6]> = rows.iter().map(Row::cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for cells in &body {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 6]| {
        let mut s = String::from("|");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            // Numbers and the ratio read best right-aligned.
            if (1..=3).contains(&i) {
                let _ = write!(s, " {pad}{c} |");
            } else {
                let _ = write!(s, " {c}{pad} |");
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if (1..=3).contains(&i) {
            let _ = write!(out, " {}: |", &dashes[1..]);
        } else {
            let _ = write!(out, " {dashes} |");
        }
    }
    out.push('\n');
    for cells in &body {
        out.push_str(&line(cells));
    }
    out
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
fn sim_capacity_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Row> {
    println!(
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
    Ok(Row {
        target: "simulator capacity, sendmessage, 32 in flight".to_owned(),
        ours: Figure::new(capacity, "req/s", "per sim core"),
        ceiling: Figure::new(client_rps, "req/s", "client send_text"),
        goal: Goal::AtLeast(2.0, "≥ 2x the client's rate"),
    })
}

/// The simulator's RSS with one idle long poll held on each of many
/// accounts (10 000, or 1 000 with `--quick`), each on its own token and
/// connection, against the 200 MiB budget.
fn sim_idle_accounts_row(bench: &Bench, plan: &Plan, notes: &mut Vec<String>) -> Result<Row> {
    use std::io::{Read as _, Write as _};
    let n: usize = if plan.quick { 1_000 } else { 10_000 };
    println!(
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
    Ok(Row {
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
    fn reads_only_prefixed_bench_lines() {
        let out = "warming up\nwxlink-bench encrypt 8123.5\nnoise 1 2\nwxlink-bench md5 600\n";
        assert_eq!(
            parse_bench_lines(out),
            vec![("encrypt".to_owned(), 8123.5), ("md5".to_owned(), 600.0)]
        );
    }

    #[test]
    fn streaming_encrypt_is_the_headline_beside_the_aes_ceiling() {
        let (aes, md5) = (8_000.0, 600.0);
        let streaming = media_row("encrypt", 4_000.0, aes, md5);
        assert!(streaming.target.contains("headline"), "{streaming:?}");
        assert_eq!(streaming.ceiling, Figure::new(aes, "MB/s", "aes-128-ecb"));
        assert_eq!(streaming.cells()[3], "50%");
        let cached = media_row("encrypt_cached", 9_000.0, aes, md5);
        assert!(cached.target.contains("reference"), "{cached:?}");
        assert!(!cached.target.contains("headline"), "{cached:?}");
        assert_eq!(cached.ceiling.label, "aes-128-ecb");
        let digest = media_row("md5", 580.0, aes, md5);
        assert_eq!(
            (digest.target.as_str(), digest.ceiling.label),
            ("media_bench md5", "MD5")
        );
        assert_eq!(digest.goal, Goal::Info);
        let upload = media_row("upload_256mib", 450.0, aes, md5);
        assert_eq!(upload.ceiling.label, "MD5");
        assert_eq!(upload.cells()[5], "yes");
    }

    #[test]
    fn only_no_flags_or_quick_are_accepted() {
        assert_eq!(Plan::from_args(&[]).unwrap(), Plan::full());
        let quick = Plan::from_args(&["--quick".to_owned()]).unwrap();
        assert!(quick.quick && quick.send_count < Plan::full().send_count);
        assert!(quick.rss_upload_size < Plan::full().rss_upload_size);
        assert!(Plan::from_args(&["--fast".to_owned()]).is_err());
        assert_eq!(Plan::full().rss_upload_size, 1 << 30);
        assert_eq!(Plan::full().polls, [(1_000, 3_000), (10_000, 5_000)]);
    }

    #[test]
    fn reads_the_sim_line_and_the_last_json_object_of_a_bench() {
        let sim: SimInfo = serde_json::from_str(
            r#"{"base_url":"http://127.0.0.1:1","bot_id":"b@im.bot","cdn_base_url":"http://127.0.0.1:1/c2c","token":"t","user_id":"u@im.wechat"}"#,
        )
        .unwrap();
        assert_eq!(sim.user_id, "u@im.wechat");

        let out = "note\n{\"bench\":\"x\",\"requests_per_s\":1}\n[1,2]\n{\"bench\":\"send-text\",\"requests_per_s\":12000.5,\"p50_ms\":0.08,\"p99_ms\":0.3}\n";
        let report = last_json_object(out).unwrap();
        assert_eq!(field(&report, "requests_per_s").unwrap(), 12000.5);
        assert!(field(&report, "mb_per_s").is_err());
        assert!(last_json_object("no json here\n[1]\n").is_none());

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

    #[test]
    fn goals_judge_the_ratio() {
        let row = |ours: f64, ceiling: f64, goal: Goal| Row {
            target: "t".into(),
            ours: Figure::new(ours, "req/s", ""),
            ceiling: Figure::new(ceiling, "req/s", "bare POST"),
            goal,
        };
        let at_least = || Goal::AtLeast(0.9, "≥ 90%");
        assert_eq!(
            row(9_500.0, 10_000.0, at_least()).cells()[3..],
            ["95%", "≥ 90%", "yes"]
        );
        assert_eq!(row(8_000.0, 10_000.0, at_least()).cells()[5], "no");
        let below = || Goal::Below(1.0, "< 64 MiB");
        assert_eq!(
            row(70.0, 64.0, below()).cells()[3..],
            ["109%", "< 64 MiB", "no"]
        );
        assert_eq!(row(20.0, 64.0, below()).cells()[5], "yes");
        assert_eq!(row(1.0, 2.0, Goal::Info).cells()[5], "—");
        assert_eq!(row(1.0, 0.0, at_least()).ratio(), None);
        let failed = Row::failed("upload").cells();
        assert_eq!(failed[1], "failed");
        assert_eq!(failed[5], "FAILED");
    }

    #[test]
    fn figures_are_readable() {
        assert_eq!(
            Figure::new(12_345.6, "req/s", "bare POST").cell(),
            "12,346 req/s (bare POST)"
        );
        assert_eq!(Figure::new(27.512, "KiB/poll", "").cell(), "27.5 KiB/poll");
        assert_eq!(Figure::new(0.4712, "ms", "p99").cell(), "0.47 ms (p99)");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-999), "-999");
    }

    #[test]
    fn the_table_has_aligned_columns_and_one_line_per_row() {
        let rows = vec![
            Row {
                target: "send_text, 1 in flight".into(),
                ours: Figure::new(30_000.0, "req/s", ""),
                ceiling: Figure::new(32_000.0, "req/s", "bare POST"),
                goal: Goal::AtLeast(0.9, "≥ 90% of a bare POST"),
            },
            Row::failed("idle long polls, 10000"),
        ];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("| target "), "{table}");
        assert!(
            lines[2].contains("| 30,000 req/s |") && lines[2].contains("94%"),
            "{table}"
        );
        assert!(lines[2].ends_with("| yes    |"), "{table}");
        assert!(lines[3].ends_with("| FAILED |"), "{table}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    }
}
