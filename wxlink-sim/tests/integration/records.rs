//! The bounded record logs: the newest entries are kept, the all-time
//! counts keep going, and the waiting helpers wait on the counts.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{api, base_info, get, send, text_reply};
use http::{Method, StatusCode};
use serde_json::json;
use wxlink_sim::{RecordCounts, Simulator};

/// A test simulator keeping `records` entries per record log and
/// `requests` request-log entries.
async fn bounded_sim(records: usize, requests: usize) -> Simulator {
    Simulator::builder()
        .hold(Duration::from_millis(200))
        .omit_ret_probability(0.0)
        .record_limit(records)
        .request_log_limit(requests)
        .start()
        .await
        .unwrap()
}

/// Sends `texts` to the default user through `sendmessage`, one by one.
async fn send_texts(sim: &Simulator, texts: &[String]) {
    let user = sim.user_id();
    for text in texts {
        let r = api(sim, "sendmessage", text_reply(&user, text, None)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json().get("errmsg").is_none(), "{:?}", r.body);
    }
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("message {i}")).collect()
}

#[tokio::test]
async fn records_since_a_count_stay_exact_once_the_log_is_full() {
    let sim = bounded_sim(4, 100).await;
    send_texts(&sim, &numbered(6)).await;
    // The log is full: its length no longer grows, so skipping the first
    // `len()` entries would find nothing new.
    let len_before = sim.sent_messages().len();
    let mark = sim.record_counts().sent.total;
    send_texts(&sim, &["new 1".to_owned(), "new 2".to_owned()]).await;
    assert_eq!(sim.sent_messages().len(), len_before);
    let new: Vec<String> = sim
        .sent_messages_since(mark)
        .iter()
        .map(|m| m.text().unwrap().to_owned())
        .collect();
    assert_eq!(new, ["new 1", "new 2"]);
    // More added than kept: what is kept.
    assert_eq!(sim.sent_messages_since(0).len(), 4);
    assert!(
        sim.sent_messages_since(sim.record_counts().sent.total)
            .is_empty()
    );

    // The other logs work the same way.
    let user = sim.user_id();
    let ticket = api(&sim, "getconfig", json!({"ilink_user_id": user}))
        .await
        .json()["typing_ticket"]
        .clone();
    for status in [1, 2, 1, 2, 1] {
        let body = json!({"ilink_user_id": user, "typing_ticket": ticket, "status": status, "base_info": base_info()});
        assert_eq!(api(&sim, "sendtyping", body).await.json()["ret"], 0);
    }
    let typing_mark = sim.record_counts().typing.total - 1;
    let last: Vec<i64> = sim
        .typing_calls_since(typing_mark)
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(last, [1]);
    let notify_mark = sim.record_counts().notify.total;
    api(&sim, "msg/notifystart", json!({"base_info": base_info()})).await;
    let notified = sim.notify_calls_since(notify_mark);
    assert_eq!(notified.len(), 1);
    assert!(notified[0].start);
    assert!(sim.uploads_since(0).is_empty());
}

