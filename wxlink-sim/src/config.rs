//! Configuration of a simulator: hold times, quirks, accounts, chaos,
//! fidelity switches and CDN storage. The builder that starts a
//! [`Simulator`](crate::Simulator) from it is [`SimBuilder`](crate::SimBuilder).

use std::time::Duration;

use crate::chaos::Chaos;

/// Settings of one simulator instance.
///
/// Start from [`SimConfig::default`] (which mimics the real server's
/// timings, with every fidelity switch off) or use [`Simulator::builder`](crate::Simulator::builder).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// TCP port of the main listener; 0 picks a free port.
    pub port: u16,
    /// Bot accounts created at start (at least 1). The first is the one
    /// the one-account API ([`Simulator::token`](crate::Simulator::token)(crate::Simulator::token),
    /// [`Simulator::inject_text`](crate::Simulator::inject_text)(crate::Simulator::inject_text), …) means.
    pub accounts: usize,
    /// Faults drawn at random from a seed; `None` (the default) draws none.
    pub chaos: Option<Chaos>,
    /// How long `getupdates` holds a request when no message is queued. The
    /// real server holds about 35 s; tests use a few hundred milliseconds.
    /// Status polls of the QR login are held as long, unless
    /// [`qr_hold`](Self::qr_hold) says otherwise.
    pub hold: Duration,
    /// Seed of the random number generator behind every id, token and quirk,
    /// so a run can be repeated exactly.
    pub seed: u64,
    /// Probability (0.0 to 1.0) that a successful `getupdates` answer leaves
    /// out `ret` (and `msgs` when empty), as the real server sometimes does.
    pub omit_ret_probability: f64,
    /// The body of a successful `sendmessage`.
    pub send_ok_body: SendOkBody,
    /// The fidelity switches in force when the simulator starts.
    pub fidelity: Fidelity,
    /// Where the CDN keeps uploaded ciphertext.
    pub cdn_storage: CdnStorage,
    /// Which upload location `getuploadurl` returns.
    pub upload_url_mode: UploadUrlMode,
    /// Most upload slots (issued by `getuploadurl`), and most stored CDN
    /// objects (uploads and injected media), kept at once (10 000 each by
    /// default, at least 1). Beyond it the oldest is forgotten: its
    /// parameter answers as unknown, its memory counts no more against
    /// [`CdnStorage::Spill`]'s bound and a spilled file is deleted. Every
    /// upload adds one of each, even with [`CdnStorage::DigestOnly`], so
    /// this keeps a long load test from growing the index without bound;
    /// a client uses a slot and sends the media it uploaded within
    /// moments, far inside the limit.
    pub cdn_object_limit: usize,
    /// How long a `get_qrcode_status` poll is held when the login has
    /// nothing new for it (see [`LoginScript`](crate::LoginScript)'s
    /// pacing) before it answers the current status, `wait` before the
    /// scan. `None` (the default) holds as long as [`hold`](Self::hold):
    /// about 35 s like the real server by default, and as short as a test's
    /// own hold.
    pub qr_hold: Option<Duration>,
    /// Age after which a QR code reports `expired` (the official client's
    /// session lives 5 minutes).
    pub qr_ttl: Duration,
    /// Most messages delivered in one `getupdates` answer.
    pub max_batch: usize,
    /// Largest JSON request body accepted, in bytes.
    pub max_json_body: usize,
    /// Most request-log entries kept; the oldest go first. Keeps load tests
    /// from growing the log without bound. The all-time count per endpoint
    /// keeps going (see [`Simulator::record_counts`](crate::Simulator::record_counts)).
    pub request_log_limit: usize,
    /// Most entries kept in each of the other record logs: sent messages,
    /// typing calls, notify calls and uploads (10 000 each by default). The
    /// oldest go first, so a simulator under a long load test keeps a fixed
    /// amount of memory for them; 0 keeps none. The accessors
    /// ([`Simulator::sent_messages`](crate::Simulator::sent_messages) and the like) return what is kept,
    /// while the all-time totals ([`Simulator::record_counts`](crate::Simulator::record_counts)) and the
    /// `wait_for_*` helpers count every entry ever added.
    pub record_limit: usize,
    /// Give injected media a `full_url` (a complete download URL on the
    /// simulated CDN) besides `encrypt_query_param`, as some real inbound
    /// items carry.
    pub inbound_full_url: bool,
    /// The `redirect_host` that `scaned_but_redirect` names, instead of the
    /// second listener's `127.0.0.1:PORT2`. Clients that follow the protocol
    /// (`docs/protocol.md`, `get_qrcode_status`) poll `https://<redirect_host>`, so a host named here must answer
    /// TLS, for instance a front end that forwards to the second listener.
    pub redirect_host: Option<String>,
    /// Whether the second listener (the one `scaned_but_redirect` names)
    /// speaks TLS (the default, `true`), as a client that polls
    /// `https://` + `redirect_host` (`docs/protocol.md`, `get_qrcode_status`) needs. Its certificate
    /// is for `127.0.0.1` and `localhost`, signed by a CA made at start:
    /// see [`Simulator::tls_root_der`](crate::Simulator::tls_root_der). `false` serves plain HTTP there,
    /// for a client that keeps `http://` after the redirect.
    pub redirect_tls: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            accounts: 1,
            chaos: None,
            hold: Duration::from_millis(35_000),
            seed: 0x5EED_F11A,
            omit_ret_probability: 0.25,
            send_ok_body: SendOkBody::Empty,
            fidelity: Fidelity::default(),
            cdn_storage: CdnStorage::default(),
            upload_url_mode: UploadUrlMode::Param,
            cdn_object_limit: 10_000,
            qr_hold: None,
            qr_ttl: Duration::from_secs(300),
            max_batch: 32,
            max_json_body: 4 * 1024 * 1024,
            request_log_limit: 10_000,
            record_limit: 10_000,
            inbound_full_url: false,
            redirect_host: None,
            redirect_tls: true,
        }
    }
}

