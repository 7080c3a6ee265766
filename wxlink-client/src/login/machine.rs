//! The QR login state machine as pure logic, with no I/O and no clock of its
//! own.
//!
//! The I/O layer ([`LoginSession`](super::LoginSession)) feeds it what each
//! `get_qrcode_status` poll returned (or that the poll failed) and the
//! current time, and does what the returned [`Step`] says: poll again after a
//! delay, ask for a pairing code, fetch a new QR code or stop. Keeping the
//! rules here makes every path of docs/protocol.md, "QR login" testable without a
//! server.

use std::time::{Duration, Instant};

use wxlink_proto::BotToken;

use super::LoginResult;
use crate::error::LoginFailure;

/// What one status poll told us, reduced to what the machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Polled {
    /// `wait`, an unknown status, or a poll that failed (timeout, network
    /// error, non-2xx, bad JSON): docs/protocol.md, "QR login" treats all of them as `wait`.
    Wait,
    /// `scaned`.
    Scanned,
    /// `scaned_but_redirect`, with the bare host name if the server sent one.
    ScannedButRedirect(Option<String>),
    /// `need_verifycode`.
    NeedVerifyCode,
    /// `verify_code_blocked`.
    VerifyCodeBlocked,
    /// `expired`.
    Expired,
    /// `binded_redirect`.
    AlreadyBound,
    /// `confirmed`, with whatever credentials came along.
    Confirmed(Confirmation),
}

/// The fields of a `confirmed` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Confirmation {
    /// `bot_token`.
    pub(crate) bot_token: Option<BotToken>,
    /// `ilink_bot_id`.
    pub(crate) ilink_bot_id: Option<String>,
    /// `baseurl`.
    pub(crate) baseurl: Option<String>,
    /// `ilink_user_id`.
    pub(crate) ilink_user_id: Option<String>,
}

/// What the I/O layer must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Poll again after `delay`. `scanned` says whether the code has been
    /// scanned (for status reports).
    Poll {
        /// How long to sleep first.
        delay: Duration,
        /// True once the user has scanned the code.
        scanned: bool,
    },
    /// Ask the user for the pairing code shown on the phone, then call
    /// [`Machine::submit_verify_code`] and poll at once. `retry` is true when
    /// the previous code was wrong.
    NeedVerifyCode {
        /// True when a code was already sent and refused.
        retry: bool,
    },
    /// Fetch a new QR code from [`Machine::qr_base`], show it, and call
    /// [`Machine::qr_refreshed`].
    RefreshQr,
    /// The login succeeded.
    Confirmed(LoginResult),
    /// The bot is already bound to this client; keep the stored account.
    AlreadyConnected,
    /// The login failed for good.
    Failed(LoginFailure),
}

/// Tunables of the machine; [`super::LoginOptions`] fills them.
#[derive(Debug, Clone)]
pub(crate) struct MachineConfig {
    /// Where QR codes are fetched and status polling starts.
    pub(crate) base_url: String,
    /// The sleep between polls (1 s officially).
    pub(crate) poll_interval: Duration,
    /// How many QR codes may be shown in total (3 officially).
    pub(crate) max_qr_codes: u32,
    /// The overall deadline (480 s officially, at least 1 s).
    pub(crate) deadline: Duration,
    /// Whether plain `http://` off this machine is allowed for the redirect
    /// host and the confirmed base URL.
    pub(crate) allow_insecure_http: bool,
}

/// The login state machine of docs/protocol.md, "QR login".
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    config: MachineConfig,
    /// Where the next status poll goes; changes on `scaned_but_redirect`.
    poll_base: String,
    /// QR codes shown so far, the first one included.
    qr_codes: u32,
    /// The pairing code the user typed and we have not seen accepted yet.
    pending_code: Option<String>,
    /// True while we wait for the user to type a pairing code.
    awaiting_code: bool,
    /// True after the user scanned the current code.
    scanned: bool,
    /// When the login gives up.
    deadline_at: Instant,
}

impl Machine {
    /// Starts a machine for a QR code that was just fetched at `now`.
    pub(crate) fn new(mut config: MachineConfig, now: Instant) -> Self {
        let min = Duration::from_millis(wxlink_proto::consts::MIN_LOGIN_DEADLINE_MS);
        let deadline = config.deadline.max(min);
        config.deadline = deadline;
        Self {
            poll_base: config.base_url.clone(),
            qr_codes: 1,
            pending_code: None,
            awaiting_code: false,
            scanned: false,
            // A deadline too far to represent (`--timeout 10000000000000000000`,
            // `Duration::MAX`) means no deadline in practice: a century.
            deadline_at: instant_after(now, deadline),
            config,
        }
    }

