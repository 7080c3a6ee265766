//! Redacting newtypes for the secrets that travel in iLink bodies.
//!
//! A bot token, a context token, a typing ticket and an AES key must never
//! reach a log line. These types serialise as the plain string the wire
//! expects, but their `Debug` and `Display` print `** redacted **`; the text
//! is only reachable through an explicit `expose_secret()`.

use std::fmt;

/// The text printed in place of a secret.
pub const REDACTED: &str = "** redacted **";

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident, debug_len: $len:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret text. Do not log it.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// True when the secret is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $len {
                    write!(f, "{}({REDACTED}, {} bytes)", stringify!($name), self.0.len())
                } else {
                    write!(f, "{}({REDACTED})", stringify!($name))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

secret_string!(
    /// The bearer credential returned by a confirmed QR login.
    BotToken,
    debug_len: true
);
secret_string!(
    /// The opaque per-message token a reply must echo (docs/protocol.md,
    /// "Context tokens").
    ContextToken,
    debug_len: false
);
secret_string!(
    /// The per-user ticket `sendtyping` needs, from `getconfig`
    /// (docs/protocol.md, "Typing tickets").
    TypingTicket,
    debug_len: false
);
secret_string!(
    /// An AES-128 key as it travels in JSON, in any of its encodings (32 hex
    /// characters, base64 of the raw bytes, or base64 of the hex text;
    /// docs/protocol.md, "Media keys"). `wxlink-media` parses it.
    AesKeyText,
    debug_len: false
);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-VALUE-0123456789abcdef";

    fn assert_hidden(debug: String, display: String) {
        for out in [&debug, &display] {
            assert!(out.contains(REDACTED), "{out}");
            assert!(!out.contains("s3cr3t"), "{out}");
            assert!(!out.contains("VALUE"), "{out}");
            assert!(!out.contains("0123456789"), "{out}");
        }
    }

    #[test]
    fn every_secret_type_is_redacted() {
        let t = BotToken::new(SECRET);
        assert_hidden(format!("{t:?}"), format!("{t}"));
        assert_hidden(format!("{t:#?}"), format!("{t:>40}"));
        let c = ContextToken::new(SECRET);
        assert_hidden(format!("{c:?}"), format!("{c}"));
        let k = TypingTicket::new(SECRET);
        assert_hidden(format!("{k:?}"), format!("{k}"));
        let a = AesKeyText::new(SECRET);
        assert_hidden(format!("{a:?}"), format!("{a}"));
        assert_eq!(a.expose_secret(), SECRET);
    }

    #[test]
    fn serde_is_the_plain_string() {
        let t = BotToken::new("abc");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"abc\"");
        let back: BotToken = serde_json::from_str("\"xyz\"").unwrap();
        assert_eq!(back.expose_secret(), "xyz");
        assert_eq!(format!("{back:?}"), "BotToken(** redacted **, 3 bytes)");
    }
}
