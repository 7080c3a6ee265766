//! Outbound message items built from an uploaded file.
//!
//! [`UploadedMedia`] is everything an upload produces. The builders here turn
//! it into the `MessageItem` that `sendmessage` carries, filled as the official
//! client fills it (docs/protocol.md, "Media upload"): `media` holds the
//! download parameter, the key as base64 of its hex text and `encrypt_type` 1;
//! an image carries `mid_size` and a video `video_size` (both the ciphertext
//! size); a file carries `file_name` and `len` (the plaintext size as a decimal
//! string). Beyond the official client, a file also carries `md5` and a video
//! `video_md5` (the plaintext MD5), which receivers can check.

use wxlink_proto::{
    AesKeyText, CdnMedia, EncryptType, FileItem, ImageItem, MessageItem, MessageItemType,
    UploadMediaType, VideoItem, VoiceEncodeType, VoiceItem,
};

use crate::crypto::ciphertext_len;
use crate::key::AesKey;
use crate::kind::{MediaKind, extension_for_mime};

/// The result of an upload: what the CDN stored and everything needed to
/// build the outbound item.
///
/// `Debug` never shows the key (see [`AesKey`]), the `filekey` or the
/// download parameter, which together let anyone fetch and decrypt the file.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedMedia {
    /// The `filekey` sent to `getuploadurl` (32 lower-case hex characters).
    pub filekey: String,
    /// The download parameter, from the CDN's `x-encrypted-param` header.
    pub download_param: String,
    /// The key the file was encrypted with.
    pub aes_key: AesKey,
    /// The plaintext size in bytes.
    pub rawsize: u64,
    /// The ciphertext size in bytes (`filesize`).
    pub ciphertext_size: u64,
    /// The plaintext MD5, 32 lower-case hex characters.
    pub md5: String,
    /// The file name shown to the receiver, when known.
    pub file_name: Option<String>,
    /// How the file was uploaded.
    pub kind: MediaKind,
    /// The MIME type of the plaintext.
    pub mime: String,
}

impl std::fmt::Debug for UploadedMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedMedia")
            .field("filekey", &"** redacted **")
            .field("download_param", &"** redacted **")
            .field("aes_key", &self.aes_key)
            .field("rawsize", &self.rawsize)
            .field("ciphertext_size", &self.ciphertext_size)
            .field("md5", &self.md5)
            .field("file_name", &self.file_name)
            .field("kind", &self.kind)
            .field("mime", &self.mime)
            .finish()
    }
}

impl UploadedMedia {
    /// Describes an upload; the ciphertext size follows from `rawsize`.
    pub fn new(
        filekey: impl Into<String>,
        download_param: impl Into<String>,
        aes_key: AesKey,
        rawsize: u64,
        md5: impl Into<String>,
        kind: MediaKind,
        mime: impl Into<String>,
    ) -> Self {
        Self {
            filekey: filekey.into(),
            download_param: download_param.into(),
            aes_key,
            rawsize,
            ciphertext_size: ciphertext_len(rawsize),
            md5: md5.into(),
            file_name: None,
            kind,
            mime: mime.into(),
        }
    }

    /// Sets the file name shown to the receiver.
    #[must_use]
    pub fn with_file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }

    /// The file name for a file item: the given name, else `file.<ext>`
    /// from the MIME type, else `file`.
    pub fn display_name(&self) -> String {
        match &self.file_name {
            Some(name) if !name.trim().is_empty() => name.clone(),
            _ => match extension_for_mime(&self.mime) {
                Some(ext) => format!("file.{ext}"),
                None => "file".to_owned(),
            },
        }
    }

    /// The outbound item for this upload's kind (see [`media_item`]).
    pub fn to_message_item(&self) -> MessageItem {
        media_item(self)
    }
}

impl MediaKind {
    /// The `getuploadurl.media_type` of this kind.
    pub const fn upload_media_type(self) -> UploadMediaType {
        match self {
            Self::Image => UploadMediaType::Image,
            Self::Video => UploadMediaType::Video,
            Self::File => UploadMediaType::File,
            Self::Voice => UploadMediaType::Voice,
        }
    }

    /// The `MessageItem.type` of this kind.
    pub const fn item_type(self) -> MessageItemType {
        match self {
            Self::Image => MessageItemType::Image,
            Self::Video => MessageItemType::Video,
            Self::File => MessageItemType::File,
            Self::Voice => MessageItemType::Voice,
        }
    }

