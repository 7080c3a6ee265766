//! The streaming AES-128-ECB decryptor on arbitrary ciphertext fed in
//! arbitrary pieces: it never panics, agrees with the whole-buffer
//! decryptor, and what it accepts encrypts back to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxlink_media::{AesKey, Decryptor, crypto};

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let key = AesKey::from_bytes([7u8; 16]);
    let whole = crypto::decrypt(&key, body);
    let mut dec = Decryptor::new(&key);
    let mut out = Vec::new();
    for piece in body.chunks(usize::from(step).max(1)) {
        dec.update(piece, &mut out);
    }
    let streamed = dec.finish().map(|last| {
        out.extend_from_slice(&last);
        out
    });
    match (whole, streamed) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert_eq!(crypto::encrypt(&key, &a), body);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "whole {:?} and streamed {:?} disagree",
            a.is_ok(),
            b.is_ok()
        ),
    }
});
