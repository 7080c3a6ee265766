//! `wxlink demo`: an echo bot against the embedded simulator.
//!
//! The demo plays both sides of a conversation in one process:
//!
//! 1. it starts the simulator on 127.0.0.1 and logs in with the QR flow
//!    (the simulated phone scans the code drawn in the terminal);
//! 2. it starts an echo bot built on [`WxLinkClient`]: a long-poll loop
//!    that shows the typing indicator, echoes texts (chunked when long) and
//!    echoes media by downloading, decrypting and re-uploading it;
//! 3. a scripted user sends a text, a long text, an image and a file
//!    through the simulator's control API;
//! 4. every reply is checked against what the simulator recorded, and the
//!    echoed media is fetched from the simulated CDN and decrypted
//!    independently of the bot.
//!
//! Every wait is bounded by `--step-timeout`, so the demo always ends.

mod assets;
mod bot;
mod bridge;
mod transcript;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;
use wxlink_client::{LoginCallbacks, LoginOptions, LoginOutcome, LoginState, WxLinkClient};
use wxlink_media::{AesKey, KeyEncoding, MediaKind};
use wxlink_proto::{MessageItem, MessageItemType};
use wxlink_sim::harness::PlainClient;
use wxlink_sim::{InboundMessage, InjectedMessage, LoginScript, SentMessage, Simulator};

use self::bot::BotEvent;
use self::transcript::{Transcript, preview};
use crate::cli::DemoArgs;
use crate::ui::human_bytes;

/// `sendtyping` status values (`TypingStatus` in docs/protocol.md).
const TYPING: i64 = 1;
const CANCEL: i64 = 2;

/// Runs the demo and returns 0 only when every check passed.
pub async fn run(args: &DemoArgs) -> Result<ExitCode> {
    if args.bridge {
        return bridge::run(args).await;
    }
    play(
        args,
        &[
            "WxLink demo: an echo bot talking to a simulated WeChat user.",
            "Everything runs in this process on 127.0.0.1: no account, no network.",
        ],
        converse,
    )
    .await
}

