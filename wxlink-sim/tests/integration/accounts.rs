//! Many bot accounts in one simulator: each with its own token, queue and
//! records, one poller per token counted, and the accounts API of the
//! library, the control endpoints and the standalone binary.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{api_with, base_info, send};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use wxlink_sim::{Fidelity, Simulator};

/// A simulator of `accounts` accounts that holds polls for 200 ms and
/// always sends `ret`.
async fn sim_with(accounts: usize, fidelity: Fidelity) -> Simulator {
    sim_held(Duration::from_millis(200), accounts, fidelity).await
}

/// [`sim_with`] with polls held for up to `hold`.
async fn sim_held(hold: Duration, accounts: usize, fidelity: Fidelity) -> Simulator {
    Simulator::builder()
        .hold(hold)
        .omit_ret_probability(0.0)
        .accounts(accounts)
        .fidelity(fidelity)
        .start()
        .await
        .unwrap()
}

async fn poll_with(sim: &Simulator, token: &str) -> Value {
    let r = api_with(
        sim,
        "getupdates",
        Some(token),
        json!({"get_updates_buf": "", "base_info": base_info()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

/// Waits (at most 2 s) until `n` polls of `account` are in flight.
async fn held_polls(account: &wxlink_sim::Account, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while account.poll_counts().in_flight < n {
        assert!(Instant::now() < deadline, "the poll never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn texts(v: &Value) -> Vec<String> {
    v["msgs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["item_list"][0]["text_item"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_thousand_accounts_each_receive_exactly_their_own_messages() {
    let sim = sim_with(1000, Fidelity::default()).await;
    let accounts = sim.accounts();
    assert_eq!(accounts.len(), 1000);
    let tokens: std::collections::HashSet<_> = accounts
        .iter()
        .map(|a| a.token().expose_secret().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1000, "every account has its own token");
    for (i, a) in accounts.iter().enumerate() {
        a.inject_text(a.user_id(), format!("for {i} #1")).unwrap();
        a.inject_text(a.user_id(), format!("for {i} #2")).unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, a) in accounts.iter().enumerate() {
        let sim = sim.clone();
        let token = a.token().expose_secret().to_owned();
        let bot_id = a.bot_id().to_owned();
        tasks.spawn(async move {
            let v = poll_with(&sim, &token).await;
            assert_eq!(texts(&v), [format!("for {i} #1"), format!("for {i} #2")]);
            for m in v["msgs"].as_array().unwrap() {
                assert_eq!(m["to_user_id"], bot_id.as_str());
            }
        });
        if tasks.len() >= 50 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(sim.pending_messages(), 0);
    for a in &accounts {
        let truth = a.ground_truth();
        assert_eq!(truth.injected(), 2);
        assert_eq!(truth.delivered().len(), 2);
        assert_eq!(a.concurrent_polls(), 0);
    }
}

#[tokio::test]
async fn concurrent_polls_counts_overlapping_polls_on_one_token_only() {
    let sim = sim_with(2, Fidelity::default()).await;
    let [a, b] = <[_; 2]>::try_from(sim.accounts()).unwrap();
    // Two overlapping polls on one token.
    let ta = a.token().expose_secret().to_owned();
    let (x, y) = tokio::join!(poll_with(&sim, &ta), poll_with(&sim, &ta));
    assert_eq!(x["ret"], 0);
    assert_eq!(y["ret"], 0);
    assert_eq!(a.concurrent_polls(), 1);
    assert_eq!(a.poll_counts().max_in_flight, 2);
    assert_eq!(a.poll_counts().in_flight, 0);
    // Polls on different tokens at the same time are no overlap.
    let tb = b.token().expose_secret().to_owned();
    let (p, q) = tokio::join!(poll_with(&sim, &ta), poll_with(&sim, &tb));
    assert_eq!((p["ret"].clone(), q["ret"].clone()), (json!(0), json!(0)));
    assert_eq!(a.concurrent_polls(), 1, "unchanged");
    assert_eq!(b.concurrent_polls(), 0);
    // One after the other is no overlap either.
    poll_with(&sim, &tb).await;
    assert_eq!(b.concurrent_polls(), 0);
}

#[tokio::test]
async fn with_newer_poll_wins_the_older_poll_answers_empty_at_once() {
    // Held for up to 10 s: answering at once is seconds apart from
    // answering at the end of the hold, whatever the machine's load.
    let sim = sim_held(
        Duration::from_secs(10),
        1,
        Fidelity::default().with_newer_poll_wins(true),
    )
    .await;
    let token = sim.token().expose_secret().to_owned();
    let older = {
        let sim = sim.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let v = poll_with(&sim, &token).await;
            (v, started.elapsed())
        })
    };
    held_polls(&sim.default_account(), 1).await;
    let newer = {
        let sim = sim.clone();
        let token = token.clone();
        tokio::spawn(async move { poll_with(&sim, &token).await })
    };
    let (v, took) = older.await.unwrap();
    assert!(texts(&v).is_empty());
    assert!(
        took < Duration::from_secs(5),
        "the older poll was held {took:?}"
    );
    sim.inject_text(sim.user_id(), "to the newer poll");
    assert_eq!(texts(&newer.await.unwrap()), ["to the newer poll"]);
    assert_eq!(sim.default_account().concurrent_polls(), 1);
}

#[tokio::test]
async fn records_counts_and_waits_are_per_account() {
    let sim = sim_with(2, Fidelity::default()).await;
    let [a, b] = <[_; 2]>::try_from(sim.accounts()).unwrap();
    // The one-account API means the first account.
    assert_eq!(sim.token(), a.token());
    assert_eq!(sim.bot_id(), a.bot_id());
    assert_eq!(sim.user_id(), a.user_id());
    let msg = b.inject_text(b.user_id(), "hi b").unwrap();
    assert_eq!(msg.message.from_user_id.as_deref(), Some(b.user_id()));
    let tb = b.token().expose_secret().to_owned();
    let reply = common::text_reply(
        b.user_id(),
        "from b",
        Some(msg.context_token.expose_secret()),
    );
    assert_eq!(
        api_with(&sim, "sendmessage", Some(&tb), reply).await.body,
        "{}"
    );
    let sent = b.wait_for_sent(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(sent[0].bot_id, b.bot_id());
    assert!(a.sent_messages().is_empty());
    assert!(
        a.wait_for_sent(1, Duration::from_millis(50))
            .await
            .is_err_and(|e| e.is_timeout())
    );
    assert_eq!(b.record_counts().sent.total, 1);
    assert_eq!(a.record_counts().sent.total, 0);
    assert_eq!(
        sim.record_counts().sent.total,
        1,
        "the simulator counts all"
    );
    // Users are per bot: b knows its owner, a does not know b's.
    let upload = |user: &str| {
        json!({"filekey": "k", "media_type": 3, "to_user_id": user, "rawsize": 1,
               "rawfilemd5": "0cc175b9c0f1b6a831c399e269772661", "filesize": 16,
               "no_need_thumb": true, "aeskey": "00112233445566778899aabbccddeeff"})
    };
    let ta = a.token().expose_secret().to_owned();
    let r = api_with(&sim, "getuploadurl", Some(&ta), upload(b.user_id())).await;
    assert_eq!(r.json()["ret"], -1);
    let r = api_with(&sim, "getuploadurl", Some(&tb), upload(b.user_id())).await;
    assert!(r.json()["upload_param"].is_string());
    assert_eq!(b.request_log().len(), 2);
    assert!(
        b.request_log()
            .iter()
            .all(|r| r.bot_id.as_deref() == Some(b.bot_id()))
    );
    assert_eq!(
        b.record_counts().requests_by_endpoint.get("sendmessage"),
        Some(&1)
    );
}

#[tokio::test]
async fn accounts_can_be_created_expired_and_deleted() {
    let sim = sim_with(1, Fidelity::default()).await;
    let extra = sim.create_accounts(2);
    assert_eq!(sim.accounts().len(), 3);
    let [x, y] = <[_; 2]>::try_from(extra).unwrap();
    x.expire().unwrap();
    let tx = x.token().expose_secret().to_owned();
    let r = api_with(&sim, "getupdates", Some(&tx), json!({})).await;
    assert_eq!(r.json()["errcode"], -14);
    assert!(!x.is_valid());
    let ty = y.token().expose_secret().to_owned();
    y.inject_text(y.user_id(), "queued").unwrap();
    y.delete().unwrap();
    assert_eq!(
        api_with(&sim, "getupdates", Some(&ty), json!({}))
            .await
            .json()["errcode"],
        -14
    );
    assert!(
        y.inject_text("u", "x")
            .is_err_and(|e| e.is_unknown_account())
    );
    assert!(sim.account(y.bot_id()).is_none());
    assert_eq!(sim.pending_messages(), 0);
    // A held poll ends with -14 the moment its account expires.
    let first = sim.default_account();
    let t = first.token().expose_secret().to_owned();
    let held = {
        let sim = sim.clone();
        tokio::spawn(async move { api_with(&sim, "getupdates", Some(&t), json!({})).await })
    };
    held_polls(&first, 1).await;
    first.expire().unwrap();
    assert_eq!(held.await.unwrap().json()["errcode"], -14);
    // A reset brings back the start accounts only.
    sim.reset();
    assert_eq!(sim.accounts().len(), 1);
    assert!(sim.default_account().is_valid());
    assert!(
        sim.default_account()
            .delete()
            .is_err_and(|e| e.is_invalid_input())
    );
}

#[tokio::test]
async fn the_control_api_manages_accounts_and_takes_a_bot_id() {
    let sim = sim_with(1, Fidelity::default()).await;
    let base = sim.base_url();
    let call = |method: Method, path: &str, body: Value| {
        let url = format!("{base}/_sim/{path}");
        async move { send(method, &url, &[], body.to_string()).await.unwrap() }
    };
    let created = call(Method::POST, "accounts", json!({"count": 2}))
        .await
        .json();
    assert_eq!(created.as_array().unwrap().len(), 2);
    let bot = created[1]["bot_id"].as_str().unwrap().to_owned();
    let token = created[1]["token"].as_str().unwrap().to_owned();
    let listed = call(Method::GET, "accounts", Value::Null).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let injected = call(
        Method::POST,
        &format!("inject/text?bot_id={bot}"),
        json!({"text": "via control"}),
    )
    .await
    .json();
    assert_eq!(injected["bot_id"], bot.as_str());
    assert_eq!(texts(&poll_with(&sim, &token).await), ["via control"]);
    let status = call(Method::GET, &format!("account?bot_id={bot}"), Value::Null)
        .await
        .json();
    assert_eq!(status["pending"], 0);
    assert_eq!(status["polls"]["concurrent_polls"], 0);
    assert_eq!(status["counts"]["requests"]["total"], 1);
    let truth = call(Method::GET, &format!("truth?bot_id={bot}"), Value::Null)
        .await
        .json();
    let fate = &truth["messages"][injected["message_id"].to_string()];
    assert_eq!(fate["delivered"], 1, "{truth}");
    call(
        Method::POST,
        &format!("accounts/expire?bot_id={bot}"),
        Value::Null,
    )
    .await;
    let r = api_with(&sim, "getupdates", Some(&token), json!({})).await;
    assert_eq!(r.json()["errcode"], -14);
    call(
        Method::POST,
        &format!("accounts/delete?bot_id={bot}"),
        Value::Null,
    )
    .await;
    let r = call(Method::GET, &format!("sent?bot_id={bot}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&r.body).contains("unknown account"));
}

#[tokio::test]
async fn the_binary_starts_many_accounts_and_writes_a_tokens_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.txt");
    let (mut child, info) = common::start_binary(&[
        "--accounts",
        "3",
        "--hold-ms",
        "100",
        "--tokens-file",
        file.to_str().unwrap(),
    ])
    .await;
    let accounts = info["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    assert_eq!(accounts[0]["token"], info["token"]);
    let written = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    let tokens: Vec<&str> = accounts
        .iter()
        .map(|a| a["token"].as_str().unwrap())
        .collect();
    assert_eq!(lines, tokens);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let base = info["base_url"].as_str().unwrap();
    for (a, token) in accounts.iter().zip(&tokens) {
        let url = format!(
            "{base}/_sim/inject/text?bot_id={}",
            a["bot_id"].as_str().unwrap()
        );
        send(
            Method::POST,
            &url,
            &[],
            json!({"text": "hello"}).to_string(),
        )
        .await
        .unwrap();
        let r = send(
            Method::POST,
            &format!("{base}/ilink/bot/getupdates"),
            &[("authorization", &format!("Bearer {token}"))],
            "{}",
        )
        .await
        .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["msgs"][0]["to_user_id"], a["bot_id"]);
    }
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_wxlink-sim"))
        .args(["--accounts", "0"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--accounts"));
    child.kill().await.unwrap();
}

#[tokio::test]
async fn poll_records_say_what_each_poll_carried_and_with_which_cursors() {
    let sim = sim_with(2, Fidelity::default()).await;
    let [a, b] = <[_; 2]>::try_from(sim.accounts()).unwrap();
    let first = a.inject_text(a.user_id(), "one").unwrap().message_id;
    let second = a.inject_text(a.user_id(), "two").unwrap().message_id;
    let ta = a.token().expose_secret().to_owned();
    let got = poll_with(&sim, &ta).await;
    let cursor = got["get_updates_buf"].as_str().unwrap().to_owned();
    // The next poll comes back with the cursor it was given and, with
    // nothing queued, carries nothing.
    let r = api_with(
        &sim,
        "getupdates",
        Some(&ta),
        json!({"get_updates_buf": cursor, "base_info": base_info()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let polls = a.polls();
    assert_eq!(polls.len(), 2);
    assert_eq!(polls[0].cursor_sent, "");
    assert_eq!(polls[0].cursor_returned, cursor);
    assert_eq!(polls[0].message_ids, [first, second]);
    assert!(!polls[0].answer_lost);
    assert!(polls[0].started <= polls[0].ended);
    assert_eq!(polls[1].cursor_sent, cursor);
    assert_eq!(
        polls[1].cursor_returned, cursor,
        "an empty answer keeps the cursor"
    );
    assert!(polls[1].message_ids.is_empty());
    // Another token's records are its own.
    assert!(b.polls().is_empty());
}
