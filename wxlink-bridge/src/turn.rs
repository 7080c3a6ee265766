//! What an agent is given ([`Turn`]) and what it answers ([`Reply`]).
//!
//! Both are plain data with a JSON form, which is exactly what the webhook
//! and command backends send and read:
//!
//! ```json
//! {"account":"bot-1@im.bot","user":"u@im.wechat","message_id":"7","message_ids":["7"],
//!  "text":"what is in this picture?","quote":"an earlier message",
//!  "media":[{"kind":"image","path":"/var/lib/wxlink/in/7.jpg","content_type":"image/jpeg"}],
//!  "attempt":1}
//! ```
//!
//! ```json
//! {"text":"A cat.","media":[{"path":"/srv/out/cat.png"},{"url":"https://example.com/a.pdf"}]}
//! ```
//!
//! Message ids are written as decimal strings, since they exceed 2^53 and
//! JavaScript readers would round them; numbers are accepted too.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of a media file the user sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// Any other file.
    File,
    /// A voice message (the server's transcript, when it has one, is in the
    /// turn's text).
    Voice,
}

/// One media file the user sent, already downloaded and decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TurnMedia {
    /// What kind of media it is.
    pub kind: MediaKind,
    /// Where the plaintext file is on this machine.
    pub path: PathBuf,
    /// Its content type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// A loopback URL serving the same file, when the bridge serves media
    /// (for webhook receivers on another process that cannot read paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TurnMedia {
    /// A media file at `path`.
    pub fn new(kind: MediaKind, path: impl Into<PathBuf>) -> Self {
        Self {
            kind,
            path: path.into(),
            content_type: None,
            url: None,
        }
    }

    /// Sets the content type.
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

/// One turn of a conversation: what a user said since the agent last
/// answered them.
///
/// A turn usually holds one inbound message. Messages that arrive while the
/// agent is still working on the user's previous turn are queued and handed
/// over together as the next turn: their texts joined by line breaks, their
/// media concatenated, all their ids in [`message_ids`](Self::message_ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Turn {
    /// The bot account the message came to.
    pub account: String,
    /// The user who wrote.
    pub user: String,
    /// The id of the turn's first message.
    #[serde(with = "id_string")]
    pub message_id: u64,
    /// The ids of every message in the turn, in arrival order.
    #[serde(with = "id_list", default)]
    pub message_ids: Vec<u64>,
    /// What the user wrote (for a voice message, the server's transcript).
    pub text: String,
    /// The text of the message the user quoted, when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Media the user sent, downloaded to local files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<TurnMedia>,
    /// Which attempt at answering this turn this is, from 1.
    #[serde(default = "one")]
    pub attempt: u32,
}

fn one() -> u32 {
    1
}

impl Turn {
    /// A turn of one text message.
    pub fn new(
        account: impl Into<String>,
        user: impl Into<String>,
        message_id: u64,
        text: impl Into<String>,
    ) -> Self {
        Self {
            account: account.into(),
            user: user.into(),
            message_id,
            message_ids: vec![message_id],
            text: text.into(),
            quote: None,
            media: Vec::new(),
            attempt: 1,
        }
    }

    /// Sets the quoted text.
    #[must_use]
    pub fn quote(mut self, quote: impl Into<String>) -> Self {
        self.quote = Some(quote.into());
        self
    }

    /// Adds a media file.
    #[must_use]
    pub fn media(mut self, media: TurnMedia) -> Self {
        self.media.push(media);
        self
    }
}

/// A file the agent wants sent to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyMedia {
    /// A local file; it must lie inside the bridge's media directory.
    Path(PathBuf),
    /// A URL the bridge fetches (refusing loopback, private, link-local and
    /// metadata addresses unless configured otherwise) and uploads.
    Url(String),
}