    /// Where QR codes are fetched: always the login base, never a redirect
    /// host (docs/protocol.md, "Hosts and URL joining").
    pub(crate) fn qr_base(&self) -> &str {
        &self.config.base_url
    }

    /// Where the next status poll goes.
    pub(crate) fn poll_base(&self) -> &str {
        &self.poll_base
    }

    /// The pause between polls.
    pub(crate) fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    /// The pairing code to send with the next poll, if one is pending.
    pub(crate) fn verify_code(&self) -> Option<&str> {
        self.pending_code.as_deref()
    }

    /// True while a pairing code is asked for and not yet given.
    pub(crate) fn awaiting_verify_code(&self) -> bool {
        self.awaiting_code
    }

    /// How many QR codes have been shown, the first one included.
    pub(crate) fn qr_codes_shown(&self) -> u32 {
        self.qr_codes
    }

    /// True once the user has scanned the current code.
    #[cfg(test)]
    pub(crate) fn scanned(&self) -> bool {
        self.scanned
    }

    /// The time left before the deadline, zero once it has passed.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.deadline_at.saturating_duration_since(now)
    }

    /// The failure to report when the deadline has passed at `now`.
    pub(crate) fn check_deadline(&self, now: Instant) -> Option<LoginFailure> {
        (now >= self.deadline_at).then_some(LoginFailure::Timeout {
            after: self.config.deadline,
        })
    }

    /// Records the pairing code the user typed; the next poll sends it and
    /// goes out at once.
    pub(crate) fn submit_verify_code(&mut self, code: String) {
        self.pending_code = Some(code);
        self.awaiting_code = false;
    }

    /// Records that a new QR code is being shown. Status polling restarts at
    /// the login base: the new code was issued there, and a redirect belongs
    /// to the scan of the old code (wx-link's choice; the official client keeps
    /// the redirected host, and neither is known to be right: docs/protocol.md,
    /// "QR login").
    pub(crate) fn qr_refreshed(&mut self) {
        self.poll_base = self.config.base_url.clone();
        self.pending_code = None;
        self.awaiting_code = false;
        self.scanned = false;
    }

    /// Feeds one poll result observed at `now` and returns what to do next.
    pub(crate) fn on_polled(&mut self, polled: Polled, now: Instant) -> Step {
        let interval = self.config.poll_interval;
        let step = match polled {
            Polled::Wait => Step::Poll {
                delay: interval,
                scanned: self.scanned,
            },
            Polled::Scanned => {
                // The server accepted any pending pairing code.
                self.pending_code = None;
                self.scanned = true;
                Step::Poll {
                    delay: interval,
                    scanned: true,
                }
            }
            Polled::ScannedButRedirect(host) => {
                let scheme = scheme_of(&self.config.base_url);
                if let Some(base) = host.as_deref().and_then(|h| redirect_base(h, scheme)) {
                    if let Some(host) = self.insecure(&base) {
                        return Step::Failed(LoginFailure::InsecureUrl { host });
                    }
                    self.poll_base = base;
                }
                self.scanned = true;
                Step::Poll {
                    delay: interval,
                    scanned: true,
                }
            }
            Polled::NeedVerifyCode => {
                let retry = self.pending_code.take().is_some();
                self.awaiting_code = true;
                Step::NeedVerifyCode { retry }
            }
            Polled::VerifyCodeBlocked | Polled::Expired => self.count_refresh(),
            Polled::AlreadyBound => Step::AlreadyConnected,
            Polled::Confirmed(c) => self.confirm(c),
        };
        // A terminal answer stands even at the deadline; anything that would
        // keep the login going stops there.
        match step {
            Step::Poll { .. } | Step::NeedVerifyCode { .. } | Step::RefreshQr => {
                self.check_deadline(now).map_or(step, Step::Failed)
            }
            terminal => terminal,
        }
    }

    /// The host of `url` when it is plain HTTP off this machine and that is
    /// not allowed.
    fn insecure(&self, url: &str) -> Option<String> {
        if self.config.allow_insecure_http {
            return None;
        }
        crate::api::plain_http_host(url)
    }

    /// Counts one more QR code, failing once the limit is passed.
    fn count_refresh(&mut self) -> Step {
        self.pending_code = None;
        self.awaiting_code = false;
        if self.qr_codes >= self.config.max_qr_codes {
            return Step::Failed(LoginFailure::QrExpired {
                codes: self.qr_codes,
            });
        }
        self.qr_codes += 1;
        Step::RefreshQr
    }

    /// Checks a `confirmed` answer: both the bot id and the token are needed
    /// (docs/protocol.md, "QR login").
    fn confirm(&mut self, c: Confirmation) -> Step {
        let bot_id = c.ilink_bot_id.filter(|s| !s.trim().is_empty());
        let token = c.bot_token.filter(|t| !t.expose_secret().trim().is_empty());
        let (Some(account_id), Some(bot_token)) = (bot_id, token) else {
            return Step::Failed(LoginFailure::IncompleteConfirmation);
        };
        let base_url = c
            .baseurl
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.config.base_url.clone());
        if let Some(host) = self.insecure(&base_url) {
            return Step::Failed(LoginFailure::InsecureUrl { host });
        }
        Step::Confirmed(LoginResult {
            bot_token,
            account_id,
            base_url,
            user_id: c.ilink_user_id.filter(|s| !s.is_empty()),
        })
    }
}

