//! Redaction of secrets in the text this crate shows: body excerpts in
//! errors and URLs in traces.
//!
//! The rules follow the official client's log redaction (docs/protocol.md, "Log
//! redaction"), made stricter: any JSON key or `key=value` name that looks like
//! a credential or an opaque media parameter has its value replaced, and URLs
//! are reduced to origin and path.

/// The longest excerpt of a body kept in an error, in characters.
pub(crate) const EXCERPT_CHARS: usize = 200;

/// How many bytes of a body are looked at to build an excerpt.
pub(crate) const EXCERPT_SCAN_BYTES: usize = 4096;

/// What replaces a secret value.
const REDACTED: &str = "<redacted>";

/// Whether a field name names a value that must not be shown.
fn is_secret_name(name: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "token", "ticket", "aes", "key", "auth", "param", "url", "secret", "password", "cookie",
    ];
    let lower = name.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

/// A short, redacted excerpt of a body for an error message: the values of
/// secret-looking fields (`context_token`, `bot_token`, `typing_ticket`,
/// `aes_key`, `aeskey`, …) and bearer tokens are replaced, and the text is
/// cut to [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let scanned = &body[..body.len().min(EXCERPT_SCAN_BYTES)];
    let text = String::from_utf8_lossy(scanned);
    let redacted = redact_secrets(&text);
    let mut out: String = redacted.chars().take(EXCERPT_CHARS).collect();
    if redacted.chars().nth(EXCERPT_CHARS).is_some() || body.len() > scanned.len() {
        out.push('…');
    }
    out
}

/// Replaces secret values in JSON-ish or `key=value` text: the value after
/// any `"name":`, `name:` or `name=` whose name looks like a credential or
/// an opaque media parameter (it contains `token`, `ticket`, `aes`, `key`,
/// `auth`, `param`, `url`, `secret`, `password` or `cookie`), and the word
/// after `Bearer`. A quoted value is hidden to its closing quote, a list or
/// object whole. The media crate uses it for CDN error messages too.
///
/// ```
/// let shown = wxlink_transport::redact_secrets(r#"{"errmsg":"bad","filekey":"0a1b"}"#);
/// assert!(!shown.contains("0a1b"));
/// assert!(shown.contains("bad"));
/// ```
pub fn redact_secrets(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !is_word_byte(c) {
            // Copy one whole character (the input is valid UTF-8).
            let len = utf8_len(c);
            out.push_str(&text[i..(i + len).min(text.len())]);
            i += len;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
        let word = &text[start..i];
        out.push_str(word);
        if word.eq_ignore_ascii_case("bearer") {
            // `Bearer <token>`: hide the next word.
            let mut j = i;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if j > i && j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                let end = value_end_unquoted(bytes, j);
                out.push_str(&text[i..j]);
                out.push_str(REDACTED);
                i = end;
            }
            continue;
        }
        if !is_secret_name(word) {
            continue;
        }
        // Look for a separator: `"name": value`, `name: value` or `name=value`.
        // JSON allows any whitespace (tabs, line breaks) around the colon.
        let mut j = i;
        if j < bytes.len() && bytes[j] == b'"' {
            j += 1;
        }
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() || (bytes[j] != b':' && bytes[j] != b'=') {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() {
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        match bytes[j] {
            b'"' => {
                let end = value_end_quoted(bytes, j + 1);
                out.push_str(&text[i..=j]);
                out.push_str(REDACTED);
                // Keep the closing quote when there is one.
                if end < bytes.len() {
                    out.push('"');
                    i = end + 1;
                } else {
                    i = end;
                }
            }
            b'{' | b'[' => {
                // A list or object under a secret name (a token list, a
                // key sent as an array) is hidden whole: its elements have
                // no names of their own to recognise them by.
                let end = value_end_nested(bytes, j);
                out.push_str(&text[i..j]);
                out.push_str(REDACTED);
                i = end;
            }
            _ => {
                let mut end = value_end_unquoted(bytes, j);
                // `Authorization: Bearer <token>`: the scheme word and the
                // credential after it both go.
                let scheme = &text[j..end];
                if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("basic") {
                    let mut k = end;
                    while k < bytes.len() && bytes[k] == b' ' {
                        k += 1;
                    }
                    end = value_end_unquoted(bytes, k);
                }
                out.push_str(&text[i..j]);
                if end > j {
                    out.push_str(REDACTED);
                }
                i = end;
            }
        }
    }
    out
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The index of the closing quote of a JSON string starting at `start`, or
/// the end of the input when it is cut off.
fn value_end_quoted(bytes: &[u8], start: usize) -> usize {
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 2,
            b'"' => return k,
            _ => k += 1,
        }
    }
    bytes.len()
}

