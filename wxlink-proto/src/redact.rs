//! The `Debug` view of a CDN credential: its length, never its text.
//!
//! The CDN parameters and URLs (`encrypt_query_param`, `full_url`,
//! `filekey`, `upload_param`, ...) stay plain `String`s on the wire types,
//! since the layers above must read and send them, but anyone holding one
//! can read or write the CDN object (docs/protocol.md, "Media download" and
//! "Media upload"). The generated `Debug` impls of the types holding them
//! print each such field, the ones marked `redact` in the schema, through
//! [`Redacted`].
//!
//! [`Redacted`] is public so that code outside this crate that holds the
//! same credentials, such as the simulator's request records or a transport
//! of a user's own, can print them the same way.
//!
//! ```
//! use wxlink_proto::redact::Redacted;
//!
//! let param = Some("AbCdEf".to_owned());
//! assert_eq!(format!("{:?}", Redacted(&param)), "Some(<redacted, 6 bytes>)");
//! ```

use std::fmt;

/// Prints the value it wraps as `<redacted, N bytes>` (N is the length in
/// bytes) in `Debug`, for a `str`, a `String` or an `Option<String>`.
///
/// Absence (`None`) and emptiness (`""`) are printed as they are, so a log
/// still shows whether the server sent a value. An `Option` keeps the shape
/// of the derived output, `{:#?}` included: `Some(<redacted, 3 bytes>)`.
pub struct Redacted<'a, T: ?Sized>(pub &'a T);

impl fmt::Debug for Redacted<'_, str> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            write!(f, "<redacted, {} bytes>", self.0.len())
        }
    }
}

impl fmt::Debug for Redacted<'_, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Redacted(self.0.as_str()).fmt(f)
    }
}

impl fmt::Debug for Redacted<'_, Option<String>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // The same shape as the derived output, `{:#?}` included.
            Some(s) => f.debug_tuple("Some").field(&Redacted(s.as_str())).finish(),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Redacted;

    #[test]
    fn a_str_shows_only_its_length() {
        assert_eq!(format!("{:?}", Redacted("abcd")), "<redacted, 4 bytes>");
        // Bytes, not characters: "é" is two bytes in UTF-8.
        assert_eq!(format!("{:?}", Redacted("é")), "<redacted, 2 bytes>");
        assert_eq!(format!("{:#?}", Redacted("abcd")), "<redacted, 4 bytes>");
    }

    #[test]
    fn a_string_shows_only_its_length() {
        let param = "secret-param".to_owned();
        let shown = format!("{:?}", Redacted(&param));
        assert_eq!(shown, "<redacted, 12 bytes>");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn an_empty_value_is_shown_as_empty() {
        assert_eq!(format!("{:?}", Redacted("")), "\"\"");
        assert_eq!(format!("{:?}", Redacted(&String::new())), "\"\"");
        assert_eq!(
            format!("{:?}", Redacted(&Some(String::new()))),
            "Some(\"\")"
        );
    }

    #[test]
    fn an_option_keeps_the_derived_shape() {
        let some = Some("xyz".to_owned());
        assert_eq!(
            format!("{:?}", Redacted(&some)),
            "Some(<redacted, 3 bytes>)"
        );
        assert_eq!(format!("{:?}", Redacted(&None::<String>)), "None");
        assert_eq!(
            format!("{:#?}", Redacted(&some)),
            "Some(\n    <redacted, 3 bytes>,\n)"
        );
        assert_eq!(format!("{:#?}", Redacted(&None::<String>)), "None");
    }
}
