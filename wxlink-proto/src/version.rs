//! The `iLink-App-ClientVersion` encoding (docs/protocol.md, "Request
//! headers").

/// WxLink's `channel_version` for `base_info`: the crate version.
pub const DEFAULT_CHANNEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Encodes a version string as `0x00MMNNPP` (docs/protocol.md, "Request
/// headers").
///
/// The string is split on `.`; each of the first three parts is read as its
/// leading decimal integer (like JavaScript's `parseInt`), and a missing or
/// non-numeric part counts as 0. Each part keeps its low 8 bits.
///
/// ```
/// use wxlink_proto::encode_client_version;
/// assert_eq!(encode_client_version("2.4.3"), 132_099);
/// assert_eq!(encode_client_version("wx-link/0.2.0"), 512);
/// ```
pub fn encode_client_version(version: &str) -> u32 {
    let mut parts = version.split('.');
    let mut part = || parts.next().map(leading_int_low_byte).unwrap_or(0);
    let (major, minor, patch) = (part(), part(), part());
    (u32::from(major) << 16) | (u32::from(minor) << 8) | u32::from(patch)
}

/// The low byte of the leading decimal integer of `s`, as `parseInt(s) & 0xFF`
/// computes it: leading whitespace and one sign are allowed, and anything
/// without digits is 0.
fn leading_int_low_byte(s: &str) -> u8 {
    let s = s.trim_start();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // Wrapping arithmetic keeps the value exact modulo 2^64, hence modulo 256.
    let value = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
    let value = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    (value & 0xFF) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_parts() {
        assert_eq!(encode_client_version(""), 0);
        assert_eq!(encode_client_version("3"), 3 << 16);
        assert_eq!(encode_client_version("1.2.3.4"), 0x01_02_03);
        assert_eq!(encode_client_version("1.2rc1.3beta"), 0x01_02_03);
        assert_eq!(encode_client_version("256.257.0"), 0x00_01_00);
        assert_eq!(encode_client_version("-1.0.0"), 0xFF_00_00);
        assert_eq!(encode_client_version("a.b.c"), 0);
    }
}
