//! Every QR login path the simulator scripts, through `login_with_qr` and
//! the step-wise `LoginSession`.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{WAIT, sim};
use wxlink_client::{
    AccountRecord, Error, LoginCallbacks, LoginOptions, LoginOutcome, LoginSession, LoginState,
    WxLinkClient, login_with_qr,
};
use wxlink_sim::{Fault, LoginScript, Simulator};
use wxlink_transport::{HttpsTransport, TransportOptions};

/// Fast options against the simulator.
fn options(sim: &Simulator) -> LoginOptions {
    LoginOptions::new()
        .base_url(sim.base_url())
        .poll_interval(Duration::from_millis(5))
        .deadline(Duration::from_secs(10))
}

/// Callbacks that record what they were told and answer pairing-code
/// requests from a list.
#[derive(Default)]
struct Recorder {
    qr_urls: Vec<String>,
    states: Vec<LoginState>,
    code_requests: Vec<bool>,
    codes: Vec<String>,
}

impl LoginCallbacks for &mut Recorder {
    fn on_qr(&mut self, url: &str) {
        self.qr_urls.push(url.to_owned());
    }

    fn on_status(&mut self, state: &LoginState) {
        self.states.push(state.clone());
    }

    fn verify_code(
        &mut self,
        retry: bool,
    ) -> impl std::future::Future<Output = Option<String>> + Send {
        self.code_requests.push(retry);
        let code = (!self.codes.is_empty()).then(|| self.codes.remove(0));
        std::future::ready(code)
    }
}

/// Logs in and checks that the new credentials work against the simulator.
async fn assert_usable(sim: &Simulator, outcome: LoginOutcome) -> AccountRecord {
    let LoginOutcome::Confirmed(result) = outcome else {
        panic!("expected new credentials, got {outcome:?}");
    };
    let record = result.to_account();
    assert_eq!(record.account_id.as_deref(), Some(sim.bot_id().as_str()));
    assert_eq!(record.token, sim.token());
    assert_eq!(record.base_url, sim.base_url());
    let client = WxLinkClient::from_account(&record).unwrap();
    client.send_text(sim.user_id(), "logged in").await.unwrap();
    let sent = sim.wait_for_sent(1, WAIT).await.unwrap();
    assert_eq!(sent[0].bot_id, result.account_id);
    record
}

#[tokio::test]
async fn confirm_path_reports_qr_and_statuses_and_returns_working_credentials() {
    let sim = sim().await;
    sim.script_login(LoginScript::confirm().user("carol@im.wechat"));
    let mut rec = Recorder::default();
    let outcome = login_with_qr(options(&sim), &mut rec).await.unwrap();
    let record = assert_usable(&sim, outcome).await;
    assert_eq!(record.user_id.as_deref(), Some("carol@im.wechat"));

    assert_eq!(rec.qr_urls.len(), 1);
    assert!(
        rec.qr_urls[0].contains("/_sim/qr?qrcode="),
        "{}",
        rec.qr_urls[0]
    );
    assert_eq!(rec.states[0], LoginState::Waiting);
    assert_eq!(rec.states[1], LoginState::Scanned);
    assert!(matches!(rec.states[2], LoginState::Confirmed(_)));
    // The QR code was fetched by POST without a token.
    let fetches = sim
        .wait_for_requests("get_bot_qrcode", 1, WAIT)
        .await
        .unwrap();
    assert_eq!(fetches[0].method, "POST");
    assert_eq!(fetches[0].auth, wxlink_sim::AuthSeen::Missing);
}

/// A transport that trusts the simulator's TLS root (for its redirect
/// listener) and ignores any proxy in the environment.
fn trusting_transport(sim: &Simulator) -> HttpsTransport {
    let mut transport_options = TransportOptions::default().proxy(None);
    transport_options
        .extra_root_certificates
        .push(sim.tls_root_der().to_vec());
    HttpsTransport::try_with_options(transport_options).unwrap()
}

/// Polls `session` until a final state, at most 20 times.
async fn poll_to_end(session: &mut LoginSession) -> Result<Vec<LoginState>, Error> {
    let mut states = Vec::new();
    for _ in 0..20 {
        let state = session.poll_once().await?;
        states.push(state.clone());
        if state.is_final() {
            break;
        }
    }
    Ok(states)
}

