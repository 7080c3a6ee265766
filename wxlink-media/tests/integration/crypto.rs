//! AES-128-ECB against the protocol's vectors, and properties of the
//! whole-buffer and streaming paths.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wxlink_media::crypto::{self, Decryptor, Encryptor};
use wxlink_media::{AesKey, Error, KeyEncoding};

fn vectors() -> serde_json::Value {
    let text = include_str!("../data/media.crypto-vectors.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn protocol_vectors_encrypt_and_decrypt() {
    let v = vectors();
    let key = AesKey::from_hex(v["key_hex"].as_str().unwrap()).unwrap();
    let cases = v["vectors"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let plain = case["plaintext_utf8"].as_str().unwrap().as_bytes();
        let want = hex::decode(case["ciphertext_hex"].as_str().unwrap()).unwrap();
        assert_eq!(plain.len() as u64, case["rawsize"].as_u64().unwrap());
        assert_eq!(crypto::encrypt(&key, plain), want);
        assert_eq!(
            crypto::ciphertext_len(plain.len() as u64),
            case["filesize"].as_u64().unwrap()
        );
        assert_eq!(crypto::decrypt(&key, &want).unwrap(), plain);
        // The MD5 implementation (assembly on x86) agrees with the fixture.
        use md5::Digest as _;
        assert_eq!(
            hex::encode(md5::Md5::digest(plain)),
            case["rawfilemd5"].as_str().unwrap()
        );
    }
}

#[test]
fn protocol_key_encodings_parse_to_the_vector_key() {
    let v = vectors();
    let key = AesKey::from_hex(v["key_hex"].as_str().unwrap()).unwrap();
    let encodings = v["key_encodings"].as_object().unwrap();
    assert_eq!(encodings.len(), 4);
    for (what, text) in encodings {
        let (parsed, enc) = AesKey::parse_inbound(text.as_str().unwrap()).unwrap();
        assert_eq!(parsed, key, "{what}");
        let expected = if what.contains("raw bytes") {
            KeyEncoding::Base64Raw
        } else if what.contains("base64") {
            KeyEncoding::Base64Hex
        } else {
            KeyEncoding::Hex
        };
        assert_eq!(enc, expected, "{what}");
        assert_eq!(key.encode(enc), text.as_str().unwrap());
    }
}

#[test]
fn corrupt_last_block_is_bad_padding() {
    let key = AesKey::from_bytes([3; 16]);
    let mut ct = crypto::encrypt(&key, &[1u8; 100]);
    let n = ct.len();
    ct[n - 1] ^= 0x55;
    assert!(crypto::decrypt(&key, &ct).is_err_and(|e| e.is_bad_padding()));
    let mut dec = Decryptor::new(&key);
    let mut out = Vec::new();
    dec.update(&ct, &mut out);
    assert!(dec.finish().is_err_and(|e| e.is_bad_padding()));
}

/// Splits `data` at the given cut points (taken modulo the length).
fn chunked<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            if data.is_empty() {
                0
            } else {
                c % (data.len() + 1)
            }
        })
        .collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    // Repeated points give empty chunks on purpose.
    points.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

fn stream_encrypt(key: &AesKey, chunks: &[&[u8]]) -> Vec<u8> {
    let mut enc = Encryptor::new(key);
    let mut out = Vec::new();
    for chunk in chunks {
        let before = out.len();
        enc.update(chunk, &mut out);
        assert_eq!((out.len() - before) % 16, 0);
        // The encryptor never holds back a full block.
        assert!(enc.consumed() - out.len() as u64 <= 15);
    }
    out.extend_from_slice(&enc.finish());
    out
}

