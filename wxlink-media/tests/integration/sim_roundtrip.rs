//! Uploads and downloads against the simulator: every source, every inbound
//! key encoding, the CDN retry rules and the typed download errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Env, TinyServer, noise, png_like, respond};
use md5::{Digest, Md5};
use wxlink_media::download::DownloadOptions;
use wxlink_media::item;
use wxlink_media::upload::FetchOptions;
use wxlink_media::{
    AesKey, Error, InboundMedia, KeyEncoding, MediaKind, Phase, Progress, ProgressHook,
    UploadSource, UploadUrlApi, crypto, download, download_to_file, resolve_item, upload,
};
use wxlink_proto::{GetUploadUrlRequest, GetUploadUrlResponse};
use wxlink_sim::{CdnStorage, Fault, Simulator, UploadUrlMode};

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn cdn_upload_calls(env: &Env) -> usize {
    env.sim
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("cdn_upload"))
        .count()
}

/// Uploads, builds the outbound item, resolves it as a receiver would and
/// downloads it back.
async fn round_trip(env: &Env, uploaded: &wxlink_media::UploadedMedia) -> wxlink_media::Downloaded {
    let item = uploaded.to_message_item();
    let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();
    assert_eq!(inbound.key.as_ref(), Some(&uploaded.aes_key));
    assert_eq!(inbound.key_encoding, Some(KeyEncoding::Base64Hex));
    download(&env.cdn, &inbound, &DownloadOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn path_upload_round_trips_and_is_verified_by_the_cdn() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.png");
    let data = png_like(300 * 1024 + 5);
    std::fs::write(&path, &data).unwrap();

    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::path(&path),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(up.kind, MediaKind::Image);
    assert_eq!(up.mime, "image/png");
    assert_eq!(up.file_name.as_deref(), Some("cat.png"));
    assert_eq!(up.rawsize, data.len() as u64);
    assert_eq!(
        up.ciphertext_size,
        crypto::ciphertext_len(data.len() as u64)
    );
    assert_eq!(up.md5, md5_hex(&data));
    assert_eq!(up.filekey.len(), 32);

    // The simulator decrypted the upload and checked its size and MD5.
    let records = env.sim.uploads();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].media_type, 1);
    assert_eq!(
        records[0].download_param.as_deref(),
        Some(up.download_param.as_str())
    );
    assert_eq!(records[0].received, up.ciphertext_size);

    let got = round_trip(&env, &up).await;
    assert_eq!(got.bytes.as_ref(), &data[..]);
    assert_eq!(got.mime, "image/png");

    // The same media streamed to a file.
    let item = up.to_message_item();
    let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();
    let out = dir.path().join("copy.png");
    let file = download_to_file(&env.cdn, &inbound, &out, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.mime, "image/png");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[tokio::test]
async fn bytes_upload_streams_large_buffers_as_files() {
    let env = Env::start().await;
    let data = noise(3 * 1024 * 1024 + 7, 1);
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data.clone()).file_name("data.bin"),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(up.kind, MediaKind::File);
    let item = item::file_item(&up);
    let file = item.file_item.as_ref().unwrap();
    assert_eq!(file.file_name.as_deref(), Some("data.bin"));
    assert_eq!(file.len.as_deref(), Some("3145735"));
    assert_eq!(file.md5.as_deref(), Some(md5_hex(&data).as_str()));

    let got = round_trip(&env, &up).await;
    assert_eq!(got.bytes.len(), data.len());
    assert!(got.bytes == data);
    assert_eq!(got.file_name.as_deref(), Some("data.bin"));
}

#[tokio::test]
async fn small_bytes_and_empty_bytes_round_trip() {
    let env = Env::start().await;
    for data in [Vec::new(), b"hello ilink".to_vec(), vec![7u8; 16]] {
        let up = upload(
            &env.api,
            &env.cdn,
            &env.sim.user_id(),
            UploadSource::bytes(data.clone()).file_name("n.txt"),
            &env.options(),
        )
        .await
        .unwrap();
        assert_eq!(
            up.ciphertext_size,
            crypto::ciphertext_len(data.len() as u64)
        );
        assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &data[..]);
    }
}