#[tokio::test]
async fn an_https_login_polls_the_redirect_host_over_https_and_completes() {
    let sim = sim().await;
    sim.script_login(LoginScript::redirect().user("dave@im.wechat"));
    // The simulator's TLS listener serves the whole API, so it can be the
    // https login base; its redirect names itself as a bare host.
    let opts = options(&sim)
        .base_url(sim.redirect_base_url())
        .client(WxLinkClient::builder().transport(trusting_transport(&sim)));
    let mut session = LoginSession::start(opts).await.unwrap();
    let states = poll_to_end(&mut session).await.unwrap();
    let Some(LoginState::Confirmed(result)) = states.last() else {
        panic!("the redirected login did not complete: {states:?}");
    };
    assert_eq!(result.user_id.as_deref(), Some("dave@im.wechat"));
    // `https://` + the bare host, the scheme of the login base.
    assert_eq!(
        session.poll_base_url(),
        format!("https://{}", sim.redirect_host())
    );
    assert!(sim.request_log().iter().any(|r| r.redirect_listener));
}

#[tokio::test]
async fn a_plain_http_loopback_login_polls_its_redirect_host_over_http_and_completes() {
    let sim = Simulator::builder()
        .hold(common::HOLD)
        .redirect_tls(false)
        .start()
        .await
        .unwrap();
    sim.script_login(LoginScript::redirect().user("erin@im.wechat"));
    let mut session = LoginSession::start(options(&sim)).await.unwrap();
    let states = poll_to_end(&mut session).await.unwrap();
    let Some(LoginState::Confirmed(result)) = states.last() else {
        panic!("the redirected login did not complete: {states:?}");
    };
    assert_eq!(
        session.poll_base_url(),
        format!("http://{}", sim.redirect_host())
    );
    let polls = sim
        .wait_for_requests("get_qrcode_status", 3, WAIT)
        .await
        .unwrap();
    assert!(!polls[0].redirect_listener);
    assert!(polls.iter().any(|p| p.redirect_listener));
    assert_usable(&sim, LoginOutcome::Confirmed(result.clone())).await;
}

#[tokio::test]
async fn a_plain_http_redirect_to_a_non_loopback_name_is_refused() {
    let sim = Simulator::builder()
        .hold(common::HOLD)
        .redirect_host("ilink-dc2.example")
        .start()
        .await
        .unwrap();
    sim.script_login(LoginScript::redirect());
    let mut session = LoginSession::start(options(&sim)).await.unwrap();
    let outcome = poll_to_end(&mut session).await;
    let err = match outcome {
        Err(e) => e,
        Ok(states) => match states.last() {
            Some(LoginState::Failed(e)) => e.clone(),
            other => panic!("expected a refusal, got {other:?}"),
        },
    };
    assert!(err.is_insecure_url(), "{err:?}");
    assert!(
        err.is_login() && err.insecure_host() == Some("ilink-dc2.example"),
        "{err:?}"
    );
    // The refused host was never polled; the plain base kept its polls.
    assert!(session.poll_base_url().starts_with(&sim.base_url()));
}

#[tokio::test]
async fn a_plain_http_base_off_the_machine_is_refused_unless_allowed() {
    let err = WxLinkClient::builder()
        .base_url("http://ilink.example:8080")
        .token(wxlink_proto::BotToken::new("t"))
        .build()
        .unwrap_err();
    assert!(
        !err.is_login() && err.insecure_host() == Some("ilink.example"),
        "{err:?}"
    );
    assert!(err.to_string().contains("ilink.example"));
    // An account file naming such a base is refused the same way.
    let record = AccountRecord::new(wxlink_proto::BotToken::new("t"), "http://10.0.0.7:80");
    assert!(
        WxLinkClient::from_account(&record)
            .unwrap_err()
            .is_insecure_url()
    );
    // Loopback and https are fine; the opt-in opens other hosts.
    for base in [
        "http://127.0.0.1:1",
        "http://localhost:1",
        "http://[::1]:1",
        "https://ilink.example",
    ] {
        WxLinkClient::builder()
            .base_url(base)
            .token(wxlink_proto::BotToken::new("t"))
            .build()
            .unwrap();
    }
    WxLinkClient::builder()
        .base_url("http://ilink.example:8080")
        .token(wxlink_proto::BotToken::new("t"))
        .allow_insecure_http(true)
        .build()
        .unwrap();
}