/// What both demos do around their conversation: prints `intro`, starts
/// the simulator and shows its addresses, runs `converse` against it with
/// the step timeout, and shuts the simulator down. The exit code is 0 only
/// when every check passed and `converse` did not stop early.
async fn play(
    args: &DemoArgs,
    intro: &[&str],
    converse: impl AsyncFnOnce(&Simulator, &mut Transcript, Duration) -> Result<()>,
) -> Result<ExitCode> {
    let step = Duration::from_secs(args.step_timeout.max(1));
    let mut t = Transcript::new();
    for line in intro {
        t.line(line);
    }

    t.section("simulator");
    let sim = Simulator::builder()
        .hold(Duration::from_millis(500))
        .start()
        .await
        .context("cannot start the simulator")?;
    t.line(&format!("API  {}", sim.base_url()));
    t.line(&format!("CDN  {}", sim.cdn_base_url()));

    let outcome = converse(&sim, &mut t, step).await;
    if let Err(e) = outcome {
        t.fail("the demo stopped early", &e);
    }
    let _ = tokio::time::timeout(step, sim.shutdown()).await;
    Ok(if t.finish() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Logs in, starts the bot and plays the scripted user.
async fn converse(sim: &Simulator, t: &mut Transcript, step: Duration) -> Result<()> {
    t.section("QR login");
    // The simulated phone scans 200 ms after the code is shown and confirms
    // 200 ms later; each status poll is held until the next step happens.
    sim.script_login(LoginScript::confirm().step_delay(Duration::from_millis(200)));
    let options = LoginOptions::new()
        .base_url(sim.base_url())
        .poll_interval(Duration::from_millis(100))
        .deadline(step);
    let outcome = tokio::time::timeout(
        step + Duration::from_secs(1),
        wxlink_client::login_with_qr(options, DemoLogin),
    )
    .await
    .context("the QR login did not finish in time")?
    .context("the QR login failed")?;
    let LoginOutcome::Confirmed(result) = outcome else {
        bail!("the simulator said the bot was already connected; expected a new login")
    };
    let record = result.to_account().with_cdn_base_url(sim.cdn_base_url());
    let user = record.user_id.clone().unwrap_or_else(|| sim.user_id());
    t.check(
        !record.token.is_empty() && record.account_id.is_some(),
        &format!(
            "logged in: bot {} for WeChat user {user}",
            record.account_id.as_deref().unwrap_or("?")
        ),
    );
    t.check(
        sim.token().expose_secret() == record.token.expose_secret(),
        "the simulator's current session is the token the login returned",
    );

    t.section("echo bot");
    let client = WxLinkClient::from_account(&record).context("cannot build the client")?;
    let workdir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let bot = tokio::spawn(bot::run(client.clone(), tx, workdir.path().to_owned()));
    t.line("The bot long-polls getupdates; for each message it shows \"typing…\", echoes the");
    t.line("message back (texts chunked at 4000 characters, media downloaded, decrypted and");
    t.line("re-uploaded encrypted), then cancels \"typing…\".");

    t.section("conversation");
    let cdn = PlainClient::new();
    let steps = [
        Inbound::Text("Hello, bot! 你好 👋".to_owned()),
        Inbound::Text(assets::long_text()),
        Inbound::Media {
            kind: MediaKind::Image,
            name: "gradient.png".to_owned(),
            bytes: assets::gradient_png(64, 48),
        },
        {
            let (name, bytes) = assets::notes_file();
            Inbound::Media {
                kind: MediaKind::File,
                name,
                bytes,
            }
        },
    ];
    let mut result = Ok(());
    for inbound in steps {
        if let Err(e) = exchange(sim, t, &mut events, &cdn, &user, inbound, step).await {
            result = Err(e);
            break;
        }
    }
    bot.abort();
    let _ = bot.await;
    // Polls that failed while the demo ran are worth a line each.
    while let Ok(ev) = events.try_recv() {
        if let BotEvent::PollFailed(e) = ev {
            t.line(&format!("  (a poll failed and was retried: {e})"));
        }
    }
    result
}

/// What the scripted user sends in one step.
enum Inbound {
    Text(String),
    Media {
        kind: MediaKind,
        name: String,
        bytes: Vec<u8>,
    },
}

/// One round trip: the user sends, the bot answers, the records are checked.
async fn exchange(
    sim: &Simulator,
    t: &mut Transcript,
    events: &mut mpsc::UnboundedReceiver<BotEvent>,
    cdn: &PlainClient,
    user: &str,
    inbound: Inbound,
    step: Duration,
) -> Result<()> {
    // All-time counts, not the lengths of the record logs: the logs are
    // bounded rings, and once one is full its length stops growing while
    // the count keeps going.
    let before = sim.record_counts();
    let injected: InjectedMessage = match &inbound {
        Inbound::Text(text) => {
            t.user_says(&preview(text, 60));
            sim.inject_text(user, text.clone())
        }
        Inbound::Media { kind, name, bytes } => {
            t.user_says(&format!(
                "[{}] {name} ({}), stored encrypted on the CDN",
                kind.as_str(),
                human_bytes(bytes.len() as u64)
            ));
            let mut item = sim
                .media_item(*kind, bytes, inbound_encoding(*kind))
                .context("the simulator refused the media")?;
            if let Some(file) = item.file_item.as_mut() {
                file.file_name = Some(name.clone());
            }
            sim.inject_message(InboundMessage::new(user).item(item))
        }
    };

    // Wait for the bot to finish with this message.
    let handled = wait_handled(events, injected.message_id, step).await;
    match handled {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            t.check(false, &format!("the bot answered without error ({e})"));
            return Ok(());
        }
        Err(e) => {
            t.fail("the bot answered in time", &e);
            return Ok(());
        }
    }

    let replies: Vec<SentMessage> = sim
        .sent_messages_since(before.sent.total)
        .into_iter()
        .filter(|s| s.to_user_id() == user)
        .collect();
    let typing: Vec<_> = sim
        .typing_calls_since(before.typing.total)
        .into_iter()
        .filter(|c| c.ilink_user_id == user)
        .collect();
    for r in &replies {
        t.bot_says(&describe(r));
    }

    // Typing first, cancelled at the end.
    let first_reply_at = replies.first().map(|r| r.at);
    let typing_first = typing
        .iter()
        .any(|c| c.status == TYPING && first_reply_at.is_some_and(|at| c.at <= at));
    let cancelled = typing.iter().any(|c| c.status == CANCEL);
    t.check(
        typing_first && cancelled,
        "\"typing…\" shown before the reply and cancelled after it",
    );
    let ctx = injected.context_token.expose_secret();
    t.check(
        !replies.is_empty()
            && replies.iter().all(|r| {
                r.msg
                    .context_token
                    .as_ref()
                    .is_some_and(|c| c.expose_secret() == ctx)
            }),
        "every reply carries the user's context token",
    );

    match inbound {
        Inbound::Text(text) => {
            let expected = format!("echo: {text}");
            let chunks = wxlink_client::chunk_text(&expected, wxlink_client::DEFAULT_MAX_CHARS);
            let joined: String = replies.iter().filter_map(SentMessage::text).collect();
            if chunks.len() > 1 {
                t.check(
                    replies.len() == chunks.len() && joined == expected,
                    &format!(
                        "{} messages of at most 4000 characters join up to the exact echo",
                        chunks.len()
                    ),
                );
            } else {
                t.check(
                    replies.len() == 1 && joined == expected,
                    "the echo is the user's text, byte for byte",
                );
            }
        }
        Inbound::Media { kind, name, bytes } => {
            let media: Vec<&MessageItem> = replies
                .iter()
                .flat_map(|r| r.msg.item_list.iter())
                .filter(|i| item_kind(i) == Some(kind))
                .collect();
            let [item] = media.as_slice() else {
                t.check(false, &format!("one {} message came back", kind.as_str()));
                return Ok(());
            };
            match fetch_and_decrypt(sim, cdn, item, kind).await {
                Ok(plain) => {
                    t.check(
                        plain == bytes,
                        &format!(
                            "the echoed {} downloads from the CDN and decrypts to the same {} bytes",
                            kind.as_str(),
                            bytes.len()
                        ),
                    );
                }
                Err(e) => t.fail(
                    &format!("the echoed {} downloads and decrypts", kind.as_str()),
                    &e,
                ),
            }
            if kind == MediaKind::File {
                let echoed = item.file_item.as_ref().and_then(|f| f.file_name.as_deref());
                t.check(
                    echoed == Some(name.as_str()),
                    &format!("the file keeps its name ({name})"),
                );
            }
        }
    }
    Ok(())
}

/// The key encoding real inbound items use (docs/protocol.md, "Media keys"):
/// raw-byte base64 (plus the hex field) for images, base64 of the hex string
/// otherwise.
fn inbound_encoding(kind: MediaKind) -> KeyEncoding {
    if kind == MediaKind::Image {
        KeyEncoding::Base64Raw
    } else {
        KeyEncoding::Base64Hex
    }
}

/// Waits for the bot's report on message `id`.
async fn wait_handled(
    events: &mut mpsc::UnboundedReceiver<BotEvent>,
    id: u64,
    step: Duration,
) -> Result<std::result::Result<(), String>> {
    let deadline = tokio::time::Instant::now() + step;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .with_context(|| format!("no answer from the bot within {} s", step.as_secs()))?;
        match ev {
            Some(BotEvent::Handled { message_id, result }) if message_id == id => {
                return Ok(result);
            }
            Some(_) => {}
            None => bail!("the bot stopped"),
        }
    }
}