#[tokio::test]
async fn reader_upload_is_spooled_and_replayed_on_retry() {
    let env = Env::start().await;
    let data = noise(700 * 1024, 2);
    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 1)
        .unwrap();
    let reader = std::io::Cursor::new(data.clone());
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::reader(reader, data.len() as u64).file_name("blob"),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(cdn_upload_calls(&env), 2);
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &data[..]);
}

#[tokio::test]
async fn reader_with_known_md5_streams_once() {
    let env = Env::start().await;
    let data = noise(600 * 1024 + 3, 3);
    let reader = std::io::Cursor::new(data.clone());
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::reader(reader, data.len() as u64).md5(md5_hex(&data)),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(up.md5, md5_hex(&data));
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &data[..]);
}

#[tokio::test]
async fn one_shot_reader_says_so_when_a_retry_is_needed() {
    let env = Env::start().await;
    let data = noise(100 * 1024, 4);
    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 1)
        .unwrap();
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::reader(std::io::Cursor::new(data.clone()), data.len() as u64)
            .md5(md5_hex(&data)),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(
        err.is_not_replayable(),
        "expected NotReplayable, got {err:?}"
    );
    let last = std::error::Error::source(&err)
        .and_then(|cause| cause.downcast_ref::<Error>())
        .expect("the failure that called for the retry is the source");
    assert!(
        last.is_cdn_server_error() && last.status() == Some(503),
        "{last:?}"
    );
    assert!(err.to_string().contains("one-shot"));
    assert_eq!(cdn_upload_calls(&env), 1);
}

#[tokio::test]
async fn reader_of_the_wrong_length_is_refused_before_upload() {
    let env = Env::start().await;
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::reader(std::io::Cursor::new(vec![1u8; 10]), 20),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.source_changed() == Some((20, 10)), "{err:?}");
    // A reader longer than announced is refused too.
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::reader(std::io::Cursor::new(vec![1u8; 30]), 20),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(
        err.source_changed()
            .is_some_and(|(expected, _)| expected == 20),
        "{err:?}"
    );
    assert_eq!(cdn_upload_calls(&env), 0);
}

#[tokio::test]
async fn url_upload_follows_redirects_and_takes_type_and_name_from_the_response() {
    let env = Env::start().await;
    let gif = {
        let mut v = b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec();
        v.extend(noise(5000, 5));
        v
    };
    let served = gif.clone();
    let server = TinyServer::start(move |seen| {
        let served = served.clone();
        async move {
            match seen.path_and_query.as_str() {
                "/start" => respond(302, &[("location", "/files/abc?sig=1")], ""),
                "/files/abc?sig=1" => respond(
                    200,
                    &[
                        ("content-type", "image/gif"),
                        ("content-disposition", "attachment; filename=\"anim.gif\""),
                    ],
                    served,
                ),
                _ => respond(404, &[], "no"),
            }
        }
    })
    .await;
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::url(server.url("/start")),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(up.kind, MediaKind::Image);
    assert_eq!(up.mime, "image/gif");
    assert_eq!(up.file_name.as_deref(), Some("anim.gif"));
    assert_eq!(up.md5, md5_hex(&gif));
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &gif[..]);
}

#[tokio::test]
async fn url_upload_without_headers_uses_magic_bytes_and_the_path() {
    let env = Env::start().await;
    let pdf = b"%PDF-1.4\n% tiny\n".to_vec();
    let served = pdf.clone();
    let server = TinyServer::start(move |_| {
        let served = served.clone();
        async move { respond(200, &[], served) }
    })
    .await;
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::url(server.url("/docs/q3%20report.pdf")),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(
        (up.kind, up.mime.as_str()),
        (MediaKind::File, "application/pdf")
    );
    assert_eq!(up.file_name.as_deref(), Some("q3 report.pdf"));
}