#[tokio::test]
async fn pairing_code_path_asks_again_after_a_wrong_code() {
    let sim = sim().await;
    sim.script_login(LoginScript::verify_code("482913", 3));
    let mut rec = Recorder {
        codes: vec!["000000".into(), "482913".into()],
        ..Recorder::default()
    };
    let outcome = login_with_qr(options(&sim), &mut rec).await.unwrap();
    assert_usable(&sim, outcome).await;
    assert_eq!(rec.code_requests, [false, true]);
    // The code travelled in the status poll's query string.
    let polls = sim
        .wait_for_requests("get_qrcode_status", 1, WAIT)
        .await
        .unwrap();
    assert!(polls.iter().any(|p| {
        p.query
            .as_deref()
            .is_some_and(|q| q.contains("verify_code=482913"))
    }));
}

#[tokio::test]
async fn blocked_pairing_refreshes_the_qr_code() {
    let sim = sim().await;
    sim.script_login(LoginScript::verify_code("482913", 1));
    // The second QR code takes the default path (confirm).
    let mut rec = Recorder {
        codes: vec!["111111".into()],
        ..Recorder::default()
    };
    let outcome = login_with_qr(options(&sim), &mut rec).await.unwrap();
    assert_usable(&sim, outcome).await;
    assert_eq!(rec.qr_urls.len(), 2);
    assert_ne!(rec.qr_urls[0], rec.qr_urls[1]);
    assert!(
        rec.states
            .iter()
            .any(|s| matches!(s, LoginState::Refreshed { .. }))
    );
}

#[tokio::test]
async fn no_pairing_code_ends_the_login() {
    let sim = sim().await;
    sim.script_login(LoginScript::verify_code("482913", 3));
    let err = login_with_qr(options(&sim), wxlink_client::login::NoCallbacks)
        .await
        .unwrap_err();
    assert!(err.is_verify_code_required(), "{err:?}");
}

#[tokio::test]
async fn three_expired_codes_fail_the_login() {
    let sim = sim().await;
    for _ in 0..3 {
        sim.script_login(LoginScript::expired());
    }
    let mut rec = Recorder::default();
    let err = login_with_qr(options(&sim), &mut rec).await.unwrap_err();
    assert!(
        err.is_login_expired() && err.qr_codes_shown() == Some(3),
        "{err:?}"
    );
    assert_eq!(rec.qr_urls.len(), 3);
    let fetches = sim
        .wait_for_requests("get_bot_qrcode", 3, WAIT)
        .await
        .unwrap();
    assert_eq!(fetches.len(), 3);
}

#[tokio::test]
async fn an_expired_code_is_replaced_and_the_login_continues() {
    let sim = sim().await;
    sim.script_login(LoginScript::expired());
    let mut rec = Recorder::default();
    let outcome = login_with_qr(options(&sim), &mut rec).await.unwrap();
    assert_usable(&sim, outcome).await;
    assert_eq!(rec.qr_urls.len(), 2);
}

#[tokio::test]
async fn a_known_local_token_means_already_connected() {
    let sim = sim().await;
    let outcome = login_with_qr(
        options(&sim).local_tokens([sim.token()]),
        wxlink_client::login::NoCallbacks,
    )
    .await
    .unwrap();
    assert_eq!(outcome, LoginOutcome::AlreadyConnected);
}

