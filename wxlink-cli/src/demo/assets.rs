//! The media the demo's scripted user sends: a small PNG and a text file,
//! both generated in memory so that the demo needs no files on disk.
//!
//! The PNG encoder is the smallest valid one: 8-bit RGB, one filter byte
//! per row, and the image data in uncompressed ("stored") deflate blocks
//! inside a zlib stream. Every viewer accepts it, and it needs no
//! compression library.

/// A `width` × `height` RGB PNG showing a colour gradient.
pub fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    // The raw scanlines: filter type 0 (none), then RGB triples.
    let mut raw = Vec::with_capacity((height as usize) * (1 + 3 * width as usize));
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            let r = (x * 255 / width.max(1)) as u8;
            let g = (y * 255 / height.max(1)) as u8;
            let b = 0xC0u8.wrapping_sub(r / 2);
            raw.extend_from_slice(&[r, g, b]);
        }
    }

    let mut png = Vec::new();
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// The text file the demo user sends.
pub fn notes_file() -> (String, Vec<u8>) {
    let mut body = String::from("WxLink demo notes\n=================\n\n");
    for i in 1..=40 {
        body.push_str(&format!(
            "{i:02}. Media travels AES-128-ECB encrypted through the CDN; this line is padding.\n"
        ));
    }
    ("wxlink-demo-notes.txt".to_owned(), body.into_bytes())
}

/// A text long enough to need several messages at the default 4 000
/// characters per message.
pub fn long_text() -> String {
    let mut text = String::new();
    let mut n = 1;
    while text.chars().count() < 9_000 {
        text.push_str(&format!(
            "Paragraph {n}: the bot splits long replies on paragraph and line breaks, never \
             inside a character, so that each message stays within the server's limit. 你好，微信！\n\n"
        ));
        n += 1;
    }
    text
}

/// Appends one PNG chunk: length, type, data, CRC of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc32::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finish().to_be_bytes());
}

/// Wraps `data` in a zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (check bits, no dictionary).
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        out.push(u8::from(last));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// The Adler-32 checksum zlib puts after the deflate data.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// The CRC-32 (IEEE, reflected) that PNG chunks carry.
struct Crc32(u32);

impl Crc32 {
    fn new() -> Self {
        Self(0xFFFF_FFFF)
    }

    fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.0 ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_and_adler32_match_known_values() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn png_is_recognised_as_an_image() {
        let png = gradient_png(48, 32);
        let inferred = wxlink_media::infer_kind(None, &png, Some("demo.png"));
        assert_eq!(inferred.kind, wxlink_media::MediaKind::Image);
        // The IEND chunk closes the file with its fixed CRC.
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
    }

    #[test]
    fn long_text_needs_several_messages_and_notes_are_a_file() {
        assert!(long_text().chars().count() > 2 * 4000);
        let (name, body) = notes_file();
        let inferred = wxlink_media::infer_kind(None, &body, Some(&name));
        assert_eq!(inferred.kind, wxlink_media::MediaKind::File);
    }
}