#[tokio::test]
async fn url_upload_rejects_other_schemes_before_any_call() {
    let env = Env::start().await;
    for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "not a url"] {
        let err = upload(
            &env.api,
            &env.cdn,
            &env.sim.user_id(),
            UploadSource::url(url),
            &env.options(),
        )
        .await
        .unwrap_err();
        assert!(err.is_unsupported_url(), "{url}: {err:?}");
    }
    assert!(env.sim.request_log().is_empty());
}

#[tokio::test]
async fn url_upload_limits_redirects_size_and_time() {
    let env = Env::start().await;
    let server = TinyServer::start(|seen| async move {
        match seen.path_and_query.as_str() {
            "/loop" => respond(302, &[("location", "/loop")], ""),
            "/big" => respond(200, &[], vec![0u8; 4096]),
            "/missing" => respond(404, &[], "gone"),
            _ => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                respond(200, &[], "late")
            }
        }
    })
    .await;
    let mut options = env.options();
    options.fetch = FetchOptions::default().policy(wxlink_media::AddressPolicy::AllowLoopback);
    options.fetch.max_redirects = 3;
    options.fetch.max_bytes = 1000;
    options.fetch.timeout = Duration::from_millis(300);
    let user = env.sim.user_id();
    let try_url = |path: &str| {
        upload(
            &env.api,
            &env.cdn,
            &user,
            UploadSource::url(server.url(path)),
            &options,
        )
    };
    let err = try_url("/loop").await.unwrap_err();
    assert!(err.redirect_limit() == Some(3), "{err:?}");
    assert_eq!(server.hits(), 4);
    let err = try_url("/big").await.unwrap_err();
    assert!(err.size_limit() == Some(1000), "{err:?}");
    let err = try_url("/missing").await.unwrap_err();
    assert!(
        err.is_fetch_status() && err.status() == Some(404),
        "{err:?}"
    );
    let err = try_url("/slow").await.unwrap_err();
    assert!(err.is_timeout() && !err.is_stalled(), "{err:?}");
    assert_eq!(cdn_upload_calls(&env), 0);
}

#[tokio::test]
async fn cdn_server_errors_are_retried_up_to_three_attempts() {
    let env = Env::start().await;
    let data = noise(2 * 1024 * 1024, 6);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &data).unwrap();
    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 2)
        .unwrap();
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::path(&path),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(cdn_upload_calls(&env), 3);
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &data[..]);

    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(502, "still busy".into()), 3)
        .unwrap();
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data.clone()),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.is_cdn_server_error(), "expected CdnServer, got {err:?}");
    assert_eq!(err.status(), Some(502));
    assert_eq!(err.message(), Some("still busy"));
    assert_eq!(cdn_upload_calls(&env), 6);
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let env = Env::start().await;
    env.sim
        .inject_fault("cdn_upload", Fault::DropConnection, 1)
        .unwrap();
    let data = noise(10_000, 7);
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data.clone()),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(cdn_upload_calls(&env), 2);
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), &data[..]);
}

#[tokio::test]
async fn cdn_client_errors_are_not_retried() {
    let env = Env::start().await;
    env.sim
        .inject_fault(
            "cdn_upload",
            Fault::HttpStatus(400, "bad filekey".into()),
            1,
        )
        .unwrap();
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(b"x".to_vec()),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.is_cdn_rejected(), "expected CdnRejected, got {err:?}");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.message(), Some("bad filekey"));
    assert_eq!(cdn_upload_calls(&env), 1);
}

#[tokio::test]
async fn getuploadurl_failures_are_api_errors() {
    let env = Env::start().await;
    let err = upload(
        &env.api,
        &env.cdn,
        "nobody@im.wechat",
        UploadSource::bytes(b"x".to_vec()),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.is_upload_url_call(), "{err:?}");
    assert_eq!(cdn_upload_calls(&env), 0);
}

