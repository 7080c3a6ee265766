//! `Debug` views that keep CDN credentials out of test output and logs.
//!
//! A CDN parameter (`encrypted_query_param`, a download parameter) or a
//! `filekey` opens a CDN object to whoever holds it, so the simulator's
//! records print them the way `wxlink-proto` prints the fields its schema
//! marks `redact`: `<redacted, N bytes>`, with absence (`None`) and
//! emptiness (`""`) still visible. The values stay readable through the
//! public fields and the control API's JSON, which tests need.

use std::fmt;

/// The query parameters whose values are CDN credentials.
const SECRET_QUERY_KEYS: &[&str] = &["encrypted_query_param", "filekey"];

/// The `Debug` view of a CDN credential: its length, never its text.
pub(crate) struct Redacted<'a, T: ?Sized>(pub(crate) &'a T);

impl fmt::Debug for Redacted<'_, str> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            write!(f, "<redacted, {} bytes>", self.0.len())
        }
    }
}

impl fmt::Debug for Redacted<'_, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Redacted(self.0.as_str()).fmt(f)
    }
}

impl fmt::Debug for Redacted<'_, Option<String>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // The shape of the derived output, `{:#?}` included.
            Some(s) => f.debug_tuple("Some").field(&Redacted(s.as_str())).finish(),
            None => f.write_str("None"),
        }
    }
}

/// `query` with the value of every CDN credential parameter replaced by
/// `<redacted, N bytes>` (N counts the value as sent, still
/// percent-encoded); other parameters are kept as they are.
pub(crate) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if SECRET_QUERY_KEYS.contains(&key) && !value.is_empty() => {
                format!("{key}=<redacted, {} bytes>", value.len())
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_show_only_their_length() {
        assert_eq!(format!("{:?}", Redacted("abcd")), "<redacted, 4 bytes>");
        assert_eq!(format!("{:?}", Redacted("")), "\"\"");
        let some = Some("xyz".to_owned());
        assert_eq!(
            format!("{:?}", Redacted(&some)),
            "Some(<redacted, 3 bytes>)"
        );
        assert_eq!(format!("{:?}", Redacted(&None::<String>)), "None");
    }

    #[test]
    fn only_the_credential_parameters_of_a_query_are_hidden() {
        assert_eq!(
            redact_query("encrypted_query_param=AbC%2B&filekey=ff00&x=1&filekey="),
            "encrypted_query_param=<redacted, 6 bytes>&filekey=<redacted, 4 bytes>&x=1&filekey="
        );
        assert_eq!(redact_query("qrcode=q1&bot_type=3"), "qrcode=q1&bot_type=3");
    }
}
