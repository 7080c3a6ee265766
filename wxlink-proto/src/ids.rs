//! Identifier helpers: lenient 64-bit ids and outbound `client_id`s.
//!
//! `message_id` can exceed 2^53, so it must never pass through `f64`
//! (ILINK.md §5.5). [`lenient_u64`] reads it from a JSON number or a decimal
//! string with integer arithmetic only, and writes it back as a JSON number.

use std::time::{SystemTime, UNIX_EPOCH};

/// Serde helpers for an `Option<u64>` that may arrive as a JSON number or a
/// decimal string. Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "wxlink_proto::ids::lenient_u64")]`.
///
/// `null` and the empty string read as `None`. Negative numbers, fractions
/// and non-decimal strings are errors.
pub mod lenient_u64 {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;

    /// Writes the value as a JSON number (or `null` for `None`).
    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_u64(*v),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a number, a decimal string, `null` or `""`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        deserializer.deserialize_any(LenientVisitor)
    }

    struct LenientVisitor;

    impl<'de> Visitor<'de> for LenientVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an unsigned 64-bit integer as a number or a decimal string")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Float(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let t = v.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::invalid_value(de::Unexpected::Str(v), &self));
            }
            t.parse::<u64>()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
}

/// A fresh outbound `client_id`: `<prefix>:<epoch ms>-<8 hex>` (ILINK.md §5.6).
///
/// ```
/// let id = wxlink_proto::new_client_id("wxlink");
/// assert!(id.starts_with("wxlink:"));
/// ```
pub fn new_client_id(prefix: &str) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{prefix}:{ms}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_u64")]
        id: Option<u64>,
    }

    fn read(json: &str) -> Result<Option<u64>, serde_json::Error> {
        serde_json::from_str::<Holder>(json).map(|h| h.id)
    }

    #[test]
    fn numbers_and_strings_are_exact() {
        assert_eq!(
            read(r#"{"id":18446744073709551615}"#).unwrap(),
            Some(u64::MAX)
        );
        assert_eq!(
            read(r#"{"id":"7423198823477151811"}"#).unwrap(),
            Some(7_423_198_823_477_151_811)
        );
        assert_eq!(read(r#"{"id":null}"#).unwrap(), None);
        assert_eq!(read(r#"{"id":""}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
    }

    #[test]
    fn lossy_forms_are_rejected() {
        assert!(read(r#"{"id":1.5}"#).is_err());
        assert!(read(r#"{"id":-1}"#).is_err());
        assert!(read(r#"{"id":"12a"}"#).is_err());
        assert!(read(r#"{"id":"18446744073709551616"}"#).is_err());
    }

    #[test]
    fn written_as_a_number() {
        let h = Holder {
            id: Some(7_423_198_823_477_151_811),
        };
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"id":7423198823477151811}"#
        );
    }

    #[test]
    fn client_ids_have_the_official_shape() {
        let id = new_client_id("wxlink");
        let rest = id.strip_prefix("wxlink:").unwrap();
        let (ms, hex) = rest.split_once('-').unwrap();
        assert!(ms.parse::<u64>().unwrap() > 1_600_000_000_000);
        assert_eq!(hex.len(), 8);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_client_id("p"), new_client_id("p"));
    }
}
