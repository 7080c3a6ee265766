//! Secret audit of the transport's public types: configuration, client,
//! body, proxy and errors never show the bot token, a proxy password or a
//! secret that a failing server echoed in its body.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use wxlink_proto::{BotToken, GetConfig, GetConfigRequest};
use wxlink_transport::{ApiClient, ApiConfig, Body, BoxError, Proxy, RetryPolicy};

const TOKEN: &str = "BOT-MARKER-0c9e2";
const CTX: &str = "CTX-MARKER-51fa";
const TICKET: &str = "TICKET-MARKER-7d01";
const PROXY_PASSWORD: &str = "PROXY-PW-MARKER";

fn config() -> ApiConfig {
    ApiConfig::default()
        .base_url("http://127.0.0.1:9")
        .token(Some(BotToken::new(TOKEN)))
        .retry(RetryPolicy::none())
}

#[test]
fn config_client_body_and_proxy_debug_hide_secrets() {
    let client = ApiClient::new(config());
    let body = Body::from(format!(r#"{{"context_token":"{CTX}"}}"#));
    let proxy = Proxy::all(&format!("http://user:{PROXY_PASSWORD}@127.0.0.1:3128")).unwrap();
    for shown in [
        format!("{:?}", config()),
        format!("{client:?}"),
        format!("{body:?}"),
        format!("{proxy:?}"),
    ] {
        for secret in [TOKEN, CTX, PROXY_PASSWORD] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

#[tokio::test]
async fn errors_from_echoing_servers_hide_secrets() {
    for (status, body) in [
        (
            500u16,
            format!(r#"{{"errmsg":"boom","context_token":"{CTX}","typing_ticket":"{TICKET}"}}"#),
        ),
        (
            400,
            format!("Authorization: Bearer {TOKEN}\ncontext_token={CTX}"),
        ),
        (
            200,
            format!(r#"{{"ret":0,"typing_ticket":["{TICKET}"],"context_token": "{CTX}" "#),
        ),
        (
            200,
            format!(r#"{{"ret":-1,"errmsg":"bad","typing_ticket":"{TICKET}"}}"#),
        ),
    ] {
        let service = tower::service_fn(move |_req: http::Request<Body>| {
            let body = Bytes::from(body.clone());
            async move {
                Ok::<_, BoxError>(
                    http::Response::builder()
                        .status(status)
                        .body(Body::from(body))
                        .unwrap(),
                )
            }
        });
        let client = ApiClient::with_service(config(), tower::util::BoxCloneService::new(service));
        let err = client
            .call::<GetConfig>(&GetConfigRequest::default())
            .await
            .unwrap_err();
        let shown = format!("{err} | {err:?} | {:?}", err.excerpt());
        for secret in [TOKEN, CTX, TICKET] {
            assert!(!shown.contains(secret), "{status}: {secret} in {shown}");
        }
    }
}