    /// The kind of a media item type; `None` for text and unknown types.
    pub const fn from_item_type(item_type: MessageItemType) -> Option<Self> {
        match item_type {
            MessageItemType::Image => Some(Self::Image),
            MessageItemType::Video => Some(Self::Video),
            MessageItemType::File => Some(Self::File),
            MessageItemType::Voice => Some(Self::Voice),
            _ => None,
        }
    }
}

/// The `media` reference of an outbound item: the download parameter, the
/// key as base64 of its 32 hex characters, and `encrypt_type` 1.
pub fn cdn_media(up: &UploadedMedia) -> CdnMedia {
    CdnMedia {
        encrypt_query_param: Some(up.download_param.clone()),
        aes_key: Some(AesKeyText::new(up.aes_key.to_base64_hex())),
        encrypt_type: Some(EncryptType::Packed),
        full_url: None,
    }
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An image item (type 2) with `mid_size` = the ciphertext size.
pub fn image_item(up: &UploadedMedia) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Image),
        image_item: Some(ImageItem {
            media: Some(cdn_media(up)),
            mid_size: Some(size_i64(up.ciphertext_size)),
            ..ImageItem::default()
        }),
        ..MessageItem::default()
    }
}

/// A video item (type 5) with `video_size` = the ciphertext size and
/// `video_md5` = the plaintext MD5.
pub fn video_item(up: &UploadedMedia) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Video),
        video_item: Some(VideoItem {
            media: Some(cdn_media(up)),
            video_size: Some(size_i64(up.ciphertext_size)),
            video_md5: Some(up.md5.clone()),
            ..VideoItem::default()
        }),
        ..MessageItem::default()
    }
}

/// A file item (type 4) with `file_name`, `len` = the plaintext size as a
/// decimal string, and `md5` = the plaintext MD5.
pub fn file_item(up: &UploadedMedia) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::File),
        file_item: Some(FileItem {
            media: Some(cdn_media(up)),
            file_name: Some(up.display_name()),
            md5: Some(up.md5.clone()),
            len: Some(up.rawsize.to_string()),
            ..FileItem::default()
        }),
        ..MessageItem::default()
    }
}

/// The audio parameters of an outbound voice item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VoiceMeta {
    /// The audio encoding (`encode_type`).
    pub encode_type: VoiceEncodeType,
    /// The sample rate in Hz.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u32,
    /// The duration in milliseconds, when known.
    pub playtime_ms: Option<u64>,
}

impl Default for VoiceMeta {
    /// SILK at 24 kHz, 16 bits, duration unknown: what WeChat records.
    fn default() -> Self {
        Self {
            encode_type: VoiceEncodeType::Silk,
            sample_rate: 24_000,
            bits_per_sample: 16,
            playtime_ms: None,
        }
    }
}

impl VoiceMeta {
    /// Audio parameters with the given encoding, rate and duration.
    pub fn new(encode_type: VoiceEncodeType, sample_rate: u32, playtime_ms: Option<u64>) -> Self {
        Self {
            encode_type,
            sample_rate,
            bits_per_sample: 16,
            playtime_ms,
        }
    }
}

/// A voice item (type 3).
///
/// The API accepts outbound voice, but WeChat is reported not to show it
/// (docs/protocol.md, "Voice"); sending audio as a file is the reliable choice.
pub fn voice_item(up: &UploadedMedia, meta: VoiceMeta) -> MessageItem {
    MessageItem {
        item_type: Some(MessageItemType::Voice),
        voice_item: Some(VoiceItem {
            media: Some(cdn_media(up)),
            encode_type: Some(meta.encode_type),
            bits_per_sample: Some(i64::from(meta.bits_per_sample)),
            sample_rate: Some(i64::from(meta.sample_rate)),
            playtime: meta.playtime_ms.map(size_i64),
            ..VoiceItem::default()
        }),
        ..MessageItem::default()
    }
}

