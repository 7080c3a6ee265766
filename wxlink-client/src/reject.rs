//! Reading a `sendmessage` refusal: `-3` as an invalid recipient, and a
//! best guess at the cause of a `-2`.
//!
//! `-2` is overloaded: the server answers it for a bot-wide burst throttle,
//! for text that is too long, and for a missing or expired conversation
//! context, with an `errmsg` that does not reliably say which
//! (docs/protocol.md, "Send errors"). [`classify_rejection`] combines the
//! `errmsg` with what the request itself shows (its text length, whether a
//! context token went with it, how long ago the user last wrote, when the
//! caller knows) and says which rule decided.

use std::time::Duration;

use wxlink_proto::ApiStatus;

/// Above this many characters a text is a likely cause of a `-2`: texts
/// near 2 000 characters are delivered (possibly cut), and hard refusals
/// were seen from about 5 000.
pub const LIKELY_TOO_LONG_CHARS: usize = 4_000;

/// Above this many UTF-8 bytes a text is a likely cause of a `-2`.
pub const LIKELY_TOO_LONG_BYTES: usize = 16 * 1024;

/// How long after the user's last message a reply is still delivered; older
/// contexts are a likely cause of a `-2`.
pub const REPLY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// What the request showed, for [`classify_rejection`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendFacts {
    /// The text's length in characters, for a text message.
    pub text_chars: Option<usize>,
    /// The text's length in UTF-8 bytes, for a text message.
    pub text_bytes: Option<usize>,
    /// Whether a context token was sent.
    pub had_context: bool,
    /// How long ago the user last wrote, when the caller knows.
    pub since_last_inbound: Option<Duration>,
}

impl SendFacts {
    /// The facts of a text send.
    pub fn text(text: &str, had_context: bool) -> Self {
        Self {
            text_chars: Some(text.chars().count()),
            text_bytes: Some(text.len()),
            had_context,
            since_last_inbound: None,
        }
    }

    /// The facts of a media send.
    pub fn media(had_context: bool) -> Self {
        Self {
            had_context,
            ..Self::default()
        }
    }

    /// Adds how long ago the user last wrote.
    #[must_use]
    pub fn since_last_inbound(mut self, elapsed: Duration) -> Self {
        self.since_last_inbound = Some(elapsed);
        self
    }
}

/// The likely cause of a `-2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCause {
    /// The bot-wide burst throttle: stop every send of this bot and probe
    /// once after a cool-down that grows; every attempt during the penalty
    /// extends it.
    Throttled,
    /// The text is longer than the server accepts; split it.
    TextTooLong,
    /// No context token was sent, or the context expired (the user last
    /// wrote too long ago); only a new message from the user helps.
    NoContext,
    /// Nothing points at a cause.
    Unknown,
}

/// A guess at why a `-2` happened, with the rule that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RejectionGuess {
    /// The likely cause.
    pub cause: RejectCause,
    /// Which fact decided, in words (for logs and error messages).
    pub basis: &'static str,
}

impl std::fmt::Display for RejectionGuess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cause = match self.cause {
            RejectCause::Throttled => "throttled",
            RejectCause::TextTooLong => "text too long",
            RejectCause::NoContext => "no or expired context",
            RejectCause::Unknown => "unknown",
        };
        write!(f, "{cause} ({})", self.basis)
    }
}

