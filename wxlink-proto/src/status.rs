//! The business status every iLink response carries: `ret`, `errcode`, `errmsg`
//! (docs/protocol.md, "Status and errors").
//!
//! Business errors arrive with HTTP 200 and the error in the body. A body is a
//! failure when `ret` is present and non-zero or `errcode` is present and
//! non-zero; a missing `ret` is success (docs/protocol.md, "Status and
//! errors").

/// The `ret`/`errcode`/`errmsg` triple of one response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ApiStatus {
    /// The `ret` field, if present.
    pub ret: Option<i64>,
    /// The `errcode` field, if present.
    pub errcode: Option<i64>,
    /// The `errmsg` field, if present.
    pub errmsg: Option<String>,
}

/// The iLink code for an expired or invalid session (docs/protocol.md, "Status
/// and errors").
pub const SESSION_EXPIRED: i64 = -14;
/// The iLink code for a rejected request (docs/protocol.md, "Status and
/// errors").
pub const REJECTED: i64 = -2;
/// The iLink code for an invalid argument, e.g. a bad `to_user_id`.
pub const INVALID_ARGUMENT: i64 = -1;
/// The iLink code `sendmessage` answers with, as "invalid arguments", when
/// `to_user_id` is not the raw, case-exact user id the server knows
/// (docs/protocol.md, "Send errors").
pub const INVALID_RECIPIENT: i64 = -3;

impl ApiStatus {
    /// Builds a status from its three fields.
    pub fn new(ret: Option<i64>, errcode: Option<i64>, errmsg: Option<String>) -> Self {
        Self {
            ret,
            errcode,
            errmsg,
        }
    }

    /// True unless `ret` or `errcode` is present and non-zero
    /// (docs/protocol.md, "Status and errors").
    pub fn is_success(&self) -> bool {
        self.code() == 0
    }

    /// The failure code: the first non-zero of `ret` and `errcode`, or 0 on
    /// success.
    pub fn code(&self) -> i64 {
        [self.ret, self.errcode]
            .into_iter()
            .flatten()
            .find(|c| *c != 0)
            .unwrap_or(0)
    }

    /// True when either `ret` or `errcode` is −14.
    pub fn is_session_expired(&self) -> bool {
        self.ret == Some(SESSION_EXPIRED) || self.errcode == Some(SESSION_EXPIRED)
    }

    /// Classifies the status. Session expiry wins when either field says −14.
    pub fn kind(&self) -> StatusKind {
        if self.is_session_expired() {
            return StatusKind::SessionExpired;
        }
        match self.code() {
            0 => StatusKind::Ok,
            REJECTED => StatusKind::Rejected,
            INVALID_ARGUMENT => StatusKind::InvalidArgument,
            INVALID_RECIPIENT => StatusKind::InvalidRecipient,
            other => StatusKind::Other(other),
        }
    }

    /// For a rejected (−2) status, what `errmsg` says about the reason;
    /// `None` for any other status.
    ///
    /// docs/protocol.md, "Status and errors" warns that the reasons cannot be
    /// told apart reliably; this only reads the message text.
    pub fn rejection(&self) -> Option<RejectReason> {
        if self.kind() != StatusKind::Rejected {
            return None;
        }
        let msg = self.errmsg.as_deref().unwrap_or("").trim();
        Some(if msg.eq_ignore_ascii_case("prepare failed") {
            RejectReason::PrepareFailed
        } else if msg.eq_ignore_ascii_case("rate limited") {
            RejectReason::RateLimited
        } else if msg.eq_ignore_ascii_case("unknown error") {
            RejectReason::UnknownError
        } else {
            RejectReason::Unspecified
        })
    }

    /// The `errmsg` text, if any.
    pub fn message(&self) -> Option<&str> {
        self.errmsg.as_deref()
    }
}

impl std::fmt::Display for ApiStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code(), self.errmsg.as_deref()) {
            (0, _) => f.write_str("ok"),
            (code, Some(msg)) if !msg.is_empty() => write!(f, "code {code}: {msg}"),
            (code, _) => write!(f, "code {code}"),
        }
    }
}

/// What a status means for the caller (docs/protocol.md, "Status and errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusKind {
    /// Success.
    Ok,
    /// −14: the session expired or the token is invalid; a new QR login is
    /// needed.
    SessionExpired,
    /// −2: the request was rejected ("prepare failed", rate limit, no valid
    /// context, missing field). See [`ApiStatus::rejection`].
    Rejected,
    /// −1: an invalid argument, such as an unknown `to_user_id`.
    InvalidArgument,
    /// −3 on `sendmessage`: the recipient is not a user id the server
    /// knows as written (wrapped as `user:<id>`, or in another case).
    InvalidRecipient,
    /// Any other non-zero code, kept as sent.
    Other(i64),
}

/// The `errmsg` of a −2 rejection, as far as it tells anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// `"prepare failed"`: a missing or stale context, the 24 h window, or
    /// burst throttling.
    PrepareFailed,
    /// `"rate limited"`.
    RateLimited,
    /// `"unknown error"`, which some clients treat as a stale session.
    UnknownError,
    /// No message, or one not listed here.
    Unspecified,
}

/// Every response type exposes its status.
pub trait ApiResponse {
    /// The `ret`/`errcode`/`errmsg` of this response.
    fn status(&self) -> ApiStatus;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_success() {
        let s = ApiStatus::default();
        assert!(s.is_success());
        assert_eq!(s.kind(), StatusKind::Ok);
        assert_eq!(s.rejection(), None);
    }

    #[test]
    fn zero_ret_with_errcode_fails() {
        let s = ApiStatus::new(Some(0), Some(-7), None);
        assert!(!s.is_success());
        assert_eq!(s.code(), -7);
        assert_eq!(s.kind(), StatusKind::Other(-7));
        let s = ApiStatus::new(Some(-3), None, Some("invalid arguments".into()));
        assert_eq!(s.kind(), StatusKind::InvalidRecipient);
    }

    #[test]
    fn session_expiry_wins_in_either_field() {
        assert!(ApiStatus::new(Some(-2), Some(-14), None).is_session_expired());
        assert_eq!(
            ApiStatus::new(None, Some(-14), None).kind(),
            StatusKind::SessionExpired
        );
        assert_eq!(
            ApiStatus::new(Some(-14), None, None).kind(),
            StatusKind::SessionExpired
        );
    }

    #[test]
    fn rejection_reasons_are_read_from_errmsg() {
        let r = |m: Option<&str>| ApiStatus::new(Some(-2), None, m.map(str::to_owned)).rejection();
        assert_eq!(r(Some("prepare failed")), Some(RejectReason::PrepareFailed));
        assert_eq!(r(Some("rate limited")), Some(RejectReason::RateLimited));
        assert_eq!(r(Some("unknown error")), Some(RejectReason::UnknownError));
        assert_eq!(r(None), Some(RejectReason::Unspecified));
        assert_eq!(
            ApiStatus::new(Some(-1), None, None).kind(),
            StatusKind::InvalidArgument
        );
    }

    #[test]
    fn display_is_short() {
        assert_eq!(ApiStatus::default().to_string(), "ok");
        let s = ApiStatus::new(Some(-2), None, Some("prepare failed".into()));
        assert_eq!(s.to_string(), "code -2: prepare failed");
    }
}