/// Encrypts `chunks` the way uploads do: each chunk is copied into a
/// buffer of its own (as if just read from a file) and encrypted in place
/// by [`Encryptor::update_in_place`], or, where `copying[i]` says so, fed
/// to [`Encryptor::update`] instead; a missing entry means in place.
fn stream_encrypt_in_place(key: &AesKey, chunks: &[&[u8]], copying: &[bool]) -> Vec<u8> {
    let mut enc = Encryptor::new(key);
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let held_before = enc.consumed() - out.len() as u64;
        if copying.get(i).copied().unwrap_or(false) {
            enc.update(chunk, &mut out);
        } else {
            let mut buf = chunk.to_vec();
            enc.update_in_place(&mut buf);
            // The buffer comes back as whole blocks: the bytes held before
            // plus this chunk, less the new partial block.
            assert_eq!(buf.len() % 16, 0);
            let fed = held_before as usize + chunk.len();
            assert_eq!(buf.len(), fed - fed % 16);
            out.extend_from_slice(&buf);
        }
        assert!(enc.consumed() - out.len() as u64 <= 15);
    }
    out.extend_from_slice(&enc.finish());
    out
}

fn stream_decrypt(key: &AesKey, chunks: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let mut dec = Decryptor::new(key);
    let mut out = Vec::new();
    for chunk in chunks {
        dec.update(chunk, &mut out);
        // At most one block is held back.
        assert!(dec.consumed() - out.len() as u64 <= 16);
    }
    out.extend_from_slice(&dec.finish()?);
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_any_length(key in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let key = AesKey::from_bytes(key);
        let ct = crypto::encrypt(&key, &data);
        prop_assert_eq!(ct.len() as u64, crypto::ciphertext_len(data.len() as u64));
        prop_assert_eq!(crypto::decrypt(&key, &ct).unwrap(), data);
    }

    #[test]
    fn streaming_equals_whole_buffer_for_any_chunking(
        key in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..1200),
        enc_cuts in proptest::collection::vec(any::<usize>(), 0..12),
        dec_cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let key = AesKey::from_bytes(key);
        let whole = crypto::encrypt(&key, &data);
        let streamed = stream_encrypt(&key, &chunked(&data, &enc_cuts));
        prop_assert_eq!(&streamed, &whole);
        let back = stream_decrypt(&key, &chunked(&whole, &dec_cuts)).unwrap();
        prop_assert_eq!(back, data);
    }

    #[test]
    fn in_place_streaming_equals_whole_buffer_for_any_chunking(
        key in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..1200),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let key = AesKey::from_bytes(key);
        let chunks = chunked(&data, &cuts);
        let whole = crypto::encrypt(&key, &data);
        let in_place = stream_encrypt_in_place(&key, &chunks, &[]);
        prop_assert_eq!(&in_place, &whole);
        prop_assert_eq!(&in_place, &stream_encrypt(&key, &chunks));
    }

    #[test]
    fn in_place_and_copying_updates_mix_on_one_encryptor(
        key in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..1200),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        copying in proptest::collection::vec(any::<bool>(), 0..14),
    ) {
        let key = AesKey::from_bytes(key);
        let mixed = stream_encrypt_in_place(&key, &chunked(&data, &cuts), &copying);
        prop_assert_eq!(mixed, crypto::encrypt(&key, &data));
    }

    #[test]
    fn block_aligned_chunks_are_encrypted_without_moving(
        key in any::<[u8; 16]>(),
        blocks in proptest::collection::vec(0usize..40, 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
        seed in any::<u8>(),
    ) {
        // Whole-block chunks, as uploads read them, then a short last one.
        let key = AesKey::from_bytes(key);
        let mut chunks: Vec<Vec<u8>> = blocks
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n * 16).map(|j| (j as u8) ^ (i as u8) ^ seed).collect())
            .collect();
        chunks.push(tail);
        let mut enc = Encryptor::new(&key);
        let mut out = Vec::new();
        for chunk in &chunks {
            let mut buf = chunk.clone();
            let (len, at) = (buf.len(), buf.as_ptr());
            enc.update_in_place(&mut buf);
            if len % 16 == 0 {
                // Nothing held before or after: same length, same memory.
                prop_assert_eq!(buf.len(), len);
                prop_assert!(len == 0 || std::ptr::eq(buf.as_ptr(), at));
            }
            out.extend_from_slice(&buf);
        }
        out.extend_from_slice(&enc.finish());
        prop_assert_eq!(out, crypto::encrypt(&key, &chunks.concat()));
    }

    #[test]
    fn one_byte_chunks_round_trip(data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let key = AesKey::from_bytes([9; 16]);
        let singles: Vec<&[u8]> = data.chunks(1).collect();
        let ct = stream_encrypt(&key, &singles);
        prop_assert_eq!(&ct, &crypto::encrypt(&key, &data));
        prop_assert_eq!(&stream_encrypt_in_place(&key, &singles, &[]), &ct);
        let ct_singles: Vec<&[u8]> = ct.chunks(1).collect();
        prop_assert_eq!(stream_decrypt(&key, &ct_singles).unwrap(), data);
    }

    #[test]
    fn size_formula_equals_real_ciphertext_length(len in 0usize..4096) {
        let key = AesKey::from_bytes([1; 16]);
        let ct = crypto::encrypt(&key, &vec![0xAB; len]);
        prop_assert_eq!(ct.len() as u64, crypto::ciphertext_len(len as u64));
        // PKCS#7 adds 1 to 16 bytes and ends on a block boundary.
        prop_assert!(ct.len() > len && ct.len() - len <= 16 && ct.len().is_multiple_of(16));
    }

    #[test]
    fn truncated_ciphertext_is_a_length_error(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        cut in 1usize..16,
    ) {
        let key = AesKey::from_bytes([5; 16]);
        let ct = crypto::encrypt(&key, &data);
        let short = &ct[..ct.len() - cut];
        let whole_err = crypto::decrypt(&key, short).unwrap_err();
        let whole_is_length = whole_err.bad_ciphertext_len().is_some();
        prop_assert!(whole_is_length);
        let stream_err = stream_decrypt(&key, &[short]).unwrap_err();
        let stream_is_length = stream_err.bad_ciphertext_len().is_some();
        prop_assert!(stream_is_length);
    }

    #[test]
    fn parse_inbound_never_panics(text in ".{0,64}") {
        let _ = AesKey::parse_inbound(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The padded-size formula over all of `u64`: exact where it fits,
    /// `None` (and a saturated, block-aligned `ciphertext_len`) where the
    /// sum would overflow, never a panic.
    #[test]
    fn ciphertext_len_is_checked_over_all_of_u64(raw in prop_oneof![any::<u64>(), (u64::MAX - 40)..=u64::MAX, 0u64..100]) {
        let exact = (u128::from(raw) / 16 + 1) * 16;
        match wxlink_media::checked_ciphertext_len(raw) {
            Some(len) => {
                prop_assert_eq!(u128::from(len), exact);
                prop_assert_eq!(wxlink_media::ciphertext_len(raw), len);
            }
            None => {
                prop_assert!(exact > u128::from(u64::MAX));
                prop_assert_eq!(wxlink_media::ciphertext_len(raw) % 16, 0);
            }
        }
    }

    /// The overall transfer limit never panics, grows with the size and is
    /// never below the base.
    #[test]
    fn transfer_limits_grow_with_the_size(a in any::<u64>(), b in any::<u64>(), base_s in any::<u64>(), rate in any::<u64>()) {
        let limits = wxlink_media::TransferTimeouts::new(None, std::time::Duration::from_secs(base_s), rate);
        let (small, large) = (a.min(b), a.max(b));
        match (limits.overall_for(small), limits.overall_for(large)) {
            (Some(s), Some(l)) => {
                prop_assert!(s <= l);
                prop_assert!(s >= limits.base);
            }
            // Once the sum saturates, larger sizes saturate too.
            (Some(_), None) | (None, None) => {}
            (None, Some(_)) => prop_assert!(false, "a smaller size had no limit"),
        }
    }
}