/// The item for `up.kind`: [`image_item`], [`video_item`], [`file_item`] or
/// [`voice_item`] with [`VoiceMeta::default`].
pub fn media_item(up: &UploadedMedia) -> MessageItem {
    match up.kind {
        MediaKind::Image => image_item(up),
        MediaKind::Video => video_item(up),
        MediaKind::File => file_item(up),
        MediaKind::Voice => voice_item(up, VoiceMeta::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploaded(kind: MediaKind, rawsize: u64) -> UploadedMedia {
        UploadedMedia::new(
            "6e1f0d9c8b7a65544332211000ffeedd",
            "EXAMPLEeqp",
            AesKey::from_hex("9a8b7c6d5e4f30211203f4e5d6c7b8a9").unwrap(),
            rawsize,
            "0cc175b9c0f1b6a831c399e269772661",
            kind,
            "application/pdf",
        )
    }

    fn json(item: &MessageItem) -> serde_json::Value {
        serde_json::to_value(item).unwrap()
    }

    #[test]
    fn image_item_matches_the_official_request() {
        let got = json(&image_item(&uploaded(MediaKind::Image, 48000)));
        let want = serde_json::json!({
            "type": 2,
            "image_item": {
                "media": {
                    "encrypt_query_param": "EXAMPLEeqp",
                    "aes_key": "OWE4YjdjNmQ1ZTRmMzAyMTEyMDNmNGU1ZDZjN2I4YTk=",
                    "encrypt_type": 1
                },
                "mid_size": 48016
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn video_item_has_ciphertext_size_and_md5() {
        let got = json(&video_item(&uploaded(MediaKind::Video, 2_097_152)));
        assert_eq!(got["type"], 5);
        assert_eq!(got["video_item"]["video_size"], 2_097_168);
        assert_eq!(
            got["video_item"]["video_md5"],
            "0cc175b9c0f1b6a831c399e269772661"
        );
        assert_eq!(got["video_item"]["media"]["encrypt_type"], 1);
    }

    #[test]
    fn file_item_has_name_plaintext_len_string_and_md5() {
        let up = uploaded(MediaKind::File, 48000).with_file_name("summary.pdf");
        let got = json(&media_item(&up));
        let want = serde_json::json!({
            "type": 4,
            "file_item": {
                "media": {
                    "encrypt_query_param": "EXAMPLEeqp",
                    "aes_key": "OWE4YjdjNmQ1ZTRmMzAyMTEyMDNmNGU1ZDZjN2I4YTk=",
                    "encrypt_type": 1
                },
                "file_name": "summary.pdf",
                "md5": "0cc175b9c0f1b6a831c399e269772661",
                "len": "48000"
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn nameless_file_gets_a_name_from_its_type() {
        let got = json(&file_item(&uploaded(MediaKind::File, 1)));
        assert_eq!(got["file_item"]["file_name"], "file.pdf");
    }

    #[test]
    fn voice_item_carries_audio_parameters() {
        let meta = VoiceMeta::new(VoiceEncodeType::Silk, 24_000, Some(3240));
        let got = json(&voice_item(&uploaded(MediaKind::Voice, 100), meta));
        assert_eq!(got["type"], 3);
        let v = &got["voice_item"];
        assert_eq!(v["encode_type"], 6);
        assert_eq!(v["sample_rate"], 24_000);
        assert_eq!(v["bits_per_sample"], 16);
        assert_eq!(v["playtime"], 3240);
        assert_eq!(v["media"]["encrypt_query_param"], "EXAMPLEeqp");
    }

    #[test]
    fn kinds_map_to_both_protocol_enums() {
        assert_eq!(MediaKind::Image.upload_media_type().to_wire(), 1);
        assert_eq!(MediaKind::Image.item_type().to_wire(), 2);
        assert_eq!(MediaKind::Video.upload_media_type().to_wire(), 2);
        assert_eq!(MediaKind::Video.item_type().to_wire(), 5);
        assert_eq!(MediaKind::File.upload_media_type().to_wire(), 3);
        assert_eq!(MediaKind::File.item_type().to_wire(), 4);
        assert_eq!(MediaKind::Voice.upload_media_type().to_wire(), 4);
        assert_eq!(MediaKind::Voice.item_type().to_wire(), 3);
        for kind in [
            MediaKind::Image,
            MediaKind::Video,
            MediaKind::File,
            MediaKind::Voice,
        ] {
            assert_eq!(MediaKind::from_item_type(kind.item_type()), Some(kind));
        }
        assert_eq!(MediaKind::from_item_type(MessageItemType::Text), None);
    }

    #[test]
    fn debug_of_an_upload_hides_the_key() {
        let dbg = format!("{:?}", uploaded(MediaKind::File, 1));
        assert!(dbg.contains("** redacted **"));
        assert!(!dbg.contains("9a8b7c6d"));
    }
}
