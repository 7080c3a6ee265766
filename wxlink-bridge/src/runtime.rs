//! The bridge on the bot runtime: [`Bridge`] runs accounts on a
//! `wxlink_bot::Host` with the [`Engine`] as their handler.
//!
//! For each inbound message the host hands over, the bridge downloads the
//! message's media into its inbound directory, finds the quoted text (from
//! the quote itself, or from the bridge's memory of recent messages when a
//! newer client quotes by id only), and dispatches the message to the
//! engine. The handler call lasts until the engine settles the message, so
//! the host's guarantees carry over: a message leaves the journal only once
//! it was answered, a failed turn is retried by the host after its retry
//! delay and dead-lettered after `max_attempts` (counted across restarts),
//! and the replies of a replayed delivery that the server already accepted
//! are skipped, not sent again. Replies go through the host's pacing,
//! throttle and budgets: text through `Incoming::reply`, files through
//! `Incoming::reply_with` and the facade's media calls. A URL is fetched
//! by the facade with the bridge's own [`BridgeOptions::fetch`] limits:
//! by default only public addresses, checked after resolving the name and
//! again on every redirect, so a URL an agent (or a user talking it into
//! one) names cannot reach this machine, its network or a cloud metadata
//! service. A refused URL sends nothing; the engine logs why and tells the
//! user. [`BridgeOptions::allow_private_urls`] lifts the check for an
//! agent that serves its files on a trusted network.
//!
//! [`Bridge::handler`] is the bridge as a plain runtime handler, for
//! accounts started by someone else: the scale-out runner of
//! `wxlink_bot::runner` claims accounts from a PostgreSQL store and starts
//! each with it.
//!
//! Replies sent later through the send endpoint, once the message was
//! acknowledged, are proactive pushes (`AccountHandle::push_text` and
//! `push_with`: the push budget, pacing and throttle).
//!
//! The host serialises one user's messages. Those that arrive while the
//! agent works wait in the journal; when the handler for the next one
//! runs, it takes them too (`Incoming::take_queued`), and the engine
//! answers them all in one turn. The host acknowledges them together once
//! every one of them is settled.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use wxlink_bot::{
    AccountConfig, AccountHandle, AccountOptions, Handler, HandlerFuture, Host, Incoming,
    ReplyPermit, TypingGuard,
};
use wxlink_client::media::{AddressPolicy, FetchOptions};
use wxlink_proto::{MessageItem, MessageItemType, WeixinMessage};

use crate::agent::{Agent, BoxFuture};
use crate::engine::{
    DeliveryAttempt, Engine, EngineOptions, Inbound, MediaOutcome, Outbox, ReplyTo, Settle, Typing,
};
use crate::error::{Error, Kind};
use crate::media_endpoint::MediaEndpoint;
use crate::metrics::Metrics;
use crate::turn::{MediaKind, ReplyMedia, TurnMedia};
use crate::webhook::ReplySink;

/// The most media files downloaded from one message.
const MAX_MEDIA_PER_MESSAGE: usize = 4;
/// Recent message texts remembered per account, to resolve quotes by id.
const QUOTE_MEMORY: usize = 2_000;

/// Called with the account and message id when the host hands a message
/// to the bridge, before anything else happens to it.
pub type DeliveryHook = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// Settings of a [`Bridge`] beyond the engine's.
#[derive(Clone)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// The turn semantics.
    pub engine: EngineOptions,
    /// Where inbound media are downloaded; files are removed once their
    /// turn is settled.
    pub inbound_dir: PathBuf,
    /// Download inbound media at all (default on).
    pub download_media: bool,
    /// Told of each delivery as it arrives (tracing, latency measurement).
    pub on_delivery: Option<DeliveryHook>,
    /// The limits of reply URL fetches: size, time, redirects, and which
    /// addresses may be reached (default: public ones only, checked after
    /// resolution on every hop).
    pub fetch: FetchOptions,
    /// Serves each turn's inbound media on loopback too, at
    /// [`TurnMedia::url`], while the turn lasts (default: paths only).
    pub media_endpoint: Option<Arc<MediaEndpoint>>,
}

