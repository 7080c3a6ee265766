//! Media sends and inbound media against the simulator: what was uploaded,
//! what items were sent, and that they decrypt to the original bytes.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{WAIT, client, mp4_bytes, png_bytes, sim};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxlink_client::WxLinkClient;
use wxlink_client::media::{AddressPolicy, FetchOptions, MediaKind, Phase};
use wxlink_proto::{ContextToken, MessageItem, MessageItemType, VoiceEncodeType};
use wxlink_sim::{Fault, KeyEncoding, Simulator};

/// The one item of the `n`th message the simulator recorded.
fn sent_item(sim: &Simulator, n: usize) -> MessageItem {
    let sent = sim.sent_messages();
    assert_eq!(sent[n].msg.item_list.len(), 1);
    sent[n].msg.item_list[0].clone()
}

/// Downloads a sent item back through the client and returns the plaintext.
async fn round_trip(client: &WxLinkClient, item: &MessageItem) -> Vec<u8> {
    client.download_media(item).await.unwrap().bytes.to_vec()
}

#[tokio::test]
async fn send_image_from_path_with_caption_sends_text_first_then_the_upload() {
    let sim = sim().await;
    let client = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chart.png");
    let png = png_bytes(5000);
    std::fs::write(&path, &png).unwrap();
    let ctx = ContextToken::new("ctx-media");

    let sent = client
        .send_image(sim.user_id(), &path)
        .caption("here is the chart")
        .context_token(ctx.clone())
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::Image);
    assert_eq!(sent.size, png.len() as u64);

    let messages = sim.sent_messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].text(), Some("here is the chart"));
    assert_eq!(
        messages[0].msg.client_id.as_deref(),
        Some(sent.caption.as_ref().unwrap().id())
    );
    assert_eq!(messages[1].msg.client_id.as_deref(), Some(sent.id()));
    for m in &messages {
        assert_eq!(m.msg.context_token.as_ref(), Some(&ctx));
    }

    // The image item references the accepted upload.
    let uploads = sim.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].media_type, 1);
    assert_eq!(uploads[0].rawsize, png.len() as u64);
    let item = sent_item(&sim, 1);
    assert_eq!(item.item_type, Some(MessageItemType::Image));
    let image = item.image_item.as_ref().unwrap();
    let media = image.media.as_ref().unwrap();
    assert_eq!(media.encrypt_query_param, uploads[0].download_param);
    // The key travels as base64 of the 32 hex characters (44 characters).
    assert_eq!(media.aes_key.as_ref().unwrap().expose_secret().len(), 44);
    assert_eq!(image.mid_size, Some(uploads[0].filesize as i64));
    assert_eq!(round_trip(&client, &item).await, png);
}

#[tokio::test]
async fn send_file_buffer_items_carry_md5_len_and_name() {
    let sim = sim().await;
    let client = client(&sim);
    let data = b"name,score\nalice,3\nbob,5\n".to_vec();
    let sent = client
        .send_file_buffer(sim.user_id(), data.clone())
        .file_name("scores.csv")
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::File);
    let item = sent_item(&sim, 0);
    let file = item.file_item.as_ref().unwrap();
    assert_eq!(file.file_name.as_deref(), Some("scores.csv"));
    assert_eq!(file.len.as_deref(), Some(data.len().to_string().as_str()));
    let md5 = file.md5.clone().unwrap();
    assert_eq!(md5.len(), 32);
    assert_eq!(md5, sent.md5);
    assert_eq!(sim.uploads()[0].media_type, 3);
    assert_eq!(round_trip(&client, &item).await, data);
}

#[tokio::test]
async fn send_file_without_a_name_still_names_the_item() {
    let sim = sim().await;
    client(&sim)
        .send_file_buffer(sim.user_id(), b"%PDF-1.4 tiny".to_vec())
        .await
        .unwrap();
    let item = sent_item(&sim, 0);
    let name = item.file_item.unwrap().file_name.unwrap();
    assert!(!name.is_empty());
}