/// The body of a successful `sendmessage` answer (both forms are observed;
/// see `docs/protocol.md`, `SendMessageResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SendOkBody {
    /// `{}`.
    #[default]
    Empty,
    /// `{"ret":0}`.
    RetZero,
    /// `{"ret":0,"message_id":<id>}`, with a server-side message id (also
    /// reported; `docs/protocol.md`, `SendMessageResponse`).
    WithMessageId,
    /// Any of the forms above, chosen by the seeded random number generator.
    Random,
}

/// Which upload location `getuploadurl` returns (`docs/protocol.md`,
/// `GetUploadUrlResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UploadUrlMode {
    /// Only `upload_param`; the client builds the CDN URL itself.
    #[default]
    Param,
    /// Only `upload_full_url`, a complete URL on the simulated CDN.
    FullUrl,
    /// Both fields; a correct client prefers `upload_full_url`.
    Both,
}

/// Where the simulated CDN keeps uploaded ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CdnStorage {
    /// Keep ciphertext in memory while the total stays under
    /// `memory_limit` bytes; larger uploads are written to a temporary
    /// directory that is removed with the simulator.
    Spill {
        /// Bytes of ciphertext kept in memory across all uploads.
        memory_limit: u64,
    },
    /// Verify uploads but keep only their size and digest; downloads of
    /// uploaded media answer 404. Meant for load tests.
    DigestOnly,
}

impl Default for CdnStorage {
    fn default() -> Self {
        Self::Spill {
            memory_limit: 64 * 1024 * 1024,
        }
    }
}

/// Optional behaviours of the real server that tests switch on one at a
/// time, from field reports of its limits (each switch says what was
/// reported; `docs/protocol.md`, `sendmessage`). All are off by default.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Fidelity {
    /// Refuse a text item longer than this many UTF-8 bytes with
    /// `{"ret":-2}` (the reported limit is 16 384).
    pub max_text_bytes: Option<usize>,
    /// Refuse replies to a user beyond this many since the user's last
    /// message with `{"ret":-2}` (the reported limit is 10).
    pub replies_per_inbound: Option<u32>,
    /// Answer `{"ret":-2,"errmsg":"prepare failed"}` during a cool-down
    /// after a burst of sends.
    pub burst_throttle: Option<Throttle>,
    /// Silently drop (answer success, deliver nothing) a reply sent longer
    /// than this after the user's last message (the reported window is 24 h).
    pub reply_window: Option<Duration>,
    /// A new login by the same WeChat user expires the tokens of the user's
    /// older bindings (`-14`).
    pub single_binding_per_user: bool,
    /// When a second `getupdates` poll of one token arrives while one is
    /// held, the older poll answers at once with no messages and the newer
    /// one goes on (two pollers of one token fight, as reported). Off, both
    /// are held and a message goes to one of them.
    pub newer_poll_wins: bool,
    /// Refuse a send with `{"ret":-2}` when the user's last message is
    /// older than this, or the user never wrote: a proactive push outside
    /// the reply window (reported refused about 15 h after the last
    /// inbound message; 24 h is the documented window). Replies within it
    /// pass, up to [`replies_per_inbound`](Self::replies_per_inbound).
    pub push_window: Option<Duration>,
    /// Refuse a text item longer than this many characters (Unicode scalar
    /// values) with `{"ret":-2,"errmsg":"prepare failed"}`; reports put
    /// the hard limit between 5 000 and 7 337 characters.
    pub max_text_chars: Option<usize>,
    /// Accept an outbound voice item with `{"ret":0,"message_id":…}` and
    /// record it as not shown ([`SentMessage::not_shown`](crate::SentMessage::not_shown)):
    /// the real server drops outbound voice silently.
    pub voice_not_shown: bool,
    /// Refuse a send to a `to_user_id` the bot does not know (never wrote,
    /// not its owner, not added; compared case-sensitively) with
    /// `{"ret":-3,"errmsg":"invalid arguments"}`.
    pub reject_unknown_users: bool,
}