impl fmt::Debug for BridgeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeOptions")
            .field("engine", &self.engine)
            .field("inbound_dir", &self.inbound_dir)
            .field("download_media", &self.download_media)
            .field("on_delivery", &self.on_delivery.is_some())
            .field("fetch", &self.fetch)
            .field("media_endpoint", &self.media_endpoint)
            .finish()
    }
}

impl BridgeOptions {
    /// Options with `engine` semantics, downloading media into
    /// `inbound_dir`.
    pub fn new(engine: EngineOptions, inbound_dir: impl Into<PathBuf>) -> Self {
        Self {
            engine,
            inbound_dir: inbound_dir.into(),
            download_media: true,
            on_delivery: None,
            fetch: FetchOptions::default(),
            media_endpoint: None,
        }
    }

    /// Serves inbound media at loopback URLs through `endpoint`, beside
    /// their local paths.
    #[must_use]
    pub fn media_endpoint(mut self, endpoint: Arc<MediaEndpoint>) -> Self {
        self.media_endpoint = Some(endpoint);
        self
    }

    /// Sets the limits of reply URL fetches.
    #[must_use]
    pub fn fetch(mut self, fetch: FetchOptions) -> Self {
        self.fetch = fetch;
        self
    }

    /// Lets reply URLs reach loopback, private, link-local and cloud
    /// metadata addresses (`true`), or only public ones (`false`, the
    /// default).
    #[must_use]
    pub fn allow_private_urls(mut self, allow: bool) -> Self {
        self.fetch = self.fetch.policy(if allow {
            AddressPolicy::AllowAll
        } else {
            AddressPolicy::PublicOnly
        });
        self
    }

    /// Sets the delivery hook.
    #[must_use]
    pub fn on_delivery(mut self, hook: DeliveryHook) -> Self {
        self.on_delivery = Some(hook);
        self
    }
}

/// Key of a delivery in flight: account and message id.
type LiveKey = (String, u64);

struct Shared {
    host: Host,
    live: Mutex<HashMap<LiveKey, Arc<Incoming>>>,
    quotes: Mutex<HashMap<String, QuoteMemory>>,
    options: BridgeOptions,
}

/// Recent message texts of one account, by id.
#[derive(Default)]
struct QuoteMemory {
    order: VecDeque<String>,
    texts: HashMap<String, String>,
}

impl QuoteMemory {
    fn remember(&mut self, id: String, text: String) {
        if self.texts.insert(id.clone(), text).is_none() {
            self.order.push_back(id);
            while self.order.len() > QUOTE_MEMORY {
                if let Some(old) = self.order.pop_front() {
                    self.texts.remove(&old);
                }
            }
        }
    }
}