#[tokio::test]
async fn the_deadline_ends_a_login_nobody_scans() {
    let sim = sim().await;
    sim.script_login(LoginScript::confirm().step_delay(Duration::from_secs(5)));
    let started = Instant::now();
    let err = login_with_qr(
        options(&sim).deadline(Duration::from_secs(1)),
        wxlink_client::login::NoCallbacks,
    )
    .await
    .unwrap_err();
    assert!(err.is_login_timeout(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn failed_status_polls_count_as_waiting() {
    let sim = sim().await;
    sim.inject_fault(
        "get_qrcode_status",
        Fault::HttpStatus(524, "origin timeout".into()),
        2,
    )
    .unwrap();
    sim.inject_fault("get_qrcode_status", Fault::InvalidJson, 1)
        .unwrap();
    let mut rec = Recorder::default();
    let outcome = login_with_qr(options(&sim), &mut rec).await.unwrap();
    assert_usable(&sim, outcome).await;
    let waits = rec
        .states
        .iter()
        .filter(|s| **s == LoginState::Waiting)
        .count();
    assert!(waits >= 1);
}

#[tokio::test]
async fn step_wise_session_waits_for_a_submitted_code() {
    let sim = sim().await;
    sim.script_login(LoginScript::verify_code("7788", 3));
    let mut session = LoginSession::start(options(&sim)).await.unwrap();
    assert!(session.qr_url().contains(session.qrcode()));
    assert_eq!(session.poll_once().await.unwrap(), LoginState::Waiting);
    assert_eq!(
        session.poll_once().await.unwrap(),
        LoginState::NeedVerifyCode { retry: false }
    );
    // Until a code is submitted, polling does not reach the server.
    let before = sim.request_log().len();
    assert_eq!(
        session.poll_once().await.unwrap(),
        LoginState::NeedVerifyCode { retry: false }
    );
    assert_eq!(sim.request_log().len(), before);
    session.submit_verify_code("7788");
    assert_eq!(session.poll_once().await.unwrap(), LoginState::Scanned);
    let LoginState::Confirmed(result) = session.poll_once().await.unwrap() else {
        panic!("expected confirmation");
    };
    // A final state is returned again without polling.
    assert_eq!(
        session.poll_once().await.unwrap(),
        LoginState::Confirmed(result.clone())
    );
    let record: AccountRecord = result.into();
    assert_eq!(record.token, sim.token());
}

#[tokio::test]
async fn closure_callbacks_answer_the_pairing_code() {
    use std::sync::{Arc, Mutex};
    let sim = sim().await;
    sim.script_login(LoginScript::verify_code("5150", 3));
    let urls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&urls);
    let callbacks = wxlink_client::login::ClosureCallbacks::new()
        .on_qr(move |url| seen.lock().unwrap().push(url.to_owned()))
        .verify_code(|retry| async move { (!retry).then(|| "5150".to_owned()) });
    let outcome = login_with_qr(options(&sim), callbacks).await.unwrap();
    assert_usable(&sim, outcome).await;
    assert_eq!(urls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_status_poll_outwaits_the_servers_35_second_hold() {
    // The server holds a status poll for up to 35 s; a client timer of
    // exactly 35 s would race its answer. Every status poll gets the same
    // 40 s limit as the first `getupdates`.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = tower::service_fn({
        let seen = std::sync::Arc::clone(&seen);
        move |req: http::Request<wxlink_transport::Body>| {
            let meta = wxlink_transport::CallMeta::of(&req);
            let status_poll = req.uri().path().ends_with("/get_qrcode_status");
            if status_poll {
                seen.lock().unwrap().push(meta.timeout);
            }
            async move {
                let body = if status_poll {
                    r#"{"status":"confirmed","bot_token":"t","ilink_bot_id":"0123456789ab@im.bot","ilink_user_id":"u@im.wechat"}"#
                } else {
                    r#"{"qrcode":"q1","qrcode_img_content":"https://qr.example/q1"}"#
                };
                Ok::<_, std::convert::Infallible>(http::Response::new(
                    wxlink_transport::Body::from(body.as_bytes().to_vec()),
                ))
            }
        }
    });
    let options = LoginOptions::new()
        .base_url("http://127.0.0.1:9")
        .poll_interval(Duration::from_millis(1))
        .deadline(Duration::from_secs(600))
        .client(WxLinkClient::builder().transport(service));
    let mut recorder = Recorder::default();
    let outcome = login_with_qr(options, &mut recorder).await.unwrap();
    assert!(matches!(outcome, LoginOutcome::Confirmed(_)), "{outcome:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(wxlink_client::client::FIRST_POLL_TIMEOUT)]
    );
    assert_eq!(
        wxlink_client::client::FIRST_POLL_TIMEOUT,
        Duration::from_secs(40)
    );
}
