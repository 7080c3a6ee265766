//! The QR login state machine, every path.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{api_with, get, get_trusting, send, send_trusting};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use wxlink_sim::{Fidelity, LoginScript, Simulator};

const SESSION_TIMEOUT: &str = r#"{"errcode":-14,"errmsg":"session timeout"}"#;

/// `POST get_bot_qrcode` as official 2.3.1+ does; returns the qrcode.
async fn qrcode(sim: &Simulator, local_tokens: &[&str]) -> String {
    let url = format!("{}/ilink/bot/get_bot_qrcode?bot_type=3", sim.base_url());
    let body = json!({"local_token_list": local_tokens}).to_string();
    let r = send(
        Method::POST,
        &url,
        &[
            ("content-type", "application/json"),
            ("authorizationtype", "ilink_bot_token"),
        ],
        body,
    )
    .await
    .unwrap();
    let v = r.json();
    assert!(
        v["qrcode_img_content"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    v["qrcode"].as_str().unwrap().to_owned()
}

/// One status poll on `base` (`http://` or `https://`, trusting the
/// simulator's TLS root).
async fn status_at(sim: &Simulator, base: &str, qrcode: &str, code: Option<&str>) -> Value {
    let mut url = format!("{base}/ilink/bot/get_qrcode_status?qrcode={qrcode}");
    if let Some(c) = code {
        url.push_str(&format!("&verify_code={c}"));
    }
    let r = get_trusting(sim, &url).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

async fn status(sim: &Simulator, qrcode: &str, code: Option<&str>) -> Value {
    status_at(sim, &sim.base_url(), qrcode, code).await
}

fn check_confirmed(sim: &Simulator, v: &Value, user: &str) {
    assert_eq!(v["status"], "confirmed");
    let bot_id = v["ilink_bot_id"].as_str().unwrap();
    let (hex, tail) = bot_id.split_once('@').unwrap();
    assert_eq!(tail, "im.bot");
    assert!(
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{bot_id}"
    );
    assert_eq!(v["baseurl"], sim.base_url());
    assert_eq!(v["ilink_user_id"], user);
    assert!(!v["bot_token"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn happy_path_goes_wait_scaned_confirmed_and_the_new_token_works() {
    let sim = common::sim().await;
    let old_token = sim.token().expose_secret().to_owned();
    let q = qrcode(&sim, &[]).await;
    assert_eq!(status(&sim, &q, None).await, json!({"status": "wait"}));
    assert_eq!(status(&sim, &q, None).await, json!({"status": "scaned"}));
    let confirmed = status(&sim, &q, None).await;
    check_confirmed(&sim, &confirmed, &sim.user_id());
    let token = confirmed["bot_token"].as_str().unwrap();
    assert_ne!(token, old_token);
    assert_eq!(sim.token().expose_secret(), token);
    assert_eq!(sim.bot_id(), confirmed["ilink_bot_id"]);
    // Polling again repeats the same credentials.
    assert_eq!(status(&sim, &q, None).await, confirmed);
    // The new token opens the bot endpoints; the old one still works
    // while the one-binding switch is off.
    for t in [token, old_token.as_str()] {
        let r = api_with(
            &sim,
            "getconfig",
            Some(t),
            json!({"ilink_user_id": sim.user_id()}),
        )
        .await;
        assert_eq!(r.json()["ret"], 0);
    }
}

#[tokio::test]
async fn get_bot_qrcode_also_answers_a_get_without_body() {
    let sim = common::sim().await;
    let r = get(&format!(
        "{}/ilink/bot/get_bot_qrcode?bot_type=3",
        sim.base_url()
    ))
    .await;
    let v = r.json();
    assert!(v["qrcode"].is_string() && v["qrcode_img_content"].is_string());
    assert_eq!(
        status(&sim, v["qrcode"].as_str().unwrap(), None).await["status"],
        "wait"
    );
}

#[tokio::test]
async fn scaned_but_redirect_moves_progress_to_the_second_listener() {
    let sim = common::sim().await;
    sim.script_login(LoginScript::redirect().user("o9cq80redirected@im.wechat"));
    let q = qrcode(&sim, &[]).await;
    assert_eq!(status(&sim, &q, None).await["status"], "wait");
    let redirect = status(&sim, &q, None).await;
    assert_eq!(redirect["status"], "scaned_but_redirect");
    let host = redirect["redirect_host"].as_str().unwrap();
    assert_eq!(host, sim.redirect_host());
    assert!(!host.contains("://"), "a bare host, like the real server's");
    // The old host sees no progress any more.
    assert_eq!(status(&sim, &q, None).await["status"], "wait");
    // The client adds `https://` to the bare host (`docs/protocol.md`, `get_qrcode_status`).
    let new_base = format!("https://{host}");
    assert_eq!(sim.redirect_base_url(), new_base);
    assert_eq!(
        status_at(&sim, &new_base, &q, None).await["status"],
        "scaned"
    );
    let confirmed = status_at(&sim, &new_base, &q, None).await;
    check_confirmed(&sim, &confirmed, "o9cq80redirected@im.wechat");
    let redirected: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.redirect_listener)
        .collect();
    assert_eq!(redirected.len(), 2, "{redirected:?}");
}

#[tokio::test]
async fn the_redirect_listener_speaks_tls_with_the_exposed_root_only() {
    let sim = common::sim().await;
    let https = format!("https://{}", sim.redirect_host());
    let probe = |base: &str| format!("{base}/ilink/bot/get_qrcode_status?qrcode=nosuchcode");
    // Trusting the simulator's root, the TLS listener answers, also under
    // the name `localhost`, which the certificate covers too.
    let port = sim.redirect_host().rsplit_once(':').unwrap().1.to_owned();
    for base in [https.clone(), format!("https://localhost:{port}")] {
        let r = get_trusting(&sim, &probe(&base)).await;
        assert_eq!(r.status, StatusCode::OK, "{base}");
        assert!(r.json()["status"].is_string(), "{base}");
    }
    // The root is also in `/_sim/info`, as standard base64.
    let info = get(&format!("{}/_sim/info", sim.base_url())).await.json();
    let der = base64::engine::general_purpose::STANDARD
        .decode(info["tls_root_der_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(der, sim.tls_root_der());
    assert_eq!(info["redirect_tls"], true);
    assert_eq!(info["redirect_base_url"], https);

    // Plain HTTP to the TLS listener gets no HTTP answer at all.
    let plain = format!("http://{}", sim.redirect_host());
    let err = send(Method::GET, &probe(&plain), &[], "").await.err();
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("request failed")),
        "{err:?}"
    );
    // A client that trusts another simulator's root refuses the certificate.
    let other = common::sim().await;
    assert_ne!(other.tls_root_der(), sim.tls_root_der());
    let err = send_trusting(
        Some(other.tls_root_der()),
        Method::GET,
        &probe(&https),
        &[],
        "",
    )
    .await
    .err();
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("InvalidCertificate")),
        "{err:?}"
    );
    // None of the refused attempts reached the API.
    let on_redirect = sim
        .request_log()
        .iter()
        .filter(|r| r.redirect_listener)
        .count();
    assert_eq!(on_redirect, 2);
}

#[tokio::test]
async fn the_redirect_listener_can_speak_plain_http_instead() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .redirect_tls(false)
        .start()
        .await
        .unwrap();
    sim.script_login(LoginScript::redirect());
    let q = qrcode(&sim, &[]).await;
    status(&sim, &q, None).await;
    let v = status(&sim, &q, None).await;
    assert_eq!(v["redirect_host"], sim.redirect_host());
    let plain = format!("http://{}", sim.redirect_host());
    assert_eq!(sim.redirect_base_url(), plain);
    let r = get(&format!("{plain}/ilink/bot/get_qrcode_status?qrcode={q}")).await;
    assert_eq!(r.json()["status"], "scaned");
    let info = get(&format!("{}/_sim/info", sim.base_url())).await.json();
    assert_eq!(info["redirect_tls"], false);
}

#[tokio::test]
async fn the_redirect_host_can_be_named_explicitly() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .redirect_host("ilinkai-idc2.example.net")
        .start()
        .await
        .unwrap();
    sim.script_login(LoginScript::redirect());
    let q = qrcode(&sim, &[]).await;
    status(&sim, &q, None).await;
    let v = status(&sim, &q, None).await;
    assert_eq!(v["redirect_host"], "ilinkai-idc2.example.net");
    // The second listener keeps serving the login behind whatever host is named.
    assert_eq!(
        status_at(&sim, &sim.redirect_base_url(), &q, None).await["status"],
        "scaned"
    );
}

#[tokio::test]
async fn need_verifycode_accepts_the_right_code_after_a_wrong_one() {
    let sim = common::sim().await;
    sim.script_login(LoginScript::verify_code("482913", 3));
    let q = qrcode(&sim, &[]).await;
    assert_eq!(status(&sim, &q, None).await["status"], "wait");
    assert_eq!(status(&sim, &q, None).await["status"], "need_verifycode");
    assert_eq!(
        status(&sim, &q, None).await["status"],
        "need_verifycode",
        "no code yet"
    );
    assert_eq!(
        status(&sim, &q, Some("111111")).await["status"],
        "need_verifycode",
        "wrong code"
    );
    assert_eq!(status(&sim, &q, Some("482913")).await["status"], "scaned");
    check_confirmed(&sim, &status(&sim, &q, None).await, &sim.user_id());
}

#[tokio::test]
async fn too_many_wrong_codes_end_in_verify_code_blocked() {
    let sim = common::sim().await;
    sim.script_login(LoginScript::verify_code("482913", 2));
    let q = qrcode(&sim, &[]).await;
    status(&sim, &q, None).await;
    assert_eq!(status(&sim, &q, None).await["status"], "need_verifycode");
    assert_eq!(
        status(&sim, &q, Some("000001")).await["status"],
        "need_verifycode"
    );
    assert_eq!(
        status(&sim, &q, Some("000002")).await["status"],
        "verify_code_blocked"
    );
    // Blocked for good, even with the right code.
    assert_eq!(
        status(&sim, &q, Some("482913")).await["status"],
        "verify_code_blocked"
    );
}

#[tokio::test]
async fn expired_path_and_a_fresh_code_afterwards() {
    let sim = common::sim().await;
    sim.script_login(LoginScript::expired());
    let q1 = qrcode(&sim, &[]).await;
    assert_eq!(status(&sim, &q1, None).await["status"], "wait");
    assert_eq!(status(&sim, &q1, None).await["status"], "expired");
    assert_eq!(status(&sim, &q1, None).await["status"], "expired");
    // The refresh gets the default (happy) path.
    let q2 = qrcode(&sim, &[]).await;
    assert_ne!(q1, q2);
    status(&sim, &q2, None).await;
    status(&sim, &q2, None).await;
    assert_eq!(status(&sim, &q2, None).await["status"], "confirmed");
}

#[tokio::test]
async fn a_qr_code_older_than_its_ttl_reports_expired() {
    let sim = Simulator::builder()
        .hold(Duration::from_millis(100))
        .qr_ttl(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let q = qrcode(&sim, &[]).await;
    assert_eq!(status(&sim, &q, None).await["status"], "wait");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(status(&sim, &q, None).await["status"], "expired");
    assert_eq!(
        status(&sim, "no-such-code", None).await["status"],
        "expired"
    );
}

#[tokio::test]
async fn binded_redirect_when_scripted_or_when_a_local_token_is_live() {
    let sim = common::sim().await;
    sim.script_login(LoginScript::binded_redirect());
    let q = qrcode(&sim, &[]).await;
    status(&sim, &q, None).await;
    status(&sim, &q, None).await;
    let v = status(&sim, &q, None).await;
    assert_eq!(v, json!({"status": "binded_redirect"}), "no credentials");

    // Unscripted, a live token in local_token_list is recognised.
    let token = sim.token().expose_secret().to_owned();
    let q = qrcode(&sim, &[token.as_str()]).await;
    status(&sim, &q, None).await;
    status(&sim, &q, None).await;
    assert_eq!(status(&sim, &q, None).await["status"], "binded_redirect");
    // An unknown token does not count.
    let q = qrcode(&sim, &["stale-token"]).await;
    status(&sim, &q, None).await;
    status(&sim, &q, None).await;
    assert_eq!(status(&sim, &q, None).await["status"], "confirmed");
}

/// A simulator holding long polls (getupdates and status polls) for 5 s,
/// so a prompt answer can only come from a change.
async fn long_hold_sim() -> Simulator {
    Simulator::builder()
        .hold(Duration::from_secs(5))
        .start()
        .await
        .unwrap()
}

/// Polls the status of `qrcode` and says how long the answer took.
async fn timed_status(sim: &Simulator, qrcode: &str) -> (Value, Duration) {
    let started = Instant::now();
    let v = status(sim, qrcode, None).await;
    (v, started.elapsed())
}

#[tokio::test]
async fn a_status_poll_with_nothing_happening_is_held_for_the_hold_and_answers_wait() {
    // common::sim() holds polls for 200 ms.
    let sim = common::sim().await;
    sim.script_login(LoginScript::confirm().manual());
    let q = qrcode(&sim, &[]).await;
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v, json!({"status": "wait"}));
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Still nothing: held and `wait` again.
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v["status"], "wait");
    assert!(took >= Duration::from_millis(190), "{took:?}");

    // A scan that is further away than the hold looks the same.
    sim.script_login(LoginScript::confirm().step_delay(Duration::from_secs(30)));
    let q = qrcode(&sim, &[]).await;
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v["status"], "wait");
    assert!(took >= Duration::from_millis(190), "{took:?}");
}

