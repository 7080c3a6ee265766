//! The `bot_agent` sanitiser of `base_info` (docs/protocol.md, "`base_info` and
//! `bot_agent`").
//!
//! `bot_agent` is a user-agent style self-description used only for the
//! server's observability. The official client cleans whatever it is given
//! with the exact algorithm reproduced here, so a caller can pass any text
//! and the server always sees a well-formed value.

/// WxLink's default `bot_agent`: `WxLink/<crate version>`.
pub const DEFAULT_BOT_AGENT: &str = concat!("WxLink/", env!("CARGO_PKG_VERSION"));

/// The longest accepted result in UTF-8 bytes.
pub const MAX_BOT_AGENT_BYTES: usize = 256;

impl crate::BaseInfo {
    /// A `base_info` with the given `channel_version` and the sanitised
    /// `bot_agent` (docs/protocol.md, "`base_info` and `bot_agent`"), falling
    /// back to [`DEFAULT_BOT_AGENT`].
    ///
    /// ```
    /// use wxlink_proto::{BaseInfo, DEFAULT_CHANNEL_VERSION};
    /// let info = BaseInfo::new(DEFAULT_CHANNEL_VERSION, Some("MyBot/1.0  (prod)"));
    /// assert_eq!(info.bot_agent.as_deref(), Some("MyBot/1.0 (prod)"));
    /// ```
    pub fn new(channel_version: impl Into<String>, bot_agent: Option<&str>) -> Self {
        Self {
            channel_version: Some(channel_version.into()),
            bot_agent: Some(sanitize_bot_agent(bot_agent, DEFAULT_BOT_AGENT)),
        }
    }
}

/// Cleans `input` into a valid `bot_agent` (docs/protocol.md, "`base_info` and
/// `bot_agent`"), or returns `fallback` when nothing in it is usable.
///
/// The grammar is `product *( SP product )` with `product = name "/" version
/// [ SP "(" comment ")" ]`. Invalid products and orphan or invalid comments
/// are dropped, runs of whitespace collapse, and the result is cut to whole
/// leading products within 256 bytes.
///
/// ```
/// use wxlink_proto::sanitize_bot_agent;
/// assert_eq!(sanitize_bot_agent(Some("My Bot ValidApp/1.0"), "WxLink"), "ValidApp/1.0");
/// assert_eq!(sanitize_bot_agent(Some("   "), "WxLink"), "WxLink");
/// ```
pub fn sanitize_bot_agent(input: Option<&str>, fallback: &str) -> String {
    let Some(input) = input.map(str::trim).filter(|s| !s.is_empty()) else {
        return fallback.to_owned();
    };
    let pieces = join_comment_pieces(input);

    let mut accepted: Vec<String> = Vec::new();
    let mut pending: Option<&str> = None;
    for piece in &pieces {
        if piece.starts_with('(') && piece.ends_with(')') && piece.len() >= 2 {
            // A comment: it attaches to the pending product when valid,
            // otherwise the product goes out alone. Either way the comment is
            // consumed.
            let inner = &piece[1..piece.len() - 1];
            if let Some(product) = pending.take() {
                if is_comment(inner) {
                    accepted.push(format!("{product} {piece}"));
                } else {
                    accepted.push(product.to_owned());
                }
            }
        } else {
            if let Some(product) = pending.take() {
                accepted.push(product.to_owned());
            }
            if is_product(piece) {
                pending = Some(piece);
            }
        }
    }
    if let Some(product) = pending.take() {
        accepted.push(product.to_owned());
    }
    if accepted.is_empty() {
        return fallback.to_owned();
    }

    let mut out = String::new();
    for token in &accepted {
        let extra = if out.is_empty() { 0 } else { 1 };
        if out.len() + extra + token.len() > MAX_BOT_AGENT_BYTES {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        out.push_str(token);
    }
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// Splits on runs of whitespace, then joins a piece that opens a comment
/// with the following pieces (one space each) until the text closes it or
/// the input runs out.
fn join_comment_pieces(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = input.split_whitespace();
    while let Some(word) = words.next() {
        let mut piece = word.to_owned();
        if piece.starts_with('(') && !piece.ends_with(')') {
            for next in words.by_ref() {
                piece.push(' ');
                piece.push_str(next);
                if piece.ends_with(')') {
                    break;
                }
            }
        }
        out.push(piece);
    }
    out
}

/// `name "/" version` in full: name 1–32 of `A-Z a-z 0-9 _ . -`, version
/// 1–32 of the same plus `+`.
fn is_product(piece: &str) -> bool {
    let Some((name, version)) = piece.split_once('/') else {
        return false;
    };
    let name_ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let version_ok = (1..=32).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    name_ok && version_ok
}

/// 1–64 printable ASCII characters (0x20–0x7E) other than `(` and `)`.
fn is_comment(inner: &str) -> bool {
    (1..=64).contains(&inner.len())
        && inner
            .bytes()
            .all(|b| (0x20..=0x7E).contains(&b) && b != b'(' && b != b')')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_the_crate_version() {
        assert!(DEFAULT_BOT_AGENT.starts_with("WxLink/"));
        assert_eq!(
            sanitize_bot_agent(Some(DEFAULT_BOT_AGENT), "x"),
            DEFAULT_BOT_AGENT
        );
    }

    #[test]
    fn unterminated_comment_swallows_the_rest() {
        assert_eq!(sanitize_bot_agent(Some("A/1 (open B/2"), "F"), "A/1");
    }

    #[test]
    fn empty_comment_is_dropped() {
        assert_eq!(sanitize_bot_agent(Some("A/1 () B/2"), "F"), "A/1 B/2");
    }
}
