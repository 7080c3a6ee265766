//! `cargo xtask examples`: runs the examples a user would copy first, against
//! a standalone `wxlink-sim`, and checks what the simulator saw.
//!
//! Building an example proves only that it compiles; this proves it still
//! does its job. Each example is run as a user would run it (its own process,
//! the flags its doc comment shows) and is given a deadline, so a hang fails
//! the run instead of stalling CI. The load tools live in `wxlink-bench`
//! and run under `cargo xtask bench`, not here.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use xshell::{Shell, cmd};

/// How long one example may run before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// Builds the simulator and the examples (the client's and the bot
/// runtime's), then runs each example.
pub fn run(sh: &Shell) -> Result<()> {
    // `--examples` builds with the dev-dependencies, like the test build, so
    // after `cargo xtask test` this mostly reuses what is already built.
    cmd!(
        sh,
        "cargo build --locked --workspace --bins --examples --exclude xtask"
    )
    .run()?;
    let debug = target_dir(sh)?.join("debug");
    let scratch = debug.join("xtask-examples");
    // A leftover from an earlier run would let a check pass on old files.
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;

    let sim = Sim::start(&debug.join("wxlink-sim"), &scratch.join("sim.log"))?;
    let example = |name: &str| debug.join("examples").join(name);
    let url = sim.base_url.clone();

    // echo_bot: a text injected for the bot comes back to the user.
    sim.post(
        "/_sim/inject/text",
        r#"{"text":"ping from cargo xtask examples"}"#,
    )?;
    run_example(
        &example("echo_bot"),
        &["--sim-url", &url, "--max-messages", "1"],
        &scratch,
    )?;
    let sent = sim.get("/_sim/sent")?;
    ensure!(
        sent.to_string().contains("ping from cargo xtask examples"),
        "echo_bot exited, but the simulator recorded no echo of the injected text: {sent}"
    );
    println!("examples: echo_bot echoed the injected text");

    // send_media: a PNG file is uploaded through the CDN and sent as an image.
    let png = scratch.join("chart.png");
    std::fs::write(&png, tiny_png())?;
    let uploads_before = count(&sim.get("/_sim/uploads")?);
    let png_arg = png.to_string_lossy().into_owned();
    run_example(
        &example("send_media"),
        &["--sim-url", &url, "--caption", "the chart", &png_arg],
        &scratch,
    )?;
    let uploads = sim.get("/_sim/uploads")?;
    ensure!(
        count(&uploads) == uploads_before + 1,
        "send_media exited, but the simulator recorded {} uploads instead of {}: {uploads}",
        count(&uploads),
        uploads_before + 1
    );
    let sent = sim.get("/_sim/sent")?.to_string();
    ensure!(
        sent.contains("the chart") && sent.contains("image_item"),
        "send_media exited, but no caption and image were sent: {sent}"
    );
    println!("examples: send_media uploaded the file and sent it as an image with its caption");

    // login: the simulator's scripted QR login ends in an account file.
    let account = scratch.join("account.json");
    let account_arg = account.to_string_lossy().into_owned();
    run_example(
        &example("login"),
        &["--sim-url", &url, "--out", &account_arg],
        &scratch,
    )?;
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(&account)
            .with_context(|| format!("login exited but wrote no {}", account.display()))?,
    )
    .context("login wrote an account file that is not JSON")?;
    for key in ["token", "base_url"] {
        ensure!(
            record
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty()),
            "the account file login wrote has no `{key}`"
        );
    }
    println!("examples: login wrote an account file with a token and a base URL");

    // stream_bot (wxlink-bot's host): its own in-process simulator, three
    // echoes, then a clean exit.
    let db = scratch.join("bot.db").to_string_lossy().into_owned();
    let out = run_example(
        &example("stream_bot"),
        &[&db, "--sim", "--max", "3"],
        &scratch,
    )?;
    ensure!(
        Path::new(&db).exists(),
        "stream_bot exited but left no state file; it printed:\n{out}"
    );
    println!("examples: stream_bot answered three messages and kept its state file");

    println!("xtask examples: all examples ran");
    Ok(())
}

