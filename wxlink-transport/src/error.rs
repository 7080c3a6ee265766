//! The crate's one error type, [`Error`], and how foreign errors map onto it.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::proto::{ApiStatus, TimeoutClass};

/// A boxed error that can cross threads; the error type of every service in
/// the stack.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a call failed.
///
/// The error is opaque: its predicates tell apart a request that never left
/// ([`Error::is_connect`]), one that ran out of time ([`Error::is_timeout`],
/// with its class), a non-2xx answer ([`Error::status`]), a business error
/// in the JSON body ([`Error::api_status`]), a body that could not be read
/// ([`Error::is_decode`], [`Error::is_body_too_large`]), a URL or request
/// that could not be built ([`Error::is_invalid_url`],
/// [`Error::is_invalid_request`]) and a connection lost midway.
/// [`Error::may_have_been_sent`] says whether the server may have acted on
/// the request and [`Error::is_retryable`] whether repeating it is safe and
/// may help. The cause, whatever library it comes from, is only reachable
/// through [`source`](std::error::Error::source).
///
/// The error never holds the bot token, and body excerpts are redacted.
pub struct Error {
    inner: Box<Inner>,
}

/// What an [`Error`] holds; boxed so that the error is one pointer wide.
struct Inner {
    kind: Kind,
    source: Option<BoxError>,
}

/// The failure itself.
#[derive(Debug)]
enum Kind {
    /// Connecting failed (DNS, TCP, TLS or proxy); never sent.
    Connect,
    /// The call did not finish within its timeout.
    Timeout {
        class: TimeoutClass,
        after: Duration,
    },
    /// The connection failed after the request may have been written, or
    /// the transport failed in a way this crate cannot classify.
    Transport { may_have_been_sent: bool },
    /// A non-2xx HTTP status, with the start of the body, redacted.
    HttpStatus { status: StatusCode, excerpt: String },
    /// The JSON body reported a failure in `ret` or `errcode`.
    Api(ApiStatus),
    /// The body was not the JSON the endpoint returns.
    Decode { excerpt: String },
    /// The response body was larger than the configured limit.
    BodyTooLarge { limit: u64 },
    /// The base URL or the request URL was not a valid `http(s)` URL.
    InvalidUrl,
    /// The request could not be built (the body did not serialise, a header
    /// value was invalid, a proxy setting was unusable).
    InvalidRequest,
}

impl Error {
    fn new(kind: Kind, source: Option<BoxError>) -> Self {
        Self {
            inner: Box::new(Inner { kind, source }),
        }
    }

    /// A business error reported in the JSON body (`ret` or `errcode`, see
    /// `docs/protocol.md`), for a caller that reads a status itself.
    pub fn api(status: ApiStatus) -> Self {
        Self::new(Kind::Api(status), None)
    }

    pub(crate) fn connect(source: impl Into<BoxError>) -> Self {
        Self::new(Kind::Connect, Some(source.into()))
    }

    pub(crate) fn timeout(class: TimeoutClass, after: Duration) -> Self {
        Self::new(Kind::Timeout { class, after }, None)
    }

    pub(crate) fn transport(source: impl Into<BoxError>, may_have_been_sent: bool) -> Self {
        Self::new(Kind::Transport { may_have_been_sent }, Some(source.into()))
    }

    pub(crate) fn http_status(status: StatusCode, excerpt: String) -> Self {
        Self::new(Kind::HttpStatus { status, excerpt }, None)
    }

    pub(crate) fn decode(source: impl Into<BoxError>, excerpt: String) -> Self {
        Self::new(Kind::Decode { excerpt }, Some(source.into()))
    }

    pub(crate) fn body_too_large(limit: u64) -> Self {
        Self::new(Kind::BodyTooLarge { limit }, None)
    }

    pub(crate) fn invalid_url(source: impl Into<BoxError>) -> Self {
        Self::new(Kind::InvalidUrl, Some(source.into()))
    }

