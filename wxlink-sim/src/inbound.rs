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

    /// The message as built so far.
    pub fn message(&self) -> &WeixinMessage {
        &self.msg
    }
}

impl From<WeixinMessage> for InboundMessage {
    fn from(msg: WeixinMessage) -> Self {
        Self { msg }
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
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct InjectedMessage {
    /// The message id (sometimes above 2^53).
    pub message_id: u64,
    /// The per-bot sequence number.
    pub seq: i64,
    /// The context token a reply should echo.
    pub context_token: ContextToken,
    /// The whole message as it will be delivered.
    pub message: WeixinMessage,
}