impl Fidelity {
    /// Every switch on, with the values reported for the real server:
    /// 16 384 bytes, 10 replies, more than 2 sends per second throttled for
    /// an hour, a 24 h window, one binding per user.
    pub fn strict() -> Self {
        Self {
            max_text_bytes: Some(16_384),
            replies_per_inbound: Some(10),
            burst_throttle: Some(Throttle::default()),
            reply_window: Some(Duration::from_secs(24 * 3600)),
            single_binding_per_user: true,
            ..Self::default()
        }
    }

    /// The limits of the newest field reports, all on: the bot-wide burst
    /// throttle (3 sends within a second, an hour's penalty that every
    /// attempt extends), pushes refused outside a 24 h window, 10 replies
    /// per inbound message, text over 5 000 characters refused, voice
    /// accepted and not shown, unknown users refused, the newer poll wins
    /// and one binding per user.
    pub fn field_reports() -> Self {
        Self {
            replies_per_inbound: Some(10),
            burst_throttle: Some(Throttle::default().extending(true)),
            single_binding_per_user: true,
            newer_poll_wins: true,
            push_window: Some(Duration::from_secs(24 * 3600)),
            max_text_chars: Some(5_000),
            voice_not_shown: true,
            reject_unknown_users: true,
            ..Self::default()
        }
    }

    /// Lets a newer poll of a token end the older one; see
    /// [`newer_poll_wins`](Self::newer_poll_wins).
    pub fn with_newer_poll_wins(mut self, on: bool) -> Self {
        self.newer_poll_wins = on;
        self
    }

    /// Refuses pushes to users silent for longer than `window`.
    pub fn with_push_window(mut self, window: Duration) -> Self {
        self.push_window = Some(window);
        self
    }

    /// Refuses text items over `chars` characters.
    pub fn with_max_text_chars(mut self, chars: usize) -> Self {
        self.max_text_chars = Some(chars);
        self
    }

    /// Accepts voice and records it as not shown.
    pub fn with_voice_not_shown(mut self, on: bool) -> Self {
        self.voice_not_shown = on;
        self
    }

    /// Refuses sends to users the bot does not know with `ret -3`.
    pub fn with_reject_unknown_users(mut self, on: bool) -> Self {
        self.reject_unknown_users = on;
        self
    }

    /// Refuses text items over `bytes` UTF-8 bytes.
    pub fn with_max_text_bytes(mut self, bytes: usize) -> Self {
        self.max_text_bytes = Some(bytes);
        self
    }

    /// Refuses replies beyond `n` per inbound message.
    pub fn with_replies_per_inbound(mut self, n: u32) -> Self {
        self.replies_per_inbound = Some(n);
        self
    }

    /// Throttles bursts of sends.
    pub fn with_burst_throttle(mut self, throttle: Throttle) -> Self {
        self.burst_throttle = Some(throttle);
        self
    }

    /// Silently drops replies sent later than `window` after the user's
    /// last message.
    pub fn with_reply_window(mut self, window: Duration) -> Self {
        self.reply_window = Some(window);
        self
    }

    /// Lets a new login by a user expire that user's older sessions.
    pub fn with_single_binding_per_user(mut self, on: bool) -> Self {
        self.single_binding_per_user = on;
        self
    }
}

/// The burst throttle: more than `max_per_second` sends of one bot within
/// one second blocks every send of that bot (any user) for `cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Throttle {
    /// Sends allowed in any one-second window.
    pub max_per_second: u32,
    /// How long sends stay blocked once the limit is passed.
    pub cooldown: Duration,
    /// Every send attempted during the penalty starts the cool-down again,
    /// as reported for the real server (penalties of 7 h and 15 h followed
    /// retries).
    pub extend_on_attempt: bool,
}

impl Throttle {
    /// A throttle allowing `max_per_second` sends per second and blocking
    /// for `cooldown` after a burst.
    pub fn new(max_per_second: u32, cooldown: Duration) -> Self {
        Self {
            max_per_second,
            cooldown,
            extend_on_attempt: false,
        }
    }

    /// Makes every attempt during the penalty extend it.
    pub fn extending(mut self, on: bool) -> Self {
        self.extend_on_attempt = on;
        self
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(2, Duration::from_secs(3600))
    }
}