/// The bridge: accounts on a host, answered by an agent; see the
/// [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    shared: Arc<Shared>,
    engine: Engine,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// A bridge answering every account of `host` with `agent`.
    pub fn new(host: Host, agent: Arc<dyn Agent>, options: BridgeOptions) -> Self {
        Self::with_metrics(host, agent, options, Arc::new(Metrics::new()))
    }

    /// The same, recording into `metrics`.
    pub fn with_metrics(
        host: Host,
        agent: Arc<dyn Agent>,
        options: BridgeOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shared = Arc::new(Shared {
            host,
            live: Mutex::new(HashMap::new()),
            quotes: Mutex::new(HashMap::new()),
            options: options.clone(),
        });
        let outbox = Arc::new(HostOutbox {
            shared: shared.clone(),
        });
        let engine = Engine::with_metrics(agent, outbox, options.engine, metrics);
        Self { shared, engine }
    }

    /// The engine (for its metrics, or to wait until it is idle).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.shared.host
    }

    /// Where the send endpoint hands replies that come later.
    pub fn reply_sink(&self) -> Arc<dyn ReplySink> {
        Arc::new(self.engine.clone())
    }

    /// The bridge as a runtime handler, for accounts run with `options`
    /// (their attempts and reply budget) that someone else starts on the
    /// bridge's host, such as a `wxlink_bot::runner::Runner`.
    pub fn handler(&self, options: &AccountOptions) -> Arc<dyn Handler> {
        let chunk = self.shared.options.engine.chunk_chars;
        if chunk > options.max_chars {
            // Each chunk would leave as several messages, and the reply
            // budget would run out before the cut notice.
            tracing::warn!(
                chunk_chars = chunk,
                max_chars = options.max_chars,
                "the bridge's chunks are longer than the runtime's messages; lower chunk_chars"
            );
        }
        Arc::new(BridgeHandler {
            shared: self.shared.clone(),
            engine: self.engine.clone(),
            max_attempts: options.max_attempts,
            reply_budget: options.reply_budget,
        })
    }

    /// Starts running an account with `options`, answered by the bridge's
    /// agent.
    pub async fn add_account(
        &self,
        config: AccountConfig,
        options: AccountOptions,
    ) -> Result<AccountHandle, Error> {
        let id = config.id().as_str().to_owned();
        let handler = self.handler(&options);
        let config = config.options(options);
        self.shared
            .host
            .add_account_arc(config, handler)
            .await
            .map_err(|err| {
                Error::with_source(Kind::Config, format!("cannot run account {id}"), err)
            })
    }

    /// Stops taking messages, waits up to `grace` for turns in flight, then
    /// stops every account. A turn still running after `grace` is not
    /// acknowledged, so it stays in the journal and is answered again after
    /// a restart (its replies already accepted are skipped).
    pub async fn shutdown(&self, grace: std::time::Duration) {
        let _ = tokio::time::timeout(grace, self.engine.idle()).await;
        self.shared.host.shutdown().await;
    }
}

#[derive(Clone)]
struct BridgeHandler {
    shared: Arc<Shared>,
    engine: Engine,
    max_attempts: u32,
    reply_budget: u32,
}

/// Settles a delivery by answering the handler call waiting on it.
struct OneshotSettle(oneshot::Sender<Result<(), String>>);

impl Settle for OneshotSettle {
    fn done(self: Box<Self>) -> BoxFuture<'static, ()> {
        let _ = self.0.send(Ok(()));
        Box::pin(async {})
    }

    fn failed(self: Box<Self>, reason: String) -> BoxFuture<'static, ()> {
        let _ = self.0.send(Err(reason));
        Box::pin(async {})
    }
}

impl Handler for BridgeHandler {
    fn handle(&self, incoming: Incoming) -> HandlerFuture {
        let this = self.clone();
        Box::pin(async move { this.run(incoming).await.map_err(Into::into) })
    }
}

