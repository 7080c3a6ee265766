//! The `wxlink` binary against a simulator: send, listen, typing, login,
//! session expiry, log verbosity and the standalone `wxlink sim`.
//!
//! Each test starts its own simulator in-process and points the binary at
//! it through the WXLINK_* variables or flags, exactly as a user would
//! point it at any iLink server.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wxlink_media::{AesKey, KeyEncoding, MediaKind};
use wxlink_sim::{LoginScript, Simulator};

use crate::support::{free_port, sim, stderr, stdout, wxlink};
#[cfg(unix)]
use crate::support::{interrupt, texts, wait_for_polls};

/// The binary pointed at `sim` through the environment.
fn wxlink_at(sim: &Simulator, dir: &Path) -> Command {
    let mut cmd = wxlink(dir);
    cmd.env("WXLINK_TOKEN", sim.token().expose_secret())
        .env("WXLINK_BASE_URL", sim.base_url())
        .env("WXLINK_CDN_BASE_URL", sim.cdn_base_url());
    cmd
}

/// The binary pointed at `sim` by the `--base-url` and `--cdn-base-url`
/// flags, with no token: how `wxlink login` is run.
fn wxlink_by_flags(sim: &Simulator, dir: &Path) -> Command {
    let mut cmd = wxlink(dir);
    cmd.args([
        "--base-url",
        &sim.base_url(),
        "--cdn-base-url",
        &sim.cdn_base_url(),
    ]);
    cmd
}

/// A standalone `wxlink sim` child and the JSON line it printed first: its
/// addresses, the first account's `token` and `user_id`, and `accounts`.
struct SimCommand {
    child: Child,
    info: serde_json::Value,
    /// The rest of its stdout, kept open so that it can go on writing.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl SimCommand {
    /// Spawns `cmd` (a `wxlink sim` command) and reads its first line, at
    /// most 10 s.
    async fn start(cmd: &mut Command) -> SimCommand {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let info = serde_json::from_str(&first).unwrap();
        SimCommand {
            child,
            info,
            _stdout: lines,
        }
    }

    /// Runs `wxlink send --text <text>` in `dir` to the user of `account`
    /// (an entry of `accounts`, or the first line itself for the first
    /// account) on that account's token, pointed at this simulator by
    /// flags alone.
    async fn send(&self, dir: &Path, account: &serde_json::Value, text: &str) -> Output {
        let field = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap().to_owned();
        run(wxlink(dir).args([
            "--base-url",
            &field(&self.info, "base_url"),
            "--cdn-base-url",
            &field(&self.info, "cdn_base_url"),
            "--token",
            &field(account, "token"),
            "send",
            "--to",
            &field(account, "user_id"),
            "--text",
            text,
        ]))
        .await
    }

