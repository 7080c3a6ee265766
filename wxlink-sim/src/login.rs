//! The QR login state machine (ILINK.md §4.1–4.3, §11.3): QR codes, scripted
//! progress through the status values, the redirect host and the
//! credentials `confirmed` returns.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wxlink_proto::{
    BotToken, GetBotQrcodeRequest, GetBotQrcodeResponse, GetQrcodeStatusResponse, QrStatus,
};

use crate::cdn::query_param;
use crate::server::{Answer, Call, json};
use crate::state::{Binding, Shared, random_bot_id, random_token};

/// Which way a scripted login goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginPath {
    /// `wait` → `scaned` → `confirmed`.
    Confirm,
    /// `wait` → `scaned_but_redirect` (with `redirect_host` naming the
    /// second listener); polls on the second listener then see `scaned` →
    /// `confirmed`, while polls that stay on the first keep seeing `wait`.
    ScanedButRedirect,
    /// `wait` → `need_verifycode`; a poll carrying `verify_code = code`
    /// continues with `scaned` → `confirmed`, a wrong code answers
    /// `need_verifycode` again, and `max_attempts` wrong codes answer
    /// `verify_code_blocked` for good.
    NeedVerifyCode {
        /// The pairing code the "phone" shows.
        code: String,
        /// Wrong codes allowed before `verify_code_blocked`.
        max_attempts: u32,
    },
    /// `wait` → `expired`.
    Expired,
    /// `wait` → `scaned` → `binded_redirect`: the bot is already bound to
    /// this client; no credentials are returned.
    BindedRedirect,
}

/// A script for the next QR code issued. Scripts queue up: each
/// `get_bot_qrcode` takes the next one; with none queued the login takes
/// [`LoginPath::Confirm`] (or `binded_redirect` when `local_token_list` holds a
/// live token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginScript {
    /// The path the login takes.
    pub path: LoginPath,
    /// The WeChat user who "scans"; `None` for the simulator's default user.
    pub user_id: Option<String>,
    /// How long each status poll is held before it answers, like a real
    /// long poll while the human reaches for the phone.
    pub step_delay: Duration,
}

impl LoginScript {
    /// A script taking `path` as the default user, with no delay.
    pub fn new(path: LoginPath) -> Self {
        Self {
            path,
            user_id: None,
            step_delay: Duration::ZERO,
        }
    }

    /// The happy path.
    pub fn confirm() -> Self {
        Self::new(LoginPath::Confirm)
    }

    /// The data-centre redirect path.
    pub fn redirect() -> Self {
        Self::new(LoginPath::ScanedButRedirect)
    }

    /// The pairing-code path.
    pub fn verify_code(code: impl Into<String>, max_attempts: u32) -> Self {
        Self::new(LoginPath::NeedVerifyCode {
            code: code.into(),
            max_attempts: max_attempts.max(1),
        })
    }

    /// The expired-QR path.
    pub fn expired() -> Self {
        Self::new(LoginPath::Expired)
    }

    /// The already-bound path.
    pub fn binded_redirect() -> Self {
        Self::new(LoginPath::BindedRedirect)
    }

    /// Sets the user who scans.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the hold of each status poll.
    pub fn step_delay(mut self, delay: Duration) -> Self {
        self.step_delay = delay;
        self
    }
}

/// The credentials a confirmed login produced.
#[derive(Clone)]
struct Confirmed {
    token: String,
    bot_id: String,
    user_id: String,
}

impl std::fmt::Debug for Confirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmed")
            .field("token", &wxlink_proto::secret::REDACTED)
            .field("bot_id", &self.bot_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// One QR code and its progress.
#[derive(Debug)]
struct QrSession {
    script: LoginScript,
    created: Instant,
    /// Status polls answered so far (on the right host).
    step: u32,
    /// `scaned_but_redirect` was answered: only the redirect host advances.
    redirected: bool,
    /// A pairing code is being asked for.
    code_pending: bool,
    /// The code was accepted.
    code_ok: bool,
    wrong_codes: u32,
    terminal: Option<QrStatus>,
    confirmed: Option<Confirmed>,
}

/// Login scripts and QR sessions.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    scripts: VecDeque<LoginScript>,
    sessions: HashMap<String, QrSession>,
}

impl LoginState {
    pub(crate) fn push_script(&mut self, script: LoginScript) {
        self.scripts.push_back(script);
    }

    /// Starts a session for a fresh QR code, first forgetting the codes
    /// older than `ttl`. Those would answer `expired`, as an unknown code
    /// does (or repeat a final status nobody polls for any more), so a
    /// simulator issuing codes for a long time keeps only the live ones.
    fn issue(&mut self, qrcode: String, script: LoginScript, ttl: Duration) {
        self.sessions.retain(|_, s| s.created.elapsed() <= ttl);
        self.sessions.insert(
            qrcode,
            QrSession {
                script,
                created: Instant::now(),
                step: 0,
                redirected: false,
                code_pending: false,
                code_ok: false,
                wrong_codes: 0,
                terminal: None,
                confirmed: None,
            },
        );
    }
}

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
        .any(|t| st.binding_for(t.expose_secret()).is_some());
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
            crate::cdn::encode_component(&bot_type)
        )),
        qrcode: Some(qrcode),
        ..Default::default()
    };
    Answer::ok(json(&resp))
}