impl BridgeHandler {
    async fn run(&self, incoming: Incoming) -> Result<(), String> {
        let account = incoming.account().as_str().to_owned();
        let user = incoming.sender().to_owned();
        let message_id = incoming.message_id().unwrap_or(incoming.key().0);
        if let Some(hook) = &self.shared.options.on_delivery {
            hook(&account, message_id);
        }
        let attempt = DeliveryAttempt::new(incoming.attempts() + 1, self.max_attempts.max(1));
        // The user's messages already waiting behind this one go into the
        // same turn; the host acknowledges them with this one.
        let mut messages = vec![(message_id, incoming.message().clone())];
        for queued in incoming.take_queued().await {
            let id = queued.message_id.unwrap_or(message_id);
            messages.push((id, queued));
        }
        let client = incoming.client();
        let incoming = Arc::new(incoming);
        let keys: Vec<LiveKey> = messages
            .iter()
            .map(|(id, _)| (account.clone(), *id))
            .collect();
        if let Ok(mut live) = self.shared.live.lock() {
            for key in &keys {
                live.insert(key.clone(), incoming.clone());
            }
        }
        let mut batch = Vec::with_capacity(messages.len());
        let mut waits = Vec::with_capacity(messages.len());
        let mut files = Vec::new();
        for (id, message) in &messages {
            let text = message_text(message);
            let quote = self.quote(&account, message);
            self.remember(&account, message, &text);
            let media = if self.shared.options.download_media {
                download(
                    &client,
                    message,
                    &self.shared.options.inbound_dir,
                    &account,
                    *id,
                )
                .await
            } else {
                Vec::new()
            };
            let media = match &self.shared.options.media_endpoint {
                Some(endpoint) => media
                    .into_iter()
                    .map(|mut m| {
                        m.url = endpoint.publish(&m.path, m.content_type.as_deref());
                        m
                    })
                    .collect(),
                None => media,
            };
            files.extend(media.iter().map(|m| m.path.clone()));
            let (tx, rx) = oneshot::channel();
            waits.push(rx);
            batch.push(
                Inbound::new(
                    &account,
                    user.clone(),
                    *id,
                    text,
                    Box::new(OneshotSettle(tx)),
                )
                .quote(quote)
                .media(media)
                .attempt(attempt)
                .reply_budget(self.reply_budget),
            );
        }
        self.engine.dispatch_all(batch);
        // The host settles every taken message with this handler call, so
        // it waits for all of them (a command among them is a turn of its
        // own).
        let mut outcome = Ok(());
        for rx in waits {
            let result = rx.await.unwrap_or_else(|_| {
                Err("the bridge stopped before the turn was settled".to_owned())
            });
            if outcome.is_ok() {
                outcome = result;
            }
        }
        if let Ok(mut live) = self.shared.live.lock() {
            for key in &keys {
                live.remove(key);
            }
        }
        for path in files {
            if let Some(endpoint) = &self.shared.options.media_endpoint {
                endpoint.withdraw(&path);
            }
            let _ = tokio::fs::remove_file(&path).await;
        }
        outcome
    }

    /// The quoted text: the quote's own text or title, or, for a quote by
    /// id only, the text of that message if the bridge saw it.
    fn quote(&self, account: &str, message: &WeixinMessage) -> Option<String> {
        let reference = message
            .item_list
            .iter()
            .find_map(|item| item.ref_msg.as_deref())?;
        let quoted = reference.message_item.as_deref();
        if let Some(text) = quoted
            .and_then(|item| item.text_item.as_ref())
            .and_then(|t| t.text.clone())
            .filter(|t| !t.is_empty())
        {
            return Some(text);
        }
        if let Some(id) = quoted.and_then(|item| item.msg_id.clone()) {
            let known = self
                .shared
                .quotes
                .lock()
                .ok()
                .and_then(|q| q.get(account).and_then(|m| m.texts.get(&id).cloned()));
            if known.is_some() {
                return known;
            }
        }
        reference.title.clone().filter(|t| !t.is_empty())
    }

    fn remember(&self, account: &str, message: &WeixinMessage, text: &str) {
        if text.is_empty() {
            return;
        }
        let Ok(mut quotes) = self.shared.quotes.lock() else {
            return;
        };
        let memory = quotes.entry(account.to_owned()).or_default();
        for item in &message.item_list {
            if let Some(id) = &item.msg_id {
                memory.remember(id.clone(), text.to_owned());
            }
        }
        if let Some(id) = message.message_id {
            memory.remember(id.to_string(), text.to_owned());
        }
    }
}

/// The text of a message: its first text item, else a voice item's
/// transcript, else nothing.
fn message_text(message: &WeixinMessage) -> String {
    let items = &message.item_list;
    items
        .iter()
        .find(|i| i.item_type == Some(MessageItemType::Text))
        .and_then(|i| i.text_item.as_ref())
        .and_then(|t| t.text.clone())
        .or_else(|| {
            items
                .iter()
                .filter_map(|i| i.voice_item.as_ref())
                .find_map(|v| v.text.clone().filter(|t| !t.is_empty()))
        })
        .unwrap_or_default()
}