#[tokio::test]
async fn send_video_from_path_and_media_from_path_choose_video() {
    let sim = sim().await;
    let client = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let mp4 = mp4_bytes(20_000);
    std::fs::write(&path, &mp4).unwrap();

    let a = client.send_video(sim.user_id(), &path).await.unwrap();
    let b = client
        .send_media_from_path(sim.user_id(), &path)
        .await
        .unwrap();
    assert_eq!(a.kind, MediaKind::Video);
    assert_eq!(b.kind, MediaKind::Video);
    for n in 0..2 {
        let item = sent_item(&sim, n);
        assert_eq!(item.item_type, Some(MessageItemType::Video));
        let video = item.video_item.as_ref().unwrap();
        assert_eq!(video.video_md5.as_deref(), Some(a.md5.as_str()));
        assert_eq!(round_trip(&client, &item).await, mp4);
    }
    assert!(sim.uploads().iter().all(|u| u.media_type == 2));
}

#[tokio::test]
async fn send_file_forces_a_file_item_even_for_an_image() {
    let sim = sim().await;
    let client = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.png");
    std::fs::write(&path, png_bytes(300)).unwrap();
    let sent = client.send_file(sim.user_id(), &path).await.unwrap();
    assert_eq!(sent.kind, MediaKind::File);
    let item = sent_item(&sim, 0);
    assert_eq!(
        item.file_item.unwrap().file_name.as_deref(),
        Some("photo.png")
    );
}

#[tokio::test]
async fn buffers_are_sent_as_the_kind_asked_or_inferred() {
    let sim = sim().await;
    let client = client(&sim);
    let png = png_bytes(1000);
    let mp4 = mp4_bytes(1000);
    client
        .send_image_buffer(sim.user_id(), png.clone())
        .await
        .unwrap();
    client
        .send_video_buffer(sim.user_id(), mp4.clone())
        .await
        .unwrap();
    let by_type = client
        .send_media_from_buffer(sim.user_id(), b"plain words".to_vec())
        .content_type("image/png")
        .await
        .unwrap();
    let by_magic = client
        .send_media_from_buffer(sim.user_id(), mp4.clone())
        .await
        .unwrap();
    let by_name = client
        .send_media_from_buffer(sim.user_id(), b"col\n1\n".to_vec())
        .file_name("data.csv")
        .await
        .unwrap();
    assert_eq!(by_type.kind, MediaKind::Image);
    assert_eq!(by_magic.kind, MediaKind::Video);
    assert_eq!(by_name.kind, MediaKind::File);
    let kinds: Vec<_> = sim
        .sent_messages()
        .iter()
        .map(|m| m.msg.item_list[0].item_type)
        .collect();
    assert_eq!(
        kinds,
        [
            Some(MessageItemType::Image),
            Some(MessageItemType::Video),
            Some(MessageItemType::Image),
            Some(MessageItemType::Video),
            Some(MessageItemType::File),
        ]
    );
    assert_eq!(round_trip(&client, &sent_item(&sim, 0)).await, png);
}

/// Serves `body` once per connection on 127.0.0.1 with `content_type`, as
/// a plain HTTP/1.1 response; returns the URL.
async fn serve_once(body: Vec<u8>, content_type: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/files/report.png")
}

#[tokio::test]
async fn send_media_from_url_downloads_then_sends_the_right_kind() {
    let sim = sim().await;
    let client = client(&sim);
    let png = png_bytes(4000);
    let url = serve_once(png.clone(), "image/png").await;
    let sent = client
        .send_media_from_url(sim.user_id(), url)
        .fetch_options(FetchOptions::default().policy(AddressPolicy::AllowLoopback))
        .caption("from the web")
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::Image);
    assert_eq!(sim.sent_messages()[0].text(), Some("from the web"));
    let item = sent_item(&sim, 1);
    assert_eq!(item.item_type, Some(MessageItemType::Image));
    assert_eq!(round_trip(&client, &item).await, png);
}

#[tokio::test]
async fn send_media_from_url_refuses_loopback_by_default_and_the_client_can_allow_it() {
    let sim = sim().await;
    let client = client(&sim);
    let url = serve_once(png_bytes(100), "image/png").await;
    let err = client
        .send_media_from_url(sim.user_id(), &url)
        .await
        .unwrap_err();
    assert!(
        err.media().is_some_and(|m| m.is_blocked_address()),
        "{err:?}"
    );
    assert!(!err.may_have_been_sent());
    assert!(sim.sent_messages().is_empty());
    assert!(sim.uploads().is_empty());

    // The same URL through a client that allows loopback.
    let allowing = WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .fetch_options(FetchOptions::default().policy(AddressPolicy::AllowLoopback))
        .build()
        .unwrap();
    let sent = allowing
        .send_media_from_url(sim.user_id(), url)
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::Image);
}