/// `get_qrcode_status`: answers the session's next status.
pub(crate) async fn get_qrcode_status(shared: &Arc<Shared>, call: Call) -> Answer {
    let qrcode = query_param(call.query.as_deref(), "qrcode").unwrap_or_default();
    let verify_code = query_param(call.query.as_deref(), "verify_code");
    let delay = shared
        .state()
        .login
        .sessions
        .get(&qrcode)
        .map(|s| s.script.step_delay)
        .unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut st = shared.state();
    let ttl = shared.config.qr_ttl;
    let default_user = st
        .bindings
        .first()
        .map(|b| b.user_id.clone())
        .unwrap_or_default();
    let Some(session) = st.login.sessions.get_mut(&qrcode) else {
        return Answer::refused(json(&status_only(QrStatus::Expired)), "unknown qrcode");
    };
    if session.terminal.is_none() && session.confirmed.is_none() && session.created.elapsed() > ttl
    {
        session.terminal = Some(QrStatus::Expired);
    }
    let status = advance(session, verify_code.as_deref(), call.redirect);
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
                if let Some(s) = st.login.sessions.get_mut(&qrcode) {
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
    Answer::ok(json(&resp))
}

fn status_only(status: QrStatus) -> GetQrcodeStatusResponse {
    GetQrcodeStatusResponse {
        status: Some(status),
        ..Default::default()
    }
}

/// Moves a session one step along its script and returns the status to
/// answer.
fn advance(s: &mut QrSession, verify_code: Option<&str>, on_redirect_host: bool) -> QrStatus {
    if let Some(t) = &s.terminal {
        return t.clone();
    }
    if s.confirmed.is_some() {
        return QrStatus::Confirmed;
    }
    let step = s.step;
    let status = match s.script.path.clone() {
        LoginPath::Confirm => match step {
            0 => QrStatus::Wait,
            1 => QrStatus::Scaned,
            _ => QrStatus::Confirmed,
        },
        LoginPath::Expired => match step {
            0 => QrStatus::Wait,
            _ => QrStatus::Expired,
        },
        LoginPath::BindedRedirect => match step {
            0 => QrStatus::Wait,
            1 => QrStatus::Scaned,
            _ => QrStatus::BindedRedirect,
        },
        LoginPath::ScanedButRedirect => {
            if s.redirected && !on_redirect_host {
                // The old data centre no longer sees progress.
                return QrStatus::Wait;
            }
            match step {
                0 => QrStatus::Wait,
                1 => {
                    s.redirected = true;
                    QrStatus::ScanedButRedirect
                }
                2 => QrStatus::Scaned,
                _ => QrStatus::Confirmed,
            }
        }
        LoginPath::NeedVerifyCode { code, max_attempts } => {
            if s.code_pending {
                match verify_code {
                    Some(c) if c == code => {
                        s.code_pending = false;
                        s.code_ok = true;
                        s.step += 1;
                        return QrStatus::Scaned;
                    }
                    Some(_) => {
                        s.wrong_codes += 1;
                        if s.wrong_codes >= max_attempts {
                            s.terminal = Some(QrStatus::VerifyCodeBlocked);
                            return QrStatus::VerifyCodeBlocked;
                        }
                        return QrStatus::NeedVerifycode;
                    }
                    None => return QrStatus::NeedVerifycode,
                }
            }
            if s.code_ok {
                QrStatus::Confirmed
            } else {
                match step {
                    0 => QrStatus::Wait,
                    _ => {
                        s.code_pending = true;
                        QrStatus::NeedVerifycode
                    }
                }
            }
        }
    };
    s.step += 1;
    if matches!(status, QrStatus::Expired | QrStatus::BindedRedirect) {
        s.terminal = Some(status.clone());
    }
    status
}

/// Creates the binding a confirmed login produces and makes it current.
fn confirm(st: &mut crate::state::State, user_id: String) -> Confirmed {
    let bot_id = random_bot_id(&mut st.rng);
    let token = random_token(&mut st.rng, &bot_id);
    if st.fidelity.single_binding_per_user {
        for b in st.bindings.iter_mut().filter(|b| b.user_id == user_id) {
            b.valid = false;
        }
    }
    st.users.insert(user_id.clone());
    st.bindings.push(Binding {
        token: token.clone(),
        bot_id: bot_id.clone(),
        user_id: user_id.clone(),
        valid: true,
    });
    st.current = st.bindings.len() - 1;
    Confirmed {
        token,
        bot_id,
        user_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuing_a_code_forgets_the_codes_past_their_lifetime() {
        let mut login = LoginState::default();
        login.issue(
            "a".into(),
            LoginScript::confirm(),
            Duration::from_secs(3600),
        );
        std::thread::sleep(Duration::from_millis(2));
        login.issue(
            "b".into(),
            LoginScript::confirm(),
            Duration::from_secs(3600),
        );
        assert_eq!(login.sessions.len(), 2);
        std::thread::sleep(Duration::from_millis(2));
        login.issue("c".into(), LoginScript::confirm(), Duration::ZERO);
        assert_eq!(login.sessions.keys().collect::<Vec<_>>(), ["c"]);
    }
}