/// `now + d`, or a century from now when that cannot be represented (a
/// deadline or interval of `Duration::MAX`, `--timeout
/// 10000000000000000000`): no deadline, in practice, and no overflow.
pub(crate) fn instant_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The scheme of the login base, `https` unless it is plainly `http`.
fn scheme_of(base: &str) -> &'static str {
    match base.trim().split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => "http",
        _ => "https",
    }
}

/// The polling base after a `scaned_but_redirect` to `host`, or `None` to
/// keep the current one.
///
/// `redirect_host` is a bare host name (`host` or `host:port`); the client
/// adds the scheme of the login base (docs/protocol.md, "Login redirects"):
/// an `https://` login polls `https://<redirect_host>`, and a plain-HTTP
/// test server polls its redirect host over `http://` (refused later, by
/// the caller, unless that host is loopback or insecure HTTP was allowed).
/// A host that already carries an `http://` or `https://` scheme (in any
/// case) is used as given rather than turned into `https://http://…`. A
/// trailing `/` is dropped; an empty or blank host keeps the current base.
pub(crate) fn redirect_base(host: &str, scheme: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() {
        return None;
    }
    let has_scheme = host.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    });
    if has_scheme {
        return Some(host.to_owned());
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://ilinkai.weixin.qq.com";

    fn machine(now: Instant) -> Machine {
        Machine::new(
            MachineConfig {
                base_url: BASE.to_owned(),
                poll_interval: Duration::from_secs(1),
                max_qr_codes: 3,
                deadline: Duration::from_secs(480),
                allow_insecure_http: false,
            },
            now,
        )
    }

    fn confirmation() -> Confirmation {
        Confirmation {
            bot_token: Some(BotToken::new("tok")),
            ilink_bot_id: Some("b0f5860fdecb@im.bot".into()),
            baseurl: Some("https://other.example".into()),
            ilink_user_id: Some("alice@im.wechat".into()),
        }
    }

    #[test]
    fn wait_scanned_confirmed_succeeds_with_the_returned_base() {
        let t = Instant::now();
        let mut m = machine(t);
        let one = Duration::from_secs(1);
        assert_eq!(
            m.on_polled(Polled::Wait, t),
            Step::Poll {
                delay: one,
                scanned: false
            }
        );
        assert_eq!(
            m.on_polled(Polled::Scanned, t),
            Step::Poll {
                delay: one,
                scanned: true
            }
        );
        let Step::Confirmed(r) = m.on_polled(Polled::Confirmed(confirmation()), t) else {
            panic!("expected success");
        };
        assert_eq!(r.bot_token.expose_secret(), "tok");
        assert_eq!(r.account_id, "b0f5860fdecb@im.bot");
        assert_eq!(r.base_url, "https://other.example");
        assert_eq!(r.user_id.as_deref(), Some("alice@im.wechat"));
    }

    #[test]
    fn missing_baseurl_falls_back_to_the_login_base() {
        let t = Instant::now();
        let mut m = machine(t);
        let c = Confirmation {
            baseurl: Some("  ".into()),
            ..confirmation()
        };
        let Step::Confirmed(r) = m.on_polled(Polled::Confirmed(c), t) else {
            panic!("expected success");
        };
        assert_eq!(r.base_url, BASE);
    }

    #[test]
    fn confirmed_needs_bot_id_and_token() {
        let t = Instant::now();
        for c in [
            Confirmation {
                ilink_bot_id: None,
                ..confirmation()
            },
            Confirmation {
                bot_token: None,
                ..confirmation()
            },
            Confirmation {
                bot_token: Some(BotToken::new(" ")),
                ..confirmation()
            },
        ] {
            assert_eq!(
                machine(t).on_polled(Polled::Confirmed(c), t),
                Step::Failed(LoginFailure::IncompleteConfirmation)
            );
        }
    }

    #[test]
    fn redirect_switches_the_polling_host_to_https() {
        let t = Instant::now();
        let mut m = machine(t);
        m.on_polled(Polled::ScannedButRedirect(Some("dc2.example".into())), t);
        assert_eq!(m.poll_base(), "https://dc2.example");
        assert_eq!(m.qr_base(), BASE);
        // A missing or blank host keeps the current one.
        m.on_polled(Polled::ScannedButRedirect(None), t);
        assert_eq!(m.poll_base(), "https://dc2.example");
        m.on_polled(Polled::ScannedButRedirect(Some(" ".into())), t);
        assert_eq!(m.poll_base(), "https://dc2.example");
    }

    fn plain_machine(base: &str, allow: bool, t: Instant) -> Machine {
        Machine::new(
            MachineConfig {
                base_url: base.to_owned(),
                poll_interval: Duration::from_secs(1),
                max_qr_codes: 3,
                deadline: Duration::from_secs(480),
                allow_insecure_http: allow,
            },
            t,
        )
    }

    #[test]
    fn a_plain_http_loopback_login_redirects_over_http() {
        let t = Instant::now();
        let mut m = plain_machine("http://127.0.0.1:4000", false, t);
        let step = m.on_polled(Polled::ScannedButRedirect(Some("127.0.0.1:4001".into())), t);
        assert!(matches!(step, Step::Poll { scanned: true, .. }), "{step:?}");
        assert_eq!(m.poll_base(), "http://127.0.0.1:4001");
        assert_eq!(m.qr_base(), "http://127.0.0.1:4000");
    }

    #[test]
    fn a_plain_http_redirect_off_the_machine_is_refused_unless_allowed() {
        let t = Instant::now();
        let mut m = plain_machine("http://127.0.0.1:4000", false, t);
        let step = m.on_polled(Polled::ScannedButRedirect(Some("dc2.example".into())), t);
        assert!(
            matches!(&step, Step::Failed(LoginFailure::InsecureUrl { host }) if host == "dc2.example"),
            "{step:?}"
        );
        // An explicit http:// host is refused the same way after an https login.
        let mut m = machine(t);
        let step = m.on_polled(
            Polled::ScannedButRedirect(Some("http://dc3.example".into())),
            t,
        );
        assert!(
            matches!(step, Step::Failed(LoginFailure::InsecureUrl { .. })),
            "{step:?}"
        );
        // Allowed explicitly.
        let mut m = plain_machine("http://127.0.0.1:4000", true, t);
        m.on_polled(Polled::ScannedButRedirect(Some("dc2.example".into())), t);
        assert_eq!(m.poll_base(), "http://dc2.example");
    }

    #[test]
    fn a_confirmed_plain_http_base_off_the_machine_is_refused() {
        let t = Instant::now();
        let mut m = machine(t);
        let mut c = confirmation();
        c.baseurl = Some("http://api.example".into());
        let step = m.on_polled(Polled::Confirmed(c), t);
        assert!(
            matches!(step, Step::Failed(LoginFailure::InsecureUrl { .. })),
            "{step:?}"
        );
        let mut c = confirmation();
        c.baseurl = Some("http://[::1]:9000".into());
        let step = m.on_polled(Polled::Confirmed(c), t);
        assert!(matches!(step, Step::Confirmed(_)), "{step:?}");
    }

    #[test]
    fn redirect_base_adds_the_login_scheme_to_a_bare_host_and_keeps_a_given_scheme() {
        assert_eq!(
            redirect_base("127.0.0.1:4001", "https").as_deref(),
            Some("https://127.0.0.1:4001")
        );
        assert_eq!(
            redirect_base("127.0.0.1:4001", "http").as_deref(),
            Some("http://127.0.0.1:4001")
        );
        assert_eq!(
            redirect_base(" ilinkai-idc2.example/ ", "https").as_deref(),
            Some("https://ilinkai-idc2.example")
        );
        assert_eq!(
            redirect_base("http://b/", "https").as_deref(),
            Some("http://b")
        );
        assert_eq!(
            redirect_base("HTTPS://b:8443", "http").as_deref(),
            Some("HTTPS://b:8443")
        );
        assert_eq!(redirect_base(" ", "https"), None);
        assert_eq!(redirect_base("", "https"), None);
        assert_eq!(scheme_of("HTTP://127.0.0.1"), "http");
        assert_eq!(scheme_of("https://h"), "https");
        assert_eq!(scheme_of("h"), "https");
    }

    #[test]
    fn three_codes_in_total_then_failure() {
        let t = Instant::now();
        let mut m = machine(t);
        assert_eq!(m.on_polled(Polled::Expired, t), Step::RefreshQr);
        m.qr_refreshed();
        assert_eq!(m.on_polled(Polled::VerifyCodeBlocked, t), Step::RefreshQr);
        m.qr_refreshed();
        assert_eq!(m.qr_codes_shown(), 3);
        assert_eq!(
            m.on_polled(Polled::Expired, t),
            Step::Failed(LoginFailure::QrExpired { codes: 3 })
        );
    }

    #[test]
    fn refresh_resets_the_polling_host() {
        let t = Instant::now();
        let mut m = machine(t);
        m.on_polled(Polled::ScannedButRedirect(Some("dc2.example".into())), t);
        assert_eq!(m.on_polled(Polled::Expired, t), Step::RefreshQr);
        m.qr_refreshed();
        assert_eq!(m.poll_base(), BASE);
        assert!(!m.scanned());
    }

    #[test]
    fn pairing_code_flow_with_a_wrong_first_code() {
        let t = Instant::now();
        let mut m = machine(t);
        m.on_polled(Polled::Scanned, t);
        assert_eq!(
            m.on_polled(Polled::NeedVerifyCode, t),
            Step::NeedVerifyCode { retry: false }
        );
        assert!(m.awaiting_verify_code());
        m.submit_verify_code("111111".into());
        assert_eq!(m.verify_code(), Some("111111"));
        // The server asks again: the code was wrong.
        assert_eq!(
            m.on_polled(Polled::NeedVerifyCode, t),
            Step::NeedVerifyCode { retry: true }
        );
        assert_eq!(m.verify_code(), None);
        m.submit_verify_code("482913".into());
        // Accepted: `scaned` clears the pending code.
        m.on_polled(Polled::Scanned, t);
        assert_eq!(m.verify_code(), None);
    }

    #[test]
    fn blocked_pairing_clears_the_code_and_refreshes() {
        let t = Instant::now();
        let mut m = machine(t);
        m.on_polled(Polled::NeedVerifyCode, t);
        m.submit_verify_code("1".into());
        assert_eq!(m.on_polled(Polled::VerifyCodeBlocked, t), Step::RefreshQr);
        assert_eq!(m.verify_code(), None);
    }

    #[test]
    fn already_bound_is_success_without_credentials() {
        let t = Instant::now();
        assert_eq!(
            machine(t).on_polled(Polled::AlreadyBound, t),
            Step::AlreadyConnected
        );
    }

    #[test]
    fn the_deadline_stops_a_waiting_login_but_not_a_confirmed_one() {
        let t = Instant::now();
        let mut m = machine(t);
        let late = t + Duration::from_secs(481);
        assert_eq!(
            m.on_polled(Polled::Wait, late),
            Step::Failed(LoginFailure::Timeout {
                after: Duration::from_secs(480)
            })
        );
        assert!(matches!(
            m.on_polled(Polled::Confirmed(confirmation()), late),
            Step::Confirmed(_)
        ));
        assert_eq!(m.remaining(late), Duration::ZERO);
        assert_eq!(m.remaining(t), Duration::from_secs(480));
    }

    #[test]
    fn deadline_has_a_one_second_floor() {
        let t = Instant::now();
        let m = Machine::new(
            MachineConfig {
                base_url: BASE.into(),
                poll_interval: Duration::ZERO,
                max_qr_codes: 3,
                deadline: Duration::from_millis(10),
                allow_insecure_http: false,
            },
            t,
        );
        assert_eq!(m.remaining(t), Duration::from_secs(1));
    }
}