/// The index just past the bracket that closes the list or object opening
/// at `start` (strings skipped), or the end of the input when it is cut off.
fn value_end_nested(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'"' => k = value_end_quoted(bytes, k + 1),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
        k += 1;
    }
    bytes.len()
}

/// The end of an unquoted value: the next delimiter.
fn value_end_unquoted(bytes: &[u8], start: usize) -> usize {
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'&' | b',' | b';' | b'}' | b']' | b'<' | b'>' | b'"' | b'\'' | b' ' | b'\t'
            | b'\r' | b'\n' => return k,
            _ => k += 1,
        }
    }
    bytes.len()
}

/// Shows a URL as scheme, host and path, with `?<redacted>` when it has a
/// query (CDN parameters and login codes travel there) and without any
/// `user:password@` part. Formatting allocates nothing.
pub(crate) struct RedactedUri<'a>(pub(crate) &'a http::Uri);

impl std::fmt::Display for RedactedUri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = uri.authority() {
            let host = authority
                .as_str()
                .rsplit_once('@')
                .map_or(authority.as_str(), |(_, h)| h);
            f.write_str(host)?;
        }
        f.write_str(uri.path())?;
        if uri.query().is_some() {
            f.write_str("?<redacted>")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_secret_values_are_replaced() {
        let body = br#"{"ret":-2,"context_token":"CTX-SECRET","msg":{"bot_token":"BOT-SECRET","aeskey":"00ff","aes_key":"QUJD","typing_ticket":"TT"},"errmsg":"bad"}"#;
        let out = excerpt(body);
        for secret in ["CTX-SECRET", "BOT-SECRET", "00ff", "QUJD", "\"TT\""] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
        assert!(out.contains(r#""errmsg":"bad""#), "{out}");
        assert!(out.contains(r#""context_token":"<redacted>""#), "{out}");
    }

    #[test]
    fn text_and_bearer_secrets_are_replaced() {
        let out = redact_secrets("Authorization: Bearer abc.def and token=XYZ&x=1 aes_key: 9f");
        assert!(!out.contains("abc.def"), "{out}");
        assert!(!out.contains("XYZ"), "{out}");
        assert!(!out.contains("9f"), "{out}");
        assert!(out.contains("x=1"), "{out}");
    }

    #[test]
    fn escaped_quotes_and_cut_strings_stay_redacted() {
        let out = redact_secrets(r#"{"context_token":"a\"b","x":1}"#);
        assert_eq!(out, r#"{"context_token":"<redacted>","x":1}"#);
        let out = redact_secrets(r#"{"context_token":"unterminated SECRET"#);
        assert!(!out.contains("SECRET"), "{out}");
    }

    #[test]
    fn whitespace_around_the_colon_and_nested_values_stay_redacted() {
        // Found by the fuzz_bodies integration tests: a tab or line break after the colon
        // used to let the value through.
        for text in [
            "{\"context_token\":\t\"SECRET1\",\"x\":1}",
            "{\"context_token\"\n:\n\"SECRET1\",\"x\":1}",
            "{\"typing_ticket\":\r\n SECRET1,\"x\":1}",
            r#"{"local_token_list":["SECRET1","SECRET2"],"x":1}"#,
            r#"{"aes_key":{"k":"SECRET1","n":[1,"]"]},"x":1}"#,
            r#"{"aes_key":[["SECRET1""#,
        ] {
            let out = redact_secrets(text);
            assert!(!out.contains("SECRET"), "{text} -> {out}");
            if text.ends_with('}') {
                assert!(out.ends_with(r#","x":1}"#), "{text} -> {out}");
            }
        }
    }

    #[test]
    fn excerpt_is_short_and_keeps_utf8() {
        let body = "错".repeat(1000);
        let out = excerpt(body.as_bytes());
        assert!(out.chars().count() <= EXCERPT_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn uri_query_and_userinfo_are_dropped() {
        let uri: http::Uri = "https://u:p@cdn.example/c2c/download?encrypted_query_param=SECRET"
            .parse()
            .unwrap();
        assert_eq!(
            RedactedUri(&uri).to_string(),
            "https://cdn.example/c2c/download?<redacted>"
        );
    }
}