/// Guesses the cause of a `-2` from the status and the request's facts;
/// `None` when the status is not a `-2`.
///
/// The rules, first match wins: `errmsg` "rate limited" → throttled; a
/// text over [`LIKELY_TOO_LONG_CHARS`] characters or
/// [`LIKELY_TOO_LONG_BYTES`] bytes → too long; no context token sent → no
/// context; the user's last message older than [`REPLY_WINDOW`] → expired
/// context; `errmsg` "prepare failed" → throttled (the burst throttle's
/// answer); `errmsg` "unknown error" or none → expired context (both seen
/// after a context went stale); anything else → unknown.
///
/// ```
/// use wxlink_client::reject::{RejectCause, SendFacts, classify_rejection};
/// use wxlink_proto::ApiStatus;
///
/// let status = ApiStatus::new(Some(-2), None, Some("prepare failed".into()));
/// let guess = classify_rejection(&status, &SendFacts::text("hi", true)).unwrap();
/// assert_eq!(guess.cause, RejectCause::Throttled);
/// let guess = classify_rejection(&status, &SendFacts::text("hi", false)).unwrap();
/// assert_eq!(guess.cause, RejectCause::NoContext);
/// ```
pub fn classify_rejection(status: &ApiStatus, facts: &SendFacts) -> Option<RejectionGuess> {
    if status.is_session_expired() || status.code() != wxlink_proto::status::REJECTED {
        return None;
    }
    let msg = status.errmsg.as_deref().unwrap_or("").trim();
    let guess = |cause, basis| Some(RejectionGuess { cause, basis });
    if msg.eq_ignore_ascii_case("rate limited") {
        return guess(RejectCause::Throttled, "errmsg says rate limited");
    }
    let long_chars = facts.text_chars.is_some_and(|n| n > LIKELY_TOO_LONG_CHARS);
    let long_bytes = facts.text_bytes.is_some_and(|n| n > LIKELY_TOO_LONG_BYTES);
    if long_chars || long_bytes {
        return guess(
            RejectCause::TextTooLong,
            "the text is longer than the server accepts",
        );
    }
    if !facts.had_context {
        return guess(RejectCause::NoContext, "no context token was sent");
    }
    if facts.since_last_inbound.is_some_and(|d| d > REPLY_WINDOW) {
        return guess(
            RejectCause::NoContext,
            "the user last wrote more than 24 h ago",
        );
    }
    if msg.eq_ignore_ascii_case("prepare failed") {
        return guess(
            RejectCause::Throttled,
            "errmsg prepare failed with a context and a short text, the burst throttle's answer",
        );
    }
    if msg.is_empty() || msg.eq_ignore_ascii_case("unknown error") {
        return guess(
            RejectCause::NoContext,
            "an empty or unknown-error errmsg, as seen after a context expired",
        );
    }
    guess(
        RejectCause::Unknown,
        "nothing in the errmsg or the request points at a cause",
    )
}

/// A hint for a `-3` refusal of `to`.
pub(crate) fn recipient_hint(to: &str) -> String {
    let mut hint = String::from(
        "use the raw, case-exact user id from an inbound message's from_user_id (…@im.wechat), unchanged",
    );
    if let Some((prefix, _)) = to.split_once(':') {
        hint.push_str(&format!(
            "; `{prefix}:` looks like a host's wrapper, not part of the id"
        ));
    }
    if !to.ends_with("@im.wechat") {
        hint.push_str("; it does not end in @im.wechat");
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(msg: Option<&str>) -> ApiStatus {
        ApiStatus::new(Some(-2), None, msg.map(str::to_owned))
    }

    #[test]
    fn each_rule_decides_in_order() {
        let short = SendFacts::text("hello", true);
        let cases = [
            (
                rejected(Some("rate limited")),
                SendFacts::text(&"x".repeat(9000), false),
                RejectCause::Throttled,
            ),
            (
                rejected(Some("prepare failed")),
                SendFacts::text(&"x".repeat(6000), true),
                RejectCause::TextTooLong,
            ),
            (
                rejected(Some("prepare failed")),
                SendFacts::text(&"好".repeat(6000), true),
                RejectCause::TextTooLong,
            ),
            (
                rejected(Some("prepare failed")),
                SendFacts::text("hi", false),
                RejectCause::NoContext,
            ),
            (
                rejected(Some("prepare failed")),
                short.since_last_inbound(Duration::from_secs(30 * 3600)),
                RejectCause::NoContext,
            ),
            (
                rejected(Some("prepare failed")),
                short,
                RejectCause::Throttled,
            ),
            (rejected(None), short, RejectCause::NoContext),
            (
                rejected(Some("unknown error")),
                short,
                RejectCause::NoContext,
            ),
            (rejected(Some("something new")), short, RejectCause::Unknown),
            (
                rejected(Some("something new")),
                SendFacts::media(true),
                RejectCause::Unknown,
            ),
        ];
        for (status, facts, want) in cases {
            let got = classify_rejection(&status, &facts).unwrap();
            assert_eq!(got.cause, want, "{status:?} {facts:?}");
            assert!(!got.basis.is_empty());
        }
    }

    #[test]
    fn other_statuses_are_not_classified() {
        let facts = SendFacts::text("x", true);
        assert_eq!(classify_rejection(&ApiStatus::default(), &facts), None);
        assert_eq!(
            classify_rejection(&ApiStatus::new(Some(-3), None, None), &facts),
            None
        );
        assert_eq!(
            classify_rejection(&ApiStatus::new(Some(-2), Some(-14), None), &facts),
            None
        );
    }

    #[test]
    fn the_recipient_hint_names_a_wrapper() {
        let hint = recipient_hint("user:o9cq80abc@im.wechat");
        assert!(hint.contains("`user:`"), "{hint}");
        assert!(recipient_hint("O9CQ80ABC").contains("does not end in @im.wechat"));
    }
}