#[tokio::test]
async fn full_upload_url_from_the_server_is_used() {
    let sim = Simulator::builder()
        .upload_url_mode(UploadUrlMode::FullUrl)
        .start()
        .await
        .unwrap();
    let env = Env::with(sim);
    // A CDN base that does not exist: only the full URL can work.
    let options = wxlink_media::UploadOptions::with_cdn_base_url("http://127.0.0.1:9/none");
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(b"full url".to_vec()),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(round_trip(&env, &up).await.bytes.as_ref(), b"full url");
}

/// A `getuploadurl` that always points at a given full URL.
struct FixedUrl(String);

impl UploadUrlApi for FixedUrl {
    async fn get_upload_url(
        &self,
        request: &GetUploadUrlRequest,
    ) -> Result<GetUploadUrlResponse, wxlink_transport::Error> {
        // What the official client sends (docs/protocol.md, "Media upload").
        assert_eq!(request.no_need_thumb, Some(true));
        let aeskey = request.aeskey.as_ref().unwrap().expose_secret().to_owned();
        assert_eq!(aeskey.len(), 32);
        assert!(
            aeskey
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            request.filesize,
            Some(crypto::ciphertext_len(request.rawsize.unwrap()))
        );
        Ok(GetUploadUrlResponse {
            upload_full_url: Some(format!(" {} ", self.0)),
            ..GetUploadUrlResponse::default()
        })
    }
}

#[tokio::test]
async fn cdn_success_without_download_param_is_retried_then_reported() {
    let env = Env::start().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let server = TinyServer::start(move |s| {
        seen2.lock().unwrap().push(s);
        async move { respond(200, &[], "") }
    })
    .await;
    let api = FixedUrl(server.url("/c2c/upload?encrypted_query_param=p&filekey=k"));
    let data = noise(5000, 8);
    let err = upload(
        &api,
        &env.cdn,
        "someone@im.wechat",
        UploadSource::bytes(data.clone()),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.is_cdn_missing_param(), "{err:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for s in seen.iter() {
        assert_eq!(s.method, "POST");
        assert_eq!(
            s.path_and_query,
            "/c2c/upload?encrypted_query_param=p&filekey=k"
        );
        assert_eq!(s.body_len as u64, crypto::ciphertext_len(5000));
        assert_eq!(s.headers["content-type"], "application/octet-stream");
        // No iLink headers go to the CDN.
        assert!(s.headers.get("authorization").is_none());
        assert!(s.headers.get("ilink-app-id").is_none());
        assert!(s.headers.get("x-wechat-uin").is_none());
    }
}

#[tokio::test]
async fn client_error_message_falls_back_to_the_body() {
    let env = Env::start().await;
    let server = TinyServer::start(|_| async { respond(413, &[], "  too big for us ") }).await;
    let api = FixedUrl(server.url("/up"));
    let err = upload(
        &api,
        &env.cdn,
        "u",
        UploadSource::bytes(b"abc".to_vec()),
        &env.options(),
    )
    .await
    .unwrap_err();
    assert!(err.is_cdn_rejected(), "expected CdnRejected, got {err:?}");
    assert_eq!(
        (err.status(), err.message()),
        (Some(413), Some("too big for us"))
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn progress_reports_hashing_and_uploading_to_completion() {
    let env = Env::start().await;
    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let options = env
        .options()
        .progress(ProgressHook::new(move |p| sink.lock().unwrap().push(p)));
    let data = noise(2 * 1024 * 1024 + 1, 9);
    upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data.clone()),
        &options,
    )
    .await
    .unwrap();
    let reports = reports.lock().unwrap();
    let of = |phase| reports.iter().filter(move |p| p.phase == phase);
    let hashed = of(Phase::Hashing).next_back().unwrap();
    assert_eq!(
        (hashed.done, hashed.total),
        (data.len() as u64, Some(data.len() as u64))
    );
    let sent: Vec<_> = of(Phase::Uploading).collect();
    let total = crypto::ciphertext_len(data.len() as u64);
    assert!(sent.windows(2).all(|w| w[0].done <= w[1].done));
    assert!(sent.len() > 2);
    assert_eq!(sent.last().unwrap().done, total);
    assert!(sent.iter().all(|p| p.total == Some(total)));
}

