//! Identifier helpers: lenient 64-bit ids and outbound `client_id`s.
//!
//! `message_id` can exceed 2^53, so it must never pass through `f64`
//! (docs/protocol.md, "JSON conventions"). [`lenient_u64`] reads it from a JSON
//! number or a decimal string with integer arithmetic only, and writes it back
//! as a JSON number.

use std::time::{SystemTime, UNIX_EPOCH};

/// Serde helpers for an `Option<u64>` that may arrive as a JSON number or a
/// decimal string. Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "wxlink_proto::ids::lenient_u64")]`.
///
/// `null` and the empty string read as `None`. So does any value that is not
/// an exact unsigned 64-bit integer (a negative number, a fraction, a number
/// or string beyond `u64::MAX`, a non-decimal string, a boolean, an array or
/// an object): a malformed id is no id, and reading it as absent keeps the
/// message that holds it. Failing instead would fail the whole response, so
/// one bad `message_id` would lose every other message of a `getupdates`
/// batch.
pub mod lenient_u64 {
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::ser::Serializer;

    /// Writes the value as a JSON number (or `null` for `None`).
    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_u64(*v),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a number or a decimal string; anything else reads as `None`.
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
            Ok(u64::try_from(v).ok())
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }

        fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Self::Value, E> {
            // A float has already lost precision above 2^53, so its value
            // cannot be trusted as an id.
            Ok(None)
        }

        fn visit_bool<E: de::Error>(self, _v: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let t = v.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(None);
            }
            Ok(t.parse::<u64>().ok())
        }

        fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Self::Value, E> {
            Ok(None)
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

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // The elements are read and dropped so the rest of the document
            // still parses.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
}

/// A fresh outbound `client_id`: `<prefix>:<epoch ms>-<8 hex>`
/// (docs/protocol.md, "Shape of a bot reply").
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
    fn malformed_ids_read_as_absent_and_the_rest_still_parses() {
        for bad in [
            "1.5",
            "-1",
            "\"12a\"",
            "\"-3\"",
            "\"18446744073709551616\"",
            "18446744073709551616",
            "1e30",
            "true",
            "[1,[2,{}]]",
            "{\"a\":[1,2],\"b\":{}}",
        ] {
            let json = format!(r#"{{"id":{bad},"next":7}}"#);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(v.is_object(), "{json} is valid JSON");
            assert_eq!(read(&json).unwrap(), None, "{json}");
        }
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
