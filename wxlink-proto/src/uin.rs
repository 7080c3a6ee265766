//! The `X-WECHAT-UIN` header value (docs/protocol.md, "Request headers").

use base64::Engine as _;

/// Encodes `value` the way the official client does: the decimal string of
/// the number, base64-encoded (the text, not the four bytes).
///
/// ```
/// assert_eq!(wxlink_proto::wechat_uin(3_141_592_653), "MzE0MTU5MjY1Mw==");
/// ```
pub fn wechat_uin(value: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// A fresh random `X-WECHAT-UIN` value; the official client draws one per
/// request.
pub fn random_wechat_uin() -> String {
    wechat_uin(rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_decode_to_decimal_u32() {
        let v = random_wechat_uin();
        let text = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.parse::<u32>().is_ok(), "{text}");
    }
}
