//! AES keys: generation, the outbound encodings and the inbound parser.
//!
//! The protocol carries one 16-byte key in several text forms
//! (docs/protocol.md, "Media keys"):
//!
//! - `getuploadurl.aeskey` and inbound `image_item.aeskey`: 32 lower-case hex
//!   characters ([`AesKey::to_hex`], [`KeyEncoding::Hex`]);
//! - outbound `media.aes_key`: base64 of those 32 ASCII hex characters, 44
//!   characters ([`AesKey::to_base64_hex`], [`KeyEncoding::Base64Hex`]);
//! - inbound `media.aes_key` on images: base64 of the 16 raw bytes, 24
//!   characters ([`AesKey::to_base64_raw`], [`KeyEncoding::Base64Raw`]).
//!
//! [`AesKey::parse_inbound`] accepts all three and says which one it saw.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, ErrorKind};
use crate::kind::MediaKind;

/// A 16-byte AES-128 key.
///
/// `Debug` and `Display` print `** redacted **`; read the key with
/// [`as_bytes`](Self::as_bytes) or one of the encoders.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 16]);

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(** redacted **)")
    }
}

impl fmt::Display for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// The text encoding an inbound key arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyEncoding {
    /// 32 hex characters, as in `image_item.aeskey`.
    Hex,
    /// Base64 of the 16 raw bytes (24 characters), seen on inbound images.
    Base64Raw,
    /// Base64 of the 32 ASCII hex characters (44 characters), what clients
    /// send and what file, voice and video items carry.
    Base64Hex,
}

impl AesKey {
    /// A fresh key from the operating system's random generator.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Reads 32 hex characters (either case).
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_key`] when `hex` is not exactly 32 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, Error> {
        let hex = hex.trim();
        if hex.len() != 32 {
            return Err(ErrorKind::InvalidKey {
                reason: format!("hex key has {} characters, expected 32", hex.len()),
            }
            .into());
        }
        Self::from_hex_bytes(hex.as_bytes()).ok_or_else(|| {
            ErrorKind::InvalidKey {
                reason: "hex key has a non-hex character".to_owned(),
            }
            .into()
        })
    }

    /// Decodes 32 ASCII hex digits; `None` when any is not a hex digit.
    fn from_hex_bytes(hex: &[u8]) -> Option<Self> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Self(out))
    }

    /// The raw 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// 32 lower-case hex characters: what `getuploadurl.aeskey` carries.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Base64 of the 32 ASCII hex characters (44 characters): what the official
    /// client sends as `media.aes_key` (docs/protocol.md, "Media keys").
    pub fn to_base64_hex(&self) -> String {
        STANDARD.encode(self.to_hex())
    }

    /// Base64 of the 16 raw bytes (24 characters), the form inbound images
    /// carry in `media.aes_key`.
    pub fn to_base64_raw(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Encodes the key in `encoding`.
    pub fn encode(&self, encoding: KeyEncoding) -> String {
        match encoding {
            KeyEncoding::Hex => self.to_hex(),
            KeyEncoding::Base64Raw => self.to_base64_raw(),
            KeyEncoding::Base64Hex => self.to_base64_hex(),
        }
    }

    /// Parses an inbound key in any of the encodings of docs/protocol.md,
    /// "Media keys" and reports which one it was.
    ///
    /// Accepted: 32 hex characters (`image_item.aeskey`); base64 of 16 raw
    /// bytes; base64 of 32 ASCII hex characters. Surrounding whitespace is
    /// ignored. The decoded length tells the forms apart unambiguously.
    ///
    /// # Errors
    ///
    /// [`Error::is_invalid_key`] for anything else. The message says what
    /// was received (its length, what it decoded to) and never the key.
    ///
    /// ```
    /// use wxlink_media::{AesKey, KeyEncoding};
    ///
    /// let (key, enc) = AesKey::parse_inbound("MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY=")?;
    /// assert_eq!(enc, KeyEncoding::Base64Hex);
    /// assert_eq!(key.to_hex(), "00112233445566778899aabbccddeeff");
    /// # Ok::<(), wxlink_media::Error>(())
    /// ```
    pub fn parse_inbound(text: &str) -> Result<(Self, KeyEncoding), Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ErrorKind::InvalidKey {
                reason: "key is empty".to_owned(),
            }
            .into());
        }
        if text.len() == 32
            && let Some(key) = Self::from_hex_bytes(text.as_bytes())
        {
            return Ok((key, KeyEncoding::Hex));
        }
        let decoded = STANDARD.decode(text).map_err(|_| ErrorKind::InvalidKey {
            reason: format!(
                "key of {} characters is neither 32 hex characters nor base64",
                text.len()
            ),
        })?;
        match decoded.len() {
            16 => {
                let mut raw = [0u8; 16];
                raw.copy_from_slice(&decoded);
                Ok((Self(raw), KeyEncoding::Base64Raw))
            }
            32 => Self::from_hex_bytes(&decoded)
                .map(|key| (key, KeyEncoding::Base64Hex))
                .ok_or_else(|| {
                    ErrorKind::InvalidKey {
                        reason: "base64 key decodes to 32 bytes that are not all hex digits"
                            .to_owned(),
                    }
                    .into()
                }),
            n => Err(ErrorKind::InvalidKey {
                reason: format!(
                    "base64 key of {} characters decodes to {n} bytes, expected 16 raw bytes or 32 hex characters",
                    text.len()
                ),
            }.into()),
        }
    }
}