impl Serialize for ReplyMedia {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::Path(path) => map.serialize_entry("path", path)?,
            Self::Url(url) => map.serialize_entry("url", url)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ReplyMedia {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Object {
                #[serde(default)]
                path: Option<PathBuf>,
                #[serde(default)]
                url: Option<String>,
            },
        }
        match Wire::deserialize(deserializer)? {
            Wire::Text(text) if text.starts_with("http://") || text.starts_with("https://") => {
                Ok(Self::Url(text))
            }
            Wire::Text(text) => Ok(Self::Path(PathBuf::from(text))),
            Wire::Object {
                path: Some(path),
                url: None,
            } => Ok(Self::Path(path)),
            Wire::Object {
                path: None,
                url: Some(url),
            } => Ok(Self::Url(url)),
            Wire::Object { .. } => Err(serde::de::Error::custom(
                "a media entry needs exactly one of \"path\" and \"url\"",
            )),
        }
    }
}

/// What the agent answers: text, media, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reply {
    /// The text to send; chunked and paced by the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Files to send after the text, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<ReplyMedia>,
    /// The agent will answer later through the bridge's send endpoint; the
    /// turn is complete without a reply now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A reply that will come later through the send endpoint.
    pub fn deferred() -> Self {
        Self {
            deferred: true,
            ..Self::default()
        }
    }

    /// Adds a media file.
    #[must_use]
    pub fn with_media(mut self, media: ReplyMedia) -> Self {
        self.media.push(media);
        self
    }

    /// Whether there is nothing to send (no text, or only whitespace, and no
    /// media).
    pub fn is_empty(&self) -> bool {
        self.text.as_deref().is_none_or(|t| t.trim().is_empty()) && self.media.is_empty()
    }
}

/// Message ids as decimal strings on the way out, strings or numbers in.
mod id_string {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Id {
        Number(u64),
        Text(String),
    }

    impl Id {
        pub(super) fn get<E: serde::de::Error>(self) -> Result<u64, E> {
            match self {
                Self::Number(n) => Ok(n),
                Self::Text(t) => t
                    .parse()
                    .map_err(|_| E::custom("a message id must be a decimal number")),
            }
        }
    }

    pub(super) fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Id::deserialize(d)?.get()
    }
}

mod id_list {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::id_string::Id;

    pub(super) fn serialize<S: Serializer>(ids: &[u64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(|id| id.to_string()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        Vec::<Id>::deserialize(d)?
            .into_iter()
            .map(Id::get)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_turn_writes_ids_as_strings_and_reads_numbers_too() {
        let turn = Turn::new("bot", "u", u64::MAX, "hi").quote("earlier");
        let json = serde_json::to_value(&turn).unwrap();
        assert_eq!(json["message_id"], "18446744073709551615");
        assert_eq!(json["message_ids"][0], "18446744073709551615");
        assert_eq!(json["quote"], "earlier");
        let back: Turn = serde_json::from_value(json).unwrap();
        assert_eq!(back, turn);
        let numeric: Turn = serde_json::from_str(
            r#"{"account":"a","user":"u","message_id":7,"message_ids":[7],"text":"x"}"#,
        )
        .unwrap();
        assert_eq!(numeric.message_id, 7);
        assert_eq!(numeric.attempt, 1);
    }

    #[test]
    fn reply_media_reads_objects_and_bare_strings() {
        let reply: Reply = serde_json::from_str(
            r#"{"text":"t","media":[{"path":"/a.png"},{"url":"https://x/y.pdf"},"b.txt","http://h/c"]}"#,
        )
        .unwrap();
        assert_eq!(
            reply.media,
            vec![
                ReplyMedia::Path("/a.png".into()),
                ReplyMedia::Url("https://x/y.pdf".into()),
                ReplyMedia::Path("b.txt".into()),
                ReplyMedia::Url("http://h/c".into()),
            ]
        );
        let err = serde_json::from_str::<Reply>(r#"{"media":[{"path":"a","url":"b"}]}"#);
        assert!(err.is_err());
        assert!(Reply::default().is_empty());
        assert!(Reply::text("  \n").is_empty());
        assert!(!Reply::text("x").is_empty());
    }
}