#[tokio::test]
async fn the_qr_hold_can_differ_from_the_getupdates_hold() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(5))
        .qr_hold(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    assert_eq!(sim.config().qr_hold, Some(Duration::from_millis(100)));
    sim.script_login(LoginScript::confirm().manual());
    let q = qrcode(&sim, &[]).await;
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v["status"], "wait");
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_held_poll_answers_as_soon_as_a_timed_step_happens() {
    let sim = long_hold_sim().await;
    sim.script_login(LoginScript::confirm().step_delay(Duration::from_millis(150)));
    let q = qrcode(&sim, &[]).await;
    // The scan happens 150 ms after the code was issued; the poll, held
    // for up to 5 s, answers right then.
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v, json!({"status": "scaned"}));
    assert!(took >= Duration::from_millis(140), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The confirmation comes 150 ms after the scan.
    let (v, took) = timed_status(&sim, &q).await;
    check_confirmed(&sim, &v, &sim.user_id());
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A final status is repeated at once.
    let (again, took) = timed_status(&sim, &q).await;
    assert_eq!(again, v);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn advancing_the_login_answers_a_held_poll_at_once() {
    let sim = long_hold_sim().await;
    assert!(!sim.advance_login(), "no login in progress yet");
    sim.script_login(LoginScript::confirm().manual());
    let q = qrcode(&sim, &[]).await;
    let held = tokio::spawn({
        let sim = sim.clone();
        let q = q.clone();
        async move { timed_status(&sim, &q).await }
    });
    // Give the poll time to arrive and be held, then let the user scan.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "the poll is held");
    assert!(sim.advance_login());
    let (v, took) = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .expect("answered long before the 5 s hold")
        .unwrap();
    assert_eq!(v, json!({"status": "scaned"}));
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Through the control API: a step allowed before the poll is taken by
    // the next poll at once.
    let url = format!("{}/_sim/login_advance", sim.base_url());
    let r = send(Method::POST, &url, &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let (v, took) = timed_status(&sim, &q).await;
    check_confirmed(&sim, &v, &sim.user_id());
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The login is over: nothing left to advance.
    assert!(!sim.advance_login());
    let r = send(Method::POST, &url, &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("no QR login"));
}

#[tokio::test]
async fn a_manual_pairing_code_login_steps_only_when_told() {
    let sim = long_hold_sim().await;
    let base = sim.base_url();
    let r = send(
        Method::POST,
        &format!("{base}/_sim/login_script"),
        &[],
        json!({"path": "verify_code", "code": "2468", "manual": true}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let q = qrcode(&sim, &[]).await;
    sim.advance_login();
    assert_eq!(status(&sim, &q, None).await["status"], "need_verifycode");
    // The code is the user's input, answered at once without a step.
    let started = Instant::now();
    assert_eq!(status(&sim, &q, Some("2468")).await["status"], "scaned");
    assert!(started.elapsed() < Duration::from_secs(1));
    // The confirmation waits for the test.
    sim.advance_login();
    check_confirmed(&sim, &status(&sim, &q, None).await, &sim.user_id());
}

#[tokio::test]
async fn a_held_poll_sees_its_code_expire_or_the_simulator_reset() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(5))
        .qr_ttl(Duration::from_millis(150))
        .start()
        .await
        .unwrap();
    sim.script_login(LoginScript::confirm().manual());
    let q = qrcode(&sim, &[]).await;
    let (v, took) = timed_status(&sim, &q).await;
    assert_eq!(v["status"], "expired");
    assert!(took < Duration::from_secs(2), "{took:?}");

    let sim = long_hold_sim().await;
    sim.script_login(LoginScript::confirm().manual());
    let q = qrcode(&sim, &[]).await;
    let held = tokio::spawn({
        let sim = sim.clone();
        async move { timed_status(&sim, &q).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.reset();
    let (v, took) = tokio::time::timeout(Duration::from_secs(2), held)
        .await
        .expect("answered long before the 5 s hold")
        .unwrap();
    assert_eq!(v["status"], "expired", "the code is gone");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_new_binding_of_the_same_user_expires_the_old_token_when_switched_on() {
    let sim = common::sim().await;
    sim.set_fidelity(Fidelity::default().with_single_binding_per_user(true));
    let old = sim.token().expose_secret().to_owned();
    let q = qrcode(&sim, &[]).await;
    for _ in 0..3 {
        status(&sim, &q, None).await;
    }
    let new = sim.token().expose_secret().to_owned();
    assert_ne!(old, new);
    let r = api_with(
        &sim,
        "getupdates",
        Some(&old),
        json!({"get_updates_buf": ""}),
    )
    .await;
    assert_eq!(r.body, SESSION_TIMEOUT);
    let r = api_with(
        &sim,
        "getconfig",
        Some(&new),
        json!({"ilink_user_id": sim.user_id()}),
    )
    .await;
    assert_eq!(r.json()["ret"], 0);
    // Messages now go to the new bot.
    sim.inject_text(sim.user_id(), "hi new bot");
    assert_eq!(
        common::poll(&sim, "").await["msgs"][0]["to_user_id"],
        sim.bot_id()
    );
}