/// The media kind of an item, for the media kinds the demo uses.
fn item_kind(item: &MessageItem) -> Option<MediaKind> {
    match item.item_type {
        Some(MessageItemType::Image) => Some(MediaKind::Image),
        Some(MessageItemType::File) => Some(MediaKind::File),
        Some(MessageItemType::Video) => Some(MediaKind::Video),
        Some(MessageItemType::Voice) => Some(MediaKind::Voice),
        _ => None,
    }
}

/// A one-line description of a message the bot sent.
fn describe(sent: &SentMessage) -> String {
    if let Some(text) = sent.text() {
        return preview(text, 60);
    }
    let Some(item) = sent.msg.item_list.first() else {
        return "(an empty message)".to_owned();
    };
    match item_kind(item) {
        Some(MediaKind::Image) => {
            let size = item
                .image_item
                .as_ref()
                .and_then(|i| i.mid_size)
                .unwrap_or_default();
            format!(
                "[image] {} of ciphertext, uploaded to the CDN",
                human_bytes(size.max(0) as u64)
            )
        }
        Some(MediaKind::File) => {
            let f = item.file_item.as_ref();
            format!(
                "[file] {} ({} bytes), uploaded to the CDN",
                f.and_then(|f| f.file_name.as_deref()).unwrap_or("?"),
                f.and_then(|f| f.len.as_deref()).unwrap_or("?")
            )
        }
        Some(kind) => format!("[{}]", kind.as_str()),
        None => "(an item of another type)".to_owned(),
    }
}

/// Downloads a media item the bot sent from the simulated CDN and decrypts
/// it with the key in the item, without going through the bot's client.
async fn fetch_and_decrypt(
    sim: &Simulator,
    cdn: &PlainClient,
    item: &MessageItem,
    kind: MediaKind,
) -> Result<Vec<u8>> {
    let (media, image_key) = match kind {
        MediaKind::Image => {
            let i = item.image_item.as_ref().context("no image_item")?;
            (i.media.as_ref(), i.aeskey.as_ref())
        }
        MediaKind::File => (item.file_item.as_ref().and_then(|f| f.media.as_ref()), None),
        _ => bail!("the demo does not check {} items", kind.as_str()),
    };
    let media = media.context("the item has no media reference")?;
    let url = match media.full_url.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => u.to_owned(),
        None => {
            let param = media
                .encrypt_query_param
                .as_deref()
                .context("the media has no encrypt_query_param")?;
            format!(
                "{}/download?encrypted_query_param={}",
                sim.cdn_base_url(),
                wxlink_proto::url::encode_uri_component(param)
            )
        }
    };
    let (key, _) = wxlink_media::resolve_item_key(
        kind,
        image_key.map(|k| k.expose_secret()),
        media.aes_key.as_ref().map(|k| k.expose_secret()),
    )?
    .context("the item carries no key")?;
    let ciphertext = cdn.get(&url).await?;
    Ok(decrypt(&key, &ciphertext)?)
}

/// Decrypts a whole buffer.
fn decrypt(key: &AesKey, ciphertext: &[u8]) -> Result<Vec<u8>, wxlink_media::Error> {
    wxlink_media::crypto::decrypt(key, ciphertext)
}

/// Login callbacks for the demo: the QR code and each step, on stdout.
#[derive(Debug, Default)]
struct DemoLogin;

impl LoginCallbacks for DemoLogin {
    fn on_qr(&mut self, url: &str) {
        crate::ui::print_qr(url);
        println!("(The simulated phone scans it for you.)");
    }

    fn on_status(&mut self, state: &LoginState) {
        if let Some(text) = crate::ui::login_status(state) {
            println!("login: {text}");
        }
    }
}
