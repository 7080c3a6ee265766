//! `wxlink demo --bridge`: the agent bridge against the embedded simulator,
//! with a built-in local agent, no network.
//!
//! The demo runs the real bridge (`wxlink_bridge::runtime::Bridge` on a
//! `wxlink_bot::Host`) and plays a user who:
//!
//! 1. says hello: typing shows before the answer and is cancelled after it;
//! 2. asks for code: a long markdown answer with a code block arrives in
//!    chunks of at most 2 000 characters, each with its code fences intact;
//! 3. sends an image: the agent sees it as a downloaded file and answers
//!    with a text and a file, uploaded encrypted to the simulated CDN.
//!
//! Every step is checked against what the simulator recorded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, AccountOptions, Host};
use wxlink_bridge::runtime::{Bridge, BridgeOptions};
use wxlink_bridge::{
    Agent, BoxFuture, EngineOptions, Error, MediaKind, Reply, ReplyMedia, Turn, chunk_markdown,
};
use wxlink_client::WxLinkClient;
use wxlink_media::KeyEncoding;
use wxlink_proto::MessageItemType;
use wxlink_sim::{SentMessage, Simulator};

use super::assets;
use super::transcript::{Transcript, preview};
use super::{CANCEL, TYPING};
use crate::cli::DemoArgs;

/// The built-in agent: fixed answers, so every check knows what to expect.
struct LocalAgent {
    out_dir: PathBuf,
}

const HELLO: &str =
    "Hello! I am the bridge's built-in agent. Ask me for code, or send me a picture.";

/// The long markdown answer with a code block.
fn code_answer() -> String {
    let mut code = String::new();
    for i in 0..120 {
        code.push_str(&format!(
            "    println!(\"line {i:03}: the bridge never splits a fence\");\n"
        ));
    }
    format!(
        "## A long answer\n\n{}\n\n```rust\nfn main() {{\n{code}}}\n```\n\nThat was **{} lines** of code.\n",
        "This answer is longer than one message may be, so the bridge splits it. ".repeat(12),
        120
    )
}

impl Agent for LocalAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        Box::pin(async move {
            if let Some(image) = turn.media.iter().find(|m| m.kind == MediaKind::Image) {
                let bytes = tokio::fs::read(&image.path)
                    .await
                    .map_err(|err| Error::io("cannot read the image", err))?;
                let report = format!(
                    "image report\nsize: {} bytes\ntype: {}\n",
                    bytes.len(),
                    image.content_type.as_deref().unwrap_or("unknown")
                );
                let path = self.out_dir.join("image-report.txt");
                tokio::fs::write(&path, report)
                    .await
                    .map_err(|err| Error::io("cannot write the report", err))?;
                return Ok(Reply::text(format!(
                    "I got your image ({} bytes). Here is my report.",
                    bytes.len()
                ))
                .with_media(ReplyMedia::Path(PathBuf::from("image-report.txt"))));
            }
            if turn.text.contains("code") {
                return Ok(Reply::text(code_answer()));
            }
            Ok(Reply::text(HELLO))
        })
    }

    fn name(&self) -> &str {
        "local"
    }
}

/// Runs the bridge demo; exit code 0 only when every check passed.
pub async fn run(args: &DemoArgs) -> Result<ExitCode> {
    super::play(
        args,
        &[
            "WxLink bridge demo: a simulated WeChat user talks to an AI agent through the bridge.",
            "The agent is built in and answers from a script: no model, no account, no network.",
        ],
        converse,
    )
    .await
}

