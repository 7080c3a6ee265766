//! The facade's one error type, [`Error`].
//!
//! The error is opaque: a private kind, which also holds the cause, behind
//! one shared pointer. Callers ask it questions instead of matching
//! variants: [`Error::is_session_expired`], [`Error::is_timeout`],
//! [`Error::api_status`], [`Error::may_have_been_sent`],
//! [`Error::is_retryable`], [`Error::rejection`], and for QR login and
//! account files [`Error::is_login_expired`] and [`Error::is_account_file`].
//! Failures of the layers below stay reachable, typed, through
//! [`Error::transport`] and [`Error::media`], and as
//! [`source`](std::error::Error::source).
//!
//! This module is the bottom of the crate: it names no other module but
//! [`reject`](crate::reject), so that every module may return [`Error`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wxlink_proto::ApiStatus;

use crate::reject::RejectionGuess;

/// Why a [`WxLinkClient`](crate::WxLinkClient) call, a QR login or an
/// account file failed.
///
/// Cheap to clone: clones share the cause. Neither `Display` nor `Debug`
/// shows a bot token, a context token or an AES key.
#[derive(Clone)]
pub struct Error {
    kind: Arc<Kind>,
}

/// The failure itself; private so that the set can grow and change.
#[derive(Debug)]
enum Kind {
    /// An iLink API call failed.
    Transport(wxlink_transport::Error),
    /// Reading, encrypting, uploading or downloading media failed.
    Media(wxlink_media::Error),
    /// No bot token, or a blank one.
    MissingToken,
    /// The text to send is empty (`docs/protocol.md`, sending text).
    EmptyText,
    /// A plain `http://` base URL on another host; nothing was sent.
    InsecureBaseUrl { host: String },
    /// An unusable argument; the text says which and why.
    InvalidArgument(String),
    /// `getconfig` gave no typing ticket for this user.
    NoTypingTicket,
    /// A QR login failed.
    Login(LoginFailure),
    /// Reading or writing an account file failed.
    AccountFile { op: &'static str, source: FileCause },
    /// The server refused a native voice message.
    VoiceRejected(Error),
    /// `sendmessage` answered `-3`: the recipient is unknown as written.
    InvalidRecipient {
        to: String,
        hint: String,
        source: Error,
    },
    /// `sendmessage` answered `-2`, with the likely cause.
    Rejected {
        guess: RejectionGuess,
        source: Error,
    },
    /// A multi-message send failed after `sent` messages went out.
    PartiallySent { sent: usize, source: Error },
}

/// Why a QR login failed; the login state machine reports these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// Every QR code allowed expired (or pairing was blocked) without a scan.
    QrExpired { codes: u32 },
    /// The overall deadline passed.
    Timeout { after: Duration },
    /// The server asked for a pairing code and none was given.
    VerifyCodeRequired,
    /// The server said `confirmed` without a bot id or token.
    IncompleteConfirmation,
    /// `get_bot_qrcode` answered without a QR code.
    NoQrCode,
    /// The server sent the login to plain `http://` on another host.
    InsecureUrl { host: String },
}

/// The cause of an account file failure.
#[derive(Debug)]
pub(crate) enum FileCause {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// The file is not a valid account record.
    Json(serde_json::Error),
}

impl Error {
    fn new(kind: Kind) -> Self {
        Self {
            kind: Arc::new(kind),
        }
    }

    /// The error a send of empty text fails with, for a layer above the
    /// client (a bot runtime) that refuses such a send before calling it.
    pub fn empty_text() -> Self {
        Self::new(Kind::EmptyText)
    }

    pub(crate) fn missing_token() -> Self {
        Self::new(Kind::MissingToken)
    }

    pub(crate) fn insecure_base_url(host: String) -> Self {
        Self::new(Kind::InsecureBaseUrl { host })
    }