#[tokio::test]
async fn progress_is_reported_up_to_the_full_size() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob.bin");
    let data = vec![7u8; 300_000];
    std::fs::write(&path, &data).unwrap();
    let hashed = Arc::new(AtomicU64::new(0));
    let uploaded = Arc::new(AtomicU64::new(0));
    let (h, u) = (Arc::clone(&hashed), Arc::clone(&uploaded));
    client(&sim)
        .send_file(sim.user_id(), &path)
        .progress(move |p| match p.phase {
            Phase::Hashing => {
                h.fetch_max(p.done, Ordering::Relaxed);
            }
            Phase::Uploading => {
                u.fetch_max(p.done, Ordering::Relaxed);
            }
            _ => {}
        })
        .await
        .unwrap();
    // Hashing counts plaintext bytes, uploading counts ciphertext bytes.
    assert_eq!(hashed.load(Ordering::Relaxed), data.len() as u64);
    assert_eq!(
        uploaded.load(Ordering::Relaxed),
        wxlink_media::ciphertext_len(data.len() as u64)
    );
}

#[tokio::test]
async fn a_cdn_refusal_surfaces_as_a_typed_media_error_and_sends_nothing() {
    let sim = sim().await;
    sim.inject_fault(
        "cdn_upload",
        Fault::HttpStatus(400, "bad filekey".into()),
        1,
    )
    .unwrap();
    let err = client(&sim)
        .send_image_buffer(sim.user_id(), png_bytes(100))
        .caption("never sent")
        .await
        .unwrap_err();
    let media = err.media().expect("a media error");
    assert!(media.is_cdn_rejected(), "{media:?}");
    assert_eq!(media.status(), Some(400));
    assert!(!err.may_have_been_sent());
    assert!(sim.sent_messages().is_empty(), "no orphan caption");
}

#[tokio::test]
async fn a_media_message_failing_after_its_caption_is_partially_sent() {
    let sim = sim().await;
    // The caption goes through; the media message gets -14.
    sim.inject_fault("sendmessage", Fault::Delay(std::time::Duration::ZERO), 1)
        .unwrap();
    sim.inject_fault("sendmessage", Fault::SessionExpired, 1)
        .unwrap();
    let err = client(&sim)
        .send_image_buffer(sim.user_id(), png_bytes(100))
        .caption("caption")
        .await
        .unwrap_err();
    assert!(err.partially_sent() == Some(1), "{err:?}");
    assert!(err.is_session_expired());
    assert_eq!(sim.sent_messages().len(), 1);
}

#[tokio::test]
async fn getuploadurl_session_expiry_is_typed() {
    let sim = sim().await;
    sim.inject_fault("getuploadurl", Fault::SessionExpired, 1)
        .unwrap();
    let err = client(&sim)
        .send_file_buffer(sim.user_id(), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert!(err.is_media(), "{err:?}");
}

#[tokio::test]
async fn send_voice_sends_a_file_by_default() {
    let sim = sim().await;
    let client = client(&sim);
    let silk = b"\x02#!SILK_V3 some frames".to_vec();
    let sent = client
        .send_voice(sim.user_id(), silk.clone())
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::File);
    assert_eq!(sim.uploads()[0].media_type, 3);
    let item = sent_item(&sim, 0);
    assert_eq!(item.item_type, Some(MessageItemType::File));
    assert!(item.voice_item.is_none());
    let file = item.file_item.as_ref().unwrap();
    assert_eq!(file.file_name.as_deref(), Some("voice.silk"));
    assert_eq!(round_trip(&client, &item).await, silk);
}

