//! Media kinds and content-type inference.
//!
//! The protocol routes an upload by MIME type: images go as image items, videos
//! as video items, everything else as a file (docs/protocol.md, "Media
//! upload"). [`infer_kind`] finds the MIME type from, in order, an explicit
//! content type, the magic bytes at the start of the data (the `infer` crate,
//! plus SILK voice and the Matroska/WebM DocType), and the file name's
//! extension (`mime_guess`).
//!
//! # Which formats go inline
//!
//! An image or video item is only useful if the recipient's WeChat client
//! can show it; otherwise the user sees a grey box or a video that will not
//! play, and cannot even save the original. A file item always arrives
//! intact. No protocol source lists the formats WeChat renders, so
//! [`MediaKind::from_mime`] sends inline only the formats WeChat clients are
//! known to show, and everything else as a file:
//!
//! | Kind | MIME types |
//! |------|------------|
//! | image | `image/jpeg`, `image/png`, `image/gif`, `image/webp`, `image/bmp` |
//! | video | `video/mp4`, `video/x-m4v`, `video/quicktime` |
//! | file | everything else: HEIC/HEIF, TIFF, SVG, AVIF, PSD, ICO, WebM, Matroska, AVI, WMV, FLV, MPEG, all audio (MP3, M4A, OGG, SILK), PDF, ZIP, text |
//!
//! The image list matches the official client's extension table
//! (`src/media/mime.ts`), which maps these five
//! image types and no others to `image/*`; HEIC and TIFF are not in it, so
//! the official client sends them as files too. That table does map
//! `.webm`, `.mkv` and `.avi` to `video/*`, but no source shows WeChat
//! playing those containers inline, so they go as files here: the safe
//! choice, since the recipient can still save and open a file. MP4 and
//! QuickTime (what phones record) go as video. A caller who knows better
//! can force a kind with `UploadSource::kind`.

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
    /// (docs/protocol.md, "Voice"), so inference never picks this kind.
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

    /// The kind a MIME type is uploaded as: an image or video only for the
    /// formats WeChat shows inline (see the [module docs](self)), a file for
    /// everything else. Parameters and case are ignored.
    pub fn from_mime(mime: &str) -> Self {
        let essence = mime.split(';').next().unwrap_or("").trim();
        let is = |list: &[&str]| list.iter().any(|m| essence.eq_ignore_ascii_case(m));
        if is(INLINE_IMAGE_MIMES) {
            Self::Image
        } else if is(INLINE_VIDEO_MIMES) {
            Self::Video
        } else {
            Self::File
        }
    }
}

/// The image MIME types sent as image items; `image/jpg` and `image/pjpeg`
/// are non-standard spellings of JPEG that some servers use.
const INLINE_IMAGE_MIMES: &[&str] = &[
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
];

/// The video MIME types sent as video items.
const INLINE_VIDEO_MIMES: &[&str] = &["video/mp4", "video/x-m4v", "video/quicktime"];

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

/// Whether `head` starts like SILK v3 audio, with or without the 0x02 byte that
/// Tencent's variant puts in front (docs/protocol.md, "Voice").
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
    if let Some(mime) = ebml_doc_type(head) {
        return Some(mime.to_owned());
    }
    infer::get(head).map(|t| t.mime_type().to_owned())
}

