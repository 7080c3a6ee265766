//! The QR login state machine (see `docs/protocol.md`, `get_qrcode_status`):
//! login scripts, QR sessions and how one poll moves a session along its
//! script. The handlers that serve the polls live in `login`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use wxlink_proto::QrStatus;

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
/// live token), one step per poll.
///
/// # Pacing
///
/// `get_qrcode_status` is a long poll (see `docs/protocol.md`, `get_qrcode_status`): a poll is
/// answered as soon as the login has news for it, and otherwise held until
/// the QR hold passes ([`SimConfig::qr_hold`](crate::SimConfig::qr_hold),
/// by default the `getupdates` hold), when it answers the current status
/// (`wait` before the scan). When the "user" acts is up to the script:
///
/// - **one step per poll** (the default, `step_delay` zero): the user acts
///   as fast as the client polls, so every poll answers at once with the
///   next status, the first with `wait`. Fast tests want this.
/// - **timed** ([`step_delay`](Self::step_delay)): the code starts at
///   `wait`, and each step (the scan, the confirmation, …) happens that
///   long after the previous one. A held poll answers the moment a step
///   happens; a hold shorter than the delay answers the current status.
/// - **manual** ([`manual`](Self::manual)): the code stays at `wait` (and
///   each later status) until the test calls
///   [`Simulator::advance_login`](crate::Simulator::advance_login) or
///   `POST /_sim/login_advance`; a poll held at that moment answers at once
///   with the new status.
///
/// Whatever the pacing, a poll is held rather than answered while nothing
/// can change for it: on the old host after `scaned_but_redirect`, and
/// while a pairing code is asked for and the poll carries none. A poll that
/// carries a pairing code is answered at once, and a final status
/// (`confirmed`, `expired`, …) is repeated at once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), wxlink_sim::SimError> {
/// use std::time::Duration;
/// use wxlink_sim::{LoginScript, Simulator};
///
/// let sim = Simulator::builder().hold(Duration::from_millis(200)).start().await?;
/// // The phone scans after 50 ms and confirms 50 ms later.
/// sim.script_login(LoginScript::confirm().step_delay(Duration::from_millis(50)));
/// // Or: nothing happens until the test says so.
/// sim.script_login(LoginScript::confirm().manual());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginScript {
    /// The path the login takes.
    pub path: LoginPath,
    /// The WeChat user who "scans"; `None` for the simulator's default user.
    pub user_id: Option<String>,
    /// How long each step of the user takes; zero (the default) moves one
    /// step per status poll. See the pacing rules above.
    pub step_delay: Duration,
    /// Steps happen only when the test calls
    /// [`Simulator::advance_login`](crate::Simulator::advance_login);
    /// `step_delay` is then ignored.
    pub manual: bool,
}

impl LoginScript {
    /// A script taking `path` as the default user, with no delay.
    pub fn new(path: LoginPath) -> Self {
        Self {
            path,
            user_id: None,
            step_delay: Duration::ZERO,
            manual: false,
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

    /// Makes each step of the user take `delay`: the code starts at
    /// `wait`, the scan happens `delay` after the code is issued and every
    /// later step `delay` after the one before. Zero moves one step per
    /// poll.
    pub fn step_delay(mut self, delay: Duration) -> Self {
        self.step_delay = delay;
        self
    }

    /// Makes the steps wait for
    /// [`Simulator::advance_login`](crate::Simulator::advance_login): the
    /// code stays at `wait`, and polls are held and answer `wait`, until
    /// the test lets the user scan.
    pub fn manual(mut self) -> Self {
        self.manual = true;
        self
    }

    /// How the steps of this script are paced.
    fn pace(&self) -> Pace {
        if self.manual {
            Pace::Manual
        } else if self.step_delay.is_zero() {
            Pace::PerPoll
        } else {
            Pace::Timed(self.step_delay)
        }
    }
}

/// When the scripted user takes the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// On every status poll.
    PerPoll,
    /// This long after the previous step.
    Timed(Duration),
    /// When the test calls `Simulator::advance_login`.
    Manual,
}

/// The credentials a confirmed login produced.
#[derive(Clone)]
pub(crate) struct Confirmed {
    pub(crate) token: String,
    pub(crate) bot_id: String,
    pub(crate) user_id: String,
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
pub(crate) struct QrSession {
    pub(crate) script: LoginScript,
    pub(crate) created: Instant,
    /// Steps taken so far. In per-poll pacing the first poll's `wait`
    /// counts as a step; timed and manual sessions start past it.
    step: u32,
    /// The status the code is at, answered when a held poll times out.
    current: QrStatus,
    /// When the next timed step is due.
    due: Instant,
    /// Steps [`LoginState::advance_newest`] allowed and no poll took yet.
    released: u32,
    /// `scaned_but_redirect` was answered: only the redirect host advances.
    redirected: bool,
    /// A pairing code is being asked for.
    code_pending: bool,
    /// The code was accepted.
    code_ok: bool,
    wrong_codes: u32,
    pub(crate) terminal: Option<QrStatus>,
    pub(crate) confirmed: Option<Confirmed>,
}

/// Login scripts and QR sessions.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    pub(crate) scripts: VecDeque<LoginScript>,
    pub(crate) sessions: HashMap<String, QrSession>,
}

impl LoginState {
    pub(crate) fn push_script(&mut self, script: LoginScript) {
        self.scripts.push_back(script);
    }