#[tokio::test]
async fn send_voice_sends_a_native_voice_item_with_its_metadata_on_request() {
    let sim = sim().await;
    let client = client(&sim);
    let mut silk = vec![0x02];
    silk.extend_from_slice(b"#!SILK_V3");
    silk.extend((0..2000).map(|i| (i % 200) as u8));
    let sent = client
        .send_voice(sim.user_id(), silk.clone())
        .native_bubble(true)
        .playtime_ms(3200)
        .sample_rate(16_000)
        .encode_type(VoiceEncodeType::Silk)
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::Voice);
    assert_eq!(sim.uploads()[0].media_type, 4);
    let item = sent_item(&sim, 0);
    assert_eq!(item.item_type, Some(MessageItemType::Voice));
    let voice = item.voice_item.as_ref().unwrap();
    assert_eq!(voice.playtime, Some(3200));
    assert_eq!(voice.sample_rate, Some(16_000));
    assert_eq!(voice.encode_type, Some(VoiceEncodeType::Silk));
    assert_eq!(round_trip(&client, &item).await, silk);
}

/// A transport that refuses voice uploads (`getuploadurl` with
/// `media_type` 4) with `ret -2` and passes everything else to the default
/// transport, as a server without voice support would.
fn voice_refusing_client(sim: &Simulator) -> WxLinkClient {
    use tower::ServiceExt;
    let inner = wxlink_transport::HttpsTransport::new();
    let service = tower::service_fn(move |req: http::Request<wxlink_transport::Body>| {
        let inner = inner.clone();
        async move {
            let is_voice_upload = req.uri().path().ends_with("getuploadurl")
                && req
                    .body()
                    .as_bytes()
                    .is_some_and(|b| String::from_utf8_lossy(b).contains("\"media_type\":4"));
            if is_voice_upload {
                let body = br#"{"ret":-2,"errmsg":"voice not supported"}"#.to_vec();
                return Ok(http::Response::new(wxlink_transport::Body::from(body)));
            }
            inner.oneshot(req).await
        }
    });
    WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .transport(service)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_refused_voice_says_so_and_can_fall_back_to_a_file() {
    let sim = sim().await;
    let client = voice_refusing_client(&sim);
    let silk = b"\x02#!SILK_V3 audio frames".to_vec();

    let err = client
        .send_voice(sim.user_id(), silk.clone())
        .native_bubble(true)
        .await
        .unwrap_err();
    assert!(err.is_voice_rejected(), "{err:?}");
    assert_eq!(err.to_string(), "server refused the voice message");
    assert_eq!(err.api_status().unwrap().ret, Some(-2));
    assert!(sim.sent_messages().is_empty());

    let sent = client
        .send_voice(sim.user_id(), silk.clone())
        .native_bubble(true)
        .fallback_to_file(true)
        .await
        .unwrap();
    assert_eq!(sent.kind, MediaKind::File);
    let item = sent_item(&sim, 0);
    let file = item.file_item.as_ref().unwrap();
    assert_eq!(file.file_name.as_deref(), Some("voice.silk"));
    assert!(file.md5.is_some());
    assert_eq!(round_trip(&client, &item).await, silk);
}

#[tokio::test]
async fn inbound_media_of_every_kind_resolves_and_downloads() {
    let sim = sim().await;
    let client = client(&sim);
    let user = sim.user_id();
    let cases = [
        (MediaKind::Image, KeyEncoding::Base64Raw, png_bytes(3000)),
        (MediaKind::Image, KeyEncoding::Hex, png_bytes(100)),
        (
            MediaKind::File,
            KeyEncoding::Base64Hex,
            b"quarterly numbers".to_vec(),
        ),
        (MediaKind::Video, KeyEncoding::Base64Hex, mp4_bytes(5000)),
        (
            MediaKind::Voice,
            KeyEncoding::Base64Hex,
            b"\x02#!SILK_V3....".to_vec(),
        ),
    ];
    for (kind, encoding, plaintext) in &cases {
        sim.inject_media(&user, *kind, plaintext, *encoding)
            .unwrap();
    }
    let mut items = Vec::new();
    let mut cursor = String::new();
    while items.len() < cases.len() {
        let polled = tokio::time::timeout(WAIT, client.poll(&cursor))
            .await
            .unwrap()
            .unwrap();
        cursor = polled.next_cursor.clone();
        items.extend(polled.messages().iter().map(|m| m.item_list[0].clone()));
    }
    let dir = tempfile::tempdir().unwrap();
    for (n, ((kind, _, plaintext), item)) in cases.iter().zip(&items).enumerate() {
        let resolved = client.resolve_media(item).unwrap();
        assert_eq!(resolved.kind, *kind);
        assert!(
            resolved.url.starts_with(&sim.cdn_base_url()),
            "{}",
            resolved.url
        );
        let downloaded = client.download_media(item).await.unwrap();
        assert_eq!(&downloaded.bytes[..], &plaintext[..], "case {n}");
        let path = dir.path().join(format!("in-{n}"));
        let file = client.download_media_to(item, &path).await.unwrap();
        assert_eq!(file.size, plaintext.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), *plaintext);
    }
    // Images are detected from their bytes.
    assert_eq!(
        client.download_media(&items[0]).await.unwrap().mime,
        "image/png"
    );
}

