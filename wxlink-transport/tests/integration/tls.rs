//! HTTPS against a local rustls server: HTTP/2 or HTTP/1.1 chosen by ALPN,
//! an extra trusted root, and a TLS failure reported as a connect error.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wxlink_proto::{SendMessage, SendMessageRequest};
use wxlink_transport::{ApiClient, ApiConfig, HttpsTransport, RetryPolicy, TransportOptions};

const CERT: &[u8] = include_bytes!("../fixtures/cert.der");
const KEY: &[u8] = include_bytes!("../fixtures/key.der");

/// What the TLS server saw.
#[derive(Default)]
struct Seen {
    connections: usize,
    versions: Vec<http::Version>,
}

/// Starts a TLS server offering `alpn`; returns its URL and what it saw.
async fn tls_server(alpn: &[&[u8]]) -> (String, Arc<Mutex<Seen>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(CERT.to_vec())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(KEY.to_vec().into()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let versions = Arc::new(Mutex::new(Seen::default()));
    let seen = Arc::clone(&versions);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            seen.lock().unwrap().connections += 1;
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                    seen.lock().unwrap().versions.push(req.version());
                    async {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            br#"{"ret":0}"#,
                        ))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}", addr.port()), versions)
}

fn client(base: &str, trust_test_cert: bool) -> ApiClient {
    let mut options = TransportOptions::default();
    if trust_test_cert {
        options.extra_root_certificates.push(CERT.to_vec());
    }
    ApiClient::with_service(
        ApiConfig::default()
            .base_url(base)
            .retry(RetryPolicy::none()),
        HttpsTransport::try_with_options(options).unwrap(),
    )
}

#[tokio::test]
async fn https_negotiates_http2_by_alpn_and_reuses_the_connection() {
    let (base, versions) = tls_server(&[b"h2", b"http/1.1"]).await;
    let client = client(&base, true);
    for _ in 0..3 {
        client
            .call::<SendMessage>(&SendMessageRequest::default())
            .await
            .unwrap();
    }
    let seen = versions.lock().unwrap();
    assert_eq!(seen.versions, vec![http::Version::HTTP_2; 3]);
    assert_eq!(seen.connections, 1);
}

#[tokio::test]
async fn https_falls_back_to_http1_when_the_server_offers_only_that() {
    let (base, versions) = tls_server(&[b"http/1.1"]).await;
    client(&base, true)
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        versions.lock().unwrap().versions,
        vec![http::Version::HTTP_11]
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error_never_sent() {
    let (base, versions) = tls_server(&[b"h2", b"http/1.1"]).await;
    let err = client(&base, false)
        .call::<SendMessage>(&SendMessageRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.may_have_been_sent());
    assert!(versions.lock().unwrap().versions.is_empty());
}

#[test]
fn a_root_certificate_that_does_not_parse_is_refused() {
    let mut options = TransportOptions::default();
    options
        .extra_root_certificates
        .push(b"not a certificate".to_vec());
    assert!(HttpsTransport::try_with_options(options).is_err());
}
