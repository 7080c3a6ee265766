//! The [`Simulator`] handle: addresses, credentials, the control methods
//! tests call, and shutdown; its child `account` holds the [`Account`]
//! handle and what the two share. Starting lives in `start`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest as _, Md5};
use rand::RngExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wxlink_media::{AesKey, KeyEncoding, MediaKind};
use wxlink_proto::{
    AesKeyText, BotToken, CdnMedia, EncryptType, FileItem, ImageItem, MessageItem, MessageItemType,
    VideoItem, VoiceEncodeType, VoiceItem,
};

use crate::chaos::{Chaos, ChaosEvent, ChaosState};
use crate::config::{Fidelity, SimConfig};
use crate::error::SimError;
use crate::fault::{FAULT_TARGETS, Fault};
use crate::inbound::{InboundMessage, InjectedMessage};
use crate::qr::LoginScript;
use crate::records::{
    NotifyCall, RecordCounts, RequestRecord, SentMessage, TypingCall, UploadRecord,
};
use crate::state::Shared;
use crate::storage::{Stored, StoredMedia};

mod account;

pub use account::{Account, PollCounts};
use account::{expire, inject};

/// A running simulated iLink server and CDN.
///
/// Cheap to clone; every clone drives the same server. The server stops
/// when [`shutdown`](Self::shutdown) is called or the last clone is
/// dropped.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    /// `None` only for the short-lived views the control endpoints build.
    life: Option<Arc<Lifetime>>,
}

