//! The text chunker on arbitrary text and limits: the chunks concatenate to
//! the input, none is empty, and none is longer than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let max = usize::from(limit % 64);
    let chunks = wxlink_client::chunk_text(text, max);
    assert_eq!(chunks.concat(), text);
    for chunk in &chunks {
        assert!(!chunk.is_empty());
        assert!(chunk.chars().count() <= max.max(1));
    }
});
