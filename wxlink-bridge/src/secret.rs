//! [`Secret`]: an API key or bearer token that never prints.

use std::fmt;

use crate::error::{Error, Kind};

/// An API key or bearer token. `Debug` and `Display` print
/// `** redacted **`; [`expose_secret`](Self::expose_secret) is the only way
/// to the value.
///
/// ```
/// use wxlink_bridge::Secret;
///
/// let key = Secret::new("sk-live-123");
/// assert_eq!(format!("{key:?} {key}"), "** redacted ** ** redacted **");
/// assert_eq!(key.expose_secret(), "sk-live-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads the value of the environment variable `name`; a missing or
    /// empty variable is a configuration error naming the variable (not its
    /// value).
    pub fn from_env(name: &str) -> Result<Self, Error> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Self(value)),
            _ => Err(Error::new(
                Kind::Config,
                format!("the environment variable {name} is not set"),
            )),
        }
    }

    /// The value itself.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in time that depends only on the lengths.
    pub fn matches(&self, other: &str) -> bool {
        let a = self.0.as_bytes();
        let b = other.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_and_compares_exactly() {
        let s = Secret::new("tok-1");
        assert_eq!(format!("{s:?}"), "** redacted **");
        assert_eq!(s.to_string(), "** redacted **");
        assert!(s.matches("tok-1"));
        assert!(!s.matches("tok-2"));
        assert!(!s.matches("tok-12"));
        let err = Secret::from_env("WXLINK_BRIDGE_TEST_SURELY_UNSET").unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("WXLINK_BRIDGE_TEST_SURELY_UNSET"));
    }
}
