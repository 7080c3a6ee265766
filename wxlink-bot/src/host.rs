//! [`Host`]: many bot accounts in one process, on one shared transport.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wxlink_bot::{AccountConfig, Host, Incoming};
//! use wxlink_bot::store::SqliteStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder(SqliteStore::open("bots.db")?).build();
//! let mut events = host.events();
//! for file in ["alice.json", "bob.json"] {
//!     let record = wxlink_client::AccountRecord::load(file)?;
//!     let config = AccountConfig::from_record(&record)?;
//!     host.add_account(config, |incoming: Incoming| async move {
//!         let text = incoming.text().unwrap_or("(no text)").to_owned();
//!         incoming.reply(&format!("you said: {text}")).await
//!     })
//!     .await?;
//! }
//! while let Ok(event) = events.recv().await {
//!     println!("{}: {:?}", event.account, event.kind);
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinHandle;
use wxlink_client::{AccountRecord, ClientBuilder, WxLinkClient};
use wxlink_proto::BotToken;
use wxlink_transport::BoxHttpService;

use crate::account::supervise;
use crate::error::{Error, Kind};
use crate::events::Event;
use crate::handler::Handler;
use crate::options::{AccountOptions, ms, now_ms};
use crate::shared::Shared;
use crate::store::{AccountId, DeadLetter, JournalKey, Store};

/// One account to run: its id in the store, how to reach the server, and
/// its options.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    id: AccountId,
    builder: ClientBuilder,
    options: AccountOptions,
}

impl AccountConfig {
    /// An account named `id` whose client is built from `builder` (base
    /// URL, token, CDN URL, timeouts …). The host replaces the builder's
    /// transport with its shared one.
    pub fn new(id: AccountId, builder: ClientBuilder) -> Self {
        Self {
            id,
            builder,
            options: AccountOptions::default(),
        }
    }

    /// The account saved by a QR login, named by its bot id.
    pub fn from_record(record: &AccountRecord) -> Result<Self, Error> {
        let id = record.account_id.clone().ok_or_else(|| {
            Error::invalid("the account record has no account_id; use AccountConfig::new")
        })?;
        let id = AccountId::new(id)?;
        let mut builder = WxLinkClient::builder()
            .base_url(record.base_url.clone())
            .token(record.token.clone());
        if let Some(cdn) = record.cdn_base_url.clone() {
            builder = builder.cdn_base_url(cdn);
        }
        Ok(Self::new(id, builder))
    }

    /// Sets the options.
    pub fn options(mut self, options: AccountOptions) -> Self {
        self.options = options;
        self
    }

    /// The account's id.
    pub fn id(&self) -> &AccountId {
        &self.id
    }
}

/// A running account.
struct Running {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// State of a [`Host`].
struct HostInner {
    store: Arc<dyn Store>,
    transport: BoxHttpService,
    owner: String,
    permits: Arc<Semaphore>,
    events: broadcast::Sender<Event>,
    accounts: Mutex<HashMap<AccountId, Running>>,
}

/// Runs many accounts: each with its own lease, poll loop, backoff,
/// throttle and budgets; handlers concurrent across users and accounts (up
/// to a bound) and in order per user. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("owner", &self.inner.owner)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Host`].
pub struct HostBuilder {
    store: Arc<dyn Store>,
    transport: Option<BoxHttpService>,
    owner: Option<String>,
    concurrency: usize,
}

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("owner", &self.owner)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    /// Sends every account's requests through `service` (one connection
    /// pool for all) instead of a new default HTTPS transport.
    pub fn transport<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<wxlink_transport::Body>,
                Response = http::Response<wxlink_transport::Body>,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<wxlink_transport::BoxError>,
        S::Future: Send + 'static,
    {
        self.transport = Some(boxed(service));
        self
    }

