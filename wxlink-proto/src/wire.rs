//! Serde and `Debug` plumbing the generated code calls: integer enums travel
//! as JSON numbers and string enums as JSON strings, and a value this crate
//! does not know is kept in the enum's `Unknown` variant instead of failing.
//! Lists marked `lenient` in the schema are read with [`lenient_list`], so
//! that one malformed element field does not fail the whole response, and
//! `lenient` scalars with [`lenient_i64`] or [`lenient_string`], so that a
//! malformed value reads as absent.

use std::fmt;

use serde::Deserialize as _;
use serde_json::Value;

/// Reads an optional `i64` from a JSON integer or a decimal string
/// (`"35000"`). Anything else (a fraction, a number or string outside the
/// `i64` range, a non-decimal string, a boolean, an array, an object) reads
/// as `None` instead of failing the message that holds it. A float is never
/// accepted, even a whole one, as `lenient_u64` does for ids.
pub(crate) fn lenient_i64<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => parse_decimal_i64(&s),
        _ => None,
    })
}

/// A decimal integer with an optional leading `-`, surrounding whitespace
/// allowed; `None` for anything else (Rust's parser alone would also take a
/// leading `+`).
fn parse_decimal_i64(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Reads an optional string; a value that is not a JSON string (a number, a
/// boolean, an array, an object) reads as `None` instead of failing the
/// message that holds it.
pub(crate) fn lenient_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

/// Reads a JSON array of `T` where a malformed element does not fail the
/// list: an element that does not decode loses the top-level fields that do
/// not decode on their own and is read from the rest, so a message with one
/// bad field is still delivered with that field absent. An element that
/// still does not decode (not an object at all) is left out. `null` reads as
/// an empty list; any other non-array is an error.
///
/// The array is read one element at a time: only the element being read is
/// held as a `serde_json::Value`, so a batch near the body limit costs the
/// decoded messages plus one element's tree, not a tree of the whole array.
pub(crate) fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    struct ListVisitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Vec<T>, D2::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            // The size hint comes from the input; it only sizes a first
            // allocation, bounded so that a lying hint cannot reserve much.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(item) = seq.next_element::<Value>()? {
                if let Some(v) = lenient_element(item) {
                    out.push(v);
                }
            }
            Ok(out)
        }
    }

    deserializer.deserialize_any(ListVisitor(std::marker::PhantomData))
}

/// One element of a lenient list: as it is, else without the fields that do
/// not decode on their own, else nothing.
fn lenient_element<T: serde::de::DeserializeOwned>(item: Value) -> Option<T> {
    if let Ok(v) = T::deserialize(&item) {
        return Some(v);
    }
    let Value::Object(mut map) = item else {
        return None;
    };
    // Drop every field that does not decode in an element of its own; the
    // keys are few, so trying each one is cheap.
    let bad: Vec<String> = map
        .iter()
        .filter(|(k, v)| {
            let mut single = serde_json::Map::new();
            single.insert((*k).clone(), (*v).clone());
            T::deserialize(&Value::Object(single)).is_err()
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &bad {
        map.remove(k);
    }
    T::deserialize(&Value::Object(map)).ok()
}

/// Implements `Serialize`/`Deserialize` for a generated integer enum through
/// its `to_wire`/`from_wire` methods. A number sent as a decimal string is
/// accepted too.
macro_rules! int_enum_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.to_wire())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($crate::wire::IntVisitor)
                    .map(Self::from_wire)
            }
        }
    };
}

/// Implements `Serialize`/`Deserialize` for a generated string enum through
/// its `as_str`/`from_wire` methods.
macro_rules! str_enum_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::from_wire(&text))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use {int_enum_serde, str_enum_serde};

/// Reads an `i64` from a JSON integer or a decimal string.
pub(crate) struct IntVisitor;

impl serde::de::Visitor<'_> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer enum value")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}