async fn converse(sim: &Simulator, t: &mut Transcript, step: Duration) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).context("cannot create the media directory")?;

    t.section("bridge");
    let host = Host::builder(MemoryStore::new()).build();
    let mut engine = EngineOptions::default();
    engine.media_dir = Some(out_dir.clone());
    engine.agent_timeout = step;
    let bridge = Bridge::new(
        host,
        Arc::new(LocalAgent {
            out_dir: out_dir.clone(),
        }),
        BridgeOptions::new(engine, dir.path().join("in")),
    );
    let account = AccountConfig::new(
        AccountId::new(sim.bot_id()).context("the simulator's bot id")?,
        WxLinkClient::builder()
            .base_url(sim.base_url())
            .cdn_base_url(sim.cdn_base_url())
            .token(sim.token()),
    );
    // The demo paces sends 100 ms apart instead of the 1 s the real
    // server needs, to run quickly.
    let options = AccountOptions::default().pace(Duration::from_millis(100));
    bridge.add_account(account, options).await?;
    t.line(&format!(
        "account {} runs on the bot runtime, answered by the built-in agent",
        sim.bot_id()
    ));
    let user = sim.user_id();

    // 1. One full turn with typing.
    t.section("one turn, with typing");
    let before = sim.record_counts();
    t.user_says("hello");
    sim.inject_text(&user, "hello");
    let sent = wait_sent(sim, before.sent.total, 1, step).await?;
    t.bot_says(&preview(sent[0].text().unwrap_or(""), 80));
    t.check(
        sent[0].text() == Some(HELLO),
        "the agent's answer reached the user",
    );
    let typing = typing_until_cancel(sim, before.typing.total, step).await;
    let reply_at = sent[0].at;
    let started = typing
        .iter()
        .find(|c| c.status == TYPING)
        .is_some_and(|c| c.at <= reply_at);
    let cancelled = typing
        .iter()
        .any(|c| c.status == CANCEL && c.at >= reply_at);
    t.check(started, "\"typing…\" was shown before the answer");
    t.check(cancelled, "\"typing…\" was cancelled after the answer");

    // 2. A long markdown answer with a code block.
    t.section("a long markdown answer with a code block");
    let answer = code_answer();
    let expected = chunk_markdown(&answer, 2000);
    let before = sim.record_counts();
    t.user_says("show me some code");
    sim.inject_text(&user, "show me some code");
    let sent = wait_sent(sim, before.sent.total, expected.len(), step).await?;
    let texts: Vec<&str> = sent.iter().filter_map(SentMessage::text).collect();
    for (i, text) in texts.iter().enumerate() {
        t.bot_says(&format!(
            "[{}/{}] {} characters: {}",
            i + 1,
            texts.len(),
            text.chars().count(),
            preview(text, 50)
        ));
    }
    t.check(
        texts.len() == expected.len() && texts.len() > 1,
        &format!("the answer came in {} messages", expected.len()),
    );
    t.check(
        texts.iter().all(|c| c.chars().count() <= 2000),
        "every message is at most 2 000 characters",
    );
    t.check(
        texts.iter().all(|c| c.matches("```").count() % 2 == 0),
        "every message opens and closes its code fences",
    );
    t.check(
        texts.iter().zip(&expected).all(|(a, b)| a == b),
        "the messages are the answer's chunks, in order",
    );

    // 3. An image in, a file out.
    t.section("an image in, a file out");
    let png = assets::gradient_png(64, 48);
    let before = sim.record_counts();
    t.user_says(&format!("[an image, {} bytes]", png.len()));
    sim.inject_media(
        &user,
        wxlink_media::MediaKind::Image,
        &png,
        KeyEncoding::Base64Hex,
    )
    .context("cannot inject the image")?;
    let sent = wait_sent(sim, before.sent.total, 2, step).await?;
    let text = sent[0].text().unwrap_or("");
    t.bot_says(text);
    t.check(
        text.contains(&format!("{} bytes", png.len())),
        "the agent got the image, downloaded and decrypted",
    );
    let file = sent
        .get(1)
        .and_then(|m| m.msg.item_list.first())
        .filter(|item| item.item_type == Some(MessageItemType::File))
        .and_then(|item| item.file_item.clone());
    let name = file
        .as_ref()
        .and_then(|f| f.file_name.clone())
        .unwrap_or_default();
    t.bot_says(&format!("[a file: {name}]"));
    t.check(
        name == "image-report.txt",
        "the agent's file arrived as a file message",
    );
    let uploads = sim.uploads_since(before.uploads.total);
    let report = std::fs::read(out_dir.join("image-report.txt")).unwrap_or_default();
    t.check(
        uploads
            .iter()
            .any(|u| u.error.is_none() && u.rawsize == report.len() as u64),
        "the file was uploaded encrypted to the CDN and accepted",
    );

    bridge.shutdown(step).await;
    Ok(())
}

/// Waits for `n` messages sent after the count `since`.
async fn wait_sent(
    sim: &Simulator,
    since: u64,
    n: usize,
    step: Duration,
) -> Result<Vec<SentMessage>> {
    let total = usize::try_from(since)
        .unwrap_or(usize::MAX)
        .saturating_add(n);
    sim.wait_for_sent(total, step)
        .await
        .with_context(|| format!("the bridge sent fewer than {n} messages in time"))?;
    Ok(sim.sent_messages_since(since))
}

/// The typing calls after the count `since`, once one of them is a
/// cancel (or `step` passed).
async fn typing_until_cancel(
    sim: &Simulator,
    since: u64,
    step: Duration,
) -> Vec<wxlink_sim::TypingCall> {
    let deadline = tokio::time::Instant::now() + step;
    loop {
        let calls = sim.typing_calls_since(since);
        if calls.iter().any(|c| c.status == CANCEL) || tokio::time::Instant::now() >= deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