/// The media items worth downloading: images, videos, files, and voice
/// without a transcript; the quoted message's when the message has none.
fn media_items(message: &WeixinMessage) -> Vec<(&MessageItem, MediaKind)> {
    let pick = |item: &MessageItem| -> Option<MediaKind> {
        match item.item_type? {
            MessageItemType::Image => Some(MediaKind::Image),
            MessageItemType::Video => Some(MediaKind::Video),
            MessageItemType::File => Some(MediaKind::File),
            MessageItemType::Voice
                if item
                    .voice_item
                    .as_ref()
                    .and_then(|v| v.text.as_deref())
                    .is_none_or(str::is_empty) =>
            {
                Some(MediaKind::Voice)
            }
            _ => None,
        }
    };
    let own: Vec<_> = message
        .item_list
        .iter()
        .filter_map(|item| pick(item).map(|k| (item, k)))
        .collect();
    if !own.is_empty() {
        return own;
    }
    message
        .item_list
        .iter()
        .filter_map(|item| item.ref_msg.as_deref()?.message_item.as_deref())
        .filter_map(|item| pick(item).map(|k| (item, k)))
        .collect()
}

/// Downloads a message's media; a failed download is logged and left out.
async fn download(
    client: &wxlink_client::WxLinkClient,
    message: &WeixinMessage,
    dir: &Path,
    account: &str,
    message_id: u64,
) -> Vec<TurnMedia> {
    let items = media_items(message);
    if items.is_empty() {
        return Vec::new();
    }
    if let Err(err) = tokio::fs::create_dir_all(dir).await {
        tracing::warn!(error = %err, dir = %dir.display(), "cannot create the inbound media directory");
        return Vec::new();
    }
    let tag = fnv(account);
    let mut out = Vec::new();
    for (n, (item, kind)) in items.into_iter().take(MAX_MEDIA_PER_MESSAGE).enumerate() {
        let path = dir.join(format!("{tag:08x}-{message_id}-{n}"));
        match client.download_media_to(item, &path).await {
            Ok(file) => {
                let mut media = TurnMedia::new(kind, &path).content_type(file.mime);
                media.url = None;
                out.push(media);
            }
            Err(err) => {
                tracing::warn!(%account, message_id, error = %err, "cannot download a media item; the turn goes without it");
            }
        }
    }
    out
}

