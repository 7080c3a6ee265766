//! Inbound messages: what a simulated WeChat user sends the bot, built
//! item by item and completed by the simulator (ids, sequence number,
//! context token, addressing) when injected.

use wxlink_proto::{
    ContextToken, MessageItem, MessageItemType, RefMessage, TextItem, VoiceItem, WeixinMessage,
};

/// An inbound message being built. The simulator fills in what the real
/// server would: `seq`, `message_id` (unless set), `to_user_id` (the bot),
/// `create_time_ms`, `message_type: 1`, `message_state: 2` and a fresh
/// `context_token` (unless set).
#[derive(Debug, Clone, Default)]
pub struct InboundMessage {
    pub(crate) msg: WeixinMessage,
    /// JSON merged into the message as delivered, for fields the protocol
    /// types do not model (yet).
    pub(crate) patch: Option<serde_json::Value>,
}

impl InboundMessage {
    /// An empty message from `from_user` (`…@im.wechat`); add items with
    /// [`item`](Self::item).
    pub fn new(from_user: impl Into<String>) -> Self {
        Self {
            msg: WeixinMessage {
                from_user_id: Some(from_user.into()),
                ..Default::default()
            },
            patch: None,
        }
    }

    /// A one-item text message.
    pub fn text(from_user: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(from_user).item(text_item(text))
    }

    /// Appends an item.
    pub fn item(mut self, item: MessageItem) -> Self {
        self.msg.item_list.push(item);
        self
    }

    /// Uses this context token instead of a fresh one.
    pub fn context_token(mut self, token: impl Into<String>) -> Self {
        self.msg.context_token = Some(ContextToken::new(token.into()));
        self
    }

    /// Uses this message id instead of a generated one.
    pub fn message_id(mut self, id: u64) -> Self {
        self.msg.message_id = Some(id);
        self
    }

    /// The message as built so far (without its [wire patch](Self::wire_patch)).
    pub fn message(&self) -> &WeixinMessage {
        &self.msg
    }

    /// Merges `patch` (a JSON object) into the message as it goes out on
    /// the wire: objects merge key by key, arrays element by element (so
    /// `{"item_list":[{"ref_msg":{…}}]}` touches the first item), anything
    /// else replaces. Use it for fields the protocol types do not model.
    /// Patches add up.
    pub fn wire_patch(mut self, patch: serde_json::Value) -> Self {
        match &mut self.patch {
            Some(old) => merge(old, patch),
            None => self.patch = Some(patch),
        }
        self
    }

    /// Makes the first item quote an earlier message by its server id, as
    /// newer WeChat clients do: its `ref_msg` carries `svr_id` and a
    /// quoted `message_item` of `type: 0` with only `msg_id` (the id as a
    /// string), and no text; with `partial`, also a `partial_text` for a
    /// quote of part of the message. A bot must find the quoted text
    /// itself, from the messages it has seen. `svr_id` goes out as a JSON
    /// number, which can exceed `i64::MAX`.
    pub fn quote_by_id(self, svr_id: u64, partial: Option<PartialQuote>) -> Self {
        let mut ref_msg = serde_json::json!({
            "svr_id": svr_id,
            "message_item": {"type": 0, "msg_id": svr_id.to_string()},
        });
        if let Some(p) = partial {
            ref_msg["partial_text"] = serde_json::json!({
                "start": p.start,
                "end": p.end,
                "startindex": p.start_index,
                "endindex": p.end_index,
                "quotemd5": p.quote_md5,
            });
        }
        self.wire_patch(serde_json::json!({"item_list": [{"ref_msg": ref_msg}]}))
    }

    /// The message as it will be delivered (before the simulator fills in
    /// ids and addressing), as JSON.
    pub(crate) fn wire(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.msg).unwrap_or_default();
        if let Some(patch) = &self.patch {
            merge(&mut value, patch.clone());
        }
        value
    }
}

/// The part of a message a partial quote selects (`ref_msg.partial_text`).
/// The simulator passes the values through without interpreting them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialQuote {
    /// `start`.
    pub start: u64,
    /// `end`.
    pub end: u64,
    /// `startindex`.
    pub start_index: u64,
    /// `endindex`.
    pub end_index: u64,
    /// `quotemd5`: the hex MD5 of the selected text.
    pub quote_md5: String,
}