/// Picks the key of an inbound media item as docs/protocol.md, "Media keys"
/// says.
///
/// - Images: `image_aeskey` (`image_item.aeskey`) wins over `media_aes_key`
///   (`media.aes_key`); when the former does not parse, the latter is
///   tried. With neither, `Ok(None)`: the image is downloaded without
///   decryption.
/// - Voice, file and video: `media.aes_key` is required
///   ([`Error::is_missing_key`] without it); `image_aeskey` is ignored.
///
/// Empty strings count as absent.
///
/// # Errors
///
/// [`Error::is_missing_key`] or [`Error::is_invalid_key`].
pub fn resolve_item_key(
    kind: MediaKind,
    image_aeskey: Option<&str>,
    media_aes_key: Option<&str>,
) -> Result<Option<(AesKey, KeyEncoding)>, Error> {
    let image_aeskey = image_aeskey.filter(|s| !s.trim().is_empty());
    let media_aes_key = media_aes_key.filter(|s| !s.trim().is_empty());
    match kind {
        MediaKind::Image => match (image_aeskey, media_aes_key) {
            (Some(img), media) => match AesKey::parse_inbound(img) {
                Ok(found) => Ok(Some(found)),
                Err(err) => match media.map(AesKey::parse_inbound) {
                    Some(Ok(found)) => Ok(Some(found)),
                    _ => Err(err),
                },
            },
            (None, Some(media)) => AesKey::parse_inbound(media).map(Some),
            (None, None) => Ok(None),
        },
        MediaKind::Video | MediaKind::File | MediaKind::Voice => match media_aes_key {
            Some(media) => AesKey::parse_inbound(media).map(Some),
            None => Err(ErrorKind::MissingKey { kind }.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff";

    fn key() -> AesKey {
        AesKey::from_hex(HEX).unwrap()
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let k = key();
        assert_eq!(format!("{k:?}"), "AesKey(** redacted **)");
        assert_eq!(format!("{k}"), "** redacted **");
        assert!(!format!("{k:?}{k}").contains("0011"));
    }

    #[test]
    fn outbound_encodings_match_the_fixture() {
        let k = key();
        assert_eq!(k.to_hex(), HEX);
        assert_eq!(
            k.to_base64_hex(),
            "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY="
        );
        assert_eq!(k.to_base64_hex().len(), 44);
        assert_eq!(k.to_base64_raw(), "ABEiM0RVZneImaq7zN3u/w==");
        assert_eq!(k.to_base64_raw().len(), 24);
    }

    #[test]
    fn official_example_key_encodes_as_documented() {
        let k = AesKey::from_hex("9a8b7c6d5e4f30211203f4e5d6c7b8a9").unwrap();
        assert_eq!(
            k.to_base64_hex(),
            "OWE4YjdjNmQ1ZTRmMzAyMTEyMDNmNGU1ZDZjN2I4YTk="
        );
    }

    #[test]
    fn parse_inbound_accepts_every_encoding_and_names_it() {
        let cases = [
            (HEX, KeyEncoding::Hex),
            ("00112233445566778899AABBCCDDEEFF", KeyEncoding::Hex),
            ("ABEiM0RVZneImaq7zN3u/w==", KeyEncoding::Base64Raw),
            (
                "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmY=",
                KeyEncoding::Base64Hex,
            ),
        ];
        for (text, want) in cases {
            let (k, enc) = AesKey::parse_inbound(text).unwrap();
            assert_eq!(enc, want, "{text}");
            assert_eq!(k, key(), "{text}");
        }
    }

    #[test]
    fn inbound_image_fixture_encodings_agree() {
        let (a, _) = AesKey::parse_inbound("a1b2c3d4e5f60718293a4b5c6d7e8f90").unwrap();
        let (b, enc) = AesKey::parse_inbound("obLD1OX2BxgpOktcbX6PkA==").unwrap();
        assert_eq!(enc, KeyEncoding::Base64Raw);
        assert_eq!(a, b);
        let (c, _) = AesKey::parse_inbound("YTFiMmMzZDRlNWY2MDcxODI5M2E0YjVjNmQ3ZThmOTA=").unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn parse_inbound_rejects_other_input_without_echoing_it() {
        let secretish = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="; // 20 bytes of base64
        for bad in [
            "",
            "   ",
            "zz112233445566778899aabbccddeeff",
            secretish,
            "not base64 at all!!",
            // Base64 of 32 bytes that are not hex digits.
            "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
        ] {
            let err = AesKey::parse_inbound(bad).unwrap_err();
            let msg = format!("{err} {err:?}");
            assert!(matches!(err.kind(), ErrorKind::InvalidKey { .. }), "{bad}");
            if bad.len() > 4 {
                assert!(!msg.contains(bad.trim()), "{msg}");
            }
        }
        let err = AesKey::parse_inbound(secretish).unwrap_err().to_string();
        assert!(
            err.contains("28 characters") && err.contains("20 bytes"),
            "{err}"
        );
    }

    #[test]
    fn image_key_wins_over_media_key() {
        let other = AesKey::from_bytes([1; 16]);
        let (k, enc) = resolve_item_key(MediaKind::Image, Some(HEX), Some(&other.to_base64_raw()))
            .unwrap()
            .unwrap();
        assert_eq!((k, enc), (key(), KeyEncoding::Hex));
    }

    #[test]
    fn image_without_any_key_is_plaintext() {
        assert!(
            resolve_item_key(MediaKind::Image, None, Some(""))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn non_image_items_need_the_media_key() {
        for kind in [MediaKind::File, MediaKind::Video, MediaKind::Voice] {
            assert!(matches!(
                resolve_item_key(kind, Some(HEX), None)
                    .as_ref()
                    .map_err(Error::kind),
                Err(ErrorKind::MissingKey { .. })
            ));
            let (k, enc) = resolve_item_key(kind, None, Some(&key().to_base64_hex()))
                .unwrap()
                .unwrap();
            assert_eq!((k, enc), (key(), KeyEncoding::Base64Hex));
        }
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(AesKey::random(), AesKey::random());
    }
}