    pub(crate) fn invalid_request(source: impl Into<BoxError>) -> Self {
        Self::new(Kind::InvalidRequest, Some(source.into()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Connect => f.write_str("connection failed"),
            Kind::Timeout { class, after } => write!(
                f,
                "{} timeout after {} ms",
                class_name(*class),
                after.as_millis()
            ),
            Kind::Transport { .. } => f.write_str("request failed"),
            Kind::HttpStatus { status, .. } => write!(f, "http status {status}"),
            Kind::Api(status) => write!(f, "api error {}", status.code()),
            Kind::Decode { .. } => f.write_str("undecodable response body"),
            Kind::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
            Kind::InvalidUrl => f.write_str("invalid url"),
            Kind::InvalidRequest => f.write_str("invalid request"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("wxlink_transport::Error");
        d.field("kind", &self.inner.kind);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// 502, 503 and 504, and Cloudflare's 524 (origin timeout), which the iLink
/// gateway returns in the field (docs/protocol.md, "Status and errors").
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502 | 503 | 504 | 524)
}

/// The name of a timeout class in messages.
fn class_name(class: TimeoutClass) -> &'static str {
    match class {
        TimeoutClass::LongPoll => "long-poll",
        TimeoutClass::Api => "api",
        TimeoutClass::Config => "config",
        TimeoutClass::Cdn => "cdn",
        #[allow(unreachable_patterns)]
        _ => "request",
    }
}

/// How a failed attempt relates to the server, as the retry layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request certainly never left this process.
    NotSent,
    /// The attempt timed out; the server may have received the request.
    Timeout,
    /// Anything else; the server may have received the request.
    MaybeSent,
}

impl Error {
    /// Whether connecting failed (DNS, TCP, TLS, proxy): the request was
    /// never sent.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect)
    }

    /// Whether the call timed out (any class).
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout { .. })
    }

    /// The timeout class, when the call timed out.
    pub fn timeout_class(&self) -> Option<TimeoutClass> {
        match self.inner.kind {
            Kind::Timeout { class, .. } => Some(class),
            _ => None,
        }
    }

    /// Whether a long poll ran out of time on the client side. This is not a
    /// failure of the protocol: the caller treats it as an empty poll
    /// (docs/protocol.md, "Long polling").
    pub fn is_long_poll_timeout(&self) -> bool {
        self.timeout_class() == Some(TimeoutClass::LongPoll)
    }

    /// The HTTP status of a non-2xx answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner.kind {
            Kind::HttpStatus { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The API status of a business error.
    pub fn api_status(&self) -> Option<&ApiStatus> {
        match &self.inner.kind {
            Kind::Api(status) => Some(status),
            _ => None,
        }
    }

    /// Whether the server reported the session as expired (`-14` in `ret` or
    /// `errcode`): the bot needs a new QR login.
    pub fn is_session_expired(&self) -> bool {
        self.api_status().is_some_and(ApiStatus::is_session_expired)
    }

    /// Whether the body could not be decoded.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, Kind::Decode { .. })
    }

    /// Whether the response body exceeded the size limit.
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.inner.kind, Kind::BodyTooLarge { .. })
    }

    /// A short, redacted excerpt of the response body, for a non-2xx status
    /// ([`Error::status`]) and an undecodable body ([`Error::is_decode`]).
    pub fn excerpt(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::HttpStatus { excerpt, .. } | Kind::Decode { excerpt, .. } => Some(excerpt),
            _ => None,
        }
    }

    /// Whether the server may have received (and acted on) the request.
    ///
    /// `false` only when the request certainly never left: a connect
    /// failure, an invalid URL or request. A timeout counts as "may have
    /// been sent", since the request may be in flight.
    pub fn may_have_been_sent(&self) -> bool {
        match self.inner.kind {
            Kind::Connect | Kind::InvalidUrl | Kind::InvalidRequest => false,
            Kind::Transport { may_have_been_sent } => may_have_been_sent,
            _ => true,
        }
    }

    /// Whether the URL (the base URL, a request URL or a proxy URL) was not
    /// a valid `http(s)` URL; nothing was sent.
    pub fn is_invalid_url(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidUrl)
    }

    /// Whether the request could not be built (a body that does not
    /// serialise, an invalid header value, an unusable proxy or
    /// certificate setting); nothing was sent.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidRequest)
    }

    /// Whether repeating the call is safe whatever the endpoint and may
    /// succeed: the request never left (a connect failure), or the gateway
    /// answered 502, 503, 504 or 524 (see [`RetryPolicy`](crate::RetryPolicy)).
    /// A timeout or a lost connection is not: the server may have acted, and
    /// only an endpoint that is safe to repeat may be retried then.
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            Kind::Connect => true,
            Kind::HttpStatus { status, .. } => is_retryable_status(status),
            _ => false,
        }
    }

    /// Turns an error from a service in the stack into an [`Error`].
    ///
    /// Errors of this crate are unboxed as they are; hyper's connect errors
    /// become connect errors ([`Error::is_connect`]); I/O errors that mean
    /// "nobody listened" (connection refused, host not found) do too;
    /// anything else becomes a transport error that may have been sent.
    pub fn from_box(err: BoxError) -> Self {
        let err = match err.downcast::<Error>() {
            Ok(err) => return *err,
            Err(err) => err,
        };
        match classify(err.as_ref()) {
            Failure::NotSent => Self::connect(err),
            Failure::Timeout | Failure::MaybeSent => Self::transport(err, true),
        }
    }
}