/// Cargo's target directory (it honours `CARGO_TARGET_DIR`).
fn target_dir(sh: &Shell) -> Result<PathBuf> {
    let meta = cmd!(sh, "cargo metadata --locked --format-version 1 --no-deps")
        .quiet()
        .read()?;
    let meta: Value = serde_json::from_str(&meta).context("cargo metadata printed no JSON")?;
    meta.get("target_directory")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .context("cargo metadata names no target directory")
}

/// Runs one example to completion within [`DEADLINE`]; fails on a non-zero
/// exit and returns what it printed on stdout.
fn run_example(bin: &Path, args: &[&str], scratch: &Path) -> Result<String> {
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("examples: {name} {}", args.join(" "));
    let out_path = scratch.join(format!("{name}.out"));
    let err_path = scratch.join(format!("{name}.err"));
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("WXLINK_ACCOUNT")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let status = wait(&mut child, DEADLINE);
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(stdout),
        Some(status) => bail!("{name} exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        None => bail!(
            "{name} was still running after {DEADLINE:?} and was killed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ),
    }
}

/// Waits for `child` up to `limit`; kills it and returns `None` after that.
fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The number of entries of a JSON array (0 for anything else).
fn count(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// A standalone `wxlink-sim` process, killed on drop.
struct Sim {
    child: Child,
    base_url: String,
    /// `host:port` of the API listener.
    addr: String,
    /// Kept open so the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Sim {
    /// Starts the simulator with a short hold (the examples poll it) and
    /// reads the addresses it prints first.
    fn start(bin: &Path, log: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["--hold-ms", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the simulator's stdout was not captured");
        };
        let mut sim = Self {
            child,
            base_url: String::new(),
            addr: String::new(),
            _stdout: BufReader::new(stdout),
        };
        let mut line = String::new();
        sim._stdout
            .read_line(&mut line)
            .context("cannot read the simulator's first line")?;
        let info: Value = serde_json::from_str(line.trim()).with_context(|| {
            format!(
                "the simulator's first line is not its JSON addresses (see {}): {line:?}",
                log.display()
            )
        })?;
        sim.base_url = info
            .get("base_url")
            .and_then(Value::as_str)
            .context("the simulator printed no base_url")?
            .trim_end_matches('/')
            .to_owned();
        sim.addr = sim
            .base_url
            .strip_prefix("http://")
            .context("the simulator's base_url is not http://")?
            .to_owned();
        Ok(sim)
    }

    /// `GET path` on the control API, as JSON.
    fn get(&self, path: &str) -> Result<Value> {
        self.request("GET", path, "")
    }

    /// `POST path` with a JSON body on the control API.
    fn post(&self, path: &str, body: &str) -> Result<Value> {
        self.request("POST", path, body)
    }

    /// One HTTP/1.1 request on a fresh connection; the response must be 200
    /// with a JSON body (or none).
    fn request(&self, method: &str, path: &str, body: &str) -> Result<Value> {
        let mut stream = TcpStream::connect(&self.addr)
            .with_context(|| format!("cannot connect to the simulator at {}", self.addr))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("{method} {path}: not an HTTP response: {text:?}"))?;
        ensure!(
            head.starts_with("HTTP/1.1 200"),
            "{method} {path} answered {}",
            head.lines().next().unwrap_or_default()
        );
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)?
        } else {
            payload.to_owned()
        };
        if payload.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&payload)
            .with_context(|| format!("{method} {path} answered a body that is not JSON: {payload}"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Joins the chunks of a `transfer-encoding: chunked` body.
fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .context("a chunk without a size line")?;
        let size = usize::from_str_radix(size.trim(), 16)
            .with_context(|| format!("a chunk size that is not hex: {size:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).context("a chunk shorter than its size")?;
        out.push_str(chunk);
        rest = after
            .get(size..)
            .unwrap_or_default()
            .trim_start_matches("\r\n");
    }
}

/// The smallest valid PNG: one transparent pixel.
fn tiny_png() -> Vec<u8> {
    const PNG: [u8; 67] = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    PNG.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap(),
            "Wikipedia"
        );
        assert!(dechunk("zz\r\nWiki").is_err());
        assert!(dechunk("9\r\nWiki\r\n").is_err());
    }

    #[test]
    fn the_png_is_recognised_as_a_png() {
        let png = tiny_png();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    }
}
