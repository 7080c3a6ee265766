//! Starting a simulator: the builder, binding the two loopback listeners,
//! the redirect listener's TLS and the handle that owns the server. This
//! is the top of the module graph: it wires the state to the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::chaos::Chaos;
use crate::config::{CdnStorage, Fidelity, SendOkBody, SimConfig, UploadUrlMode};
use crate::error::SimError;
use crate::sim::Simulator;
use crate::state::{Shared, State};

impl Simulator {
    /// Starts a simulator with [`SimConfig::default`] on a free port.
    ///
    /// # Errors
    ///
    /// [`SimError::is_bind`] when no loopback port can be bound.
    pub async fn start() -> Result<Self, SimError> {
        Self::start_with(SimConfig::default()).await
    }

    /// A builder for a configured simulator.
    pub fn builder() -> SimBuilder {
        SimBuilder::new()
    }

    /// Starts a simulator with `config`.
    ///
    /// # Errors
    ///
    /// [`SimError::is_bind`] when the port cannot be bound, [`SimError::is_tls`]
    /// when the second listener's certificate cannot be made,
    /// [`SimError::is_invalid_input`] for a chaos rule that is not usable.
    pub async fn start_with(config: SimConfig) -> Result<Self, SimError> {
        if let Some(chaos) = &config.chaos {
            chaos.validate().map_err(SimError::invalid_input)?;
        }
        let main = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(SimError::bind)?;
        let second = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(SimError::bind)?;
        let port = main.local_addr().map_err(SimError::bind)?.port();
        let port2 = second.local_addr().map_err(SimError::bind)?.port();
        let base_url = format!("http://127.0.0.1:{port}");
        let (stop, stop_rx) = watch::channel(false);
        let redirect_host = config
            .redirect_host
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{port2}"));
        // The certificate is made even when the second listener is plain,
        // so `tls_root_der` always has something to return; it costs well
        // under a millisecond.
        let tls = crate::tls::generate()?;
        let redirect_scheme = if config.redirect_tls { "https" } else { "http" };
        let acceptor = config.redirect_tls.then(|| tls.acceptor.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&config)),
            config,
            activity: Notify::new(),
            login_changed: Notify::new(),
            shutdown: stop_rx,
            cdn_base_url: format!("{base_url}/c2c"),
            base_url,
            redirect_host,
            redirect_base_url: format!("{redirect_scheme}://127.0.0.1:{port2}"),
            tls_root_der: tls.root_der,
        });
        let tasks = vec![
            crate::server::serve(shared.clone(), main, false, None),
            crate::server::serve(shared.clone(), second, true, acceptor),
        ];
        Ok(Self::owning(shared, stop, tasks))
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

    /// Creates `n` bot accounts at start (at least 1); see
    /// [`SimConfig::accounts`].
    pub fn accounts(mut self, n: usize) -> Self {
        self.config.accounts = n.max(1);
        self
    }

    /// Draws faults at random from `chaos`; see [`Chaos`].
    pub fn chaos(mut self, chaos: Chaos) -> Self {
        self.config.chaos = Some(chaos);
        self
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
    ///
    /// # Errors
    ///
    /// As [`Simulator::start_with`].
    pub async fn start(self) -> Result<Simulator, SimError> {
        Simulator::start_with(self.config).await
    }
}