/// A progress hook that keeps every report, and the reports it kept.
fn recording_hook() -> (ProgressHook, Arc<Mutex<Vec<Progress>>>) {
    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let hook = ProgressHook::new(move |p| sink.lock().unwrap().push(p));
    (hook, reports)
}

/// Checks what a progress bar would be fed during a download of
/// `ciphertext_len` bytes: only the downloading phase, from 0 up to the
/// whole ciphertext without ever going back, in several steps, with the
/// total the server announced (`None` when it announced none).
fn assert_download_progress(reports: &[Progress], ciphertext_len: u64, total: Option<u64>) {
    assert!(
        reports.iter().all(|p| p.phase == Phase::Downloading),
        "{reports:?}"
    );
    // A multi-MiB body arrives in many chunks, one report each.
    assert!(reports.len() > 3, "{reports:?}");
    assert_eq!(reports.first().unwrap().done, 0);
    assert!(
        reports.windows(2).all(|w| w[0].done <= w[1].done),
        "{reports:?}"
    );
    assert_eq!(reports.last().unwrap().done, ciphertext_len);
    assert!(reports.iter().all(|p| p.total == total), "{reports:?}");
}

#[tokio::test]
async fn progress_reports_downloading_to_the_full_ciphertext_size() {
    let env = Env::start().await;
    let data = noise(5 * 1024 * 1024 + 3, 19);
    let ciphertext_len = crypto::ciphertext_len(data.len() as u64);
    let item = env
        .sim
        .media_item(MediaKind::File, &data, KeyEncoding::Base64Hex)
        .unwrap();
    let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();

    // Into memory. The simulator announces the ciphertext length.
    let (hook, reports) = recording_hook();
    let mut options = DownloadOptions::default();
    options.progress = Some(hook);
    let got = download(&env.cdn, &inbound, &options).await.unwrap();
    assert!(got.bytes == data);
    assert_download_progress(
        &reports.lock().unwrap(),
        ciphertext_len,
        Some(ciphertext_len),
    );

    // Into a file: the same reports.
    let (hook, reports) = recording_hook();
    options.progress = Some(hook);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let file = download_to_file(&env.cdn, &inbound, &out, &options)
        .await
        .unwrap();
    assert_eq!(file.size, data.len() as u64);
    assert_download_progress(
        &reports.lock().unwrap(),
        ciphertext_len,
        Some(ciphertext_len),
    );
}

/// Serves one response of `body` with chunked transfer encoding, so no
/// length is announced, on a fresh connection per request.
async fn chunked_server(body: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/media", listener.local_addr().unwrap());
    let body = Arc::new(body);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                // Read the request head (a GET has no body).
                let mut head = Vec::new();
                let mut byte = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&byte[..n]),
                    }
                }
                let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for chunk in body.chunks(256 * 1024) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn download_progress_without_an_announced_length_has_no_total() {
    let key = AesKey::from_bytes([0x24; 16]);
    let data = noise(3 * 1024 * 1024 + 9, 20);
    let ciphertext = crypto::encrypt(&key, &data);
    let ciphertext_len = ciphertext.len() as u64;
    let (url, server) = chunked_server(ciphertext).await;
    let env = Env::start().await;
    let media = InboundMedia::new(MediaKind::File, url, Some(key));
    let (hook, reports) = recording_hook();
    let mut options = DownloadOptions::default();
    options.progress = Some(hook);
    let got = download(&env.cdn, &media, &options).await.unwrap();
    server.abort();
    assert!(got.bytes == data);
    assert_download_progress(&reports.lock().unwrap(), ciphertext_len, None);
}