    /// Stops the simulator.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Runs `cmd` with `send --to <the simulator's user> --text hi` appended,
/// and checks that it succeeded and that this was the first message the
/// simulator received.
async fn sends_the_first_message(sim: &Simulator, cmd: &mut Command) {
    let out = run(cmd.args(["send", "--to", &sim.user_id(), "--text", "hi"])).await;
    assert_ok(&out);
    assert_eq!(sim.sent_messages().len(), 1);
}

/// Runs a command to completion, at most 30 s.
async fn run(cmd: &mut Command) -> Output {
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("wxlink did not finish within 30 s")
        .unwrap()
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Fetches a media reference from the simulated CDN and decrypts it.
async fn fetch_media(sim: &Simulator, media: &wxlink_proto::CdnMedia) -> Vec<u8> {
    let param = media.encrypt_query_param.as_deref().unwrap();
    let mut encoded = String::new();
    for b in param.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let url = format!(
        "{}/download?encrypted_query_param={encoded}",
        sim.cdn_base_url()
    );
    let body = http_get(&url).await;
    let (key, _) = AesKey::parse_inbound(media.aes_key.as_ref().unwrap().expose_secret()).unwrap();
    wxlink_media::crypto::decrypt(&key, &body).unwrap()
}

/// A minimal HTTP/1.1 GET over a fresh connection (`Connection: close`).
async fn http_get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let body = &raw[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    }
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Serves `body` with `content_type` at any path on 127.0.0.1 for as long
/// as the returned task lives.
async fn serve_bytes(
    body: Vec<u8>,
    content_type: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                // Read the request head, then answer and close.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/files/report.png"), task)
}

/// A small valid PNG (1×1, red), enough for magic-byte detection.
fn tiny_png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&[
        0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77,
        0x53, 0xDE, 0, 0, 0, 12, b'I', b'D', b'A', b'T', 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0, 0,
        3, 1, 1, 0, 0x18, 0xDD, 0x8D, 0xB0, 0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60,
        0x82,
    ]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_text_prints_the_message_id_and_reaches_the_user() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let user = sim.user_id();
    let out = run(wxlink_at(&sim, dir.path()).args([
        "send",
        "--to",
        &user,
        "--context-token",
        "ctx-123",
        "--text",
        "hello from the cli",
    ]))
    .await;
    assert_ok(&out);
    // Without --h2c a plain http:// server is spoken to over HTTP/1.1.
    assert!(
        sim.request_log()
            .iter()
            .all(|r| r.http_version == "HTTP/1.1"),
        "{:?}",
        sim.request_log()
    );
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 1, "{}", stdout(&out));
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text(), Some("hello from the cli"));
    assert_eq!(sent[0].to_user_id(), user);
    assert_eq!(sent[0].msg.client_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(
        sent[0]
            .msg
            .context_token
            .as_ref()
            .map(|c| c.expose_secret().to_owned()),
        Some("ctx-123".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_is_sent_in_chunks_that_join_up() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = "line one is here\nline two is here\nline three\n最后一行";
    let out = run(wxlink_at(&sim, dir.path()).args([
        "send",
        "--to",
        &sim.user_id(),
        "--chunk",
        "20",
        "--text",
        text,
    ]))
    .await;
    assert_ok(&out);
    let sent = sim.sent_messages();
    assert!(sent.len() >= 3, "{} messages", sent.len());
    assert_eq!(stdout(&out).lines().count(), sent.len());
    let joined: String = sent.iter().map(|s| s.text().unwrap()).collect();
    assert_eq!(joined, text);
    assert!(sent.iter().all(|s| s.text().unwrap().chars().count() <= 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_file_uploads_it_encrypted_and_sends_a_file_item() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("data.bin"), &content).unwrap();
    let out = run(wxlink_at(&sim, dir.path()).args([
        "send",
        "--to",
        &sim.user_id(),
        "--file",
        "data.bin",
        "--caption",
        "here is the data",
    ]))
    .await;
    assert_ok(&out);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2, "caption, then the file");
    assert_eq!(sent[0].text(), Some("here is the data"));
    let file = sent[1].msg.item_list[0].file_item.as_ref().unwrap();
    assert_eq!(file.file_name.as_deref(), Some("data.bin"));
    assert_eq!(file.len.as_deref(), Some("50000"));
    assert_eq!(
        fetch_media(&sim, file.media.as_ref().unwrap()).await,
        content
    );
    // The printed ids are the messages' ids.
    let printed = stdout(&out);
    assert!(
        printed.contains(sent[1].msg.client_id.as_deref().unwrap()),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_sends_text_and_uploads_a_file_over_http2_without_tls() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..20_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(dir.path().join("h2.bin"), &content).unwrap();
    let out = run(wxlink_at(&sim, dir.path()).args([
        "--h2c",
        "send",
        "--to",
        &sim.user_id(),
        "--file",
        "h2.bin",
        "--caption",
        "over h2c",
    ]))
    .await;
    assert_ok(&out);
    // Every API and CDN call the binary made went over HTTP/2.
    let log = sim.request_log();
    assert!(log.len() >= 4, "{log:?}");
    for record in &log {
        assert_eq!(record.http_version, "HTTP/2.0", "{record:?}");
    }
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2, "caption, then the file");
    assert_eq!(sent[0].text(), Some("over h2c"));
    let file = sent[1].msg.item_list[0].file_item.as_ref().unwrap();
    assert_eq!(
        fetch_media(&sim, file.media.as_ref().unwrap()).await,
        content
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_url_downloads_it_and_sends_the_inferred_kind() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let png = tiny_png();
    let (url, server) = serve_bytes(png.clone(), "image/png").await;
    // Without the flag, a loopback URL is refused and nothing is sent.
    let refused =
        run(wxlink_at(&sim, dir.path()).args(["send", "--to", &sim.user_id(), "--url", &url]))
            .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(sim.sent_messages().is_empty());
    let out = run(wxlink_at(&sim, dir.path()).args([
        "send",
        "--to",
        &sim.user_id(),
        "--url",
        &url,
        "--url-allow-loopback",
    ]))
    .await;
    assert_ok(&out);
    server.abort();
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    let image = sent[0].msg.item_list[0]
        .image_item
        .as_ref()
        .expect("an image item");
    assert_eq!(fetch_media(&sim, image.media.as_ref().unwrap()).await, png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_once_prints_one_json_line_and_saves_the_cursor() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let first = sim.inject_text(sim.user_id(), "first message");
    let out =
        run(wxlink_at(&sim, dir.path()).args(["listen", "--once", "--cursor-file", "bot.cursor"]))
            .await;
    assert_ok(&out);
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    let msg: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(msg["item_list"][0]["text_item"]["text"], "first message");
    assert_eq!(msg["from_user_id"], sim.user_id());
    // The 64-bit id is exact, not rounded through a double.
    assert!(
        lines[0].contains(&format!("\"message_id\":{}", first.message_id)),
        "{}",
        lines[0]
    );
    assert_eq!(msg["context_token"], first.context_token.expose_secret());

    let cursor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bot.cursor")).unwrap()).unwrap();
    let saved = cursor["get_updates_buf"].as_str().unwrap().to_owned();
    assert!(!saved.is_empty());

    // A second run resumes from the saved cursor and sees only the new message.
    sim.inject_text(sim.user_id(), "second message");
    let out =
        run(wxlink_at(&sim, dir.path()).args(["listen", "--once", "--cursor-file", "bot.cursor"]))
            .await;
    assert_ok(&out);
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    assert!(lines[0].contains("second message"));
    let requests = sim
        .wait_for_requests("getupdates", 2, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(requests.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_downloads_inbound_media_into_the_directory() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let png = tiny_png();
    sim.inject_media(
        sim.user_id(),
        MediaKind::Image,
        &png,
        KeyEncoding::Base64Raw,
    )
    .unwrap();
    let out =
        run(wxlink_at(&sim, dir.path()).args(["listen", "--once", "--download-dir", "inbox"]))
            .await;
    assert_ok(&out);
    let msg: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let path = msg["downloaded"][0].as_str().expect("a downloaded path");
    assert!(
        path.ends_with(".png"),
        "named after the detected type: {path}"
    );
    let saved = std::fs::read(dir.path().join(path))
        .or_else(|_| std::fs::read(path))
        .unwrap();
    assert_eq!(saved, png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_shows_and_cancels_the_indicator() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let user = sim.user_id();
    assert_ok(&run(wxlink_at(&sim, dir.path()).args(["typing", "--to", &user])).await);
    assert_ok(&run(wxlink_at(&sim, dir.path()).args(["typing", "--to", &user, "--cancel"])).await);
    let calls = sim.typing_calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [1, 2]);
    assert!(calls.iter().all(|c| c.ilink_user_id == user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_says_to_log_in_again() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.expire_session();
    let out =
        run(wxlink_at(&sim, dir.path()).args(["send", "--to", &sim.user_id(), "--text", "hi"]))
            .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("-14"), "{err}");
    assert!(err.contains("wxlink login"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_environment() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    // The environment holds a wrong token; the flag wins.
    sends_the_first_message(
        &sim,
        wxlink_at(&sim, dir.path())
            .env("WXLINK_TOKEN", "not-a-valid-token")
            .args(["--token", sim.token().expose_secret()]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_writes_a_private_account_file_that_send_can_use() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.script_login(LoginScript::confirm());
    let out = run(wxlink_by_flags(&sim, dir.path()).args(["login", "--out", "bot.json"])).await;
    assert_ok(&out);
    let printed = stdout(&out);
    assert!(
        printed.contains('█') || printed.contains('▀'),
        "no QR drawn:\n{printed}"
    );
    assert!(printed.contains("http://"), "no QR URL printed:\n{printed}");

    let path = dir.path().join("bot.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(account["token"], sim.token().expose_secret());
    assert_eq!(account["account_id"], sim.bot_id());
    assert_eq!(account["user_id"], sim.user_id());
    assert!(
        account["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
    assert_eq!(account["cdn_base_url"], sim.cdn_base_url());
    // No secret in the log output.
    assert!(!stderr(&out).contains(sim.token().expose_secret()));

    // The file works as --account.
    sends_the_first_message(&sim, wxlink(dir.path()).args(["--account", "bot.json"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_asks_for_the_pairing_code_on_stdin() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.script_login(LoginScript::verify_code("482913", 3));
    let mut child = wxlink(dir.path())
        .args(["--base-url", &sim.base_url(), "login", "--out", "bot.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"111111\n482913\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_ok(&out);
    assert!(stderr(&out).contains("pairing code"), "{}", stderr(&out));
    assert!(dir.path().join("bot.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_command_prints_its_addresses_and_serves_other_commands() {
    let dir = tempfile::tempdir().unwrap();
    let standalone = SimCommand::start(wxlink(dir.path()).args(["sim", "--hold-ms", "300"])).await;
    let info = &standalone.info;
    // What a client needs to follow the https login redirect.
    assert!(
        info["redirect_base_url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{info}"
    );
    let root = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(info["tls_root_der_base64"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(root[0], 0x30, "a DER certificate starts with a SEQUENCE");
    let out = standalone.send(dir.path(), info, "hello standalone").await;
    assert_ok(&out);
    standalone.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(wxlink(dir.path()).arg("demo")).await;
    assert_ok(&out);
    let text = stdout(&out);
    for needle in ["user → bot:", "bot → user:", "✓", "checks passed"] {
        assert!(text.contains(needle), "`{needle}` missing:\n{text}");
    }
    assert!(!text.contains('✗'), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_stops_on_an_expired_session_and_says_to_log_in() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.expire_session();
    let out = run(wxlink_at(&sim, dir.path()).args(["listen"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("wxlink login"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_keeps_polling_until_interrupted_then_exits_0() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let child = wxlink_at(&sim, dir.path())
        .args(["listen", "--cursor-file", "c.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two messages in two separate polls.
    wait_for_polls(&sim, 1).await;
    sim.inject_text(sim.user_id(), "one");
    wait_for_polls(&sim, 2).await;
    sim.inject_text(sim.user_id(), "two");
    // A fourth poll starts only after the third one's batch was printed.
    wait_for_polls(&sim, 4).await;
    let out = interrupt(child).await;
    assert_ok(&out);
    assert_eq!(texts(&out), ["one", "two"]);
    assert!(dir.path().join("c.json").exists());
    // notifystart before polling, notifystop on the way out.
    let notify: Vec<bool> = sim.notify_calls().iter().map(|c| c.start).collect();
    assert_eq!(notify, [true, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_account_file_is_used_and_a_bound_bot_stays_connected() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.script_login(LoginScript::confirm());
    let login = || {
        let mut cmd = wxlink_by_flags(&sim, dir.path());
        cmd.arg("login");
        cmd
    };
    assert_ok(&run(&mut login()).await);
    let path = dir.path().join("wxlink-account.json");
    let saved = std::fs::read(&path).unwrap();

    // No flags at all: ./wxlink-account.json is the account.
    sends_the_first_message(&sim, &mut wxlink(dir.path())).await;

    // Logging in again offers the saved token in `local_token_list`; the
    // server recognises it and says the bot is already bound (no script
    // forces this), and the account file is left alone.
    let out = run(&mut login()).await;
    assert_ok(&out);
    assert!(
        stdout(&out).contains("already connected"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), saved);
}

/// `wxlink login` against a simulator whose login redirects to its https
/// listener, trusting `ca_cert` (a file name in `dir`) when given, with a
/// login deadline of `timeout` seconds (the CLI polls once a second, so a
/// redirected login takes about 3 s).
async fn redirected_login(
    sim: &Simulator,
    dir: &Path,
    ca_cert: Option<&str>,
    timeout: &str,
) -> Output {
    sim.script_login(LoginScript::redirect());
    let mut cmd = wxlink(dir);
    if let Some(file) = ca_cert {
        cmd.args(["--ca-cert", file]);
    }
    // The https listener serves the whole API: an https login base, whose
    // redirect is polled over https too.
    run(cmd.args([
        "--base-url",
        &sim.redirect_base_url(),
        "login",
        "--out",
        "bot.json",
        "--timeout",
        timeout,
    ]))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_follows_the_https_redirect_with_the_ca_cert_flag_in_der_or_pem() {
    use base64::Engine as _;
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let der = sim.tls_root_der().to_vec();
    std::fs::write(dir.path().join("sim-ca.der"), &der).unwrap();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    std::fs::write(dir.path().join("sim-ca.pem"), pem).unwrap();

    for file in ["sim-ca.der", "sim-ca.pem"] {
        let out = redirected_login(&sim, dir.path(), Some(file), "20").await;
        assert_ok(&out);
        let account: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("bot.json")).unwrap()).unwrap();
        assert_eq!(account["token"], sim.token().expose_secret(), "{file}");
        std::fs::remove_file(dir.path().join("bot.json")).unwrap();
    }
    // The polls after the redirect reached the TLS listener.
    assert!(sim.request_log().iter().any(|r| r.redirect_listener));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_without_the_ca_cert_cannot_reach_the_redirect_host() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let out = redirected_login(&sim, dir.path(), None, "3").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dir.path().join("bot.json").exists());
    assert!(!sim.request_log().iter().any(|r| r.redirect_listener));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_ca_cert_is_named_in_the_error() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\n%%%\n",
    )
    .unwrap();
    for (file, says) in [
        ("missing.der", "cannot read the CA certificate"),
        ("broken.pem", "without a readable CERTIFICATE block"),
    ] {
        let out = redirected_login(&sim, dir.path(), Some(file), "3").await;
        assert_eq!(out.status.code(), Some(1), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(file), "{file}: {}", stderr(&out));
    }
}

/// The lines of `text` that the tracing subscriber wrote: its format puts
/// the level, padded to five characters, after the timestamp.
fn log_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            [" TRACE ", " DEBUG ", "  INFO ", "  WARN ", " ERROR "]
                .iter()
                .any(|level| l.contains(level))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbosity_flags_and_rust_log_put_logs_on_stderr_only_and_hide_secrets() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let user = sim.user_id();
    let token = sim.token().expose_secret().to_owned();
    // The part after the bot id is the secret half of the token.
    let token_secret = token.rsplit(':').next().unwrap().to_owned();
    let ctx = "ctx-secret-7f3a9c";
    let send = [
        "send",
        "--to",
        &user,
        "--context-token",
        ctx,
        "--text",
        "hi",
    ];

    // Each run prints exactly one message id on stdout and nothing else.
    let check_stdout = |out: &Output, sent_before: usize| {
        assert_ok(out);
        let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(lines.len(), 1, "stdout:\n{}", stdout(out));
        let sent = sim.sent_messages();
        assert_eq!(sent.len(), sent_before + 1);
        assert_eq!(
            sent[sent_before].msg.client_id.as_deref(),
            Some(lines[0]),
            "stdout:\n{}",
            stdout(out)
        );
    };

    // Without -v and without RUST_LOG: no log lines at all.
    let quiet = run(wxlink_at(&sim, dir.path()).args(send)).await;
    check_stdout(&quiet, 0);
    assert!(log_lines(&stderr(&quiet)).is_empty(), "{}", stderr(&quiet));

    // -vv: debug lines on stderr, about the sendmessage call.
    let debug = run(wxlink_at(&sim, dir.path()).arg("-vv").args(send)).await;
    check_stdout(&debug, 1);
    let err = stderr(&debug);
    let logs = log_lines(&err);
    assert!(
        logs.iter()
            .any(|l| l.contains(" DEBUG ") && l.contains("sendmessage")),
        "{err}"
    );

    // RUST_LOG=debug without -v: the same debug lines.
    let env = run(wxlink_at(&sim, dir.path())
        .env("RUST_LOG", "debug")
        .args(send))
    .await;
    check_stdout(&env, 2);
    let env_err = stderr(&env);
    assert!(
        log_lines(&env_err)
            .iter()
            .any(|l| l.contains(" DEBUG ") && l.contains("sendmessage")),
        "{env_err}"
    );

    // -vvv (trace) is the most talkative; check it for secrets too.
    let trace = run(wxlink_at(&sim, dir.path()).arg("-vvv").args(send)).await;
    check_stdout(&trace, 3);
    for out in [&debug, &env, &trace] {
        let err = stderr(out);
        for secret in [token.as_str(), token_secret.as_str(), ctx] {
            assert!(!err.contains(secret), "`{secret}` in the logs:\n{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_command_listens_on_the_port_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let standalone =
        SimCommand::start(wxlink(dir.path()).args(["sim", "--port", &port, "--hold-ms", "300"]))
            .await;
    let info = &standalone.info;
    let base = info["base_url"].as_str().unwrap();
    assert!(base.ends_with(&format!(":{port}")), "{info}");
    let out = standalone
        .send(dir.path(), info, "hello on a chosen port")
        .await;
    assert_ok(&out);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    standalone.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_command_starts_many_accounts_and_writes_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.txt");
    let standalone = SimCommand::start(
        wxlink(dir.path())
            .args([
                "sim",
                "--hold-ms",
                "300",
                "--accounts",
                "4",
                "--tokens-file",
            ])
            .arg(&file),
    )
    .await;
    let info = &standalone.info;
    let accounts = info["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 4, "{info}");
    assert_eq!(accounts[0]["token"], info["token"]);
    let tokens: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let listed: Vec<&str> = accounts
        .iter()
        .map(|a| a["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, listed);
    // The last account sends on its own token.
    let last = &accounts[3];
    let out = standalone
        .send(dir.path(), last, "from the fourth bot")
        .await;
    assert_ok(&out);
    let bot = last["bot_id"].as_str().unwrap();
    let sent: serde_json::Value = serde_json::from_slice(
        &http_get(&format!(
            "{}/_sim/sent?bot_id={bot}",
            info["base_url"].as_str().unwrap()
        ))
        .await,
    )
    .unwrap();
    assert_eq!(
        sent[0]["msg"]["item_list"][0]["text_item"]["text"],
        "from the fourth bot"
    );
    let zero = run(wxlink(dir.path()).args(["sim", "--accounts", "0"])).await;
    assert!(!zero.status.success());
    standalone.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_command_on_a_busy_port_fails_and_names_the_port() {
    let dir = tempfile::tempdir().unwrap();
    // Held for the whole test, so the simulator cannot have the port.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = run(wxlink(dir.path()).args(["sim", "--port", &port, "--hold-ms", "300"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot start the simulator on port {port}")),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_on_another_host_is_refused_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    // `.invalid` never resolves; the refusal comes before any lookup.
    let out = run(wxlink(dir.path()).args([
        "--base-url",
        "http://ilink.invalid:8080",
        "--token",
        "t",
        "send",
        "--to",
        "u@im.wechat",
        "--text",
        "hi",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ilink.invalid"), "{}", stderr(&out));
    assert!(stderr(&out).contains("plain http"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_once_rides_out_a_dropped_poll_and_a_502_and_prints_the_message_once() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.inject_fault("getupdates", wxlink_sim::Fault::DropConnection, 1)
        .unwrap();
    sim.inject_fault(
        "getupdates",
        wxlink_sim::Fault::HttpStatus(502, "bad gateway".into()),
        1,
    )
    .unwrap();
    let injected = sim.inject_text(sim.user_id(), "after the storm");
    let out = run(wxlink_at(&sim, dir.path()).args(["listen", "--once"])).await;
    assert_ok(&out);
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    let msg: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(msg["item_list"][0]["text_item"]["text"], "after the storm");
    assert!(lines[0].contains(&format!("\"message_id\":{}", injected.message_id)));
    // Both faults were met: the message came on the third poll.
    let polls = sim
        .wait_for_requests("getupdates", 3, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(polls.len() >= 3, "{}", polls.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_once_fails_on_a_session_expiry() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.inject_fault("getupdates", wxlink_sim::Fault::SessionExpired, 1)
        .unwrap();
    sim.inject_text(sim.user_id(), "never printed");
    let out = run(wxlink_at(&sim, dir.path()).args(["listen", "--once"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_a_timeout_beyond_any_clock_still_completes() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    sim.script_login(LoginScript::confirm());
    let out = run(wxlink(dir.path()).args([
        "--base-url",
        &sim.base_url(),
        "login",
        "--out",
        "bot.json",
        "--timeout",
        "10000000000000000000",
    ]))
    .await;
    assert_ok(&out);
    assert!(dir.path().join("bot.json").exists());
}