#[tokio::test]
async fn text_items_are_not_media() {
    let sim = sim().await;
    let err = client(&sim)
        .resolve_media(&wxlink_sim::text_item("hi"))
        .unwrap_err();
    assert!(err.is_media(), "{err:?}");
}

#[tokio::test]
async fn a_failed_download_leaves_no_file_behind() {
    let sim = sim().await;
    let client = client(&sim);
    let item = sim
        .media_item(MediaKind::File, b"data", KeyEncoding::Base64Hex)
        .unwrap();
    sim.inject_fault("cdn_download", Fault::HttpStatus(404, "gone".into()), 1)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let err = client.download_media_to(&item, &path).await.unwrap_err();
    assert!(err.media().is_some(), "{err:?}");
    assert!(!path.exists());
}

#[tokio::test]
async fn a_slow_cdn_upload_times_out_as_a_typed_timeout() {
    let sim = sim().await;
    sim.inject_fault(
        "cdn_upload",
        Fault::Delay(std::time::Duration::from_secs(3)),
        3,
    )
    .unwrap();
    let mut timeouts = wxlink_client::client::Timeouts::default();
    timeouts.cdn = Some(std::time::Duration::from_millis(200));
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .timeouts(timeouts)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .send_file_buffer(sim.user_id(), b"slow".to_vec())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(sim.sent_messages().is_empty());
}

/// A client for `sim` whose CDN transfers give up after `idle` without
/// progress.
fn impatient_client(sim: &Simulator, idle: std::time::Duration) -> WxLinkClient {
    WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .cdn_timeouts(wxlink_client::media::TransferTimeouts::new(
            Some(idle),
            std::time::Duration::from_secs(60),
            64 * 1024,
        ))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_that_stops_reading_an_upload_fails_it_with_a_timeout() {
    let sim = sim().await;
    let idle = std::time::Duration::from_millis(800);
    let client = impatient_client(&sim, idle);
    sim.inject_fault(
        "cdn_upload",
        Fault::StallUpload {
            after: 64 * 1024,
            stall: std::time::Duration::from_secs(60),
        },
        1,
    )
    .unwrap();
    let started = std::time::Instant::now();
    // Far more than the loopback socket buffers hold.
    let err = client
        .send_file_buffer(sim.user_id(), vec![5u8; 48 * 1024 * 1024])
        .file_name("big.bin")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        err.media()
            .is_some_and(|m| m.is_stalled() && m.time_limit() == Some(idle)),
        "{err:?}"
    );
    // It gave up after the idle limit, not after the 60 s stall.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(sim.sent_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_that_stops_sending_a_download_fails_it_with_a_timeout() {
    let sim = sim().await;
    let idle = std::time::Duration::from_millis(600);
    let client = impatient_client(&sim, idle);
    client
        .send_file_buffer(sim.user_id(), vec![9u8; 300_000])
        .file_name("data.bin")
        .await
        .unwrap();
    let item = sent_item(&sim, 0);
    sim.inject_fault(
        "cdn_download",
        Fault::StallBody(std::time::Duration::from_secs(60)),
        1,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let err = client.download_media_to(&item, &path).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.media().is_some_and(|m| m.is_stalled()), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!path.exists());
    // The fault was used up; the same download now succeeds.
    assert_eq!(round_trip(&client, &item).await.len(), 300_000);
}
