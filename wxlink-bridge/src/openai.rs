//! An agent on an OpenAI-compatible chat-completions endpoint.
//!
//! Each turn POSTs `{base_url}/chat/completions` with the model, the system
//! prompt, the user's history and the new user message (the quoted text
//! first, as a markdown quote, when the turn has one). With
//! [`OpenAiConfig::images`] on, images the user sent go with it as
//! `image_url` content parts holding `data:` URLs, so the endpoint needs no
//! access to this machine. The answer is read from a stream of server-sent
//! events (`"stream": true`, the default) or from one JSON body; a server
//! that ignores `stream` and answers JSON is read as JSON.
//!
//! The history keeps text only, bounded by [`HistoryLimits`]; a turn enters
//! it only once it was answered, so a failed turn leaves no half of itself
//! behind. The API key is sent as a bearer token and never logged: the
//! config's `Debug` redacts it and error excerpts have it removed.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use bytes::{Buf as _, BytesMut};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::agent::{Agent, BoxFuture};
use crate::error::{Error, Kind};
use crate::history::{HistoryEntry, HistoryLimits, HistoryStore, MemoryHistory, Role};
use crate::http::{HttpClient, MAX_ANSWER_BYTES, read_body, status_error};
use crate::secret::Secret;
use crate::turn::{MediaKind, Reply, Turn};

/// The largest image passed to the endpoint (10 MiB); larger ones are
/// left out with a warning.
pub const MAX_IMAGE_BYTES: u64 = 10 << 20;

/// Settings of an [`OpenAiAgent`].
#[derive(Clone)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// The API's base URL, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The API key, sent as `Authorization: Bearer`; `None` sends none
    /// (local servers often need none).
    pub api_key: Option<Secret>,
    /// The system prompt, sent first in every request.
    pub system_prompt: Option<String>,
    /// Ask for a streamed answer (server-sent events); default on.
    pub stream: bool,
    /// Pass images the user sent as image content parts; default off.
    pub images: bool,
    /// How much history is kept per user.
    pub history: HistoryLimits,
}

impl OpenAiConfig {
    /// Settings for `model` at `base_url`, with no key, no system prompt,
    /// streaming on and images off.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            system_prompt: None,
            stream: true,
            images: false,
            history: HistoryLimits::default(),
        }
    }

    /// Sets the API key.
    #[must_use]
    pub fn api_key(mut self, key: Secret) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Streams (server-sent events) or not (one JSON body).
    #[must_use]
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Passes images as content parts, or not.
    #[must_use]
    pub fn images(mut self, images: bool) -> Self {
        self.images = images;
        self
    }

    /// Sets the history limits.
    #[must_use]
    pub fn history(mut self, limits: HistoryLimits) -> Self {
        self.history = limits;
        self
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "** redacted **"))
            .field(
                "system_prompt",
                &self.system_prompt.as_ref().map(|p| p.len()),
            )
            .field("stream", &self.stream)
            .field("images", &self.images)
            .field("history", &self.history)
            .finish()
    }
}

/// An [`Agent`] on an OpenAI-compatible chat-completions endpoint; see the
/// [module docs](self).
///
/// ```no_run
/// use wxlink_bridge::{OpenAiAgent, OpenAiConfig, Secret};
///
/// # fn run() -> Result<(), wxlink_bridge::Error> {
/// let agent = OpenAiAgent::new(
///     OpenAiConfig::new("https://api.openai.com/v1", "gpt-4o-mini")
///         .api_key(Secret::from_env("OPENAI_API_KEY")?)
///         .system_prompt("You answer briefly."),
/// );
/// # drop(agent);
/// # Ok(())
/// # }
/// ```
pub struct OpenAiAgent {
    config: OpenAiConfig,
    http: HttpClient,
    history: Arc<dyn HistoryStore>,
}

