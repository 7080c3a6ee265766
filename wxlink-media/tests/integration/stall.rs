//! A CDN that stops moving bytes: uploads and downloads end in a typed
//! timeout within their limits instead of hanging.
//!
//! The stalling peer is a raw TCP listener on 127.0.0.1 that reads the
//! request head and then neither reads nor writes another byte (upload), or
//! sends a head announcing more body than it ever sends (download).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wxlink_media::download::DownloadOptions;
use wxlink_media::{
    InboundMedia, MediaKind, TransferTimeouts, UploadOptions, UploadSource, UploadUrlApi, download,
    upload,
};
use wxlink_proto::{GetUploadUrlRequest, GetUploadUrlResponse};
use wxlink_transport::{HttpsTransport, TransportOptions};

/// A `getuploadurl` that points every upload at `url`.
struct FixedUrl(String);

impl UploadUrlApi for FixedUrl {
    fn get_upload_url(
        &self,
        _request: &GetUploadUrlRequest,
    ) -> impl Future<Output = Result<GetUploadUrlResponse, wxlink_transport::Error>> + Send {
        let resp = GetUploadUrlResponse {
            upload_full_url: Some(self.0.clone()),
            ..GetUploadUrlResponse::default()
        };
        async move { Ok(resp) }
    }
}

/// Starts a loopback listener whose connections are handed to `handle`;
/// returns its base URL.
async fn stalling_server<F, Fut>(handle: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    format!("http://{addr}")
}

/// Reads until the end of the request head and returns the bytes read.
async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    seen
}

fn direct() -> HttpsTransport {
    HttpsTransport::with_options(TransportOptions::default().proxy(None))
}

fn limits(idle_ms: u64) -> TransferTimeouts {
    TransferTimeouts::new(
        Some(Duration::from_millis(idle_ms)),
        Duration::from_secs(30),
        64 * 1024,
    )
}

#[tokio::test]
async fn an_upload_the_cdn_stops_reading_ends_stalled_within_the_idle_limit() {
    // The peer reads the head and then nothing: once the socket buffers are
    // full the body cannot move any more.
    let base = stalling_server(|mut stream| async move {
        read_head(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    })
    .await;
    let mut options = UploadOptions::with_cdn_base_url(&base);
    options.timeouts = limits(700);
    let started = Instant::now();
    let err = upload(
        &FixedUrl(format!("{base}/upload?x=1")),
        &direct(),
        "someone@im.wechat",
        // Far more than loopback socket buffers hold.
        UploadSource::bytes(vec![7u8; 64 * 1024 * 1024]),
        &options,
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        err.is_stalled() && err.time_limit() == Some(Duration::from_millis(700)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[tokio::test]
async fn an_upload_the_cdn_never_answers_ends_stalled() {
    // The peer reads everything it is sent and never answers.
    let base = stalling_server(|mut stream| async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let mut options = UploadOptions::with_cdn_base_url(&base);
    options.timeouts = limits(500);
    let err = upload(
        &FixedUrl(format!("{base}/upload?x=1")),
        &direct(),
        "someone@im.wechat",
        UploadSource::bytes(vec![1u8; 20_000]),
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.is_stalled(), "{err:?}");
}

#[tokio::test]
async fn an_upload_slower_than_the_minimum_rate_hits_the_overall_limit() {
    // The peer keeps reading, slowly, so the idle limit never fires; the
    // overall limit for 4 MiB at 1 MiB/s plus 1 s does.
    let base = stalling_server(|mut stream| async move {
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let mut options = UploadOptions::with_cdn_base_url(&base);
    options.timeouts = TransferTimeouts::new(
        Some(Duration::from_secs(10)),
        Duration::from_secs(1),
        1024 * 1024,
    );
    let err = upload(
        &FixedUrl(format!("{base}/upload?x=1")),
        &direct(),
        "someone@im.wechat",
        UploadSource::bytes(vec![3u8; 4 * 1024 * 1024]),
        &options,
    )
    .await
    .unwrap_err();
    assert!(
        err.is_timeout()
            && !err.is_stalled()
            && err.time_limit().is_some_and(
                |after| after > Duration::from_secs(5) && after < Duration::from_secs(6)
            ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_download_the_cdn_stops_sending_ends_stalled_and_leaves_no_file() {
    let base = stalling_server(|mut stream| async move {
        read_head(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1048576\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&[0u8; 4096]).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let media = InboundMedia::new(MediaKind::File, format!("{base}/download?p=1"), None);
    let mut options = DownloadOptions::default();
    options.timeouts = limits(600);
    let started = Instant::now();
    let err = download(&direct(), &media, &options).await.unwrap_err();
    assert!(err.is_stalled(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let err = wxlink_media::download_to_file(&direct(), &media, &path, &options)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!path.exists());
}

#[tokio::test]
async fn a_download_whose_head_never_comes_ends_stalled() {
    let base = stalling_server(|mut stream| async move {
        read_head(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let media = InboundMedia::new(MediaKind::File, format!("{base}/download?p=1"), None);
    let mut options = DownloadOptions::default();
    options.timeouts = limits(400);
    let err = download(&direct(), &media, &options).await.unwrap_err();
    assert!(err.is_stalled(), "{err:?}");
}
