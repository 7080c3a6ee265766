//! Seeded chaos: one seed and one scripted client give one fault log, and
//! the ground truth tells what the server lost from what the client lost.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{base_info, send};
use http::Method;
use serde_json::{Value, json};
use wxlink_sim::{Chaos, ChaosEvent, Fault, Simulator};

async fn chaotic(chaos: Chaos) -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(60))
        .omit_ret_probability(0.0)
        .accounts(3)
        .chaos(chaos)
        .start()
        .await
        .unwrap()
}

/// A raw call that reports a failed connection as `None`.
async fn call(sim: &Simulator, token: &str, endpoint: &str, body: Value) -> Option<Value> {
    let url = format!("{}/ilink/bot/{endpoint}", sim.base_url());
    let auth = format!("Bearer {token}");
    let r = send(
        Method::POST,
        &url,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
    .await
    .ok()?;
    serde_json::from_slice(&r.body).ok()
}

/// A scripted client: for each account in turn, inject, poll until the
/// queue is empty (de-duplicating by id) and answer each message. Returns
/// the ids it handled, per account.
async fn scripted_client(sim: &Simulator) -> Vec<Vec<u64>> {
    let mut handled = Vec::new();
    for account in sim.accounts() {
        let token = account.token().expose_secret().to_owned();
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for round in 0..6 {
            account
                .inject_text(account.user_id(), format!("message {round}"))
                .unwrap();
            for _ in 0..3 {
                let Some(v) =
                    call(sim, &token, "getupdates", json!({"base_info": base_info()})).await
                else {
                    continue;
                };
                for m in v["msgs"].as_array().into_iter().flatten() {
                    let id = m["message_id"].as_u64().unwrap();
                    if seen.insert(id) {
                        ids.push(id);
                        let reply = common::text_reply(
                            account.user_id(),
                            "ok",
                            m["context_token"].as_str(),
                        );
                        call(sim, &token, "sendmessage", reply).await;
                    }
                }
            }
        }
        handled.push(ids);
    }
    handled
}

fn chaos(seed: u64) -> Chaos {
    Chaos::new(seed)
        .endpoint(
            "getupdates",
            0.3,
            [
                Fault::LoseResponse,
                Fault::Duplicate(vec![Duration::from_millis(20)]),
                Fault::HttpStatus(524, "origin timeout".into()),
                Fault::TruncatedBody,
            ],
        )
        .all(
            0.3,
            [
                Fault::HttpStatus(502, "bad gateway".into()),
                Fault::DropConnection,
                Fault::too_many_requests(Duration::from_secs(1)),
            ],
        )
}

/// The log without anything that depends on timing.
fn shape(log: &[ChaosEvent]) -> Vec<(u64, &'static str, Option<String>, &'static str)> {
    log.iter()
        .map(|e| (e.request, e.endpoint, e.bot_id.clone(), e.kind))
        .collect()
}

#[tokio::test]
async fn one_seed_and_one_scripted_client_give_identical_fault_logs() {
    let a = chaotic(chaos(42)).await;
    scripted_client(&a).await;
    let b = chaotic(chaos(42)).await;
    scripted_client(&b).await;
    let (la, lb) = (a.chaos_log(), b.chaos_log());
    assert!(la.len() >= 10, "too few faults drawn: {}", la.len());
    assert_eq!(la, lb);
    assert!(la.iter().any(|e| e.endpoint == "getupdates"));
    assert!(la.iter().any(|e| e.endpoint == "sendmessage"));
    // Another seed gives another sequence.
    let c = chaotic(chaos(43)).await;
    scripted_client(&c).await;
    assert_ne!(shape(&la), shape(&c.chaos_log()));
}

#[tokio::test]
async fn the_ground_truth_separates_server_losses_from_client_losses() {
    let sim = chaotic(chaos(7)).await;
    let handled = scripted_client(&sim).await;
    let mut server_lost = 0;
    let mut duplicated = 0;
    for (account, ids) in sim.accounts().iter().zip(&handled) {
        let truth = account.ground_truth();
        assert_eq!(truth.injected(), 6);
        let verdict = truth.judge(ids.iter().copied());
        // The de-duplicating client lost nothing the server delivered and
        // handled nothing twice, whatever the chaos did.
        assert!(verdict.is_clean(), "{verdict:?}");
        server_lost += verdict.lost_by_server.len();
        duplicated += truth.duplicated().len();
        // What was lost by the server was never handled.
        for id in &verdict.lost_by_server {
            assert!(!ids.contains(id));
        }
        // A client that forgets one delivered message is caught.
        if let Some((_, rest)) = ids.split_first() {
            let v = truth.judge(rest.iter().copied());
            assert_eq!(v.lost_by_client, [ids[0]]);
        }
        // And one that handles a duplicate twice.
        if let Some(first) = ids.first() {
            let v = truth.judge(ids.iter().copied().chain([*first]));
            assert_eq!(v.handled_twice, [*first]);
        }
    }
    assert!(
        server_lost + duplicated > 0,
        "the chaos should have lost or duplicated something with seed 7"
    );
}

#[tokio::test]
async fn chaos_is_set_validated_and_stopped_at_run_time() {
    let sim = common::sim().await;
    assert!(
        sim.set_chaos(Some(Chaos::new(1).endpoint(
            "sendmesage",
            0.5,
            [Fault::DropConnection]
        )))
        .is_err_and(|e| e.is_invalid_input())
    );
    sim.set_chaos(Some(Chaos::new(1).endpoint(
        "getconfig",
        1.0,
        [Fault::unavailable(Duration::ZERO)],
    )))
    .unwrap();
    let body = json!({"ilink_user_id": sim.user_id()});
    assert_eq!(
        common::api(&sim, "getconfig", body.clone())
            .await
            .status
            .as_u16(),
        503
    );
    assert_eq!(sim.chaos_faults(), 1);
    sim.set_chaos(None).unwrap();
    assert_eq!(
        common::api(&sim, "getconfig", body.clone()).await.json()["ret"],
        0
    );
    // The control API does the same.
    let url = format!("{}/_sim/chaos", sim.base_url());
    let rules = json!({"seed": 5, "rules": [{"endpoint": "getconfig", "probability": 1.0,
                                            "faults": [{"kind": "http_status", "status": 418}]}]});
    send(Method::POST, &url, &[], rules.to_string())
        .await
        .unwrap();
    assert_eq!(
        common::api(&sim, "getconfig", body.clone())
            .await
            .status
            .as_u16(),
        418
    );
    let log: Value = common::get(&url).await.json();
    assert_eq!(log["faults"], 1);
    assert_eq!(log["log"][0]["kind"], "http_status");
    let bad = json!({"seed": 5, "rules": [{"probability": 2.0, "faults": [{"kind": "drop_connection"}]}]});
    let r = send(Method::POST, &url, &[], bad.to_string())
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    send(Method::POST, &url, &[], "{}").await.unwrap();
    assert_eq!(common::api(&sim, "getconfig", body).await.json()["ret"], 0);
}