/// Tells Matroska from WebM by the EBML header's DocType element.
///
/// `infer` finds the `matroska` DocType only at two fixed offsets and calls
/// every other EBML file WebM, so an MKV whose header encodes its size in
/// one byte (valid, and the compact form) came out as `video/webm`. The
/// DocType element (ID `0x42 0x82`, a one-byte size, then the name) sits
/// in the first few dozen bytes of both.
fn ebml_doc_type(head: &[u8]) -> Option<&'static str> {
    const EBML_MAGIC: &[u8] = &[0x1A, 0x45, 0xDF, 0xA3];
    if !head.starts_with(EBML_MAGIC) {
        return None;
    }
    let window = &head[..head.len().min(64)];
    window.windows(3).enumerate().find_map(|(at, w)| {
        if w[..2] != [0x42, 0x82] || w[2] & 0x80 == 0 {
            return None;
        }
        let len = usize::from(w[2] & 0x7F);
        let name = window.get(at + 3..at + 3 + len)?;
        match name {
            b"matroska" => Some("video/x-matroska"),
            b"webm" => Some("video/webm"),
            _ => None,
        }
    })
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

    /// An ISO-BMFF `ftyp` box with this major brand and compatible brands,
    /// as MP4, QuickTime, M4A and HEIF files start.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = u32::try_from(16 + 4 * compatible.len()).unwrap();
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&0x200u32.to_be_bytes());
        for brand in compatible {
            v.extend_from_slice(*brand);
        }
        // The next box header, so the data does not end at the ftyp box.
        v.extend_from_slice(&8u32.to_be_bytes());
        v.extend_from_slice(b"free");
        v
    }

    fn mov() -> Vec<u8> {
        ftyp(b"qt  ", &[b"qt  "])
    }

    /// An older QuickTime file with no `ftyp` box: it starts with `moov`.
    fn mov_without_ftyp() -> Vec<u8> {
        let mut v = 0x6Cu32.to_be_bytes().to_vec();
        v.extend_from_slice(b"moov");
        v.extend_from_slice(&0x6Cu32.to_be_bytes());
        v.extend_from_slice(b"mvhd");
        v.extend_from_slice(&[0; 12]);
        v
    }

    fn m4a() -> Vec<u8> {
        ftyp(b"M4A ", &[b"M4A ", b"mp42", b"isom"])
    }

    fn heic() -> Vec<u8> {
        // What an iPhone writes.
        ftyp(b"heic", &[b"mif1", b"heic"])
    }

    fn heif() -> Vec<u8> {
        // A generic HEIF still image holding HEVC.
        ftyp(b"mif1", &[b"mif1", b"heic", b"miaf"])
    }

    /// An EBML header with the given DocType. With `long_size` the header
    /// size is written in eight bytes (as ffmpeg does), else in one.
    fn ebml(doc_type: &[u8], long_size: bool) -> Vec<u8> {
        let mut body = vec![
            0x42, 0x86, 0x81, 0x01, // EBMLVersion 1
            0x42, 0xF7, 0x81, 0x01, // EBMLReadVersion 1
            0x42, 0xF2, 0x81, 0x04, // EBMLMaxIDLength 4
            0x42, 0xF3, 0x81, 0x08, // EBMLMaxSizeLength 8
            0x42, 0x82, // DocType
        ];
        body.push(0x80 | u8::try_from(doc_type.len()).unwrap());
        body.extend_from_slice(doc_type);
        body.extend_from_slice(&[0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02]);
        let mut v = vec![0x1A, 0x45, 0xDF, 0xA3];
        let size = u8::try_from(body.len()).unwrap();
        if long_size {
            v.extend_from_slice(&[0x01, 0, 0, 0, 0, 0, 0, size]);
        } else {
            v.push(0x80 | size);
        }
        v.extend_from_slice(&body);
        // The Segment element that follows, with an unknown size.
        v.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF]);
        v
    }

    fn avi() -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&4096u32.to_le_bytes());
        v.extend_from_slice(b"AVI LIST");
        v.extend_from_slice(&192u32.to_le_bytes());
        v.extend_from_slice(b"hdrlavih");
        v
    }

    fn bmp() -> Vec<u8> {
        // A 1x1 24-bit bitmap: file header, then the BITMAPINFOHEADER.
        let mut v = b"BM".to_vec();
        v.extend_from_slice(&58u32.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&54u32.to_le_bytes());
        v.extend_from_slice(&40u32.to_le_bytes());
        v.extend_from_slice(&1i32.to_le_bytes());
        v.extend_from_slice(&1i32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&24u16.to_le_bytes());
        v.extend_from_slice(&[0; 24]);
        v.extend_from_slice(&[0xFF, 0, 0, 0]);
        v
    }

    fn tiff_little_endian() -> Vec<u8> {
        // Header, then the first IFD at offset 8 with 14 entries.
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&14u16.to_le_bytes());
        v.extend_from_slice(&[0x00, 0x01, 0x04, 0x00]);
        v
    }

    fn tiff_big_endian() -> Vec<u8> {
        let mut v = b"MM\0*".to_vec();
        v.extend_from_slice(&8u32.to_be_bytes());
        v.extend_from_slice(&14u16.to_be_bytes());
        v.extend_from_slice(&[0x01, 0x00, 0x00, 0x04]);
        v
    }

    fn ogg_vorbis() -> Vec<u8> {
        // The first page header (27 bytes plus a one-entry segment table)
        // and the start of the Vorbis identification packet.
        let mut v = b"OggS\0\x02".to_vec();
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&0x1234u32.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.push(1);
        v.push(30);
        v.extend_from_slice(b"\x01vorbis");
        v.extend_from_slice(&[0; 23]);
        v
    }

    fn mp3_frame_only() -> Vec<u8> {
        // An MPEG-1 Layer III frame header with no ID3 tag in front.
        let mut v = vec![0xFF, 0xFB, 0x90, 0x64];
        v.extend_from_slice(&[0; 32]);
        v
    }

    /// One format: its bytes, the MIME type they must be sniffed as, and
    /// the kind that follows.
    struct Case {
        name: &'static str,
        bytes: Vec<u8>,
        mime: &'static str,
        kind: MediaKind,
    }

    fn case(name: &'static str, bytes: Vec<u8>, mime: &'static str, kind: MediaKind) -> Case {
        Case {
            name,
            bytes,
            mime,
            kind,
        }
    }

    fn magic_cases() -> Vec<Case> {
        use MediaKind::{File, Image, Video};
        vec![
            case("png", png(), "image/png", Image),
            case("jpeg", jpeg(), "image/jpeg", Image),
            case("gif", gif(), "image/gif", Image),
            case("webp", webp(), "image/webp", Image),
            case("bmp", bmp(), "image/bmp", Image),
            // WeChat is not known to render these inline: sent as files.
            case("heic", heic(), "image/heif", File),
            case("heif", heif(), "image/heif", File),
            case("tiff le", tiff_little_endian(), "image/tiff", File),
            case("tiff be", tiff_big_endian(), "image/tiff", File),
            case("mp4", mp4(), "video/mp4", Video),
            case("mov", mov(), "video/quicktime", Video),
            case("mov moov", mov_without_ftyp(), "video/quicktime", Video),
            case("webm", ebml(b"webm", true), "video/webm", File),
            case("webm short", ebml(b"webm", false), "video/webm", File),
            case("mkv", ebml(b"matroska", true), "video/x-matroska", File),
            case(
                "mkv short",
                ebml(b"matroska", false),
                "video/x-matroska",
                File,
            ),
            case("avi", avi(), "video/x-msvideo", File),
            case("pdf", pdf(), "application/pdf", File),
            case("zip", zip_with_entry(), "application/zip", File),
            case("empty zip", zip(), "application/zip", File),
            case("mp3 id3", mp3(), "audio/mpeg", File),
            case("mp3 frame", mp3_frame_only(), "audio/mpeg", File),
            case("m4a", m4a(), "audio/m4a", File),
            case("ogg", ogg_vorbis(), "audio/ogg", File),
        ]
    }

    #[test]
    fn magic_bytes_decide_the_kind_and_content_type() {
        for c in magic_cases() {
            let got = infer_kind(None, &c.bytes, None);
            assert_eq!(
                (got.kind, got.mime.as_str()),
                (c.kind, c.mime),
                "{}",
                c.name
            );
            assert_eq!(sniff_mime(&c.bytes).as_deref(), Some(c.mime), "{}", c.name);
        }
    }

    #[test]
    fn magic_bytes_win_over_a_disagreeing_extension() {
        // Each name's extension alone would give a different MIME type
        // (and, for most formats, a different kind).
        let names = ["photo.jpg", "clip.mp4", "report.pdf", "notes.TXT", "a.heic"];
        for c in magic_cases() {
            for name in names {
                let got = infer_kind(None, &c.bytes, Some(name));
                assert_eq!(
                    (got.kind, got.mime.as_str()),
                    (c.kind, c.mime),
                    "{} named {name}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn an_explicit_content_type_wins_over_magic_and_extension() {
        for c in magic_cases() {
            // Pick a content type of another kind than the bytes.
            let (ct, want_kind, want_mime) = match c.kind {
                MediaKind::Image => ("video/mp4", MediaKind::Video, "video/mp4"),
                _ => ("Image/PNG; q=1", MediaKind::Image, "image/png"),
            };
            let got = infer_kind(Some(ct), &c.bytes, Some("upload.pdf"));
            assert_eq!(
                (got.kind, got.mime.as_str()),
                (want_kind, want_mime),
                "{}",
                c.name
            );
            let got = infer_kind(Some("text/plain"), &c.bytes, Some("photo.jpg"));
            assert_eq!(
                (got.kind, got.mime.as_str()),
                (MediaKind::File, "text/plain"),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn only_formats_wechat_shows_inline_are_images_or_videos() {
        for mime in [
            "image/jpeg",
            "image/jpg",
            "IMAGE/PNG",
            "image/gif",
            "image/webp",
            "image/bmp",
        ] {
            assert_eq!(MediaKind::from_mime(mime), MediaKind::Image, "{mime}");
        }
        for mime in ["video/mp4", "video/quicktime; codecs=avc1", "video/x-m4v"] {
            assert_eq!(MediaKind::from_mime(mime), MediaKind::Video, "{mime}");
        }
        for mime in [
            "image/heic",
            "image/heif",
            "image/tiff",
            "image/svg+xml",
            "image/avif",
            "video/webm",
            "video/x-matroska",
            "video/x-msvideo",
            "audio/mpeg",
            SILK_MIME,
            "text/plain",
            "",
            "image",
        ] {
            assert_eq!(MediaKind::from_mime(mime), MediaKind::File, "{mime}");
        }
    }

    #[test]
    fn extensions_alone_follow_the_same_kinds() {
        // No magic in the bytes, so the extension decides the MIME type.
        let no_magic = b"\0\0\0 no magic";
        for (name, kind) in [
            ("a.heic", MediaKind::File),
            ("a.tif", MediaKind::File),
            ("a.bmp", MediaKind::Image),
            ("a.gif", MediaKind::Image),
            ("a.webp", MediaKind::Image),
            ("a.mov", MediaKind::Video),
            ("a.webm", MediaKind::File),
            ("a.mkv", MediaKind::File),
            ("a.avi", MediaKind::File),
            ("a.m4a", MediaKind::File),
            ("a.ogg", MediaKind::File),
            ("a.mp3", MediaKind::File),
        ] {
            let got = infer_kind(None, no_magic, Some(name));
            assert_ne!(got.mime, OCTET_STREAM, "{name}");
            assert_eq!(got.kind, kind, "{name} as {}", got.mime);
        }
    }

    #[test]
    fn plain_text_falls_back_to_the_extension() {
        let text = b"hello, this is plain text\n";
        let got = infer_kind(None, text, Some("readme.txt"));
        assert_eq!(got.mime, "text/plain");
        assert_eq!(got.kind, MediaKind::File);
        // Text has no magic, so with no name nothing is known about it.
        let got = infer_kind(None, text, None);
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::File, OCTET_STREAM)
        );
        let got = infer_kind(Some("text/plain; charset=utf-8"), text, Some("a.png"));
        assert_eq!(
            (got.kind, got.mime.as_str()),
            (MediaKind::File, "text/plain")
        );
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
        // Bytes no matcher knows, under a name with no extension.
        let got = infer_kind(None, &[0x13, 0x37, 0xC0, 0xDE, 0, 1, 2, 3], Some("blob"));
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
