//! Set-up the test modules share: a simulator, the binary with no inherited
//! settings, and the waits and readers of a `wxlink listen` run.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;
use wxlink_sim::Simulator;

/// A simulator whose idle long polls end after 300 ms.
pub async fn sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(300))
        .start()
        .await
        .unwrap()
}

/// The binary run in `dir` with no account settings, CA certificate, h2c
/// switch or log filter inherited from the environment, stdin closed, and
/// killed when dropped.
pub fn wxlink(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxlink"));
    cmd.current_dir(dir)
        .env_remove("WXLINK_TOKEN")
        .env_remove("WXLINK_BASE_URL")
        .env_remove("WXLINK_CDN_BASE_URL")
        .env_remove("WXLINK_ACCOUNT")
        .env_remove("WXLINK_CA_CERT")
        .env_remove("WXLINK_H2C")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// What a run printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The polls (`getupdates` calls) the simulator has answered so far.
#[cfg(unix)]
pub fn polls(sim: &Simulator) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.endpoint == Some("getupdates"))
        .count()
}

/// Waits, at most 10 s, until the simulator has seen `total` polls in all;
/// `polls(&sim) + 2` waits for two more. A listener that has polled twice
/// since a message was injected has had the message handed to it.
#[cfg(unix)]
pub async fn wait_for_polls(sim: &Simulator, total: usize) {
    sim.wait_for_requests("getupdates", total, Duration::from_secs(10))
        .await
        .unwrap();
}

/// Interrupts a child with SIGINT and collects its output (at most 10 s).
#[cfg(unix)]
pub async fn interrupt(child: tokio::process::Child) -> Output {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("wxlink did not stop within 10 s after SIGINT")
        .unwrap()
}

/// The texts of the JSON message lines a `wxlink listen` run printed.
#[cfg(unix)]
pub fn texts(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["item_list"][0]["text_item"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
