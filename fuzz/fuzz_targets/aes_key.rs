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
            // The reason never echoes the input back.
            let shown = err.to_string();
            if text.len() >= 8 {
                assert!(!shown.contains(text), "error shows the key");
            }
        }
    }
});