impl fmt::Debug for OpenAiAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiAgent")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpenAiAgent {
    /// An agent with in-memory history and the default HTTP client.
    pub fn new(config: OpenAiConfig) -> Self {
        Self {
            config,
            http: HttpClient::new(),
            history: Arc::new(MemoryHistory::new()),
        }
    }

    /// Keeps history in `store` instead of memory.
    #[must_use]
    pub fn history_store(mut self, store: Arc<dyn HistoryStore>) -> Self {
        self.history = store;
        self
    }

    /// Sends requests through `http`.
    #[must_use]
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// The settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The user message of a turn: the quote (when known) as a markdown
    /// quote, then the text.
    fn user_text(turn: &Turn) -> String {
        match turn.quote.as_deref().filter(|q| !q.trim().is_empty()) {
            Some(quote) => {
                let quoted: Vec<String> = quote.lines().map(|l| format!("> {l}")).collect();
                format!("{}\n\n{}", quoted.join("\n"), turn.text)
            }
            None => turn.text.clone(),
        }
    }

    async fn image_parts(&self, turn: &Turn) -> Vec<Value> {
        let mut parts = Vec::new();
        for media in turn.media.iter().filter(|m| m.kind == MediaKind::Image) {
            match tokio::fs::metadata(&media.path).await {
                Ok(meta) if meta.len() > MAX_IMAGE_BYTES => {
                    tracing::warn!(
                        size = meta.len(),
                        "an image is larger than {MAX_IMAGE_BYTES} bytes; it is not passed to the model"
                    );
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read an image the user sent");
                    continue;
                }
            }
            let bytes = match tokio::fs::read(&media.path).await {
                Ok(bytes) => bytes,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read an image the user sent");
                    continue;
                }
            };
            let content_type = media
                .content_type
                .clone()
                .unwrap_or_else(|| "image/jpeg".to_owned());
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            parts.push(json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{content_type};base64,{data}")},
            }));
        }
        parts
    }

    async fn request_body(&self, turn: &Turn, history: &[HistoryEntry], text: &str) -> Value {
        let mut messages = Vec::with_capacity(history.len() + 2);
        if let Some(prompt) = &self.config.system_prompt {
            messages.push(json!({"role": "system", "content": prompt}));
        }
        for entry in history {
            let role = match entry.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": entry.content}));
        }
        let images = if self.config.images {
            self.image_parts(turn).await
        } else {
            Vec::new()
        };
        if images.is_empty() {
            messages.push(json!({"role": "user", "content": text}));
        } else {
            let mut parts = vec![json!({"type": "text", "text": text})];
            parts.extend(images);
            messages.push(json!({"role": "user", "content": parts}));
        }
        json!({
            "model": self.config.model,
            "messages": messages,
            "stream": self.config.stream,
        })
    }

    async fn complete(&self, turn: &Turn) -> Result<String, Error> {
        let history = if self.config.history.max_turns == 0 {
            Vec::new()
        } else {
            self.history.load(&turn.account, &turn.user).await?
        };
        let text = Self::user_text(turn);
        let body = self.request_body(turn, &history, &text).await;
        let bytes = serde_json::to_vec(&body)
            .map_err(|err| Error::with_source(Kind::Config, "cannot encode a request", err))?;
        let accept = if self.config.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let response = self
            .http
            .post_json(
                &self.config.endpoint(),
                self.config.api_key.as_ref(),
                Some(accept),
                bytes,
            )
            .await?;
        if !response.status().is_success() {
            return Err(status_error(response, self.config.api_key.as_ref()).await);
        }
        let is_sse = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let answer = if is_sse {
            read_sse(response.into_body()).await?
        } else {
            let body = read_body(response.into_body()).await?;
            read_json_answer(&body)?
        };
        if answer.trim().is_empty() {
            return Err(Error::unreadable("the model's answer is empty"));
        }
        if self.config.history.max_turns > 0 {
            self.history
                .append(
                    &turn.account,
                    &turn.user,
                    vec![
                        HistoryEntry::new(Role::User, text),
                        HistoryEntry::new(Role::Assistant, answer.clone()),
                    ],
                    self.config.history,
                )
                .await?;
        }
        Ok(answer)
    }
}

impl Agent for OpenAiAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        Box::pin(async move { self.complete(turn).await.map(Reply::text) })
    }

    fn reset<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.history.clear(account, user)
    }

    fn name(&self) -> &str {
        "openai"
    }
}

/// The text of a message's `content`: a string, or an array of parts of
/// which the `text` ones are joined.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// The answer of a non-streamed completion: `choices[0].message.content`.
pub(crate) fn read_json_answer(body: &[u8]) -> Result<String, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Error::unreadable("the model's answer is not JSON"))?;
    if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
        let short: String = message.chars().take(200).collect();
        return Err(Error::unreadable(format!(
            "the endpoint reported an error: {short}"
        )));
    }
    value
        .pointer("/choices/0/message/content")
        .and_then(content_text)
        .ok_or_else(|| Error::unreadable("the model's answer has no choices[0].message.content"))
}

