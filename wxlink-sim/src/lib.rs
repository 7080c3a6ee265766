//! A simulated iLink API server and CDN, in-process or standalone, for
//! tests, the demo and bot authors' own tests.
//!
//! No test can reach WeChat, so this crate serves the next best thing: a
//! server that behaves as the protocol reference (`docs/protocol.md`) and
//! the field reports say the real one does. It is strict where the real server is strict, lenient where it
//! is lenient, and it fails on demand.
//!
//! - **API**: every iLink endpoint under any base path, bearer auth with
//!   the real `-14` answer (HTTP 200, `errcode` without `ret`), a real long
//!   poll for `getupdates` with opaque cursors that never replay, message
//!   ids above 2^53, a fresh context token per message, the reply-shape
//!   checks of `sendmessage`, `getconfig`/`sendtyping` tickets and
//!   `getuploadurl` size and key checks.
//! - **CDN**: uploads are decrypted and hashed while they stream in and
//!   refused (4xx with `x-error-message`) on a wrong size, key, padding or
//!   MD5; stored ciphertext stays in memory up to a bound and spills to a
//!   temporary directory beyond it (or only digests are kept, for load
//!   tests); downloads stream the ciphertext. Only the newest
//!   [`SimConfig::cdn_object_limit`] upload slots and stored objects are
//!   kept.
//! - **Login**: QR codes and scripted status sequences, including the
//!   redirect host (a second listener), pairing codes and expiry. Status
//!   polls are long polls: answered when the login moves on (one step per
//!   poll, on a timer, or when the test calls
//!   [`Simulator::advance_login`]), otherwise held for
//!   [`SimConfig::qr_hold`] and answered with the current status (see
//!   [`LoginScript`]).
//! - **Control**: inject inbound messages of every item type, read what
//!   bots sent, typing and presence calls, uploads and the request log,
//!   inject faults, expire the session, reset. The same controls are JSON
//!   endpoints under `/_sim/` (see the `control` module docs) for the
//!   standalone `wxlink-sim` binary and clients in other languages.
//! - **Bounded records**: each record log keeps its newest
//!   [`SimConfig::record_limit`] entries (10 000 by default; the request log
//!   [`SimConfig::request_log_limit`]) and counts every entry in
//!   [`Simulator::record_counts`], so a standalone simulator under a long
//!   load test stays within a fixed memory budget, and the `wait_for_*`
//!   helpers wait on the all-time counts.
//! - **Many accounts** ([`Account`]): thousands of bots in one process,
//!   each with its own token, queue, cursor, users, tickets, limits and
//!   records; overlapping polls on one token are counted.
//! - **Seeded chaos** ([`Chaos`]): faults by probability from a seed, with
//!   a log and the server's [`GroundTruth`] of what it delivered and lost.
//! - **Fidelity switches** ([`Fidelity`], all off by default): the text
//!   limits in bytes and characters, the reply limit per inbound message,
//!   the bot-wide burst throttle (optionally extended by every attempt),
//!   pushes refused outside the reply window, replies dropped silently
//!   outside it (with a fake clock), outbound voice accepted but not shown,
//!   `ret -3` for unknown recipients, the newer of two polls winning and one
//!   binding per user.
//! - **Harness** ([`harness`]): for a process that drives the simulator
//!   from outside the SDK, a plain keep-alive HTTP client and the raise of
//!   the open-file limit that thousands of long polls need.
//!
//! # Example: testing a bot
//!
//! The bot below is written with nothing but an HTTP client (yours would
//! use its SDK, pointed at [`Simulator::base_url`] with
//! [`Simulator::token`]): it long-polls `getupdates` and answers every text
//! with `pong`, echoing the message's context token.
//!
//! ```
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http_body_util::{BodyExt as _, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use serde_json::{Value, json};
//! use wxlink_sim::{Fault, Simulator};
//!
//! /// The bot under test: one poll, one reply per text message.
//! async fn bot(base: String, token: String) {
//!     let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//!     let call = |endpoint: &str, body: Value| {
//!         let req = http::Request::post(format!("{base}/ilink/bot/{endpoint}"))
//!             .header("content-type", "application/json")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(Full::new(Bytes::from(body.to_string())))
//!             .unwrap();
//!         let client = client.clone();
//!         async move {
//!             let resp = client.request(req).await.ok()?;
//!             let body = resp.into_body().collect().await.ok()?.to_bytes();
//!             serde_json::from_slice::<Value>(&body).ok()
//!         }
//!     };
//!     let mut cursor = String::new();
//!     loop {
//!         let Some(updates) = call("getupdates", json!({"get_updates_buf": cursor})).await else {
//!             continue; // A failed poll is retried.
//!         };
//!         if let Some(next) = updates["get_updates_buf"].as_str() {
//!             cursor = next.to_owned();
//!         }
//!         for msg in updates["msgs"].as_array().into_iter().flatten() {
//!             let reply = json!({"msg": {
//!                 "from_user_id": "",
//!                 "to_user_id": msg["from_user_id"],
//!                 "client_id": format!("doc-bot:{}", msg["seq"]),
//!                 "message_type": 2,
//!                 "message_state": 2,
//!                 "item_list": [{"type": 1, "text_item": {"text": "pong"}}],
//!                 "context_token": msg["context_token"],
//!             }});
//!             call("sendmessage", reply).await;
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wxlink_sim::SimError> {
//! // Hold long polls for 200 ms so the test stays fast.
//! let sim = Simulator::builder().hold(Duration::from_millis(200)).start().await?;
//! let running = tokio::spawn(bot(sim.base_url(), sim.token().expose_secret().to_owned()));
//!
//! // A gateway timeout on the first poll must not stop the bot.
//! sim.inject_fault("getupdates", Fault::HttpStatus(524, "origin timeout".into()), 1)?;
//!
//! // A user writes; the bot's next poll returns the message.
//! let incoming = sim.inject_text(sim.user_id(), "ping");
//!
//! // Wait for the reply and check it.
//! let sent = sim.wait_for_sent(1, Duration::from_secs(5)).await?;
//! assert_eq!(sent[0].text(), Some("pong"));
//! assert_eq!(sent[0].to_user_id(), sim.user_id());
//! assert_eq!(
//!     sent[0].msg.context_token.as_ref().map(|t| t.expose_secret()),
//!     Some(incoming.context_token.expose_secret()),
//! );
//!
//! running.abort();
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Many accounts
//!
//! Every account is a bot of its own; inject into one and only its token's
//! polls see the message. Records can be read per account, and
//! [`Account::concurrent_polls`] tells whether a client ever polled one
//! token twice at once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wxlink_sim::SimError> {
//! use std::time::Duration;
//!
//! let sim = wxlink_sim::Simulator::builder()
//!     .hold(Duration::from_millis(100))
//!     .accounts(100)
//!     .start()
//!     .await?;
//! let accounts = sim.accounts();
//! for (i, account) in accounts.iter().enumerate() {
//!     account.inject_text(account.user_id(), format!("hello bot {i}"))?;
//! }
//! // The first account is the one the one-account API means.
//! assert_eq!(sim.token(), accounts[0].token());
//! assert_eq!(accounts[42].pending_messages(), 1);
//! assert_eq!(accounts[42].concurrent_polls(), 0);
//! # Ok(()) }
//! ```
//!
//! # Seeded chaos and ground truth
//!
//! [`Chaos`] draws faults by probability from a seed of its own; the
//! simulator logs each ([`Simulator::chaos_log`]) and keeps, per account,
//! what it delivered and what it lost through its own faults
//! ([`Account::ground_truth`]). [`GroundTruth::judge`] compares that with
//! the ids a client handled.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wxlink_sim::SimError> {
//! use wxlink_sim::{Chaos, Fault, Simulator};
//!
//! let chaos = Chaos::new(7).endpoint("getupdates", 0.2, [Fault::LoseResponse, Fault::duplicate()]);
//! let sim = Simulator::builder().chaos(chaos).start().await?;
//! let msg = sim.inject_text(sim.user_id(), "hi");
//! // ... the client under test runs, handling message ids ...
//! let handled: Vec<u64> = Vec::new();
//! let verdict = sim.default_account().ground_truth().judge(handled);
//! // Nothing was delivered yet, so nothing was lost by the client.
//! assert!(verdict.lost_by_client.is_empty());
//! assert_eq!(sim.default_account().ground_truth().undelivered(), [msg.message_id]);
//! # Ok(()) }
//! ```
//!
//! # Fidelity switches
//!
//! The limits of the real server are off by default, so a test meets only
//! the ones it asks for; [`Fidelity::field_reports`] turns on the set the
//! newest field reports describe.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wxlink_sim::SimError> {
//! use std::time::Duration;
//! use wxlink_sim::{Fidelity, Simulator, Throttle};
//!
//! let fidelity = Fidelity::default()
//!     .with_burst_throttle(Throttle::default().extending(true))
//!     .with_push_window(Duration::from_secs(24 * 3600))
//!     .with_reject_unknown_users(true);
//! let sim = Simulator::builder().fidelity(fidelity).start().await?;
//! assert!(sim.config().fidelity.reject_unknown_users);
//! # Ok(()) }
//! ```
//!
//! # Faults
//!
//! [`Simulator::inject_fault`] makes the next N calls of one endpoint fail.
//!
//! | [`Fault`] | What the client sees | Does the call take effect? |
//! |---|---|---|
//! | `HttpStatus(code, body)` | that status and body text (the CDN adds `x-error-message: body`) | no |
//! | `Delay(d)` | the normal answer, `d` later | yes |
//! | `Delayed(d, fault)` / `fault.after(d)` | `fault`, `d` later (e.g. a 524 after 17 s) | as `fault` |
//! | `DropConnection` | the request is read, then the connection closes with no response | no |
//! | `TruncatedBody` | a 200 that announces its full length but stops half way | yes |
//! | `InvalidJson` | HTTP 200 with a body that is not JSON | no |
//! | `SessionExpired` | HTTP 200 `{"errcode":-14,"errmsg":"session timeout"}` (the usual form, no `ret`) | no |
//! | `SessionExpiredRet` | HTTP 200 `{"ret":-14,"errcode":-14,"errmsg":"session timeout"}` (the other observed form) | no |
//! | `Json(body)` | HTTP 200 with that JSON body, e.g. `{"ret":-2,"errmsg":"unknown error"}` | no |
//! | `StallBody(d)` | the headers at once, then no body byte for `d`, then the body | yes |
//! | `StallUpload { after, stall }` | the server reads `after` request bytes, stops reading for `stall`, then goes on | as without the fault |
//! | `ResetUpload { after }` | the server reads `after` request bytes, then resets the connection | no |
//! | `RetryAfter(code, d)` / `Fault::too_many_requests(d)` / `Fault::unavailable(d)` | 429 or 503 with `Retry-After` in whole seconds | no |
//! | `LoseResponse` | the call is handled, then the connection closes unanswered; a `getupdates` batch is lost | yes |
//! | `Duplicate(delays)` / `Fault::duplicate()` | the normal answer; `getupdates` delivers each message again after each delay | yes |
//!
//! Endpoint names are those of [`FAULT_TARGETS`]: `get_bot_qrcode`,
//! `get_qrcode_status`, `getupdates`, `sendmessage`, `getconfig`,
//! `sendtyping`, `getuploadurl`, `notifystart`, `notifystop`, `cdn_upload`
//! and `cdn_download`.
//!
//! # Behaviour worth knowing
//!
//! - Delivery is at most once, as on the real server: a `getupdates` answer
//!   takes its messages off the queue whether or not the client reads it,
//!   and an old cursor never brings them back.
//! - Every other injected message id is above 2^53.
//! - A successful `getupdates` leaves out `ret` with the probability
//!   [`SimConfig::omit_ret_probability`] (seeded, so runs repeat).
//! - A malformed `sendmessage` (wrong shape, empty text, media that was
//!   not uploaded or a key that does not decrypt it) answers
//!   `{"ret":-2,"errmsg":"invalid arguments"}`; the text and reply limits
//!   answer `{"ret":-2}`, the burst throttle `{"ret":-2,"errmsg":"prepare
//!   failed"}`. The request log's [`RequestRecord::note`] says why.
//! - `scaned_but_redirect` names `127.0.0.1:PORT2` without a scheme, as the
//!   real server names a bare host. The second listener speaks TLS, since a
//!   client polls `https://` + that host (see `docs/protocol.md`,
//!   `get_qrcode_status`), with a certificate
//!   for `127.0.0.1` and `localhost` signed by a CA made when the simulator
//!   starts: add [`Simulator::tls_root_der`] to the client's trusted roots
//!   (in WxLink, `TransportOptions::extra_root_certificates`).
//!   [`SimBuilder::redirect_tls`]`(false)` makes it plain HTTP again, for a
//!   client that keeps `http://` after a redirect.

mod api;
mod body;
mod cdn;
mod chaos;
mod config;
pub mod control;
mod error;
mod fault;
pub mod harness;
mod http;
mod inbound;
mod login;
mod qr;
mod records;
mod redact;
mod server;
mod sim;
mod start;
mod state;
mod storage;
mod tls;
mod truth;

pub use chaos::{Chaos, ChaosEvent, ChaosRule};
pub use config::{CdnStorage, Fidelity, SendOkBody, SimConfig, Throttle, UploadUrlMode};
pub use error::SimError;
pub use fault::{FAULT_TARGETS, Fault};
pub use inbound::{
    InboundMessage, InjectedMessage, PartialQuote, quoting, text_item, voice_transcript_item,
};
pub use qr::{LoginPath, LoginScript};
pub use records::{
    AuthSeen, LogCount, NotifyCall, PollRecord, RecordCounts, RequestRecord, SentMessage,
    TypingCall, UploadRecord,
};
pub use sim::{Account, PollCounts, Simulator};
pub use start::SimBuilder;
pub use truth::{Fate, GroundTruth, Verdict};

/// Writes `tokens` to `path`, one a line, for load tools (`wxlink-sim
/// --tokens-file`, `wxlink sim --tokens-file`). The file is created
/// readable and writable by its owner only (on Unix), since the tokens are
/// credentials; an existing file is replaced.
///
/// # Errors
///
/// The I/O error of creating or writing the file.
pub fn write_tokens_file(
    path: &std::path::Path,
    tokens: impl IntoIterator<Item = wxlink_proto::BotToken>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // A file that existed keeps its old mode: tighten it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let mut out = std::io::BufWriter::new(file);
    for token in tokens {
        writeln!(out, "{}", token.expose_secret())?;
    }
    out.flush()
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one: what a standalone
/// simulator (`wxlink-sim`, `wxlink sim`) waits for before shutting down.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Re-exported so tests can name media kinds and key encodings without a
/// direct dependency on `wxlink-media`.
pub use wxlink_media::{KeyEncoding, MediaKind};
