//! The proxy taken from environment variables (`Proxy::from_lookup`, which
//! `Proxy::from_env` and so the default transport use), read from a map
//! here so that no test touches the process environment.
#![allow(clippy::unwrap_used)]

use crate::common::{Reply, TestServer};

use http::Uri;
use wxlink_proto::{GetConfig, GetConfigRequest};
use wxlink_transport::{
    ApiClient, ApiConfig, HttpsTransport, Proxy, RetryPolicy, TransportOptions,
};

/// A lookup over `vars`, as `std::env::var` would answer.
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

fn proxy_from(vars: &[(&str, &str)]) -> Option<Proxy> {
    Proxy::from_lookup(lookup(vars))
}

fn uri(text: &str) -> Uri {
    text.parse().unwrap()
}

/// Calls `getconfig` on `base_url` over a transport with `proxy`.
async fn call(base_url: &str, proxy: Option<Proxy>) {
    let transport = HttpsTransport::with_options(TransportOptions::default().proxy(proxy));
    let config = ApiConfig::default()
        .base_url(base_url)
        .retry(RetryPolicy::none());
    ApiClient::with_service(config, transport)
        .call::<GetConfig>(&GetConfigRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn each_proxy_variable_routes_plain_http_through_the_proxy() {
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        let proxy = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
        let url = format!("http://{}", proxy.addr);
        call("http://ilink.invalid", proxy_from(&[(name, &url)])).await;
        let seen = proxy.requests();
        assert_eq!(seen.len(), 1, "{name}");
        // A forward proxy gets the absolute URL.
        assert_eq!(
            seen[0].uri.to_string(),
            "http://ilink.invalid/ilink/bot/getconfig",
            "{name}"
        );
    }
}

#[tokio::test]
async fn credentials_in_the_variable_become_proxy_authorization_and_stay_hidden() {
    let proxy = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    let url = format!("http://user:hunter2@{}", proxy.addr);
    let from_env = proxy_from(&[("http_proxy", &url)]).unwrap();
    let shown = format!("{from_env:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains(&proxy.addr.to_string()), "{shown}");
    call("http://ilink.invalid", Some(from_env)).await;
    assert_eq!(
        proxy.requests()[0].header("proxy-authorization"),
        Some("Basic dXNlcjpodW50ZXIy")
    );
}

#[tokio::test]
async fn the_upper_case_name_wins_and_a_blank_value_counts_as_unset() {
    let upper = TestServer::always(Reply::ok("{}")).await;
    let lower = TestServer::always(Reply::ok("{}")).await;
    let upper_url = format!("http://{}", upper.addr);
    let lower_url = format!("http://{}", lower.addr);

    let both = proxy_from(&[("HTTP_PROXY", &upper_url), ("http_proxy", &lower_url)]);
    call("http://ilink.invalid", both).await;
    assert_eq!((upper.requests().len(), lower.requests().len()), (1, 0));

    let blank_upper = proxy_from(&[("HTTP_PROXY", "  "), ("http_proxy", &lower_url)]);
    call("http://ilink.invalid", blank_upper).await;
    assert_eq!((upper.requests().len(), lower.requests().len()), (1, 1));
}

#[tokio::test]
async fn loopback_targets_are_reached_directly_past_an_environment_proxy() {
    let proxy = TestServer::always(Reply::ok("{}")).await;
    let server = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    let url = format!("http://{}", proxy.addr);
    let from_env = proxy_from(&[("HTTP_PROXY", &url), ("HTTPS_PROXY", &url)]);
    call(&server.url(), from_env.clone()).await;
    let by_name = format!("http://localhost:{}", server.addr.port());
    call(&by_name, from_env).await;
    assert_eq!(server.requests().len(), 2);
    assert!(proxy.requests().is_empty());

    // An explicit proxy is not second-guessed.
    call(&server.url(), Some(Proxy::all(&url).unwrap())).await;
    assert_eq!(server.requests().len(), 2);
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn no_variables_mean_a_direct_connection() {
    assert!(proxy_from(&[]).is_none());
    // NO_PROXY alone names no proxy.
    assert!(proxy_from(&[("NO_PROXY", "example.com")]).is_none());
    let server = TestServer::always(Reply::ok(r#"{"ret":0}"#)).await;
    call(&server.url(), proxy_from(&[])).await;
    assert_eq!(server.requests()[0].uri.to_string(), "/ilink/bot/getconfig");
}

#[test]
fn no_proxy_hosts_bypass_the_proxy() {
    let proxy = "http://proxy.invalid:3128";
    for name in ["NO_PROXY", "no_proxy"] {
        let p = proxy_from(&[
            ("ALL_PROXY", proxy),
            (name, "ilink.invalid, .corp.invalid,10.0.0.0/8,192.0.2.7"),
        ])
        .unwrap();
        for bypassed in [
            "https://ilink.invalid/",
            "http://ilink.invalid:8080/x",
            "https://sub.ilink.invalid/",
            "https://corp.invalid/",
            "https://a.b.corp.invalid/",
            "http://10.1.2.3/",
            "http://192.0.2.7:81/",
        ] {
            assert!(!p.applies_to(&uri(bypassed)), "{name}: {bypassed}");
        }
        for proxied in [
            "https://ilinkai.weixin.qq.com/",
            "https://notilink.invalid/",
            "http://11.1.2.3/",
            "http://192.0.2.8/",
        ] {
            assert!(p.applies_to(&uri(proxied)), "{name}: {proxied}");
        }
    }
    let everything = proxy_from(&[("HTTPS_PROXY", proxy), ("NO_PROXY", "*")]).unwrap();
    assert!(!everything.applies_to(&uri("https://ilinkai.weixin.qq.com/")));
}

#[test]
fn each_scheme_uses_its_own_variable_and_all_proxy_fills_the_gap() {
    let only_https = proxy_from(&[("https_proxy", "http://p.invalid:1")]).unwrap();
    assert!(only_https.applies_to(&uri("https://ilinkai.weixin.qq.com/")));
    assert!(!only_https.applies_to(&uri("http://ilinkai.weixin.qq.com/")));

    let only_http = proxy_from(&[("HTTP_PROXY", "p.invalid:1")]).unwrap();
    assert!(only_http.applies_to(&uri("http://ilinkai.weixin.qq.com/")));
    assert!(!only_http.applies_to(&uri("https://ilinkai.weixin.qq.com/")));

    let mixed = proxy_from(&[
        ("HTTP_PROXY", "http://p.invalid:1"),
        ("ALL_PROXY", "http://q.invalid:2"),
    ])
    .unwrap();
    assert!(mixed.applies_to(&uri("https://ilinkai.weixin.qq.com/")));
    let shown = format!("{mixed:?}");
    assert!(
        shown.contains("p.invalid:1") && shown.contains("q.invalid:2"),
        "{shown}"
    );
}

#[test]
fn unsupported_proxies_are_ignored() {
    assert!(proxy_from(&[("HTTPS_PROXY", "socks5://p.invalid:1080")]).is_none());
    assert!(proxy_from(&[("HTTPS_PROXY", "https://p.invalid:443")]).is_none());
    // The supported one of two still applies.
    let p = proxy_from(&[
        ("HTTPS_PROXY", "socks5://p.invalid:1080"),
        ("HTTP_PROXY", "http://p.invalid:3128"),
    ])
    .unwrap();
    assert!(p.applies_to(&uri("http://ilinkai.weixin.qq.com/")));
    assert!(!p.applies_to(&uri("https://ilinkai.weixin.qq.com/")));
}

#[test]
fn a_cgi_process_ignores_upper_case_http_proxy() {
    // Under CGI, HTTP_PROXY may come from a request's `Proxy` header.
    let cgi = [
        ("REQUEST_METHOD", "GET"),
        ("HTTP_PROXY", "http://evil.invalid:1"),
    ];
    assert!(proxy_from(&cgi).is_none());
    let lower = proxy_from(&[
        ("REQUEST_METHOD", "GET"),
        ("http_proxy", "http://p.invalid:3128"),
    ])
    .unwrap();
    assert!(lower.applies_to(&uri("http://ilinkai.weixin.qq.com/")));
}