    pub(crate) fn invalid_argument(what: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument(what.into()))
    }

    pub(crate) fn no_typing_ticket() -> Self {
        Self::new(Kind::NoTypingTicket)
    }

    pub(crate) fn account_io(op: &'static str, source: std::io::Error) -> Self {
        Self::new(Kind::AccountFile {
            op,
            source: FileCause::Io(source),
        })
    }

    pub(crate) fn account_json(op: &'static str, source: serde_json::Error) -> Self {
        Self::new(Kind::AccountFile {
            op,
            source: FileCause::Json(source),
        })
    }

    pub(crate) fn voice_rejected(source: Error) -> Self {
        Self::new(Kind::VoiceRejected(source))
    }

    pub(crate) fn invalid_recipient(to: String, hint: String, source: Error) -> Self {
        Self::new(Kind::InvalidRecipient { to, hint, source })
    }

    pub(crate) fn rejected(guess: RejectionGuess, source: Error) -> Self {
        Self::new(Kind::Rejected { guess, source })
    }

    pub(crate) fn partial_send(sent: usize, source: Error) -> Self {
        Self::new(Kind::PartiallySent { sent, source })
    }

    /// The login failure inside, for the login module and its tests.
    pub(crate) fn login_failure(&self) -> Option<&LoginFailure> {
        match &*self.kind {
            Kind::Login(failure) => Some(failure),
            _ => None,
        }
    }

    /// Whether two errors are the same failure: the same login failure, or
    /// clones of one error.
    pub(crate) fn same_failure(&self, other: &Error) -> bool {
        match (self.login_failure(), other.login_failure()) {
            (Some(a), Some(b)) => a == b,
            _ => Arc::ptr_eq(&self.kind, &other.kind),
        }
    }

    /// The error below a wrapper (a refused voice message, a refused or
    /// partial send).
    fn wrapped(&self) -> Option<&Error> {
        match &*self.kind {
            Kind::VoiceRejected(source)
            | Kind::InvalidRecipient { source, .. }
            | Kind::Rejected { source, .. }
            | Kind::PartiallySent { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// The transport error inside, looking through wrappers and through a
    /// media failure whose `getuploadurl` call failed.
    pub fn transport(&self) -> Option<&wxlink_transport::Error> {
        match &*self.kind {
            Kind::Transport(e) => Some(e),
            Kind::Media(e) => e.transport(),
            _ => self.wrapped().and_then(Error::transport),
        }
    }

    /// The media error inside, looking through wrappers.
    pub fn media(&self) -> Option<&wxlink_media::Error> {
        match &*self.kind {
            Kind::Media(e) => Some(e),
            _ => self.wrapped().and_then(Error::media),
        }
    }

    /// True when an iLink API call failed (connection, timeout, HTTP
    /// status, a non-zero `ret`/`errcode`, an undecodable body) and the
    /// client has nothing to add; the details are on [`Error::transport`].
    /// A refused or partial send is not this, though its cause is.
    pub fn is_api(&self) -> bool {
        matches!(&*self.kind, Kind::Transport(_))
    }

    /// True when reading, encrypting, uploading or downloading media
    /// failed before any message went out; the details are on
    /// [`Error::media`].
    pub fn is_media(&self) -> bool {
        matches!(&*self.kind, Kind::Media(_))
    }

    /// The likely cause of a `-2` refusal of a send, looking through
    /// wrappers; `None` for any other failure.
    pub fn rejection(&self) -> Option<RejectionGuess> {
        match &*self.kind {
            Kind::Rejected { guess, .. } => Some(*guess),
            Kind::VoiceRejected(source) | Kind::PartiallySent { source, .. } => source.rejection(),
            _ => None,
        }
    }

    /// True when a send was refused with `-3` because of its recipient:
    /// user ids are case-sensitive opaque strings, so send to the
    /// `from_user_id` of an inbound message, unchanged.
    pub fn is_invalid_recipient(&self) -> bool {
        match &*self.kind {
            Kind::InvalidRecipient { .. } => true,
            Kind::VoiceRejected(source) | Kind::PartiallySent { source, .. } => {
                source.is_invalid_recipient()
            }
            _ => false,
        }
    }

    /// True when the server refused a native voice message (WeChat is known
    /// not to show outbound voice bubbles). Send the audio as a file
    /// instead, or set `fallback_to_file(true)` on the voice request.
    pub fn is_voice_rejected(&self) -> bool {
        matches!(&*self.kind, Kind::VoiceRejected(_))
    }

    /// How many messages went out before a multi-message send (text chunks,
    /// or a caption and its media) failed; `None` when the failure was not
    /// part-way through such a send.
    pub fn partially_sent(&self) -> Option<usize> {
        match &*self.kind {
            Kind::PartiallySent { sent, .. } => Some(*sent),
            _ => None,
        }
    }

    /// True when the server said the session expired (`-14`), on any call
    /// including `getuploadurl`: the token is no longer valid and a new QR
    /// login is needed.
    pub fn is_session_expired(&self) -> bool {
        self.api_status().is_some_and(ApiStatus::is_session_expired)
    }

    /// True when a call or a media transfer ran out of time. A QR login
    /// that passed its deadline is [`Error::is_login_timeout`].
    pub fn is_timeout(&self) -> bool {
        match &*self.kind {
            Kind::Transport(e) => e.is_timeout(),
            Kind::Media(e) => e.is_timeout(),
            _ => self.wrapped().is_some_and(Error::is_timeout),
        }
    }

    /// True when a plain-HTTP URL off this machine was refused (a base URL,
    /// a login's redirect host or its confirmed base URL); nothing was sent
    /// there.
    pub fn is_insecure_url(&self) -> bool {
        self.insecure_host().is_some()
    }

    /// The host of a refused plain-HTTP URL ([`Error::is_insecure_url`]).
    pub fn insecure_host(&self) -> Option<&str> {
        match &*self.kind {
            Kind::InsecureBaseUrl { host } | Kind::Login(LoginFailure::InsecureUrl { host }) => {
                Some(host)
            }
            _ => None,
        }
    }

    /// The `ret`/`errcode`/`errmsg` the server returned, when the failure
    /// was a business error in the response body.
    pub fn api_status(&self) -> Option<&ApiStatus> {
        match &*self.kind {
            Kind::Transport(e) => e.api_status(),
            Kind::Media(e) => e.api_status(),
            _ => self.wrapped().and_then(Error::api_status),
        }
    }

    /// Whether the server may have acted on the request, so that sending it
    /// again could deliver a message twice. `false` only when the request
    /// certainly never left (a refused argument, a connect failure).
    pub fn may_have_been_sent(&self) -> bool {
        match &*self.kind {
            Kind::Transport(e) => e.may_have_been_sent(),
            // An upload alone delivers no message; a failure after a sent
            // caption is wrapped in `PartiallySent`.
            Kind::Media(_) => false,
            Kind::MissingToken
            | Kind::EmptyText
            | Kind::InvalidArgument(_)
            | Kind::InsecureBaseUrl { .. }
            | Kind::NoTypingTicket
            | Kind::AccountFile { .. }
            | Kind::Login(_) => false,
            Kind::VoiceRejected(source)
            | Kind::InvalidRecipient { source, .. }
            | Kind::Rejected { source, .. } => source.may_have_been_sent(),
            Kind::PartiallySent { .. } => true,
        }
    }

    /// Whether making the same call again is safe and may succeed: the
    /// request never left (a connect failure), the gateway answered 502,
    /// 503, 504 or 524, or a media upload failed in a way the CDN may not
    /// repeat. A refusal, an expired session, a timeout of a call that may
    /// have arrived, a partial send and bad input are not.
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            Kind::Transport(e) => e.is_retryable(),
            Kind::Media(e) => {
                e.is_retryable()
                    || e.transport()
                        .is_some_and(wxlink_transport::Error::is_retryable)
            }
            _ => false,
        }
    }

    /// True when the client was built without a bot token, or with a blank
    /// one.
    pub fn is_missing_token(&self) -> bool {
        matches!(&*self.kind, Kind::MissingToken)
    }

    /// True when the text to send was empty; nothing was sent.
    pub fn is_empty_text(&self) -> bool {
        matches!(&*self.kind, Kind::EmptyText)
    }

    /// True when an argument was unusable (an empty user id, an empty voice
    /// message…); the message says which and why. Nothing was sent.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(&*self.kind, Kind::InvalidArgument(_))
    }

    /// True when `getconfig` gave no typing ticket for this user, so no
    /// typing status can be sent.
    pub fn is_no_typing_ticket(&self) -> bool {
        matches!(&*self.kind, Kind::NoTypingTicket)
    }

    /// True when a QR login failed for good, whatever the reason; the
    /// predicates below tell the reasons apart. A QR code that cannot be
    /// fetched is an API failure ([`Error::is_api`]) instead.
    pub fn is_login(&self) -> bool {
        matches!(&*self.kind, Kind::Login(_))
    }

    /// True when every QR code allowed expired (or pairing was blocked)
    /// without a scan; [`Error::qr_codes_shown`] says how many there were.
    pub fn is_login_expired(&self) -> bool {
        matches!(&*self.kind, Kind::Login(LoginFailure::QrExpired { .. }))
    }

    /// How many QR codes were shown before the login gave up
    /// ([`Error::is_login_expired`]).
    pub fn qr_codes_shown(&self) -> Option<u32> {
        match &*self.kind {
            Kind::Login(LoginFailure::QrExpired { codes }) => Some(*codes),
            _ => None,
        }
    }

    /// True when a QR login passed its overall deadline.
    pub fn is_login_timeout(&self) -> bool {
        matches!(&*self.kind, Kind::Login(LoginFailure::Timeout { .. }))
    }

    /// True when the server asked for the pairing code shown on the phone
    /// and the login callbacks gave none.
    pub fn is_verify_code_required(&self) -> bool {
        matches!(&*self.kind, Kind::Login(LoginFailure::VerifyCodeRequired))
    }

    /// True when reading or writing an account file failed: the file is
    /// missing or unwritable (the I/O error is the
    /// [`source`](std::error::Error::source)), or it is not a valid account
    /// record ([`Error::is_account_file_invalid`]).
    pub fn is_account_file(&self) -> bool {
        matches!(&*self.kind, Kind::AccountFile { .. })
    }

    /// True when an account file was read but is not a valid account
    /// record.
    pub fn is_account_file_invalid(&self) -> bool {
        matches!(
            &*self.kind,
            Kind::AccountFile {
                source: FileCause::Json(_),
                ..
            }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::Transport(_) => f.write_str("api call failed"),
            Kind::Media(_) => f.write_str("media operation failed"),
            Kind::MissingToken => f.write_str("no bot token configured"),
            Kind::EmptyText => f.write_str("text is empty"),
            Kind::InsecureBaseUrl { host } => write!(
                f,
                "refusing plain http to {host}: the bot token would travel unencrypted"
            ),
            Kind::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Kind::NoTypingTicket => f.write_str("no typing ticket for this user"),
            Kind::Login(failure) => {
                f.write_str("qr login failed: ")?;
                match failure {
                    LoginFailure::QrExpired { codes } => write!(f, "qr code expired {codes} times"),
                    LoginFailure::Timeout { after } => write!(f, "timed out after {after:?}"),
                    LoginFailure::VerifyCodeRequired => {
                        f.write_str("pairing code required but none given")
                    }
                    LoginFailure::IncompleteConfirmation => {
                        f.write_str("confirmed login without bot id or token")
                    }
                    LoginFailure::NoQrCode => f.write_str("server returned no qr code"),
                    LoginFailure::InsecureUrl { host } => {
                        write!(f, "refusing plain http to {host} during login")
                    }
                }
            }
            Kind::AccountFile {
                source: FileCause::Json(_),
                ..
            } => f.write_str("account file is not a valid record"),
            Kind::AccountFile { op, .. } => write!(f, "account file {op} failed"),
            Kind::VoiceRejected(_) => f.write_str("server refused the voice message"),
            Kind::InvalidRecipient { to, hint, .. } => {
                write!(f, "the server does not know the recipient {to:?}: {hint}")
            }
            Kind::Rejected { guess, .. } => write!(f, "sendmessage rejected, likely {guess}"),
            Kind::PartiallySent { sent, .. } => {
                write!(f, "send failed after {sent} messages were sent")
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No kind holds a token or a key: the transport strips them from
        // what it keeps, and the media layer never keeps a key.
        f.debug_struct("wxlink_client::Error")
            .field("kind", &*self.kind)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &*self.kind {
            Kind::Transport(e) => Some(e),
            Kind::Media(e) => Some(e),
            Kind::AccountFile {
                source: FileCause::Io(e),
                ..
            } => Some(e),
            Kind::AccountFile {
                source: FileCause::Json(e),
                ..
            } => Some(e),
            Kind::VoiceRejected(source)
            | Kind::InvalidRecipient { source, .. }
            | Kind::Rejected { source, .. }
            | Kind::PartiallySent { source, .. } => Some(source),
            Kind::MissingToken
            | Kind::EmptyText
            | Kind::InsecureBaseUrl { .. }
            | Kind::InvalidArgument(_)
            | Kind::NoTypingTicket
            | Kind::Login(_) => None,
        }
    }
}

impl From<wxlink_transport::Error> for Error {
    fn from(e: wxlink_transport::Error) -> Self {
        Self::new(Kind::Transport(e))
    }
}

impl From<wxlink_media::Error> for Error {
    fn from(e: wxlink_media::Error) -> Self {
        Self::new(Kind::Media(e))
    }
}

impl From<LoginFailure> for Error {
    fn from(failure: LoginFailure) -> Self {
        Self::new(Kind::Login(failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reject::RejectCause;

    const TOKEN: &str = "sekret-bot-token-4f1d";

    /// One error of every kind, each built from inputs that held the bot
    /// token or an AES key where the real operation does (the builder and
    /// account file paths are checked end to end in the integration tests).
    /// The `match` has no wildcard, so a new kind does not compile until it
    /// is listed here.
    fn every_kind() -> Vec<Error> {
        // A record whose token is fine and whose base URL is not.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Record {
            token: String,
            base_url: String,
        }
        let bad = format!(r#"{{"token":"{TOKEN}","base_url":[1]}}"#);
        let json = serde_json::from_str::<Record>(&bad).unwrap_err();
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let key = "00112233445566778899aabbccddeef";
        let api = || {
            Error::from(wxlink_transport::Error::api(ApiStatus::new(
                Some(-2),
                None,
                None,
            )))
        };
        let errors = vec![
            Error::from(wxlink_transport::Error::api(ApiStatus::new(
                Some(-14),
                None,
                Some("session timeout".to_owned()),
            ))),
            Error::from(wxlink_media::AesKey::parse_inbound(key).unwrap_err()),
            Error::missing_token(),
            Error::empty_text(),
            Error::insecure_base_url("ilink.example".to_owned()),
            Error::invalid_argument("user id is empty"),
            Error::no_typing_ticket(),
            LoginFailure::QrExpired { codes: 3 }.into(),
            LoginFailure::Timeout {
                after: Duration::from_secs(480),
            }
            .into(),
            LoginFailure::VerifyCodeRequired.into(),
            LoginFailure::IncompleteConfirmation.into(),
            LoginFailure::NoQrCode.into(),
            LoginFailure::InsecureUrl {
                host: "dc2.example".to_owned(),
            }
            .into(),
            Error::account_io("read", missing),
            Error::account_json("read", json),
            Error::voice_rejected(api()),
            Error::invalid_recipient(
                "Alice".to_owned(),
                "ids are case-sensitive".to_owned(),
                api(),
            ),
            Error::rejected(
                RejectionGuess {
                    cause: RejectCause::Throttled,
                    basis: "errmsg",
                },
                api(),
            ),
            Error::partial_send(2, api()),
        ];
        for err in &errors {
            match &*err.kind {
                Kind::Transport(_)
                | Kind::Media(_)
                | Kind::MissingToken
                | Kind::EmptyText
                | Kind::InsecureBaseUrl { .. }
                | Kind::InvalidArgument(_)
                | Kind::NoTypingTicket
                | Kind::Login(
                    LoginFailure::QrExpired { .. }
                    | LoginFailure::Timeout { .. }
                    | LoginFailure::VerifyCodeRequired
                    | LoginFailure::IncompleteConfirmation
                    | LoginFailure::NoQrCode
                    | LoginFailure::InsecureUrl { .. },
                )
                | Kind::AccountFile { .. }
                | Kind::VoiceRejected(_)
                | Kind::InvalidRecipient { .. }
                | Kind::Rejected { .. }
                | Kind::PartiallySent { .. } => {}
            }
        }
        errors
    }

    #[test]
    fn no_kind_shows_a_token_or_key_in_display_or_debug() {
        let errors = every_kind();
        assert_eq!(errors.len(), 19);
        for err in errors {
            let mut shown = format!("{err} {err:?}");
            let mut cause = err.source();
            while let Some(c) = cause {
                shown.push_str(&format!(" {c} {c:?}"));
                cause = c.source();
            }
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(
                !shown.contains("00112233445566778899aabbccddeef"),
                "{shown}"
            );
            let text = err.to_string();
            assert!(
                text.chars().next().is_some_and(|c| !c.is_uppercase()),
                "{text}"
            );
            assert!(format!("{err:?}").starts_with("wxlink_client::Error { kind: "));
        }
    }

    #[test]
    fn login_failures_are_kinds_with_their_own_predicates() {
        let expired = Error::from(LoginFailure::QrExpired { codes: 3 });
        assert!(expired.is_login() && expired.is_login_expired());
        assert_eq!(expired.qr_codes_shown(), Some(3));
        assert_eq!(
            expired.to_string(),
            "qr login failed: qr code expired 3 times"
        );
        assert!(!expired.may_have_been_sent() && !expired.is_retryable());
        let late = Error::from(LoginFailure::Timeout {
            after: Duration::from_secs(480),
        });
        assert!(late.is_login_timeout() && !late.is_timeout() && !late.is_login_expired());
        let insecure = Error::from(LoginFailure::InsecureUrl {
            host: "dc2.example".to_owned(),
        });
        assert!(insecure.is_insecure_url());
        assert_eq!(insecure.insecure_host(), Some("dc2.example"));
        // Clones of a failure, and equal login failures, are the same.
        assert!(late.same_failure(&late.clone()));
        assert!(expired.same_failure(&LoginFailure::QrExpired { codes: 3 }.into()));
        assert!(!expired.same_failure(&late));
    }

    #[test]
    fn wrappers_answer_for_the_refusal_inside() {
        let expired = || {
            Error::from(wxlink_transport::Error::api(ApiStatus::new(
                Some(-14),
                None,
                None,
            )))
        };
        let partial = Error::partial_send(2, expired());
        assert!(partial.is_session_expired() && partial.may_have_been_sent());
        assert_eq!(partial.partially_sent(), Some(2));
        assert!(!partial.is_api() && !partial.is_retryable());
        let guess = RejectionGuess {
            cause: RejectCause::TextTooLong,
            basis: "length",
        };
        let voice = Error::voice_rejected(Error::rejected(guess, expired()));
        assert!(voice.is_voice_rejected());
        assert_eq!(
            voice.rejection().map(|g| g.cause),
            Some(RejectCause::TextTooLong)
        );
        assert_eq!(voice.api_status().map(ApiStatus::code), Some(-14));
        assert!(voice.transport().is_some());
    }
}
