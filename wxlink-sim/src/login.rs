//! The QR login endpoints: `get_bot_qrcode` issues codes and
//! `get_qrcode_status` long-polls a code's progress through the state
//! machine of `qr`; a confirmed login creates a bot account.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wxlink_proto::{
    BotToken, GetBotQrcodeRequest, GetBotQrcodeResponse, GetQrcodeStatusResponse, QrStatus,
};

use crate::http::{Answer, Call, json, query_param, wait_shutdown};
use crate::qr::{Confirmed, LoginScript, step};
use crate::state::Shared;

/// `get_bot_qrcode` (GET or POST): issues a fresh QR code.
pub(crate) fn get_bot_qrcode(shared: &Arc<Shared>, call: Call) -> Answer {
    // A GET has no body; a POST carries `local_token_list`. Either may come
    // without a body at all, so a body that does not parse is ignored.
    let req: GetBotQrcodeRequest = serde_json::from_slice(&call.body).unwrap_or_default();
    let mut st = shared.state();
    let qrcode = crate::state::random_hex(&mut st.rng, 20);
    let bound = req
        .local_token_list
        .iter()
        .any(|t| st.bot_for(t.expose_secret()).is_some());
    let script = match st.login.scripts.pop_front() {
        Some(s) => s,
        None if bound => LoginScript::binded_redirect(),
        None => LoginScript::confirm(),
    };
    st.login.issue(qrcode.clone(), script, shared.config.qr_ttl);
    drop(st);
    let bot_type = query_param(call.query.as_deref(), "bot_type").unwrap_or_else(|| "3".into());
    let resp = GetBotQrcodeResponse {
        qrcode_img_content: Some(format!(
            "{}/_sim/qr?qrcode={qrcode}&bot_type={}",
            shared.base_url,
            crate::http::encode_component(&bot_type)
        )),
        qrcode: Some(qrcode),
        ..Default::default()
    };
    Answer::ok(json(&resp))
}

/// `get_qrcode_status`: a long poll answered as soon as the login has
/// news for this poll (see [`LoginScript`]'s pacing rules), or with the
/// current status once the QR hold passes or the simulator shuts down.
pub(crate) async fn get_qrcode_status(shared: &Arc<Shared>, call: Call) -> Answer {
    let qrcode = query_param(call.query.as_deref(), "qrcode").unwrap_or_default();
    let verify_code = query_param(call.query.as_deref(), "verify_code");
    let hold = shared.config.qr_hold.unwrap_or(shared.config.hold);
    let deadline = tokio::time::Instant::now() + hold;
    let mut shutdown = shared.shutdown.clone();
    loop {
        // Listen before looking, so a change between the look and the wait
        // is not missed.
        let changed = shared.login_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let last_look = tokio::time::Instant::now() >= deadline || *shutdown.borrow();
        let wake = match look(shared, &qrcode, verify_code.as_deref(), &call, last_look) {
            Look::Answer(answer) => return *answer,
            Look::Hold(wake) => wake,
        };
        let until = wake
            .map(tokio::time::Instant::from_std)
            .map_or(deadline, |w| w.min(deadline));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = wait_shutdown(&mut shutdown) => {}
        }
    }
}

/// What one look at a QR session decided.
enum Look {
    /// Answer the poll with this (boxed: a response is large beside an
    /// instant).
    Answer(Box<Answer>),
    /// Nothing to report yet: hold the poll, looking again at this time
    /// (when a step or the code's expiry is due) or on a change.
    Hold(Option<Instant>),
}

/// Looks at the session of `qrcode` once. With `last_look` (the hold has
/// passed) a poll with nothing new gets the current status instead of
/// being held again.
fn look(
    shared: &Arc<Shared>,
    qrcode: &str,
    verify_code: Option<&str>,
    call: &Call,
    last_look: bool,
) -> Look {
    let mut st = shared.state();
    let ttl = shared.config.qr_ttl;
    let default_user = st.first().map(|b| b.user_id.clone()).unwrap_or_default();
    let Some(session) = st.login.sessions.get_mut(qrcode) else {
        return Look::Answer(Box::new(Answer::refused(
            json(&status_only(QrStatus::Expired)),
            "unknown qrcode",
        )));
    };
    let finished = session.terminal.is_some() || session.confirmed.is_some();
    if !finished && session.created.elapsed() > ttl {
        session.terminal = Some(QrStatus::Expired);
    }
    let status = match step(session, verify_code, call.redirect, last_look) {
        Ok(status) => status,
        Err(wake) => {
            // An unfinished code also wakes its polls when it expires.
            let expiry = session
                .created
                .checked_add(ttl.saturating_add(Duration::from_millis(1)))
                .map_or(wake, |e| Some(wake.map_or(e, |w| w.min(e))));
            return Look::Hold(expiry);
        }
    };
    let mut resp = status_only(status.clone());
    if status == QrStatus::ScanedButRedirect {
        resp.redirect_host = Some(shared.redirect_host.clone());
    }
    if status == QrStatus::Confirmed {
        let confirmed = match &session.confirmed {
            Some(c) => c.clone(),
            None => {
                let user_id = session.script.user_id.clone().unwrap_or(default_user);
                let c = confirm(&mut st, user_id);
                if let Some(s) = st.login.sessions.get_mut(qrcode) {
                    s.confirmed = Some(c.clone());
                }
                c
            }
        };
        resp.bot_token = Some(BotToken::new(confirmed.token));
        resp.ilink_bot_id = Some(confirmed.bot_id);
        resp.baseurl = Some(shared.base_url.clone());
        resp.ilink_user_id = Some(confirmed.user_id);
    }
    drop(st);
    shared.touch();
    Look::Answer(Box::new(Answer::ok(json(&resp))))
}

fn status_only(status: QrStatus) -> GetQrcodeStatusResponse {
    GetQrcodeStatusResponse {
        status: Some(status),
        ..Default::default()
    }
}

/// Creates the account a confirmed login produces and makes it the one
/// the one-account API means.
fn confirm(st: &mut crate::state::State, user_id: String) -> Confirmed {
    if st.fidelity.single_binding_per_user {
        for b in st.bots.values_mut().filter(|b| b.user_id == user_id) {
            b.valid = false;
            b.inbound.notify_waiters();
        }
    }
    let id = st.create_bot(Some(user_id));
    st.current = id;
    match st.bot(id) {
        Some(bot) => Confirmed {
            token: bot.token.clone(),
            bot_id: bot.bot_id.clone(),
            user_id: bot.user_id.clone(),
        },
        None => Confirmed {
            token: String::new(),
            bot_id: String::new(),
            user_id: String::new(),
        },
    }
}
