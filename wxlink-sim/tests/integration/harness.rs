//! The plain client of `wxlink_sim::harness` against a running simulator.

use wxlink_sim::Simulator;
use wxlink_sim::harness::PlainClient;

#[tokio::test]
async fn get_returns_a_success_body_and_tells_the_failures_apart() {
    let sim = Simulator::builder().start().await.unwrap();
    let client = PlainClient::new();
    let body = client
        .get(&format!("{}/_sim/counts", sim.base_url()))
        .await
        .unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    let err = client
        .get(&format!("{}/_sim/no-such-control", sim.base_url()))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(404), "{err:?}");
    assert_eq!(
        err.to_string(),
        "http get answered 404: unknown control endpoint"
    );
    let err = client.get("https://127.0.0.1:1/").await.unwrap_err();
    assert!(err.is_http(), "{err:?}");
    let err = client.get("not a url").await.unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn send_returns_a_failing_status_with_its_body() {
    let sim = Simulator::builder().start().await.unwrap();
    let client = PlainClient::new();
    let request = http::Request::post(format!("{}/no-such-endpoint", sim.base_url()))
        .header("content-type", "application/json")
        .body(bytes::Bytes::from_static(b"{}"))
        .unwrap();
    // A 404 is an answer, not a failure of `send`.
    let (status, body) = client.send(request).await.unwrap();
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"not found");
    sim.shutdown().await;
}
