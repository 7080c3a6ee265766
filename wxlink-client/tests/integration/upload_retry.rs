//! The client's CDN uploads retry through the same policy and budget as its
//! API calls.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{png_bytes, sim};
use tower::retry::budget::TpsBudget;
use wxlink_client::WxLinkClient;
use wxlink_client::client::RetryPolicy;
use wxlink_sim::{Fault, Simulator};

fn cdn_upload_calls(sim: &Simulator) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.endpoint == Some("cdn_upload"))
        .count()
}

#[tokio::test]
async fn a_cdn_upload_draws_on_the_clients_retry_budget() {
    let sim = sim().await;
    let spent = Arc::new(TpsBudget::new(Duration::from_secs(60), 0, 0.0));
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .retry(RetryPolicy::default().with_budget(spent))
        .build()
        .unwrap();
    sim.inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 1)
        .unwrap();
    let err = client
        .send_image_buffer(sim.user_id(), png_bytes(100))
        .await
        .unwrap_err();
    let media = err.media().expect("a media error");
    assert!(media.is_cdn_server_error(), "{err:?}");
    assert_eq!(media.status(), Some(503));
    assert_eq!(cdn_upload_calls(&sim), 1, "no retry on a spent budget");
    assert!(sim.sent_messages().is_empty());

    // A client with the default budget retries the same fault away.
    sim.inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 1)
        .unwrap();
    common::client(&sim)
        .send_image_buffer(sim.user_id(), png_bytes(100))
        .await
        .unwrap();
    assert_eq!(cdn_upload_calls(&sim), 3);
    assert_eq!(sim.sent_messages().len(), 1);
}
