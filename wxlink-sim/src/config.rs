//! Configuration of a simulator: hold times, quirks, fidelity switches,
//! CDN storage and the builder that starts a [`Simulator`](crate::Simulator).

use std::time::Duration;

use crate::{SimError, Simulator};

/// Settings of one simulator instance.
///
/// Start from [`SimConfig::default`] (which mimics the real server's
/// timings, with every fidelity switch off) or use [`Simulator::builder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// TCP port of the main listener; 0 picks a free port.
    pub port: u16,
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
    /// keeps going (see [`Simulator::record_counts`]).
    pub request_log_limit: usize,
    /// Most entries kept in each of the other record logs: sent messages,
    /// typing calls, notify calls and uploads (10 000 each by default). The
    /// oldest go first, so a simulator under a long load test keeps a fixed
    /// amount of memory for them; 0 keeps none. The accessors
    /// ([`Simulator::sent_messages`] and the like) return what is kept,
    /// while the all-time totals ([`Simulator::record_counts`]) and the
    /// `wait_for_*` helpers count every entry ever added.
    pub record_limit: usize,
    /// Give injected media a `full_url` (a complete download URL on the
    /// simulated CDN) besides `encrypt_query_param`, as some real inbound
    /// items carry.
    pub inbound_full_url: bool,
    /// The `redirect_host` that `scaned_but_redirect` names, instead of the
    /// second listener's `127.0.0.1:PORT2`. Clients that follow ILINK.md
    /// poll `https://<redirect_host>`, so a host named here must answer
    /// TLS, for instance a front end that forwards to the second listener.
    pub redirect_host: Option<String>,
    /// Whether the second listener (the one `scaned_but_redirect` names)
    /// speaks TLS (the default, `true`), as a client that polls
    /// `https://` + `redirect_host` (ILINK.md §1.2) needs. Its certificate
    /// is for `127.0.0.1` and `localhost`, signed by a CA made at start:
    /// see [`Simulator::tls_root_der`]. `false` serves plain HTTP there,
    /// for a client that keeps `http://` after the redirect.
    pub redirect_tls: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
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

/// The body of a successful `sendmessage` answer (both forms are observed,
/// ILINK.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SendOkBody {
    /// `{}`.
    #[default]
    Empty,
    /// `{"ret":0}`.
    RetZero,
    /// `{"ret":0,"message_id":<id>}`, with a server-side message id (also
    /// reported, ILINK.md §12.1).
    WithMessageId,
    /// Any of the forms above, chosen by the seeded random number generator.
    Random,
}

/// Which upload location `getuploadurl` returns (ILINK.md §4.8).
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
/// time (ILINK.md §11.5). All are off by default.
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
        }
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

/// The burst throttle: more than `max_per_second` sends within one second
/// blocks every send for `cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Throttle {
    /// Sends allowed in any one-second window.
    pub max_per_second: u32,
    /// How long sends stay blocked once the limit is passed.
    pub cooldown: Duration,
}

impl Throttle {
    /// A throttle allowing `max_per_second` sends per second and blocking
    /// for `cooldown` after a burst.
    pub fn new(max_per_second: u32, cooldown: Duration) -> Self {
        Self {
            max_per_second,
            cooldown,
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(2, Duration::from_secs(3600))
    }
}

/// Builds a [`SimConfig`] step by step and starts the simulator.
#[derive(Debug, Clone, Default)]
pub struct SimBuilder {
    config: SimConfig,
}

impl SimBuilder {
    /// A builder holding [`SimConfig::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// Sets the long-poll hold time of `getupdates`, and of the QR status
    /// polls unless [`qr_hold`](Self::qr_hold) is set.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.config.hold = hold;
        self
    }

    /// Sets the random seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Sets the probability that a `getupdates` success leaves out `ret`.
    pub fn omit_ret_probability(mut self, p: f64) -> Self {
        self.config.omit_ret_probability = p.clamp(0.0, 1.0);
        self
    }

    /// Sets the `sendmessage` success body.
    pub fn send_ok_body(mut self, body: SendOkBody) -> Self {
        self.config.send_ok_body = body;
        self
    }

    /// Sets the fidelity switches.
    pub fn fidelity(mut self, fidelity: Fidelity) -> Self {
        self.config.fidelity = fidelity;
        self
    }

    /// Sets the CDN storage mode.
    pub fn cdn_storage(mut self, storage: CdnStorage) -> Self {
        self.config.cdn_storage = storage;
        self
    }

    /// Sets which upload location `getuploadurl` returns.
    pub fn upload_url_mode(mut self, mode: UploadUrlMode) -> Self {
        self.config.upload_url_mode = mode;
        self
    }

    /// Sets how many upload slots and stored CDN objects are kept (at
    /// least 1); see [`SimConfig::cdn_object_limit`].
    pub fn cdn_object_limit(mut self, n: usize) -> Self {
        self.config.cdn_object_limit = n.max(1);
        self
    }

    /// Holds status polls with nothing new for `hold` instead of the
    /// `getupdates` hold; see [`SimConfig::qr_hold`].
    pub fn qr_hold(mut self, hold: Duration) -> Self {
        self.config.qr_hold = Some(hold);
        self
    }

    /// Sets the QR code lifetime.
    pub fn qr_ttl(mut self, ttl: Duration) -> Self {
        self.config.qr_ttl = ttl;
        self
    }

    /// Sets the most messages per `getupdates` answer (at least 1).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.config.max_batch = n.max(1);
        self
    }

    /// Sets how many request-log entries are kept; see
    /// [`SimConfig::request_log_limit`].
    pub fn request_log_limit(mut self, n: usize) -> Self {
        self.config.request_log_limit = n;
        self
    }

    /// Sets how many entries each of the other record logs keeps (sent
    /// messages, typing calls, notify calls, uploads); see
    /// [`SimConfig::record_limit`].
    pub fn record_limit(mut self, n: usize) -> Self {
        self.config.record_limit = n;
        self
    }

    /// Gives injected media a `full_url`.
    pub fn inbound_full_url(mut self, on: bool) -> Self {
        self.config.inbound_full_url = on;
        self
    }

    /// Names `host` in `scaned_but_redirect` instead of the second listener.
    pub fn redirect_host(mut self, host: impl Into<String>) -> Self {
        self.config.redirect_host = Some(host.into());
        self
    }

    /// Serves the second listener over TLS (`true`, the default) or plain
    /// HTTP (`false`); see [`SimConfig::redirect_tls`].
    pub fn redirect_tls(mut self, on: bool) -> Self {
        self.config.redirect_tls = on;
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Starts a simulator with this configuration.
    pub async fn start(self) -> Result<Simulator, SimError> {
        Simulator::start_with(self.config).await
    }
}
