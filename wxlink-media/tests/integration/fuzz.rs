//! Property tests on inbound data the media layer cannot trust: key texts,
//! ciphertext, content sniffing and inbound message items. Every input gives
//! a value or a typed `wxlink_media::Error`, never a panic, and no error or `Debug`
//! output shows key material or the CDN's download parameter.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wxlink_media::{AesKey, Decryptor, KeyEncoding, infer_kind, resolve_item, resolve_thumbnail};
use wxlink_proto::MessageItem;

/// The lengths at which each key encoding is tried; arbitrary text of
/// those lengths reaches the deeper branches of the parser.
fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,64}",
        "[0-9a-fA-F]{30,34}",
        "[A-Za-z0-9+/]{22,46}={0,2}",
        "[0-9a-f]{32}".prop_map(|h| base64_of(h.as_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| base64_of(&b)),
        "[ \t\n]{0,3}[0-9a-f]{32}[ \t\n]{0,3}",
    ]
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Long enough substrings of a key text that may not appear in an error.
fn assert_no_key_text(shown: &str, text: &str) -> Result<(), TestCaseError> {
    let t = text.trim();
    if t.len() >= 12 {
        prop_assert!(!shown.contains(t), "key text {t:?} shown in {shown:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn parse_inbound_is_total_and_discreet(text in key_text()) {
        match AesKey::parse_inbound(&text) {
            Ok((key, enc)) => {
                // A parsed key re-encodes to the text it came from.
                let again = key.encode(enc);
                match enc {
                    KeyEncoding::Hex => prop_assert_eq!(again, text.trim().to_ascii_lowercase()),
                    _ => prop_assert_eq!(AesKey::parse_inbound(&again).unwrap().0, key.clone()),
                }
                let shown = format!("{key:?} {key}");
                prop_assert!(!shown.contains(&key.to_hex()));
            }
            Err(err) => {
                prop_assert!(err.is_invalid_key(), "{err:?}");
                assert_no_key_text(&format!("{err} {err:?}"), &text)?;
            }
        }
    }

    #[test]
    fn decryptor_takes_any_ciphertext_in_any_chunks(
        key in any::<[u8; 16]>(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(0usize..300, 0..8),
    ) {
        let key = AesKey::from_hex(&hex(&key)).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let whole = wxlink_media::crypto::decrypt(&key, &data);
        let mut dec = Decryptor::new(&key);
        let mut out = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            dec.update(&data[at..cut], &mut out);
            at = cut;
        }
        prop_assert_eq!(dec.consumed(), data.len() as u64);
        match (dec.finish(), whole) {
            (Ok(tail), Ok(expected)) => {
                out.extend_from_slice(&tail);
                prop_assert_eq!(out, expected);
            }
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.to_string(), b.to_string());
                prop_assert!(a.is_decrypt(), "{a:?}");
            }
            (a, b) => prop_assert!(false, "streaming {a:?} and whole-buffer {b:?} disagree"),
        }
    }

    #[test]
    fn round_trip_through_random_chunks(
        plain in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(0usize..220, 0..6),
    ) {
        let key = AesKey::random();
        let cipher = wxlink_media::crypto::encrypt(&key, &plain);
        prop_assert_eq!(cipher.len() as u64, wxlink_media::ciphertext_len(plain.len() as u64));
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(cipher.len())).collect();
        cuts.sort_unstable();
        let mut dec = Decryptor::new(&key);
        let mut out = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([cipher.len()]) {
            dec.update(&cipher[at..cut], &mut out);
            at = cut;
        }
        out.extend_from_slice(&dec.finish().unwrap());
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn infer_kind_is_total(
        content_type in prop::option::of(prop_oneof![".{0,40}", "(image|video|audio|application|text)/[a-z0-9.+-]{0,12}(;.{0,10})?"]),
        head in prop::collection::vec(any::<u8>(), 0..64),
        magic in prop::option::of(prop::sample::select(vec![
            &b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff", b"GIF89a", b"\x00\x00\x00\x18ftypmp42",
            b"#!SILK_V3", b"\x02#!SILK_V3", b"%PDF-", b"RIFF\x00\x00\x00\x00WEBP", b"PK\x03\x04",
        ])),
        name in prop::option::of(prop_oneof![".{0,20}", "[a-z]{0,8}\\.(png|jpg|mp4|silk|pdf|PNG|tar\\.gz|)"]),
    ) {
        let mut bytes = magic.map(<[u8]>::to_vec).unwrap_or_default();
        bytes.extend_from_slice(&head);
        let inferred = infer_kind(content_type.as_deref(), &bytes, name.as_deref());
        prop_assert!(!inferred.mime.is_empty());
        prop_assert_eq!(inferred.kind, wxlink_media::MediaKind::from_mime(&inferred.mime));
    }

    #[test]
    fn resolvers_take_any_item(item in message_item(), base in prop_oneof![Just("https://novac2c.cdn.weixin.qq.com/c2c".to_owned()), ".{0,20}"]) {
        let value: serde_json::Value = item;
        let Ok(item) = serde_json::from_value::<MessageItem>(value.clone()) else {
            return Ok(());
        };
        for result in [resolve_item(&item, &base).map(Some), resolve_thumbnail(&item, &base)] {
            match result {
                Ok(Some(media)) => {
                    let shown = format!("{media:?}");
                    for secret in secrets_of(&value) {
                        prop_assert!(!shown.contains(&secret), "{secret} in {shown}");
                    }
                    if let Some(key) = &media.key {
                        prop_assert!(!shown.contains(&key.to_hex()));
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    prop_assert!(err.is_not_media()
                        || err.is_missing_reference()
                        || err.is_missing_key()
                        || err.is_invalid_key(), "{err:?}");
                    let shown = format!("{err} {err:?}");
                    for secret in secrets_of(&value) {
                        prop_assert!(!shown.contains(&secret), "{secret} in {shown}");
                    }
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Key texts and CDN parameters (at least 12 characters long, so a short
/// one cannot match by chance) found anywhere in `value`.
fn secrets_of(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s)
                            if ["aeskey", "aes_key", "encrypt_query_param"]
                                .contains(&k.as_str())
                                && s.trim().len() >= 12 =>
                        {
                            out.push(s.trim().to_owned());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(value, &mut out);
    out
}

fn cdn_media() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::option::of(prop_oneof!["[A-Za-z0-9_-]{12,40}", ".{0,16}"]),
        prop::option::of(key_text()),
        prop::option::of(prop_oneof![
            Just("https://cdn.example/x?encrypted_query_param=abcdefghijkl1234".to_owned()),
            ".{0,20}"
        ]),
        prop::option::of(-3i64..4),
    )
        .prop_map(|(eqp, key, full, enc)| {
            let mut m = serde_json::Map::new();
            if let Some(v) = eqp {
                m.insert("encrypt_query_param".into(), v.into());
            }
            if let Some(v) = key {
                m.insert("aes_key".into(), v.into());
            }
            if let Some(v) = full {
                m.insert("full_url".into(), v.into());
            }
            if let Some(v) = enc {
                m.insert("encrypt_type".into(), v.into());
            }
            serde_json::Value::Object(m)
        })
}

fn message_item() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::option::of(-2i64..8),
        prop::option::of(prop::sample::select(vec![
            "image_item",
            "voice_item",
            "file_item",
            "video_item",
            "text_item",
        ])),
        prop::option::of(cdn_media()),
        prop::option::of(cdn_media()),
        prop::option::of(key_text()),
        prop::option::of(".{0,12}"),
    )
        .prop_map(|(ty, which, media, thumb, aeskey, name)| {
            let mut payload = serde_json::Map::new();
            if let Some(m) = media {
                payload.insert("media".into(), m);
            }
            if let Some(t) = thumb {
                payload.insert("thumb_media".into(), t);
            }
            if let Some(k) = aeskey {
                payload.insert("aeskey".into(), k.into());
            }
            if let Some(n) = name {
                payload.insert("file_name".into(), n.into());
            }
            let mut item = serde_json::Map::new();
            if let Some(t) = ty {
                item.insert("type".into(), t.into());
            }
            if let Some(w) = which {
                item.insert(w.into(), serde_json::Value::Object(payload));
            }
            serde_json::Value::Object(item)
        })
}

/// `InboundMedia`'s `Debug` shows neither the key nor the CDN parameter.
#[test]
fn inbound_media_debug_hides_key_and_query() {
    let key = AesKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let media = wxlink_media::InboundMedia::new(
        wxlink_media::MediaKind::File,
        "https://cdn.example/c2c/download?encrypted_query_param=EQP-SECRET-MARKER",
        Some(key),
    );
    let shown = format!("{media:?}");
    assert!(!shown.contains("EQP-SECRET-MARKER"), "{shown}");
    assert!(!shown.contains("00112233"), "{shown}");
    assert!(
        shown.contains("https://cdn.example/c2c/download?<redacted>"),
        "{shown}"
    );
}

/// `UploadedMedia`'s `Debug` shows neither the key, the `filekey` nor the
/// download parameter; the key's own `Debug` and `Display` are redacted.
#[test]
fn uploaded_media_debug_hides_key_filekey_and_download_param() {
    let key = AesKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let uploaded = wxlink_media::UploadedMedia::new(
        "FILEKEY-MARKER-0123456789abcdef",
        "DOWNLOAD-PARAM-MARKER",
        key.clone(),
        10,
        "0cc175b9c0f1b6a831c399e269772661",
        wxlink_media::MediaKind::File,
        "text/plain",
    );
    let shown = format!("{uploaded:?} {key:?} {key}");
    for secret in [
        "FILEKEY-MARKER",
        "DOWNLOAD-PARAM-MARKER",
        "00112233",
        &key.to_base64_hex(),
        &key.to_base64_raw(),
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("rawsize: 10"), "{shown}");
}

/// What a CDN answers a download with in [`cdn_answers_are_typed`].
#[derive(Debug, Clone)]
struct CdnAnswer {
    status: u16,
    content_length: Option<String>,
    chunks: Vec<Vec<u8>>,
}

fn cdn_answer() -> impl Strategy<Value = CdnAnswer> {
    (
        prop::sample::select(vec![200u16, 200, 200, 206, 302, 404, 500]),
        prop::option::of(prop_oneof![
            (0u64..400).prop_map(|n| n.to_string()),
            Just("-1".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("abc".to_owned()),
        ]),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..5),
    )
        .prop_map(|(status, content_length, chunks)| CdnAnswer {
            status,
            content_length,
            chunks,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any status, `Content-Length` (absent, wrong, negative, huge, not a
    /// number) and chunked body from the CDN gives bytes or a typed error,
    /// and a successful download is exactly the decryption of what arrived.
    #[test]
    fn cdn_answers_are_typed(answer in cdn_answer(), encrypt_valid in any::<bool>(), max in prop::option::of(0u64..200)) {
        let key = AesKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let mut chunks = answer.chunks.clone();
        if encrypt_valid {
            let plain: Vec<u8> = chunks.concat();
            let cipher = wxlink_media::crypto::encrypt(&key, &plain);
            let mid = cipher.len() / 2;
            chunks = vec![cipher[..mid].to_vec(), cipher[mid..].to_vec()];
        }
        let sent: Vec<u8> = chunks.concat();
        let a = answer.clone();
        let service = tower::service_fn(move |_req: http::Request<wxlink_transport::Body>| {
            let a = a.clone();
            let chunks = chunks.clone();
            async move {
                let stream = futures_util_stream(chunks);
                let mut resp = http::Response::builder().status(a.status);
                if let Some(len) = &a.content_length {
                    resp = resp.header("content-length", len.as_str());
                }
                Ok::<_, wxlink_transport::BoxError>(resp.body(wxlink_transport::Body::from_stream(stream)).unwrap())
            }
        });
        let media = wxlink_media::InboundMedia::new(
            wxlink_media::MediaKind::File,
            "http://127.0.0.1:9/c2c/download?encrypted_query_param=EQP-MARKER-XYZ",
            Some(key.clone()),
        );
        let mut options = wxlink_media::download::DownloadOptions::default();
        if let Some(max) = max {
            options = wxlink_media::download::DownloadOptions::with_max_bytes(max);
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        match rt.block_on(wxlink_media::download(&service, &media, &options)) {
            Ok(done) => {
                prop_assert_eq!(answer.status, 200);
                let expected = wxlink_media::crypto::decrypt(&key, &sent).unwrap();
                prop_assert_eq!(&done.bytes[..], &expected[..]);
                prop_assert!(max.is_none_or(|m| expected.len() as u64 <= m + 16));
            }
            Err(err) => {
                let shown = format!("{err} {err:?}");
                prop_assert!(!shown.contains("EQP-MARKER-XYZ"), "{}", shown);
                prop_assert!(!shown.contains("00112233"), "{}", shown);
            }
        }
    }
}

/// A body stream that yields `chunks` one by one.
fn futures_util_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static
{
    futures_util::stream::iter(chunks.into_iter().map(|c| Ok(bytes::Bytes::from(c))))
}