/// Owns the shutdown signal and the listener tasks; dropping the last
/// handle stops the server.
struct Lifetime {
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.shared.base_url)
            .field("cdn_base_url", &self.shared.cdn_base_url)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A handle owning the server: `tasks` are the listener tasks, and
    /// `stop` ends them when the last handle is dropped.
    pub(crate) fn owning(
        shared: Arc<Shared>,
        stop: watch::Sender<bool>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        Self {
            shared,
            life: Some(Arc::new(Lifetime {
                stop,
                tasks: Mutex::new(tasks),
            })),
        }
    }

    /// Stops accepting connections, answers held long polls, and waits
    /// (up to a couple of seconds) for open connections to finish.
    pub async fn shutdown(&self) {
        let Some(life) = &self.life else { return };
        let _ = life.stop.send(true);
        let tasks: Vec<_> = life
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The API base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The CDN base URL, e.g. `http://127.0.0.1:PORT/c2c` (no trailing
    /// slash).
    pub fn cdn_base_url(&self) -> String {
        self.shared.cdn_base_url.clone()
    }

    /// The `host:port` that `scaned_but_redirect` names, without a scheme:
    /// by default `127.0.0.1:PORT2`, a second listener serving the same
    /// state over TLS (see [`SimConfig::redirect_host`] to name another
    /// host, [`SimConfig::redirect_tls`] to make it plain HTTP).
    pub fn redirect_host(&self) -> String {
        self.shared.redirect_host.clone()
    }

    /// The base URL of the second listener, `https://127.0.0.1:PORT2` (or
    /// `http://` with [`SimConfig::redirect_tls`] off).
    pub fn redirect_base_url(&self) -> String {
        self.shared.redirect_base_url.clone()
    }

    /// The certificate (DER) a client must trust to reach the second
    /// listener over TLS: a CA made when this simulator started, which
    /// signed the listener's certificate for `127.0.0.1` and `localhost`.
    /// Its key never leaves the process. With WxLink's transport, add it to
    /// `TransportOptions::extra_root_certificates`.
    pub fn tls_root_der(&self) -> &[u8] {
        &self.shared.tls_root_der
    }

    /// The bot token of the default account: the first one, or the one
    /// the latest confirmed QR login created.
    pub fn token(&self) -> BotToken {
        BotToken::new(
            self.shared
                .state()
                .current()
                .map(|b| b.token.clone())
                .unwrap_or_default(),
        )
    }

    /// The default account's bot id, `<12 hex>@im.bot`.
    pub fn bot_id(&self) -> String {
        self.shared
            .state()
            .current()
            .map(|b| b.bot_id.clone())
            .unwrap_or_default()
    }

    /// The default WeChat user (`…@im.wechat`): the one who owns the first
    /// account and who logs in when a script names nobody.
    pub fn user_id(&self) -> String {
        self.shared
            .state()
            .first()
            .map(|b| b.user_id.clone())
            .unwrap_or_default()
    }

    /// The configuration the simulator started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Makes `user_id` a user the default account knows (one
    /// `getuploadurl` accepts as `to_user_id`). Users who sent a message
    /// are known already.
    pub fn add_user(&self, user_id: impl Into<String>) {
        let mut st = self.shared.state();
        let id = st.current_id();
        if let Some(bot) = st.bot_mut(id) {
            bot.users.insert(user_id.into());
        }
    }

    /// Queues a text message from `from_user` for the default account and
    /// wakes its held long poll.
    pub fn inject_text(
        &self,
        from_user: impl Into<String>,
        text: impl Into<String>,
    ) -> InjectedMessage {
        self.inject_message(InboundMessage::text(from_user, text))
    }

    /// Queues an inbound message for the default account, completing it
    /// as the real server would (see [`InboundMessage`]), and wakes its
    /// held long poll.
    pub fn inject_message(&self, message: impl Into<InboundMessage>) -> InjectedMessage {
        let id = self.shared.state().current_id();
        inject(&self.shared, id, message.into())
    }

    /// Encrypts `plaintext` with a fresh key, stores the ciphertext on the
    /// CDN and returns a message item of `kind` pointing at it, with the
    /// key in `encoding` as real inbound items carry it (see `docs/protocol.md`,
    /// `CdnMedia` and `ImageItem`):
    ///
    /// - image: [`KeyEncoding::Base64Raw`] gives `image_item.aeskey` (hex)
    ///   plus `media.aes_key` (raw-byte base64), like official inbound
    ///   images; [`KeyEncoding::Hex`] gives only `image_item.aeskey`;
    ///   [`KeyEncoding::Base64Hex`] gives only `media.aes_key`;
    /// - voice (SILK, with no transcript), file (`file.bin`, `len` as a
    ///   string) and video: `media.aes_key` in `encoding`, normally
    ///   [`KeyEncoding::Base64Hex`]; `Hex` is refused, since those items have
    ///   no hex key field.
    ///
    /// # Errors
    ///
    /// [`SimError::is_invalid_input`] for an unsupported kind or encoding.
    pub fn media_item(
        &self,
        kind: MediaKind,
        plaintext: &[u8],
        encoding: KeyEncoding,
    ) -> Result<MessageItem, SimError> {
        let non_image_hex = kind != MediaKind::Image && encoding == KeyEncoding::Hex;
        if non_image_hex {
            return Err(SimError::invalid_input(
                "only images carry a hex key (image_item.aeskey)",
            ));
        }
        let mut st = self.shared.state();
        let key = AesKey::from_bytes(st.rng.random());
        let ciphertext = wxlink_media::crypto::encrypt(&key, plaintext);
        let filesize = ciphertext.len() as u64;
        let param = st.random_param(48);
        st.cdn.insert_media(
            param.clone(),
            StoredMedia {
                key: key.clone(),
                filesize,
                to_user_id: None,
                data: Stored::Memory(Bytes::from(ciphertext)),
                reserved: 0,
            },
        );
        drop(st);
        let md5 = hex::encode(Md5::digest(plaintext));
        let size = i64::try_from(filesize).unwrap_or(i64::MAX);
        let full_url = self.shared.config.inbound_full_url.then(|| {
            format!(
                "{}/download?encrypted_query_param={}",
                self.shared.cdn_base_url,
                crate::http::encode_component(&param)
            )
        });
        let media = |with_key: bool| CdnMedia {
            encrypt_query_param: Some(param.clone()),
            aes_key: with_key.then(|| AesKeyText::new(key.encode(encoding))),
            encrypt_type: Some(EncryptType::Packed),
            full_url: full_url.clone(),
        };
        let item = match kind {
            MediaKind::Image => MessageItem {
                item_type: Some(MessageItemType::Image),
                image_item: Some(ImageItem {
                    aeskey: (encoding != KeyEncoding::Base64Hex)
                        .then(|| AesKeyText::new(key.to_hex())),
                    media: Some(media(encoding != KeyEncoding::Hex)),
                    mid_size: Some(size),
                    ..Default::default()
                }),
                ..Default::default()
            },
            MediaKind::Voice => MessageItem {
                item_type: Some(MessageItemType::Voice),
                voice_item: Some(VoiceItem {
                    media: Some(media(true)),
                    encode_type: Some(VoiceEncodeType::Silk),
                    bits_per_sample: Some(16),
                    sample_rate: Some(24_000),
                    playtime: Some(1500),
                    ..Default::default()
                }),
                ..Default::default()
            },
            MediaKind::File => MessageItem {
                item_type: Some(MessageItemType::File),
                file_item: Some(FileItem {
                    media: Some(media(true)),
                    file_name: Some("file.bin".into()),
                    md5: Some(md5),
                    len: Some(plaintext.len().to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            MediaKind::Video => MessageItem {
                item_type: Some(MessageItemType::Video),
                video_item: Some(VideoItem {
                    media: Some(media(true)),
                    video_size: Some(size),
                    video_md5: Some(md5),
                    play_length: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            },
            other => {
                return Err(SimError::invalid_input(format!(
                    "unsupported media kind {}",
                    other.as_str()
                )));
            }
        };
        Ok(item)
    }

    /// Stores `plaintext` on the CDN as media of `kind` and queues a
    /// one-item message from `from_user` carrying it (see
    /// [`media_item`](Self::media_item) for the key encodings).
    ///
    /// # Errors
    ///
    /// As [`media_item`](Self::media_item).
    pub fn inject_media(
        &self,
        from_user: impl Into<String>,
        kind: MediaKind,
        plaintext: &[u8],
        encoding: KeyEncoding,
    ) -> Result<InjectedMessage, SimError> {
        let item = self.media_item(kind, plaintext, encoding)?;
        Ok(self.inject_message(InboundMessage::new(from_user).item(item)))
    }

    /// The messages bots sent and the simulator accepted, oldest first:
    /// all of them, or the newest [`SimConfig::record_limit`] once more
    /// were sent ([`record_counts`](Self::record_counts) has the total).
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.shared.state().sent.to_vec()
    }

    /// The accepted `sendtyping` calls, oldest first (the newest
    /// [`SimConfig::record_limit`]).
    pub fn typing_calls(&self) -> Vec<TypingCall> {
        self.shared.state().typing.to_vec()
    }

    /// The `msg/notifystart` and `msg/notifystop` calls, oldest first (the
    /// newest [`SimConfig::record_limit`]).
    pub fn notify_calls(&self) -> Vec<NotifyCall> {
        self.shared.state().notify_calls.to_vec()
    }

    /// The CDN upload attempts that reached the checks, oldest first (the
    /// newest [`SimConfig::record_limit`]).
    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.shared.state().uploads.to_vec()
    }

    /// The messages sent after the all-time count of sent messages was
    /// `count`, oldest first: take `count` from
    /// [`record_counts`](Self::record_counts)`().sent.total` before an
    /// exchange to get exactly what it added. Unlike skipping the first
    /// entries of [`sent_messages`](Self::sent_messages), this stays right
    /// once the log is full and drops its oldest entries; only messages the
    /// log no longer keeps are missing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), wxlink_sim::SimError> {
    /// let sim = wxlink_sim::Simulator::builder().record_limit(2).start().await?;
    /// let mark = sim.record_counts().sent.total;
    /// // ... the bot under test answers a message ...
    /// let replies = sim.sent_messages_since(mark);
    /// assert!(replies.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn sent_messages_since(&self, count: u64) -> Vec<SentMessage> {
        self.shared.state().sent.since(count)
    }

    /// The typing calls added after their all-time count was `count`
    /// (`record_counts().typing.total`), oldest first; see
    /// [`sent_messages_since`](Self::sent_messages_since).
    pub fn typing_calls_since(&self, count: u64) -> Vec<TypingCall> {
        self.shared.state().typing.since(count)
    }

    /// The notify calls added after their all-time count was `count`
    /// (`record_counts().notify.total`), oldest first; see
    /// [`sent_messages_since`](Self::sent_messages_since).
    pub fn notify_calls_since(&self, count: u64) -> Vec<NotifyCall> {
        self.shared.state().notify_calls.since(count)
    }

    /// The upload attempts added after their all-time count was `count`
    /// (`record_counts().uploads.total`), oldest first; see
    /// [`sent_messages_since`](Self::sent_messages_since).
    pub fn uploads_since(&self, count: u64) -> Vec<UploadRecord> {
        self.shared.state().uploads.since(count)
    }

    /// The requests answered (except control calls), oldest first (the
    /// newest [`SimConfig::request_log_limit`]). The `Authorization` header
    /// is never stored; see [`RequestRecord::auth`].
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.to_vec()
    }

    /// How many records of each kind were added since the start (or the
    /// last [`reset`](Self::reset)) and how many are still kept; the
    /// difference was dropped to stay within [`SimConfig::record_limit`] or
    /// [`SimConfig::request_log_limit`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), wxlink_sim::SimError> {
    /// let sim = wxlink_sim::Simulator::builder().record_limit(100).start().await?;
    /// let counts = sim.record_counts();
    /// assert_eq!(counts.sent.total, 0);
    /// assert_eq!(counts.sent.dropped(), 0);
    /// # Ok(()) }
    /// ```
    pub fn record_counts(&self) -> RecordCounts {
        self.shared.state().record_counts()
    }

    /// Makes the next `times` calls of `endpoint` fail with `fault`.
    /// Faults for one endpoint queue up and are used in order.
    ///
    /// `endpoint` is one of [`FAULT_TARGETS`]: the API names
    /// (`getupdates`, `sendmessage`, …) or `cdn_upload` / `cdn_download`.
    ///
    /// # Errors
    ///
    /// [`SimError::is_unknown_endpoint`] for any other name.
    pub fn inject_fault(&self, endpoint: &str, fault: Fault, times: u32) -> Result<(), SimError> {
        if !FAULT_TARGETS.contains(&endpoint) {
            return Err(SimError::unknown_endpoint(endpoint.to_owned()));
        }
        self.shared.state().faults.push(endpoint, fault, times);
        Ok(())
    }

    /// Expires the default account's session: every bot endpoint answers
    /// `-14` to its token from now on (a held long poll too, at once). A
    /// new QR login gives a fresh token.
    pub fn expire_session(&self) {
        let id = self.shared.state().current_id();
        expire(&self.shared, id);
    }

    /// Puts the simulator back as it started: the accounts it started with
    /// (valid again, with their tokens), no other accounts, no queued
    /// messages, records (their [counts](Self::record_counts) back at
    /// zero), faults, chaos draws, scripts, conversations or stored media,
    /// the configured fidelity and chaos, and the real clock.
    pub fn reset(&self) {
        self.shared.state().reset(&self.shared.config);
        self.shared.login_changed.notify_waiters();
        self.shared.touch();
    }

    /// Queues a login script for the next QR code issued.
    pub fn script_login(&self, script: LoginScript) {
        self.shared.state().login.push_script(script);
    }

    /// Lets the simulated user of the newest QR login in progress take
    /// its next step now (scan, confirm, …; see [`LoginScript`]'s pacing):
    /// a status poll held at this moment answers at once with the new
    /// status, or else the next poll does. Meant for
    /// [`LoginScript::manual`] scripts, where nothing happens otherwise;
    /// a timed script's next step happens at once, and a per-poll script
    /// steps on every poll anyway. Each call allows one step.
    ///
    /// Returns `false` when no login is in progress: no QR code was issued
    /// yet, or the newest one finished (confirmed, expired, …). A test that
    /// starts a login in the background can wait for its first poll with
    /// [`wait_for_requests`](Self::wait_for_requests)`("get_qrcode_status",
    /// 1, …)` first.
    pub fn advance_login(&self) -> bool {
        let advanced = self.shared.state().login.advance_newest();
        self.shared.login_changed.notify_waiters();
        advanced
    }

    /// Replaces the fidelity switches from now on.
    pub fn set_fidelity(&self, fidelity: Fidelity) {
        self.shared.state().fidelity = fidelity;
    }

    /// Moves the simulated clock forward: message timestamps and the reply
    /// window see the time `by` later than it is. Advances add up and stop
    /// at `Duration::MAX` instead of overflowing.
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.shared.state();
        state.clock_offset = state.clock_offset.saturating_add(by);
    }

    /// Number of messages queued for any account and not yet delivered.
    pub fn pending_messages(&self) -> usize {
        self.shared
            .state()
            .bots
            .values()
            .map(|b| b.queue.len())
            .sum()
    }

    /// Replaces the chaos in force (`None` stops it); the generator starts
    /// again from the new seed, and the chaos log is cleared.
    ///
    /// # Errors
    ///
    /// [`SimError::is_invalid_input`] for a rule that is not usable (unknown
    /// endpoint, probability outside 0.0 to 1.0, no faults).
    pub fn set_chaos(&self, chaos: Option<Chaos>) -> Result<(), SimError> {
        if let Some(c) = &chaos {
            c.validate().map_err(SimError::invalid_input)?;
        }
        self.shared.state().chaos = ChaosState::new(chaos);
        Ok(())
    }

    /// The faults the chaos drew, oldest first (the newest 100 000).
    pub fn chaos_log(&self) -> Vec<ChaosEvent> {
        self.shared.state().chaos.log()
    }

    /// How many faults the chaos drew in all.
    pub fn chaos_faults(&self) -> u64 {
        self.shared.state().chaos.total()
    }

    /// Waits until at least `n` messages have been sent in all (counting
    /// those the log no longer keeps) and returns the messages kept, as
    /// [`sent_messages`](Self::sent_messages) does.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_sent(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SentMessage>, SimError> {
        self.shared
            .wait_until(timeout, |st| {
                reached(st.sent.total(), n).then(|| st.sent.to_vec())
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// Waits until at least `n` typing calls have arrived in all and
    /// returns those kept.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_typing(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<TypingCall>, SimError> {
        self.shared
            .wait_until(timeout, |st| {
                reached(st.typing.total(), n).then(|| st.typing.to_vec())
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// Waits until at least `n` upload attempts have finished in all and
    /// returns those kept.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_uploads(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<UploadRecord>, SimError> {
        self.shared
            .wait_until(timeout, |st| {
                reached(st.uploads.total(), n).then(|| st.uploads.to_vec())
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// Waits until at least `n` requests to `endpoint` have been answered in
    /// all and returns those the request log still keeps.
    ///
    /// # Errors
    ///
    /// [`SimError::is_timeout`] when `timeout` passes first.
    pub async fn wait_for_requests(
        &self,
        endpoint: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RequestRecord>, SimError> {
        self.shared
            .wait_until(timeout, |st| {
                reached(st.endpoint_total(endpoint), n).then(|| {
                    st.requests
                        .iter()
                        .filter(|r| r.endpoint == Some(endpoint))
                        .cloned()
                        .collect()
                })
            })
            .await
            .ok_or_else(SimError::timeout)
    }

    /// The directory spilled CDN uploads are written to, once one spilled.
    pub fn spill_dir(&self) -> Option<std::path::PathBuf> {
        self.shared.state().cdn.spill_dir()
    }

    /// A handle on `shared` for the control endpoints; it does not keep
    /// the server alive and cannot shut it down.
    pub(crate) fn view(shared: Arc<Shared>) -> Self {
        Self { shared, life: None }
    }
}

/// Whether an all-time count has reached `n`.
pub(crate) fn reached(total: u64, n: usize) -> bool {
    u64::try_from(n).is_ok_and(|n| total >= n)
}
