//! Media kinds and content-type inference.
//!
//! The protocol routes an upload by MIME type: `image/*` is an image,
//! `video/*` a video, everything else a file (ILINK.md §7.2 step 4).
//! [`infer_kind`] finds the MIME type from, in order, an explicit content
//! type, the magic bytes at the start of the data (the `infer` crate, plus
//! SILK voice), and the file name's extension (`mime_guess`).

use std::fmt;

/// The kind of a media item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// A picture (item type 2, upload media type 1).
    Image,
    /// A video (item type 5, upload media type 2).
    Video,
    /// Any other file (item type 4, upload media type 3).
    File,
    /// A voice message (item type 3, upload media type 4). Inbound voice is
    /// SILK; outbound voice bubbles are accepted but not shown by WeChat
    /// (ILINK.md §7.6), so inference never picks this kind.
    Voice,
}

impl MediaKind {
    /// The lower-case name: `image`, `video`, `file` or `voice`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::File => "file",
            Self::Voice => "voice",
        }
    }

    /// The kind a MIME type is uploaded as: `image/*` → image, `video/*` →
    /// video, anything else → file.
    pub fn from_mime(mime: &str) -> Self {
        let top = mime.split('/').next().unwrap_or("").trim();
        if top.eq_ignore_ascii_case("image") {
            Self::Image
        } else if top.eq_ignore_ascii_case("video") {
            Self::Video
        } else {
            Self::File
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of [`infer_kind`]: how to upload the data and its MIME type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// The upload kind derived from `mime`.
    pub kind: MediaKind,
    /// The MIME type, without parameters, lower-case.
    pub mime: String,
}

/// The MIME type used when nothing else is known.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The MIME type reported for SILK voice data.
pub const SILK_MIME: &str = "audio/silk";

/// How many leading bytes [`infer_kind`] looks at; passing more is harmless.
pub const SNIFF_LEN: usize = 8192;

/// Whether `head` starts like SILK v3 audio, with or without the 0x02 byte
/// that Tencent's variant puts in front (ILINK.md §7.6).
pub fn is_silk(head: &[u8]) -> bool {
    const MAGIC: &[u8] = b"#!SILK_V3";
    head.starts_with(MAGIC) || (head.first() == Some(&0x02) && head[1..].starts_with(MAGIC))
}

/// Detects a MIME type from the magic bytes alone; `None` when the bytes
/// are not recognised.
pub fn sniff_mime(head: &[u8]) -> Option<String> {
    if is_silk(head) {
        return Some(SILK_MIME.to_owned());
    }
    infer::get(head).map(|t| t.mime_type().to_owned())
}

/// Strips parameters from a content type and lower-cases it; `None` when it
/// is empty or the generic `application/octet-stream`.
fn explicit_mime(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    if ct.is_empty() || ct == OCTET_STREAM || !ct.contains('/') {
        None
    } else {
        Some(ct)
    }
}

/// Infers the kind and MIME type of some media.
///
/// In order: `content_type` unless absent or `application/octet-stream`;
/// then the magic bytes of `head` (the first bytes of the data; see
/// [`SNIFF_LEN`]); then the extension of `file_name`; else
/// `application/octet-stream`. The kind follows from the MIME type as
/// [`MediaKind::from_mime`] says.
///
/// ```
/// use wxlink_media::{MediaKind, infer_kind};
///
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
/// let got = infer_kind(None, png, Some("picture.bin"));
/// assert_eq!((got.kind, got.mime.as_str()), (MediaKind::Image, "image/png"));
///
/// let got = infer_kind(None, b"plain words", Some("notes.txt"));
/// assert_eq!((got.kind, got.mime.as_str()), (MediaKind::File, "text/plain"));
/// ```
pub fn infer_kind(content_type: Option<&str>, head: &[u8], file_name: Option<&str>) -> Inferred {
    let mime = explicit_mime(content_type)
        .or_else(|| sniff_mime(head))
        .or_else(|| {
            file_name
                .and_then(|name| mime_guess::from_path(name).first())
                .map(|m| m.essence_str().to_owned())
        })
        .unwrap_or_else(|| OCTET_STREAM.to_owned());
    Inferred {
        kind: MediaKind::from_mime(&mime),
        mime,
    }
}

/// The extension a MIME type is usually saved with (without the dot), for
/// naming downloaded media; `None` when unknown.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    if mime.eq_ignore_ascii_case(SILK_MIME) {
        return Some("silk");
    }
    let preferred = match mime {
        "image/jpeg" => Some("jpg"),
        "image/png" => Some("png"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        "video/mp4" => Some("mp4"),
        "audio/mpeg" => Some("mp3"),
        "application/pdf" => Some("pdf"),
        "text/plain" => Some("txt"),
        _ => None,
    };
    preferred.or_else(|| {
        mime_guess::get_mime_extensions_str(mime).and_then(|exts| exts.first().copied())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&[0, 0, 0, 13]);
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
        v
    }

    fn jpeg() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        v.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        v
    }

    fn gif() -> Vec<u8> {
        let mut v = b"GIF89a".to_vec();
        v.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]);
        v
    }

    fn webp() -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&26u32.to_le_bytes());
        v.extend_from_slice(b"WEBPVP8L");
        v.extend_from_slice(&[0x0d, 0, 0, 0, 0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11]);
        v
    }

    fn mp4() -> Vec<u8> {
        let mut v = 24u32.to_be_bytes().to_vec();
        v.extend_from_slice(b"ftypisom");
        v.extend_from_slice(&512u32.to_be_bytes());
        v.extend_from_slice(b"isomiso2");
        v
    }

    fn pdf() -> Vec<u8> {
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec()
    }

    fn zip() -> Vec<u8> {
        // An empty ZIP archive: only the end-of-central-directory record.
        let mut v = b"PK\x05\x06".to_vec();
        v.extend_from_slice(&[0; 18]);
        v
    }

    fn zip_with_entry() -> Vec<u8> {
        let mut v = b"PK\x03\x04".to_vec();
        v.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0; 12]);
        v.extend_from_slice(&[5, 0, 0, 0]);
        v.extend_from_slice(b"a.txt");
        v
    }

    fn mp3() -> Vec<u8> {
        let mut v = b"ID3\x03\x00\x00\x00\x00\x00\x0a".to_vec();
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        v
    }

    #[test]
    fn magic_bytes_decide_when_no_content_type_is_given() {
        let cases: [(Vec<u8>, &str, MediaKind); 8] = [
            (png(), "image/png", MediaKind::Image),
            (jpeg(), "image/jpeg", MediaKind::Image),
            (gif(), "image/gif", MediaKind::Image),
            (webp(), "image/webp", MediaKind::Image),
            (mp4(), "video/mp4", MediaKind::Video),
            (pdf(), "application/pdf", MediaKind::File),
            (zip_with_entry(), "application/zip", MediaKind::File),
            (mp3(), "audio/mpeg", MediaKind::File),
        ];
        for (bytes, mime, kind) in cases {
            // A misleading extension must not win over the magic bytes.
            let got = infer_kind(None, &bytes, Some("upload.bin"));
            assert_eq!(got.mime, mime);
            assert_eq!(got.kind, kind, "{mime}");
        }
        assert_eq!(infer_kind(None, &zip(), None).mime, "application/zip");
    }

    #[test]
    fn plain_text_falls_back_to_the_extension() {
        let got = infer_kind(None, b"hello, this is plain text\n", Some("readme.txt"));
        assert_eq!(got.mime, "text/plain");
        assert_eq!(got.kind, MediaKind::File);
        let got = infer_kind(None, b"\0\0\0 no magic", Some("clip.MP4"));
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::Video, "video/mp4")
        );
    }

    #[test]
    fn unknown_data_is_an_octet_stream_file() {
        let got = infer_kind(None, b"????", None);
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::File, OCTET_STREAM)
        );
        let got = infer_kind(Some(OCTET_STREAM), b"", Some("noext"));
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::File, OCTET_STREAM)
        );
    }

    #[test]
    fn explicit_content_type_wins_except_octet_stream() {
        let got = infer_kind(Some("Video/QuickTime; codecs=x"), &png(), Some("a.png"));
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::Video, "video/quicktime")
        );
        let got = infer_kind(Some("application/octet-stream"), &png(), None);
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::Image, "image/png")
        );
    }

    #[test]
    fn silk_voice_is_detected_with_and_without_the_tencent_prefix() {
        for head in [&b"#!SILK_V3\x0c\x00"[..], &b"\x02#!SILK_V3\x0c\x00"[..]] {
            let got = infer_kind(None, head, Some("voice.bin"));
            assert_eq!(got.mime, SILK_MIME);
            assert_eq!(got.kind, MediaKind::File);
        }
        assert!(!is_silk(b"\x03#!SILK_V3"));
    }

    #[test]
    fn extensions_for_common_types() {
        assert_eq!(extension_for_mime("image/jpeg"), Some("jpg"));
        assert_eq!(extension_for_mime(SILK_MIME), Some("silk"));
        assert_eq!(extension_for_mime("application/x-nothing-known"), None);
    }
}