/// Reads a server-sent event stream of completion chunks and joins their
/// `choices[0].delta.content`. The stream ends at `data: [DONE]` or when the
/// body ends; events that are not JSON make the answer unreadable.
async fn read_sse(body: wxlink_transport::Body) -> Result<String, Error> {
    let mut stream = body.into_data_stream();
    let mut parser = SseParser::default();
    let mut answer = String::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            Error::with_source(Kind::Transport, "the model's stream broke off", err)
        })?;
        total += chunk.len() as u64;
        if total > MAX_ANSWER_BYTES {
            return Err(Error::unreadable(format!(
                "the model's stream is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        parser.push(&chunk);
        while let Some(data) = parser.next_event() {
            if apply_event(&data, &mut answer)? {
                return Ok(answer);
            }
        }
    }
    if let Some(data) = parser.finish() {
        apply_event(&data, &mut answer)?;
    }
    Ok(answer)
}

/// Adds one event's delta to `answer`; true at `[DONE]`.
fn apply_event(data: &str, answer: &mut String) -> Result<bool, Error> {
    let data = data.trim();
    if data.is_empty() {
        return Ok(false);
    }
    if data == "[DONE]" {
        return Ok(true);
    }
    let value: Value = serde_json::from_str(data)
        .map_err(|_| Error::unreadable("an event of the model's stream is not JSON"))?;
    if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
        let short: String = message.chars().take(200).collect();
        return Err(Error::unreadable(format!(
            "the endpoint reported an error: {short}"
        )));
    }
    if let Some(text) = value
        .pointer("/choices/0/delta/content")
        .and_then(content_text)
    {
        answer.push_str(&text);
    }
    Ok(false)
}

/// A server-sent events parser: bytes in, the `data` of each complete event
/// out (several `data:` lines of one event joined by `\n`). Comments
/// (`:`-lines) and other fields are skipped.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: BytesMut,
    data: Option<String>,
}

impl SseParser {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event's data, if one is buffered.
    pub(crate) fn next_event(&mut self) -> Option<String> {
        loop {
            let end = self.buf.iter().position(|&b| b == b'\n')?;
            let line = self.buf.split_to(end + 1);
            let mut line = &line[..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    return Some(data);
                }
                continue;
            }
            self.field(line);
        }
    }

    /// The data of an event that the stream ended without a blank line.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let mut line = rest.chunk();
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.field(line);
        }
        self.data.take()
    }

    fn field(&mut self, line: &[u8]) {
        let Some(value) = line.strip_prefix(b"data:") else {
            return;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let value = String::from_utf8_lossy(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => self.data = Some(value.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sse_events_survive_any_split_of_the_bytes() {
        let stream = b": keep-alive\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        for split in 1..stream.len() {
            let mut p = SseParser::default();
            let mut events = Vec::new();
            for part in stream.chunks(split) {
                p.push(part);
                while let Some(e) = p.next_event() {
                    events.push(e);
                }
            }
            assert_eq!(events, ["{\"a\":1}", "one\ntwo", "[DONE]"], "split {split}");
        }
    }

    #[test]
    fn a_json_answer_is_read_from_the_first_choice() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(read_json_answer(body).unwrap(), "hi");
        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#;
        assert_eq!(read_json_answer(parts).unwrap(), "ab");
        assert!(read_json_answer(b"<html>").unwrap_err().is_unreadable());
        assert!(
            read_json_answer(b"{\"choices\":[]}")
                .unwrap_err()
                .is_unreadable()
        );
        let err = read_json_answer(br#"{"error":{"message":"model not found"}}"#).unwrap_err();
        assert!(err.to_string().contains("model not found"));
    }

    #[test]
    fn the_config_debug_never_shows_the_key() {
        let config = OpenAiConfig::new("http://x/v1", "m").api_key(Secret::new("sk-secret-777"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-secret-777"), "{debug}");
        assert!(debug.contains("redacted"));
        assert_eq!(config.endpoint(), "http://x/v1/chat/completions");
    }
}
