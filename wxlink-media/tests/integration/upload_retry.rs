//! CDN uploads retry through the transport's retry policy: its attempt cap
//! and its budget, against the simulator's injected upload faults.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Env, noise};
use tower::retry::budget::TpsBudget;
use wxlink_media::{UploadSource, upload};
use wxlink_sim::Fault;

fn cdn_upload_calls(env: &Env) -> usize {
    env.sim
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("cdn_upload"))
        .count()
}

#[tokio::test]
async fn uploads_retry_within_the_budget_they_are_given() {
    let env = Env::start().await;
    // Nothing in reserve; every upload earns one retry.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(60), 0, 1.0));
    let mut options = env.options();
    options.retry_budget = Some(Arc::clone(&budget));
    let data = noise(64 * 1024, 11);

    // One failure: the retry the upload earned carries it through.
    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 1)
        .unwrap();
    upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data.clone()),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(cdn_upload_calls(&env), 2);

    // Two failures: three attempts are allowed, but after the first retry
    // the budget is spent, and the second failure is the caller's.
    env.sim
        .inject_fault("cdn_upload", Fault::HttpStatus(503, "busy".into()), 2)
        .unwrap();
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::bytes(data),
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.is_cdn_server_error(), "{err:?}");
    assert_eq!(err.status(), Some(503));
    assert_eq!(cdn_upload_calls(&env), 4);
}

#[tokio::test]
async fn a_spent_budget_ends_an_upload_at_the_first_failure() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.bin");
    std::fs::write(&path, noise(300 * 1024, 12)).unwrap();
    let mut options = env.options();
    options.retry_budget = Some(Arc::new(TpsBudget::new(Duration::from_secs(60), 0, 0.0)));
    env.sim
        .inject_fault("cdn_upload", Fault::DropConnection, 1)
        .unwrap();
    let err = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::path(&path),
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.is_http(), "{err:?}");
    assert_eq!(cdn_upload_calls(&env), 1);

    // The same fault with the upload's own budget is retried away.
    options.retry_budget = None;
    env.sim
        .inject_fault("cdn_upload", Fault::DropConnection, 1)
        .unwrap();
    upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::path(&path),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(cdn_upload_calls(&env), 3);
}
