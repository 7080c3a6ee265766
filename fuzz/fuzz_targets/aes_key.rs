//! The inbound AES-key parser on arbitrary text: a key is accepted only in
//! one of the documented encodings, and an accepted key re-encodes to a
//! form the parser reads back as the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxlink_media::AesKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match AesKey::parse_inbound(text) {
        Ok((key, _encoding)) => {
            let hex = key.to_hex();
            assert_eq!(hex.len(), 32);
            let (back, _) = AesKey::parse_inbound(&hex).expect("hex of a key parses");
            assert_eq!(back.to_hex(), hex);
        }
        Err(err) => {
            // The reason never echoes the input back. An input may still
            // be a piece of the fixed wording ("id aes key: k"), so a match
            // counts as an echo only when the reason for an input of the
            // same length that shares none of its characters lacks it.
            let shown = err.to_string();
            if text.len() >= 8 && shown.contains(text) {
                let other: String = text
                    .chars()
                    .map(|c| if c == '#' { '%' } else { '#' })
                    .collect();
                let other_shown = AesKey::parse_inbound(&other)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(other_shown.contains(text), "error shows the key");
            }
        }
    }
});