    /// The runner's name in leases (default: host name-less
    /// `wxlink-<pid>-<random>`, unique per start).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// How many handlers may run at once across all accounts (default 64,
    /// at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The host.
    pub fn build(self) -> Host {
        let owner = self.owner.unwrap_or_else(|| {
            format!(
                "wxlink-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )
        });
        let (events, _) = broadcast::channel(4096);
        Host {
            inner: Arc::new(HostInner {
                store: self.store,
                transport: self.transport.unwrap_or_else(|| boxed(default_transport())),
                owner,
                permits: Arc::new(Semaphore::new(self.concurrency)),
                events,
                accounts: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// The read buffer of each HTTP/1.1 connection of the default transport:
/// every idle account holds a poll, and so a connection, of its own, and
/// API answers are small JSON bodies whose heads take a few hundred bytes.
pub(crate) const HOST_HTTP1_READ_BUFFER: usize = 4 * 1024;

/// The transport of a host built without one: the default HTTPS transport
/// (proxy from the environment), with a smaller read buffer per HTTP/1.1
/// connection than hyper's 8 KiB ([`HOST_HTTP1_READ_BUFFER`]).
fn default_transport() -> wxlink_transport::HttpsTransport {
    let mut options = wxlink_transport::TransportOptions::default();
    options.http1_read_buffer = Some(HOST_HTTP1_READ_BUFFER);
    wxlink_transport::HttpsTransport::with_options(options)
}

/// Boxes a transport once, so that every account shares it.
fn boxed<S>(service: S) -> BoxHttpService
where
    S: tower::Service<
            http::Request<wxlink_transport::Body>,
            Response = http::Response<wxlink_transport::Body>,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<wxlink_transport::BoxError>,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    BoxHttpService::new(
        ArcTransport(Arc::new(service)).map_err(Into::<wxlink_transport::BoxError>::into),
    )
}

/// A transport behind an `Arc`, so that a clone is a count bumped, not a
/// copy. Every account's client holds several clones of the boxed
/// transport (and each call clones its service stack); a transport such
/// as `HttpsTransport` holds two hyper clients inline, about 760 bytes a
/// copy. Each call works on its own clone of the inner service, made
/// ready first.
struct ArcTransport<S>(Arc<S>);

impl<S> Clone for ArcTransport<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S, R> tower::Service<R> for ArcTransport<S>
where
    S: tower::Service<R> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tower::util::Oneshot<S, R>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // The clone made in `call` is the one that is driven to readiness.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        use tower::ServiceExt;
        S::clone(&self.0).oneshot(request)
    }
}

/// A handle on one running account: proactive pushes and its state.
#[derive(Clone, Debug)]
pub struct AccountHandle {
    shared: Arc<Shared>,
}

impl AccountHandle {
    /// The account's id.
    pub fn id(&self) -> &AccountId {
        &self.shared.id
    }

    /// The account's client (sends on it bypass the runtime's limits).
    pub fn client(&self) -> WxLinkClient {
        self.shared.client()
    }

    /// Pushes `text` to `user`, who must have written within the reply
    /// window; counts against the push budget (0 disables pushes), paced
    /// and throttled like replies.
    pub async fn push_text(&self, user: &str, text: &str) -> Result<(), Error> {
        crate::incoming::push_text(&self.shared, user, text).await
    }

    /// Pushes a message the runtime does not build itself (media, a
    /// captioned file) through the facade's own builders, with the push
    /// budget, pacing and throttle of [`push_text`](Self::push_text).
    /// `sends` is how many messages the call sends (2 for a captioned
    /// media message). The permit's `client_id` is fresh: a push answers
    /// no delivery, so there is nothing to derive it from.
    pub async fn push_with<T, F, Fut>(&self, user: &str, sends: u32, call: F) -> Result<T, Error>
    where
        F: FnOnce(crate::ReplyPermit) -> Fut,
        Fut: std::future::Future<Output = Result<T, wxlink_client::Error>>,
    {
        crate::incoming::push_with(&self.shared, user, sends, call).await
    }

    /// The bot's throttle state: since when, and when the probe is due.
    pub fn throttled(&self) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
        self.shared.limiter.throttle().map(|t| {
            (
                crate::options::system_time(t.since_ms),
                crate::options::system_time(t.next_probe_ms),
            )
        })
    }

    /// True while the account's session is expired (polling stopped).
    pub fn is_session_expired(&self) -> bool {
        self.shared.check_session().is_err()
    }

    /// The lease epoch this runner holds, if it holds the lease.
    pub fn epoch(&self) -> Option<u64> {
        self.shared.lease().ok().map(|l| l.epoch)
    }
}

impl Host {
    /// A builder for a host over `store`.
    pub fn builder(store: impl Store) -> HostBuilder {
        Self::builder_arc(Arc::new(store))
    }

    /// A builder for a host over a shared store.
    pub fn builder_arc(store: Arc<dyn Store>) -> HostBuilder {
        HostBuilder {
            store,
            transport: None,
            owner: None,
            concurrency: 64,
        }
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.inner.store)
    }

    /// This runner's owner name in leases.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Every event of every account from now on. A receiver that falls
    /// more than 4 096 events behind skips the oldest (`Lagged`).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Starts running an account with `handler`.
    ///
    /// Claims the account's lease first: when another runner holds it,
    /// fails with [`Error::is_leased`] unless
    /// [`AccountOptions::wait_for_lease`] is set (then the account waits
    /// for the expiry and takes over, with an `EventKind::Leased`
    /// event). An account already running in this host is refused.
    pub async fn add_account(
        &self,
        config: AccountConfig,
        handler: impl Handler,
    ) -> Result<AccountHandle, Error> {
        self.add_account_arc(config, Arc::new(handler)).await
    }

    /// [`add_account`](Self::add_account) with a shared handler.
    pub async fn add_account_arc(
        &self,
        config: AccountConfig,
        handler: Arc<dyn Handler>,
    ) -> Result<AccountHandle, Error> {
        if self.lock()?.contains_key(&config.id) {
            return Err(Error::invalid(format!(
                "account {} is already running in this host",
                config.id
            )));
        }
        let builder = config.builder.transport(self.inner.transport.clone());
        let client = builder.clone().build()?;
        let options = config.options;
        let first = match self
            .inner
            .store
            .claim(
                &config.id,
                &self.inner.owner,
                ms(options.lease_ttl),
                now_ms(),
            )
            .await
        {
            Ok(lease) => Some(lease),
            Err(err) if err.is_leased() && options.wait_for_lease => None,
            Err(err) => return Err(err),
        };
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            config.id.clone(),
            Arc::clone(&self.inner.store),
            options,
            self.inner.owner.clone(),
            builder,
            client,
            self.inner.events.clone(),
            stop_rx,
        ));
        let task = tokio::spawn(supervise(
            Arc::clone(&shared),
            handler,
            Arc::clone(&self.inner.permits),
            first,
        ));
        let handle = AccountHandle {
            shared: Arc::clone(&shared),
        };
        self.lock()?
            .insert(config.id, Running { shared, stop, task });
        Ok(handle)
    }

    /// The handle of a running account.
    pub fn account(&self, id: &AccountId) -> Option<AccountHandle> {
        self.lock().ok()?.get(id).map(|r| AccountHandle {
            shared: Arc::clone(&r.shared),
        })
    }

    /// The ids of the running accounts.
    pub fn account_ids(&self) -> Vec<AccountId> {
        let mut ids: Vec<AccountId> = self
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Stops an account: the poll is aborted, running handlers are
    /// cancelled (their messages stay journaled), `notifystop` is sent and
    /// the lease released so that another runner may take it at once.
    pub async fn remove_account(&self, id: &AccountId) -> Result<(), Error> {
        let running = self
            .lock()?
            .remove(id)
            .ok_or_else(|| Error::new(Kind::UnknownAccount(id.to_string())))?;
        let _ = running.stop.send(true);
        let _ = running.task.await;
        Ok(())
    }

    /// Gives a running account a new token (after a QR login): polling
    /// resumes without a restart if it had stopped on `-14`.
    pub fn update_token(&self, id: &AccountId, token: BotToken) -> Result<(), Error> {
        let shared = self
            .lock()?
            .get(id)
            .map(|r| Arc::clone(&r.shared))
            .ok_or_else(|| Error::new(Kind::UnknownAccount(id.to_string())))?;
        shared.update_token(token)
    }

    /// Up to `limit` dead letters of an account (running or not).
    pub async fn dead_letters(
        &self,
        id: &AccountId,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        self.inner.store.dead_letters(id, limit).await
    }

    /// Moves a dead letter back into the journal with its attempts reset.
    /// An account running in this host handles it at once (behind the
    /// user's messages already waiting); one re-queued from elsewhere (the
    /// `wxlink dead-letters requeue` command) is handled when its runner
    /// next starts. Returns `false` when there is no such dead letter.
    pub async fn requeue(&self, id: &AccountId, key: JournalKey) -> Result<bool, Error> {
        let moved = self.inner.store.requeue(id, key).await?;
        if moved && let Some(shared) = self.lock()?.get(id).map(|r| Arc::clone(&r.shared)) {
            shared.requeued(key);
        }
        Ok(moved)
    }

    /// Stops every account (see [`remove_account`](Self::remove_account)).
    pub async fn shutdown(&self) {
        let running: Vec<Running> = match self.lock() {
            Ok(mut map) => map.drain().map(|(_, r)| r).collect(),
            Err(_) => return,
        };
        for r in &running {
            let _ = r.stop.send(true);
        }
        for r in running {
            let _ = r.task.await;
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<AccountId, Running>>, Error> {
        self.inner
            .accounts
            .lock()
            .map_err(|_| Error::new(Kind::Stopped))
    }
}
