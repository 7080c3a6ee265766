//! Percent-encoding of query values, exactly as the official client does it.
//!
//! The official client builds every query string (`bot_type`, `qrcode`,
//! `verify_code`, and the CDN's `encrypted_query_param` and `filekey`) with
//! JavaScript's `encodeURIComponent` (ILINK.md §1.3, §4.2, §7.3). That keeps
//! ASCII letters, digits and `- _ . ! ~ * ' ( )` and percent-encodes every
//! other UTF-8 byte with upper-case hex. One implementation here keeps the
//! transport, the media crate and the simulator byte-for-byte in agreement.

/// Whether `encodeURIComponent` leaves `byte` as it is.
const fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Appends `value` to `out`, percent-encoded as `encodeURIComponent` does.
pub fn push_uri_component(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
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

    #[test]
    fn encodes_multibyte_characters_byte_by_byte() {
        assert_eq!(encode_uri_component("微"), "%E5%BE%AE");
        assert_eq!(encode_uri_component("😀"), "%F0%9F%98%80");
        assert_eq!(encode_uri_component(""), "");
    }
}