fn fnv(s: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in s.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Sends through the delivery the host handed over, or as a push when the
/// delivery is already settled.
struct HostOutbox {
    shared: Arc<Shared>,
}

impl HostOutbox {
    /// The running account a push goes from.
    fn handle(&self, to: &ReplyTo) -> Result<AccountHandle, Error> {
        let account = wxlink_bot::store::AccountId::new(to.account.clone())
            .map_err(|err| Error::with_source(Kind::Send, "not an account id", err))?;
        self.shared
            .host
            .account(&account)
            .ok_or_else(|| Error::new(Kind::Send, format!("account {} is not running", to.account)))
    }

    fn incoming(&self, to: &ReplyTo) -> Option<Arc<Incoming>> {
        let id = to.message_id?;
        self.shared
            .live
            .lock()
            .ok()?
            .get(&(to.account.clone(), id))
            .cloned()
    }
}

struct HostTyping(Option<TypingGuard>);

impl Typing for HostTyping {
    fn stop(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        let guard = self.0.take();
        Box::pin(async move {
            if let Some(guard) = guard {
                guard.finish().await;
            }
        })
    }
}

/// Whether a facade error refuses the media itself (a forbidden address,
/// a file that cannot be read or uploaded), not the send.
fn is_media_refusal(err: &wxlink_client::Error) -> bool {
    err.is_media()
}

fn send_error(err: wxlink_bot::Error) -> Error {
    let kind = if err.client_error().is_some_and(is_media_refusal) {
        Kind::MediaRefused
    } else if err.is_budget_exhausted() || err.is_user_must_write_first() {
        Kind::Refused
    } else {
        Kind::Send
    };
    Error::with_source(kind, "cannot send a reply", err)
}

impl Outbox for HostOutbox {
    fn typing<'a>(&'a self, to: &'a ReplyTo) -> BoxFuture<'a, Box<dyn Typing>> {
        Box::pin(async move {
            let Some(incoming) = self.incoming(to) else {
                return Box::new(HostTyping(None)) as Box<dyn Typing>;
            };
            // Returned once the first indicator went out, so that
            // "typing…" shows before the agent is called.
            Box::new(HostTyping(Some(incoming.typing_shown().await))) as Box<dyn Typing>
        })
    }

    fn send_text<'a>(
        &'a self,
        to: &'a ReplyTo,
        _index: u32,
        text: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if let Some(incoming) = self.incoming(to) {
                return incoming.reply(&text).await.map_err(send_error);
            }
            let account = wxlink_bot::store::AccountId::new(to.account.clone())
                .map_err(|err| Error::with_source(Kind::Send, "not an account id", err))?;
            let handle = self.shared.host.account(&account).ok_or_else(|| {
                Error::new(Kind::Send, format!("account {} is not running", to.account))
            })?;
            handle.push_text(&to.user, &text).await.map_err(send_error)
        })
    }

    fn send_media<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        media: &'a ReplyMedia,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            match self.send_media_or(to, index, media, None).await? {
                MediaOutcome::Sent => Ok(()),
                MediaOutcome::Refused(err) => Err(err),
            }
        })
    }

    fn send_media_or<'a>(
        &'a self,
        to: &'a ReplyTo,
        _index: u32,
        media: &'a ReplyMedia,
        notice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<MediaOutcome, Error>> {
        Box::pin(async move {
            let media = media.clone();
            let fetch = self.shared.options.fetch.clone();
            let notice = notice.map(str::to_owned);
            // One permit, one message: the file, or the notice in its place
            // under the same client_id, so a refusal costs no extra budget.
            let call = move |permit: ReplyPermit| async move {
                let ReplyPermit {
                    client,
                    user,
                    context_token,
                    client_id,
                    ..
                } = permit;
                let sent = match media {
                    ReplyMedia::Path(path) => {
                        client
                            .send_media_from_path(user.clone(), path)
                            .context_token(context_token.clone())
                            .send()
                            .await
                    }
                    ReplyMedia::Url(url) => {
                        client
                            .send_media_from_url(user.clone(), url)
                            .context_token(context_token.clone())
                            .fetch_options(fetch)
                            .send()
                            .await
                    }
                };
                match sent {
                    Ok(_) => Ok(None),
                    Err(err) if is_media_refusal(&err) => {
                        if let Some(text) = notice {
                            client
                                .send_text(user, text)
                                .context_token(context_token)
                                .client_id(client_id)
                                .send()
                                .await?;
                        }
                        Ok(Some(err))
                    }
                    Err(err) => Err(err),
                }
            };
            let outcome = match self.incoming(to) {
                Some(incoming) => incoming.reply_with(1, call).await,
                None => self
                    .handle(to)?
                    .push_with(&to.user, 1, call)
                    .await
                    .map(Some),
            };
            match outcome.map_err(send_error)? {
                Some(Some(refusal)) => Ok(MediaOutcome::Refused(Error::with_source(
                    Kind::MediaRefused,
                    "the media cannot be sent",
                    refusal,
                ))),
                // Sent now, or accepted in an earlier attempt.
                Some(None) | None => Ok(MediaOutcome::Sent),
            }
        })
    }
}