#[tokio::test]
async fn the_sent_log_keeps_the_newest_messages_and_counts_them_all() {
    let sim = bounded_sim(5, 4).await;
    let texts = numbered(8);
    send_texts(&sim, &texts).await;

    let kept: Vec<String> = sim
        .sent_messages()
        .iter()
        .map(|m| m.text().unwrap().to_owned())
        .collect();
    assert_eq!(kept, texts[3..]);
    let counts = sim.record_counts();
    assert_eq!((counts.sent.total, counts.sent.kept), (8, 5));
    assert_eq!(counts.sent.dropped(), 3);

    // Waiting for the 8th message counts the dropped ones and returns at
    // once with what is kept; a 9th never came.
    let started = Instant::now();
    let waited = sim.wait_for_sent(8, Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(waited.len(), 5);
    assert_eq!(waited[0].text(), Some("message 3"));
    assert!(
        sim.wait_for_sent(9, Duration::from_millis(100))
            .await
            .is_err_and(|e| e.is_timeout())
    );

    // The request log has its own limit and per-endpoint totals.
    assert_eq!(sim.request_log().len(), 4);
    assert_eq!(counts.requests.total, 8);
    assert_eq!(counts.requests_by_endpoint.get("sendmessage"), Some(&8));
    let hits = sim
        .wait_for_requests("sendmessage", 8, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(hits.len(), 4);

    // The control API sees the same: the kept records, the totals, and a
    // wait for the 8th message that answers at once.
    let base = sim.base_url();
    let sent = get(&format!("{base}/_sim/sent")).await.json();
    assert_eq!(sent.as_array().unwrap().len(), 5);
    assert_eq!(
        sent[4]["msg"]["item_list"][0]["text_item"]["text"],
        "message 7"
    );
    let waited = get(&format!("{base}/_sim/sent?min=8&timeout_ms=5000")).await;
    assert_eq!(waited.status, StatusCode::OK);
    assert_eq!(waited.json().as_array().unwrap().len(), 5);
    let waited = get(&format!("{base}/_sim/sent?min=9&timeout_ms=50")).await;
    assert_eq!(waited.status, StatusCode::REQUEST_TIMEOUT);
    let counts = get(&format!("{base}/_sim/counts")).await.json();
    assert_eq!(counts["sent"], json!({"total": 8, "kept": 5}));
    assert_eq!(counts["requests"]["kept"], 4);
    assert_eq!(counts["requests_by_endpoint"]["sendmessage"], 8);
}

#[tokio::test]
async fn typing_and_notify_logs_are_bounded_the_same_way() {
    let sim = bounded_sim(2, 100).await;
    let user = sim.user_id();
    let ticket = api(&sim, "getconfig", json!({"ilink_user_id": user}))
        .await
        .json()["typing_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    for status in [1, 2, 1, 2, 1] {
        let body = json!({"ilink_user_id": user, "typing_ticket": ticket, "status": status,
                          "base_info": base_info()});
        assert_eq!(
            api(&sim, "sendtyping", body).await.json(),
            json!({"ret": 0})
        );
    }
    let statuses: Vec<i64> = sim.typing_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [2, 1]);
    let calls = sim
        .wait_for_typing(5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(calls.len(), 2);

    for endpoint in ["msg/notifystart", "msg/notifystop", "msg/notifystart"] {
        api(&sim, endpoint, json!({"base_info": base_info()})).await;
    }
    let starts: Vec<bool> = sim.notify_calls().iter().map(|c| c.start).collect();
    assert_eq!(starts, [false, true]);

    let counts = sim.record_counts();
    assert_eq!((counts.typing.total, counts.typing.kept), (5, 2));
    assert_eq!((counts.notify.total, counts.notify.kept), (3, 2));
    assert_eq!(counts.sent.total, 0);
}

#[tokio::test]
async fn reset_clears_the_counts_and_waits_start_again_from_zero() {
    let sim = bounded_sim(3, 3).await;
    send_texts(&sim, &numbered(4)).await;
    assert_eq!(sim.record_counts().sent.total, 4);

    sim.reset();
    assert_eq!(sim.record_counts(), RecordCounts::default());
    assert!(sim.sent_messages().is_empty());
    assert!(sim.request_log().is_empty());
    assert!(
        sim.wait_for_sent(1, Duration::from_millis(100))
            .await
            .is_err_and(|e| e.is_timeout())
    );

    send_texts(&sim, &["after reset".to_owned()]).await;
    let sent = sim.wait_for_sent(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text(), Some("after reset"));
    assert_eq!(sim.record_counts().requests_by_endpoint.len(), 1);
}

#[tokio::test]
async fn a_limit_of_zero_keeps_nothing_but_still_counts() {
    let sim = bounded_sim(0, 0).await;
    send_texts(&sim, &numbered(2)).await;
    assert!(sim.sent_messages().is_empty());
    assert!(sim.request_log().is_empty());
    let waited = sim.wait_for_sent(2, Duration::from_secs(5)).await.unwrap();
    assert!(waited.is_empty());
    let counts = sim.record_counts();
    assert_eq!((counts.sent.total, counts.sent.dropped()), (2, 2));
    assert_eq!(counts.requests.total, 2);
}

#[tokio::test]
async fn the_default_limit_is_ten_thousand_per_log() {
    let sim = common::sim().await;
    assert_eq!(sim.config().record_limit, 10_000);
    assert_eq!(sim.config().request_log_limit, 10_000);
}

#[tokio::test]
async fn the_binary_applies_the_record_limit() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlink-sim"))
        .args(["--record-limit", "many"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--record-limit"));

    let (mut child, info) =
        common::start_binary(&["--hold-ms", "100", "--record-limit", "2"]).await;
    let base = info["base_url"].as_str().unwrap();
    let auth = format!("Bearer {}", info["token"].as_str().unwrap());
    let user = get(&format!("{base}/_sim/info")).await.json()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for text in numbered(3) {
        let body = text_reply(&user, &text, None).to_string();
        let r = send(
            Method::POST,
            &format!("{base}/ilink/bot/sendmessage"),
            &[("authorization", &auth)],
            body,
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    let sent = get(&format!("{base}/_sim/sent")).await.json();
    assert_eq!(sent.as_array().unwrap().len(), 2);
    let counts = get(&format!("{base}/_sim/counts")).await.json();
    assert_eq!(counts["sent"], json!({"total": 3, "kept": 2}));
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