/// Classifies a boxed error from the stack without consuming it.
pub(crate) fn classify(err: &(dyn StdError + Send + Sync + 'static)) -> Failure {
    if let Some(own) = err.downcast_ref::<Error>() {
        return match own.inner.kind {
            Kind::Timeout { .. } => Failure::Timeout,
            _ if !own.may_have_been_sent() => Failure::NotSent,
            _ => Failure::MaybeSent,
        };
    }
    if let Some(legacy) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
        return if legacy.is_connect() {
            Failure::NotSent
        } else {
            Failure::MaybeSent
        };
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        return classify_io(io);
    }
    Failure::MaybeSent
}

fn classify_io(io: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::AddrNotAvailable => {
            Failure::NotSent
        }
        _ => Failure::MaybeSent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short_and_lowercase() {
        let err = Error::timeout(TimeoutClass::LongPoll, Duration::from_millis(35_000));
        assert_eq!(err.to_string(), "long-poll timeout after 35000 ms");
        assert!(err.is_long_poll_timeout());
        let err = Error::body_too_large(10);
        assert_eq!(err.to_string(), "response body larger than 10 bytes");
    }

    #[test]
    fn the_error_is_one_pointer_and_keeps_its_cause_private() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        let io = std::io::Error::other("socket closed");
        let err = Error::transport(io, true);
        assert_eq!(err.to_string(), "request failed");
        let cause = err.source().expect("the cause is kept");
        assert_eq!(cause.to_string(), "socket closed");
        assert!(format!("{err:?}").starts_with("wxlink_transport::Error { kind: Transport"));
    }

    #[test]
    fn only_unsent_requests_and_gateway_statuses_are_retryable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(Error::connect(refused).is_retryable());
        let gateway = Error::http_status(StatusCode::BAD_GATEWAY, String::new());
        assert!(gateway.is_retryable());
        assert_eq!(gateway.status(), Some(StatusCode::BAD_GATEWAY));
        let not_found = Error::http_status(StatusCode::NOT_FOUND, String::new());
        assert!(!not_found.is_retryable());
        let timeout = Error::timeout(TimeoutClass::Api, Duration::from_secs(15));
        assert!(!timeout.is_retryable() && timeout.may_have_been_sent());
        let expired = Error::api(ApiStatus::new(Some(-14), None, None));
        assert!(expired.is_session_expired() && !expired.is_retryable());
        let url = Error::invalid_url("no host");
        assert!(url.is_invalid_url() && !url.may_have_been_sent());
        let request = Error::invalid_request("bad header");
        assert!(request.is_invalid_request() && !request.may_have_been_sent());
    }

    #[test]
    fn boxed_own_errors_come_back_unchanged() {
        let boxed: BoxError = Box::new(Error::body_too_large(3));
        assert!(Error::from_box(boxed).is_body_too_large());
    }

    #[test]
    fn refused_io_error_is_a_connect_error_never_sent() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = Error::from_box(Box::new(io));
        assert!(err.is_connect());
        assert!(!err.may_have_been_sent());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err = Error::from_box(Box::new(reset));
        assert!(!err.is_connect());
        assert!(err.may_have_been_sent());
    }
}