impl PartialQuote {
    /// A quote of `selected`, characters `start..end` of the quoted text;
    /// the index fields repeat `start` and `end`, and `quotemd5` is the MD5
    /// of `selected`.
    pub fn new(selected: &str, start: u64, end: u64) -> Self {
        use md5::Digest as _;
        Self {
            start,
            end,
            start_index: start,
            end_index: end,
            quote_md5: hex::encode(md5::Md5::digest(selected.as_bytes())),
        }
    }
}

/// Merges `patch` into `target`: objects by key, arrays by index.
fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::Value;
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            for (i, v) in p.into_iter().enumerate() {
                match t.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => t.push(v),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

impl From<WeixinMessage> for InboundMessage {
    fn from(msg: WeixinMessage) -> Self {
        Self { msg, patch: None }
    }
}

/// A text item.
pub fn text_item(text: impl Into<String>) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Text),
        text_item: Some(TextItem {
            text: Some(text.into()),
        }),
        ..Default::default()
    }
}

/// A voice item carrying only the server's transcript (`voice_item.text`),
/// with no audio to download. Use
/// [`Simulator::media_item`](crate::Simulator::media_item) with
/// `MediaKind::Voice` for one with audio, and set its `text` to add a
/// transcript.
pub fn voice_transcript_item(transcript: impl Into<String>) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Voice),
        voice_item: Some(VoiceItem {
            text: Some(transcript.into()),
            playtime: Some(1500),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `item` quoting `quoted` (a `ref_msg` with an optional `title`), as when
/// the user long-presses a message and replies to it.
pub fn quoting(mut item: MessageItem, title: Option<&str>, quoted: MessageItem) -> MessageItem {
    item.ref_msg = Some(Box::new(RefMessage {
        message_item: Some(Box::new(quoted)),
        title: title.map(str::to_owned),
        ..RefMessage::default()
    }));
    item
}

/// What [`Simulator::inject_message`](crate::Simulator::inject_message)
/// created.
///
/// `Debug` shows `wire` only by its size: it holds the context token and
/// any media key in plain text, which `message` prints redacted.
#[derive(Clone, serde::Serialize)]
#[non_exhaustive]
pub struct InjectedMessage {
    /// The message id (sometimes above 2^53).
    pub message_id: u64,
    /// The per-bot sequence number.
    pub seq: i64,
    /// The context token a reply should echo.
    pub context_token: ContextToken,
    /// The whole message as the protocol types read it.
    pub message: WeixinMessage,
    /// The bot it was queued for.
    pub bot_id: String,
    /// The message exactly as it is delivered, including fields the
    /// protocol types do not model (see [`InboundMessage::wire_patch`]).
    pub wire: serde_json::Value,
}

impl std::fmt::Debug for InjectedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wire = format!("<{} bytes of JSON>", self.wire.to_string().len());
        f.debug_struct("InjectedMessage")
            .field("message_id", &self.message_id)
            .field("seq", &self.seq)
            .field("context_token", &self.context_token)
            .field("message", &self.message)
            .field("bot_id", &self.bot_id)
            .field("wire", &format_args!("{wire}"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_by_id_carries_svr_id_partial_text_and_a_type_0_item() {
        let msg = InboundMessage::text("u@im.wechat", "which one?")
            .quote_by_id(u64::MAX - 1, Some(PartialQuote::new("second step", 3, 14)));
        let wire = msg.wire();
        let r = &wire["item_list"][0]["ref_msg"];
        assert_eq!(r["svr_id"].as_u64(), Some(u64::MAX - 1));
        assert_eq!(r["message_item"]["type"], 0);
        assert_eq!(r["message_item"]["msg_id"], (u64::MAX - 1).to_string());
        assert!(r["message_item"].get("text_item").is_none());
        assert_eq!(r["partial_text"]["start"], 3);
        assert_eq!(r["partial_text"]["endindex"], 14);
        assert_eq!(
            r["partial_text"]["quotemd5"].as_str().map(str::len),
            Some(32)
        );
        // The text item itself is untouched.
        assert_eq!(wire["item_list"][0]["text_item"]["text"], "which one?");
    }
}
