//! An agent behind an HTTP webhook, and the loopback send endpoint through
//! which a webhook can answer later.
//!
//! [`WebhookAgent`] POSTs each [`Turn`] as JSON to the configured URL (with
//! `Authorization: Bearer` when a token is set). The receiver either
//! answers inline, with a 2xx and a [`Reply`] as JSON, or answers 202 (or
//! 204, or `{"deferred": true}`) and sends the reply later through the
//! [`SendEndpoint`]:
//!
//! ```text
//! POST http://127.0.0.1:PORT/send
//! Authorization: Bearer <send token>
//! {"account":"bot-1@im.bot","user":"u@im.wechat","message_id":"7","text":"done","media":[]}
//! ```
//!
//! `message_id` names the turn being answered, so the reply counts against
//! that message's reply budget; without it the message is a proactive push.
//! The endpoint answers 200 `{"ok":true}` once the reply was sent, 401 on a
//! missing or wrong token, 400 on a body that is not such an object and 502
//! when sending failed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::json;

use crate::agent::{Agent, BoxFuture};
use crate::error::{Error, Kind};
use crate::http::{HttpClient, read_body, status_error};
use crate::secret::Secret;
use crate::server::{LoopbackServer, json as json_response};
use crate::turn::{Reply, ReplyMedia, Turn};

/// Settings of a [`WebhookAgent`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Where turns are POSTed.
    pub url: String,
    /// Sent as `Authorization: Bearer`, when set.
    pub token: Option<Secret>,
}

impl WebhookConfig {
    /// POSTs turns to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
        }
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }
}

/// An [`Agent`] behind an HTTP webhook; see the [module docs](self).
#[derive(Debug)]
pub struct WebhookAgent {
    config: WebhookConfig,
    http: HttpClient,
}

impl WebhookAgent {
    /// An agent POSTing to `config.url` with the default HTTP client.
    pub fn new(config: WebhookConfig) -> Self {
        Self {
            config,
            http: HttpClient::new(),
        }
    }

    /// Sends requests through `http`.
    #[must_use]
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    async fn call(&self, turn: &Turn) -> Result<Reply, Error> {
        let body = serde_json::to_vec(turn)
            .map_err(|err| Error::with_source(Kind::Config, "cannot encode a turn", err))?;
        let response = self
            .http
            .post_json(
                &self.config.url,
                self.config.token.as_ref(),
                Some("application/json"),
                body,
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(response, self.config.token.as_ref()).await);
        }
        let body = read_body(response.into_body()).await?;
        if status == StatusCode::ACCEPTED
            || status == StatusCode::NO_CONTENT
            || body.trim_ascii().is_empty()
        {
            return Ok(Reply::deferred());
        }
        let reply: Reply = serde_json::from_slice(&body)
            .map_err(|_| Error::unreadable("the webhook's answer is not a JSON reply"))?;
        if reply.is_empty() && !reply.deferred {
            return Err(Error::unreadable("the webhook's reply is empty"));
        }
        Ok(reply)
    }
}

impl Agent for WebhookAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        Box::pin(self.call(turn))
    }

    fn name(&self) -> &str {
        "webhook"
    }
}

/// A reply that arrived through the send endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeferredReply {
    /// The bot account to send from.
    pub account: String,
    /// The user to send to.
    pub user: String,
    /// The inbound message this answers, when it answers one.
    pub message_id: Option<u64>,
    /// What to send.
    pub reply: Reply,
}

impl DeferredReply {
    /// A reply from `account` to `user` that answers no message in
    /// particular (set [`message_id`](Self::message_id) when it does).
    pub fn new(account: impl Into<String>, user: impl Into<String>, reply: Reply) -> Self {
        Self {
            account: account.into(),
            user: user.into(),
            message_id: None,
            reply,
        }
    }
}

/// Where the send endpoint hands the replies it receives: the bridge,
/// which sends them through the runtime.
pub trait ReplySink: Send + Sync + 'static {
    /// Sends `reply`; the endpoint answers its caller when this finishes.
    fn deliver(&self, reply: DeferredReply) -> BoxFuture<'_, Result<(), Error>>;
}

/// The loopback endpoint through which webhooks answer later; see the
/// [module docs](self).
pub struct SendEndpoint {
    server: LoopbackServer,
}

impl fmt::Debug for SendEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendEndpoint")
            .field("addr", &self.server.local_addr())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SendBody {
    account: String,
    user: String,
    #[serde(default)]
    message_id: Option<IdField>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    media: Vec<ReplyMedia>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdField {
    Number(u64),
    Text(String),
}

impl SendEndpoint {
    /// Serves the endpoint on `addr` (a loopback address; port 0 picks a
    /// free one), accepting requests that carry `token`.
    pub async fn serve(
        addr: SocketAddr,
        token: Secret,
        sink: Arc<dyn ReplySink>,
    ) -> Result<Self, Error> {
        if token.expose_secret().len() < 16 {
            return Err(Error::new(
                Kind::Config,
                "the send endpoint's token must be at least 16 characters",
            ));
        }
        let token = Arc::new(token);
        let server = LoopbackServer::bind(addr, move |req| {
            let token = token.clone();
            let sink = sink.clone();
            async move { handle_send(req, &token, sink.as_ref()).await }
        })
        .await?;
        Ok(Self { server })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The URL of the send call.
    pub fn url(&self) -> String {
        format!("http://{}/send", self.local_addr())
    }
}

async fn handle_send(
    req: Request<Bytes>,
    token: &Secret,
    sink: &dyn ReplySink,
) -> Response<Full<Bytes>> {
    let fail = |status: StatusCode, message: &str| {
        json_response(status, &json!({"ok": false, "error": message}))
    };
    if req.uri().path() != "/send" {
        return fail(StatusCode::NOT_FOUND, "not found");
    }
    if req.method() != Method::POST {
        return fail(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| token.matches(given));
    if !authorized {
        tracing::warn!("the send endpoint refused a request without the right token");
        return fail(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let body: SendBody = match serde_json::from_slice(req.body()) {
        Ok(body) => body,
        Err(err) => return fail(StatusCode::BAD_REQUEST, &format!("bad body: {err}")),
    };
    let message_id = match body.message_id {
        None => None,
        Some(IdField::Number(n)) => Some(n),
        Some(IdField::Text(t)) => match t.parse() {
            Ok(n) => Some(n),
            Err(_) => return fail(StatusCode::BAD_REQUEST, "message_id is not a number"),
        },
    };
    let reply = Reply {
        text: body.text,
        media: body.media,
        deferred: false,
    };
    if reply.is_empty() {
        return fail(StatusCode::BAD_REQUEST, "nothing to send");
    }
    let deferred = DeferredReply {
        account: body.account,
        user: body.user,
        message_id,
        reply,
    };
    match sink.deliver(deferred).await {
        Ok(()) => json_response(StatusCode::OK, &json!({"ok": true})),
        Err(err) => fail(StatusCode::BAD_GATEWAY, &err.to_string()),
    }
}
