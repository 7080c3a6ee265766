//! The load subcommands against an in-process simulator, pointed at it
//! through the WXLINK_* variables as a user would point them at any iLink
//! server.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use wxlink_sim::Simulator;

/// A simulator whose idle long polls end after 300 ms.
async fn sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(300))
        .start()
        .await
        .unwrap()
}

/// The binary pointed at `sim`.
fn bench_at(sim: &Simulator) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxlink-bench"));
    cmd.env("WXLINK_TOKEN", sim.token().expose_secret())
        .env("WXLINK_BASE_URL", sim.base_url())
        .env("WXLINK_CDN_BASE_URL", sim.cdn_base_url())
        .kill_on_drop(true);
    cmd
}

/// Runs a command to completion, at most 30 s.
async fn run(cmd: &mut Command) -> Output {
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("wxlink-bench did not finish within 30 s")
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows on stdout as one object of name → value; every line must be
/// a row.
fn figures(out: &Output) -> Value {
    let mut fields = serde_json::Map::new();
    for line in stdout(out).lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let name = row["name"].as_str().unwrap().to_owned();
        assert!(row["unit"].is_string(), "{row}");
        fields.insert(name, row["value"].clone());
    }
    Value::Object(fields)
}

/// Every row names the command that reproduces it.
fn assert_commands(out: &Output, command: &str) {
    for line in stdout(out).lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["command"], command, "{row}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_text_prints_its_figures_as_rows() {
    let sim = sim().await;
    let out = run(bench_at(&sim).args([
        "send-text",
        "--count",
        "40",
        "--concurrency",
        "4",
        "--to",
        &sim.user_id(),
    ]))
    .await;
    assert_ok(&out);
    let report = figures(&out);
    assert_commands(&out, "wxlink-bench send-text --count 40 --concurrency 4");
    assert_eq!(report["errors"].as_f64(), Some(0.0));
    assert!(report["requests_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["p99_ms"].as_f64().unwrap() >= report["p50_ms"].as_f64().unwrap());
    assert!(report["peak_rss_bytes"].as_f64().unwrap() > 0.0);
    assert_eq!(sim.sent_messages().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_streams_generated_payloads() {
    let sim = sim().await;
    let out = run(bench_at(&sim).args([
        "upload",
        "--count",
        "2",
        "--size",
        "300000",
        "--to",
        &sim.user_id(),
    ]))
    .await;
    assert_ok(&out);
    let report = figures(&out);
    assert_commands(
        &out,
        "wxlink-bench upload --count 2 --concurrency 1 --size 300000",
    );
    assert_eq!(report["errors"].as_f64(), Some(0.0));
    assert!(report["mb_per_s"].as_f64().unwrap() > 0.0);
    let uploads = sim.uploads();
    assert_eq!(uploads.len(), 2);
    assert!(
        uploads
            .iter()
            .all(|u| u.rawsize == 300_000 && u.error.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_holds_idle_polls_and_reports_memory_per_poll() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let out = run(bench_at(&sim).args(["poll", "--count", "50", "--hold-ms", "500"])).await;
    assert_ok(&out);
    let report = figures(&out);
    assert_commands(&out, "wxlink-bench poll --count 50 --hold-ms 500");
    assert_eq!(report["held"].as_f64(), Some(50.0));
    assert!(report["bytes_per_poll"].as_f64().is_some(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_post_sends_what_the_sdk_sends_without_it() {
    let sim = sim().await;
    let out = run(bench_at(&sim).args([
        "bare-post",
        "--count",
        "30",
        "--concurrency",
        "3",
        "--to",
        &sim.user_id(),
    ]))
    .await;
    assert_ok(&out);
    let report = figures(&out);
    assert_commands(&out, "wxlink-bench bare-post --count 30 --concurrency 3");
    assert_eq!(report["errors"].as_f64(), Some(0.0));
    // The server accepted every one as a well-formed bot reply.
    assert_eq!(sim.sent_messages().len(), 30);

    // The ceiling sends what the SDK sends: the same header names and a body
    // of the same size, so the server's work per call is the same for both.
    // One call of each, so both texts are "wxlink bench message 0".
    for kind in ["bare-post", "send-text"] {
        let one = run(bench_at(&sim).args([
            kind,
            "--count",
            "1",
            "--warmup",
            "0",
            "--to",
            &sim.user_id(),
        ]))
        .await;
        assert_ok(&one);
    }
    let log: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.endpoint == Some("sendmessage"))
        .collect();
    let (bare, ours) = (&log[log.len() - 2], &log[log.len() - 1]);
    let names = |r: &wxlink_sim::RequestRecord| {
        let mut names: Vec<String> = r.headers.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(names(bare), names(ours));
    assert!(names(ours).contains(&"x-wechat-uin".to_owned()));
    assert_eq!(bare.body_size, ours.body_size);
}
