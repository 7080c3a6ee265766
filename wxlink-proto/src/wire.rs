//! Serde plumbing the generated code calls: integer enums travel as JSON
//! numbers and string enums as JSON strings, and a value this crate does not
//! know is kept in the enum's `Unknown` variant instead of failing. Lists
//! marked `lenient` in the schema are read with [`lenient_list`], so that one
//! malformed element field does not fail the whole response.

/// Reads a JSON array of `T` where a malformed element does not fail the
/// list: an element that does not decode loses the top-level fields that do
/// not decode on their own and is read from the rest, so a message with one
/// bad field is still delivered with that field absent. An element that
/// still does not decode (not an object at all) is left out. `null` reads as
/// an empty list; any other non-array is an error.
pub(crate) fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize as _;
    use serde_json::Value;

    let items = match Option::<Value>::deserialize(deserializer)? {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(serde::de::Error::custom("expected a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Ok(v) = T::deserialize(&item) {
            out.push(v);
            continue;
        }
        let Value::Object(mut map) = item else {
            continue;
        };
        // Drop every field that does not decode in an element of its own;
        // the keys are few, so trying each one is cheap.
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
        if let Ok(v) = T::deserialize(&Value::Object(map)) {
            out.push(v);
        }
    }
    Ok(out)
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
