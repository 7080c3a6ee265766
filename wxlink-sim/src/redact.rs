//! Keeping CDN credentials out of recorded query strings in test output
//! and logs.
//!
//! A CDN parameter (`encrypted_query_param`, a download parameter) or a
//! `filekey` opens a CDN object to whoever holds it, so the simulator's
//! records print them the way `wxlink-proto` prints the fields its schema
//! marks `redact`: `<redacted, N bytes>`, with absence (`None`) and
//! emptiness (`""`) still visible. A record's own credential fields are
//! printed through [`wxlink_proto::redact::Redacted`]; this module hides
//! the same credentials inside a recorded query string. The values stay
//! readable through the public fields and the control API's JSON, which
//! tests need.

/// The query parameters whose values are CDN credentials.
const SECRET_QUERY_KEYS: &[&str] = &["encrypted_query_param", "filekey"];

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
    fn only_the_credential_parameters_of_a_query_are_hidden() {
        assert_eq!(
            redact_query("encrypted_query_param=AbC%2B&filekey=ff00&x=1&filekey="),
            "encrypted_query_param=<redacted, 6 bytes>&filekey=<redacted, 4 bytes>&x=1&filekey="
        );
        assert_eq!(redact_query("qrcode=q1&bot_type=3"), "qrcode=q1&bot_type=3");
    }
}