#[tokio::test]
async fn every_inbound_key_encoding_downloads() {
    let env = Env::start().await;
    let silk = {
        let mut v = b"\x02#!SILK_V3".to_vec();
        v.extend(noise(3000, 10));
        v
    };
    // (kind, encoding the simulator uses, drop image_item.aeskey, encoding
    // the receiver must end up using, plaintext)
    let cases = [
        (
            MediaKind::Image,
            KeyEncoding::Hex,
            false,
            KeyEncoding::Hex,
            png_like(5000),
        ),
        // image_item.aeskey (hex) wins over media.aes_key ...
        (
            MediaKind::Image,
            KeyEncoding::Base64Raw,
            false,
            KeyEncoding::Hex,
            png_like(4000),
        ),
        // ... and without it the raw-byte base64 media key is used.
        (
            MediaKind::Image,
            KeyEncoding::Base64Raw,
            true,
            KeyEncoding::Base64Raw,
            png_like(4100),
        ),
        (
            MediaKind::Image,
            KeyEncoding::Base64Hex,
            true,
            KeyEncoding::Base64Hex,
            png_like(3000),
        ),
        (
            MediaKind::File,
            KeyEncoding::Base64Hex,
            false,
            KeyEncoding::Base64Hex,
            noise(70_000, 11),
        ),
        (
            MediaKind::File,
            KeyEncoding::Base64Raw,
            false,
            KeyEncoding::Base64Raw,
            noise(33, 12),
        ),
        (
            MediaKind::Video,
            KeyEncoding::Base64Hex,
            false,
            KeyEncoding::Base64Hex,
            noise(100_000, 13),
        ),
        (
            MediaKind::Voice,
            KeyEncoding::Base64Hex,
            false,
            KeyEncoding::Base64Hex,
            silk,
        ),
    ];
    for (kind, sent_as, drop_hex, encoding, data) in cases {
        let mut item = env.sim.media_item(kind, &data, sent_as).unwrap();
        if drop_hex {
            item.image_item.as_mut().unwrap().aeskey = None;
        }
        let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();
        assert_eq!(inbound.kind, kind);
        assert_eq!(inbound.key_encoding, Some(encoding), "{kind:?} {sent_as:?}");
        let got = download(&env.cdn, &inbound, &DownloadOptions::default())
            .await
            .unwrap();
        assert_eq!(got.bytes.as_ref(), &data[..], "{kind:?} {encoding:?}");
        match kind {
            MediaKind::Image => assert_eq!(got.mime, "image/png"),
            MediaKind::Voice => assert_eq!(got.mime, "audio/silk"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn truncated_download_is_a_typed_error() {
    let env = Env::start().await;
    let item = env
        .sim
        .media_item(MediaKind::File, &noise(50_000, 14), KeyEncoding::Base64Hex)
        .unwrap();
    let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();
    env.sim
        .inject_fault("cdn_download", Fault::TruncatedBody, 1)
        .unwrap();
    let err = download(&env.cdn, &inbound, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_truncated(), "{err:?}");
}

#[tokio::test]
async fn corrupt_wrong_length_and_wrong_key_downloads_are_typed_errors() {
    let key = AesKey::from_bytes([0x11; 16]);
    // One block that decrypts to zeros: a zero padding byte is invalid.
    let mut corrupt = crypto::encrypt(&key, &[0u8; 16]);
    corrupt.truncate(16);
    let good = crypto::encrypt(&key, b"some file contents");
    let (corrupt2, good2) = (corrupt.clone(), good.clone());
    let server = TinyServer::start(move |seen| {
        let (corrupt, good) = (corrupt2.clone(), good2.clone());
        async move {
            match seen.path_and_query.as_str() {
                "/corrupt" => respond(200, &[], corrupt),
                "/odd" => respond(200, &[], good[..good.len() - 3].to_vec()),
                "/good" => respond(200, &[], good),
                _ => respond(404, &[], "unknown media"),
            }
        }
    })
    .await;
    let env = Env::start().await;
    let opts = &DownloadOptions::default();
    let fetch = |path: &str, key: &AesKey| {
        let media = InboundMedia::new(MediaKind::File, server.url(path), Some(key.clone()));
        let cdn = env.cdn.clone();
        async move { download(&cdn, &media, opts).await }
    };
    let err = fetch("/corrupt", &key).await.unwrap_err();
    assert!(err.is_bad_padding(), "{err:?}");
    let err = fetch("/odd", &key).await.unwrap_err();
    assert!(err.bad_ciphertext_len() == Some(29), "{err:?}");
    // A wrong key garbles the padding. Pick one for which that is certain
    // (a random wrong key leaves valid padding about once in 256).
    let wrong = (1u8..=255)
        .map(|b| AesKey::from_bytes([b; 16]))
        .find(|k| *k != key && crypto::decrypt(k, &good).is_err())
        .unwrap();
    let err = fetch("/good", &wrong).await.unwrap_err();
    assert!(err.is_bad_padding(), "{err:?}");
    assert_eq!(
        fetch("/good", &key).await.unwrap().bytes.as_ref(),
        b"some file contents"
    );
    let err = fetch("/nothing", &key).await.unwrap_err();
    assert!(
        err.is_download_status()
            && err.status() == Some(404)
            && err.message() == Some("unknown media"),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_inbound_key_is_refused_without_showing_it() {
    let env = Env::start().await;
    let mut item = env
        .sim
        .media_item(MediaKind::File, b"abc", KeyEncoding::Base64Hex)
        .unwrap();
    let media = item.file_item.as_mut().unwrap().media.as_mut().unwrap();
    media.aes_key = Some(wxlink_proto::AesKeyText::new("c2VjcmV0LXNlY3JldA=="));
    let err = resolve_item(&item, &env.sim.cdn_base_url()).unwrap_err();
    assert!(err.is_invalid_key(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("c2VjcmV0LXNlY3JldA"));
}

#[tokio::test]
async fn oversize_downloads_are_refused_and_leave_no_file() {
    let env = Env::start().await;
    let item = env
        .sim
        .media_item(
            MediaKind::File,
            &noise(64 * 1024, 15),
            KeyEncoding::Base64Hex,
        )
        .unwrap();
    let inbound = resolve_item(&item, &env.sim.cdn_base_url()).unwrap();
    let small = DownloadOptions::with_max_bytes(10_000);
    let err = download(&env.cdn, &inbound, &small).await.unwrap_err();
    assert!(err.size_limit() == Some(10_000), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.bin");
    let err = download_to_file(&env.cdn, &inbound, &out, &small)
        .await
        .unwrap_err();
    assert!(err.size_limit().is_some(), "{err:?}");
    assert!(!out.exists());
    // Exactly at the cap is fine.
    let exact = DownloadOptions::with_max_bytes(64 * 1024);
    assert_eq!(
        download(&env.cdn, &inbound, &exact)
            .await
            .unwrap()
            .bytes
            .len(),
        64 * 1024
    );
}

#[tokio::test]
async fn digest_only_cdn_accepts_uploads_without_keeping_them() {
    let sim = Simulator::builder()
        .cdn_storage(CdnStorage::DigestOnly)
        .start()
        .await
        .unwrap();
    let env = Env::with(sim);
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(noise(1000, 16)),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(env.sim.uploads()[0].stored, Some("digest"));
    let inbound = resolve_item(&up.to_message_item(), &env.sim.cdn_base_url()).unwrap();
    let err = download(&env.cdn, &inbound, &DownloadOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.is_download_status() && err.status() == Some(404),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stalled_cdn_attempt_times_out_and_is_retried() {
    let env = Env::start().await;
    env.sim
        .inject_fault("cdn_upload", Fault::Delay(Duration::from_secs(5)), 2)
        .unwrap();
    let mut options = env.options();
    options.attempt_timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(noise(20_000, 17)),
        &options,
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(round_trip(&env, &up).await.bytes.len(), 20_000);
}

#[tokio::test]
async fn thumbnails_of_images_and_videos_download() {
    let env = Env::start().await;
    let cdn_base = env.sim.cdn_base_url();
    let thumb_png = png_like(2000);
    // The simulator stores a picture; its reference becomes the thumbnail.
    let stored = env
        .sim
        .media_item(MediaKind::Image, &thumb_png, KeyEncoding::Base64Raw)
        .unwrap();
    let stored_image = stored.image_item.unwrap();
    let thumb_media = stored_image.media.clone().unwrap();

    // An image whose thumbnail shares the image's hex key.
    let mut image = env
        .sim
        .media_item(MediaKind::Image, &png_like(9000), KeyEncoding::Hex)
        .unwrap();
    let img = image.image_item.as_mut().unwrap();
    img.aeskey = stored_image.aeskey.clone();
    img.thumb_media = Some(thumb_media.clone());
    let thumb = wxlink_media::resolve_thumbnail(&image, &cdn_base)
        .unwrap()
        .unwrap();
    assert!(thumb.thumbnail);
    let got = download(&env.cdn, &thumb, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(got.bytes.as_ref(), &thumb_png[..]);
    assert_eq!(got.mime, "image/png");

    // A video whose thumbnail carries its own key.
    let mut video = env
        .sim
        .media_item(MediaKind::Video, &noise(4000, 18), KeyEncoding::Base64Hex)
        .unwrap();
    video.video_item.as_mut().unwrap().thumb_media = Some(thumb_media);
    let thumb = wxlink_media::resolve_thumbnail(&video, &cdn_base)
        .unwrap()
        .unwrap();
    assert_eq!(thumb.kind, MediaKind::Image);
    let got = download(&env.cdn, &thumb, &DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!(got.bytes.as_ref(), &thumb_png[..]);

    // No thumbnail: nothing to resolve.
    let plain = env
        .sim
        .media_item(MediaKind::File, b"x", KeyEncoding::Base64Hex)
        .unwrap();
    assert!(
        wxlink_media::resolve_thumbnail(&plain, &cdn_base)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_upload_announcing_a_size_near_u64_max_is_refused_without_a_panic() {
    let env = Env::start().await;
    for rawsize in [u64::MAX, u64::MAX - 3, u64::MAX / 2] {
        let request = wxlink_proto::GetUploadUrlRequest {
            filekey: Some("00112233445566778899aabbccddeeff".into()),
            media_type: Some(wxlink_proto::UploadMediaType::File),
            to_user_id: Some(env.sim.user_id()),
            rawsize: Some(rawsize),
            rawfilemd5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            filesize: Some(wxlink_media::ciphertext_len(rawsize)),
            no_need_thumb: Some(true),
            aeskey: Some(wxlink_proto::AesKeyText::new(AesKey::random().to_hex())),
            ..wxlink_proto::GetUploadUrlRequest::default()
        };
        let resp = env
            .api
            .call::<wxlink_proto::GetUploadUrl>(&request)
            .await
            .unwrap();
        let url = wxlink_media::upload::upload_url(
            &resp,
            &env.sim.cdn_base_url(),
            "00112233445566778899aabbccddeeff",
        )
        .unwrap();
        // A 16-byte body against the huge announced size: refused, not a
        // crash of the server.
        let req = http::Request::post(url)
            .header("content-type", "application/octet-stream")
            .body(wxlink_transport::Body::from(vec![0u8; 16]))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(env.cdn.clone(), req)
            .await
            .unwrap();
        assert!(
            resp.status().is_client_error(),
            "{rawsize}: {}",
            resp.status()
        );
    }
    // The simulator still serves a normal upload.
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(noise(1000, 3)),
        &env.options(),
    )
    .await
    .unwrap();
    assert_eq!(round_trip(&env, &up).await.bytes.len(), 1000);
}
