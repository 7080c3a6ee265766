//! Percent-encoding of query values, exactly as the official client does it.
//!
//! The official client builds every query string (`bot_type`, `qrcode`,
//! `verify_code`, and the CDN's `encrypted_query_param` and `filekey`) with
//! JavaScript's `encodeURIComponent` (docs/protocol.md, "Hosts and URL
//! joining"). That keeps ASCII letters, digits and `- _ . ! ~ * ' ( )` and
//! percent-encodes every other UTF-8 byte with upper-case hex. One
//! implementation here keeps the transport, the media crate and the simulator
//! byte-for-byte in agreement.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What `encodeURIComponent` encodes: every byte but ASCII letters, digits
/// and `- _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Appends `value` to `out`, percent-encoded as `encodeURIComponent` does.
pub fn push_uri_component(out: &mut String, value: &str) {
    out.extend(utf8_percent_encode(value, URI_COMPONENT));
}

/// `value` percent-encoded as `encodeURIComponent` does.
///
/// ```
/// use wxlink_proto::url::encode_uri_component;
/// assert_eq!(encode_uri_component("a+b/c=d é"), "a%2Bb%2Fc%3Dd%20%C3%A9");
/// assert_eq!(encode_uri_component("-_.!~*'()"), "-_.!~*'()");
/// ```
pub fn encode_uri_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_uri_component(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_encode_uri_component_on_every_ascii_byte() {
        // encodeURIComponent's unreserved set, written out independently.
        let kept = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()";
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            let encoded = encode_uri_component(&c.to_string());
            if kept.contains(c) {
                assert_eq!(encoded, c.to_string());
            } else {
                assert_eq!(encoded, format!("%{byte:02X}"));
            }
        }
    }

    /// `encodeURIComponent` as the ECMAScript specification describes it,
    /// written out byte by byte, to hold the library-backed version to.
    fn reference(value: &str) -> String {
        let mut out = String::new();
        for &byte in value.as_bytes() {
            let kept = byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte);
            if kept {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn matches_encode_uri_component_on_any_text(value in "\\PC{0,64}") {
            proptest::prop_assert_eq!(encode_uri_component(&value), reference(&value));
        }
    }

    #[test]
    fn appends_without_touching_what_is_there() {
        let mut out = String::from("a=1&b=");
        push_uri_component(&mut out, "x y");
        assert_eq!(out, "a=1&b=x%20y");
    }

    #[test]
    fn encodes_multibyte_characters_byte_by_byte() {
        assert_eq!(encode_uri_component("微"), "%E5%BE%AE");
        assert_eq!(encode_uri_component("😀"), "%F0%9F%98%80");
        assert_eq!(encode_uri_component(""), "");
    }
}