    /// Lets the user of the newest unfinished login take one more step
    /// now; `false` when no login is in progress. A manual session gets one
    /// step more, a timed one has its next step due at once, and a
    /// per-poll one takes its step on the next poll anyway.
    pub(crate) fn advance_newest(&mut self) -> bool {
        let newest = self
            .sessions
            .values_mut()
            .filter(|s| s.terminal.is_none() && s.confirmed.is_none())
            .max_by_key(|s| s.created);
        let Some(session) = newest else {
            return false;
        };
        match session.script.pace() {
            Pace::Manual => session.released = session.released.saturating_add(1),
            Pace::Timed(_) => session.due = Instant::now(),
            Pace::PerPoll => {}
        }
        true
    }

    /// Starts a session for a fresh QR code, first forgetting the codes
    /// older than `ttl`. Those would answer `expired`, as an unknown code
    /// does (or repeat a final status nobody polls for any more), so a
    /// simulator issuing codes for a long time keeps only the live ones.
    pub(crate) fn issue(&mut self, qrcode: String, script: LoginScript, ttl: Duration) {
        self.sessions.retain(|_, s| s.created.elapsed() <= ttl);
        let now = Instant::now();
        // A timed or manual code starts at `wait` with nothing to report:
        // its first step is the scan.
        let step = u32::from(script.pace() != Pace::PerPoll);
        let due = now.checked_add(script.step_delay).unwrap_or(now);
        self.sessions.insert(
            qrcode,
            QrSession {
                script,
                created: now,
                step,
                current: QrStatus::Wait,
                due,
                released: 0,
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

/// Decides a poll: `Ok(status)` to answer now, or `Err(wake)` to hold it
/// (until `wake`, when a timed step is due, or a change).
pub(crate) fn step(
    s: &mut QrSession,
    verify_code: Option<&str>,
    on_redirect_host: bool,
    last_look: bool,
) -> Result<QrStatus, Option<Instant>> {
    let now = Instant::now();
    let finished = s.terminal.is_some() || s.confirmed.is_some();
    // Nothing changes for a poll on the old host after the redirect, nor
    // for a poll without the pairing code that is asked for.
    let stuck = !finished
        && ((s.redirected && !on_redirect_host) || (s.code_pending && verify_code.is_none()));
    // A pairing code is the user's input, answered at once and not a
    // scripted step.
    let input = !finished && s.code_pending && verify_code.is_some();
    let pace = s.script.pace();
    let due = finished
        || stuck
        || input
        || match pace {
            Pace::PerPoll => true,
            Pace::Timed(_) => now >= s.due,
            Pace::Manual => s.released > 0,
        };
    if stuck && !last_look {
        return Err(None);
    }
    if !due {
        if last_look {
            return Ok(s.current.clone());
        }
        return Err(match pace {
            Pace::Timed(_) => Some(s.due),
            _ => None,
        });
    }
    let step_before = s.step;
    let status = advance(s, verify_code, on_redirect_host);
    if s.step != step_before {
        // The next step is due a step delay after this one.
        s.due = now.checked_add(s.script.step_delay).unwrap_or(now);
        if pace == Pace::Manual && !input {
            s.released = s.released.saturating_sub(1);
        }
    }
    // The old host's `wait` after a redirect is not the code's status.
    if !s.redirected || on_redirect_host {
        s.current = status.clone();
    }
    Ok(status)
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
