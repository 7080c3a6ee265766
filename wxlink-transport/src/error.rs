//! The crate's one error type, [`Error`], and how foreign errors map onto it.

use std::error::Error as StdError;
use std::time::Duration;

use http::StatusCode;

use crate::proto::{ApiStatus, TimeoutClass};

/// A boxed error that can cross threads; the error type of every service in
/// the stack.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a call failed.
///
/// The variants let a caller tell apart a request that never left
/// ([`Error::Connect`]), one that ran out of time ([`Error::Timeout`], with
/// its class), a non-2xx answer ([`Error::HttpStatus`]), a business error in
/// the JSON body ([`Error::Api`]), a body that could not be read
/// ([`Error::Decode`], [`Error::BodyTooLarge`]) and a connection lost midway
/// ([`Error::Transport`]). [`Error::may_have_been_sent`] says whether the
/// server may have acted on the request.
///
/// The error never holds the bot token, and body excerpts are redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed (DNS, TCP, TLS or proxy); the request was never
    /// sent.
    #[error("connection failed")]
    Connect {
        /// The underlying cause.
        source: BoxError,
    },
    /// The call did not finish within its timeout.
    #[error("{} timeout after {} ms", class_name(*.class), .after.as_millis())]
    Timeout {
        /// The timeout class of the call.
        class: TimeoutClass,
        /// The timeout that fired.
        after: Duration,
    },
    /// The connection failed after the request may have been written, or
    /// the transport failed in a way this crate cannot classify.
    #[error("request failed")]
    Transport {
        /// The underlying cause.
        source: BoxError,
        /// Whether the server may have received the request.
        may_have_been_sent: bool,
    },
    /// The server answered with a non-2xx HTTP status.
    #[error("http status {status}")]
    HttpStatus {
        /// The status code.
        status: StatusCode,
        /// The start of the body, redacted (see [`Error::excerpt`]).
        excerpt: String,
    },
    /// The JSON body reported a failure in `ret` or `errcode` (ILINK.md
    /// §6.1).
    #[error("api error {}", .0.code())]
    Api(ApiStatus),
    /// The body was not the JSON the endpoint returns.
    #[error("undecodable response body")]
    Decode {
        /// The JSON error.
        source: BoxError,
        /// The start of the body, redacted.
        excerpt: String,
    },
    /// The response body was larger than the configured limit.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The base URL or the request URL was not a valid `http(s)` URL.
    #[error("invalid url")]
    InvalidUrl {
        /// The underlying cause.
        source: BoxError,
    },
    /// The request could not be built (the body did not serialise, a header
    /// value was invalid, a proxy setting was unusable).
    #[error("invalid request")]
    InvalidRequest {
        /// The underlying cause.
        source: BoxError,
    },
}

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
        matches!(self, Self::Connect { .. })
    }

    /// Whether the call timed out (any class).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The timeout class, when the call timed out.
    pub fn timeout_class(&self) -> Option<TimeoutClass> {
        match self {
            Self::Timeout { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// Whether a long poll ran out of time on the client side. This is not a
    /// failure of the protocol: the caller treats it as an empty poll
    /// (ILINK.md §4.4).
    pub fn is_long_poll_timeout(&self) -> bool {
        matches!(
            self,
            Self::Timeout {
                class: TimeoutClass::LongPoll,
                ..
            }
        )
    }

    /// The HTTP status of a non-2xx answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API status of a business error.
    pub fn api_status(&self) -> Option<&ApiStatus> {
        match self {
            Self::Api(status) => Some(status),
            _ => None,
        }
    }

    /// Whether the server reported the session as expired (`-14` in `ret` or
    /// `errcode`): the bot needs a new QR login.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, Self::Api(status) if status.is_session_expired())
    }

    /// Whether the body could not be decoded.
    pub fn is_decode(&self) -> bool {
        matches!(self, Self::Decode { .. })
    }

    /// Whether the response body exceeded the size limit.
    pub fn is_body_too_large(&self) -> bool {
        matches!(self, Self::BodyTooLarge { .. })
    }

    /// A short, redacted excerpt of the response body, for
    /// [`Error::HttpStatus`] and [`Error::Decode`].
    pub fn excerpt(&self) -> Option<&str> {
        match self {
            Self::HttpStatus { excerpt, .. } | Self::Decode { excerpt, .. } => Some(excerpt),
            _ => None,
        }
    }

    /// Whether the server may have received (and acted on) the request.
    ///
    /// `false` only when the request certainly never left: a connect
    /// failure, an invalid URL or request. A timeout counts as "may have
    /// been sent", since the request may be in flight.
    pub fn may_have_been_sent(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::InvalidUrl { .. } | Self::InvalidRequest { .. } => false,
            Self::Transport {
                may_have_been_sent, ..
            } => *may_have_been_sent,
            _ => true,
        }
    }

    /// Turns an error from a service in the stack into an [`Error`].
    ///
    /// Errors of this crate are unboxed as they are; hyper's connect errors
    /// become [`Error::Connect`]; I/O errors that mean "nobody listened"
    /// (connection refused, host not found) do too; anything else becomes
    /// [`Error::Transport`] that may have been sent.
    pub fn from_box(err: BoxError) -> Self {
        let err = match err.downcast::<Error>() {
            Ok(err) => return *err,
            Err(err) => err,
        };
        match classify(err.as_ref()) {
            Failure::NotSent => Self::Connect { source: err },
            Failure::Timeout | Failure::MaybeSent => Self::Transport {
                source: err,
                may_have_been_sent: true,
            },
        }
    }
}

/// Classifies a boxed error from the stack without consuming it.
pub(crate) fn classify(err: &(dyn StdError + Send + Sync + 'static)) -> Failure {
    if let Some(own) = err.downcast_ref::<Error>() {
        return match own {
            Error::Timeout { .. } => Failure::Timeout,
            other if !other.may_have_been_sent() => Failure::NotSent,
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
        let err = Error::Timeout {
            class: TimeoutClass::LongPoll,
            after: Duration::from_millis(35_000),
        };
        assert_eq!(err.to_string(), "long-poll timeout after 35000 ms");
        assert!(err.is_long_poll_timeout());
        let err = Error::BodyTooLarge { limit: 10 };
        assert_eq!(err.to_string(), "response body larger than 10 bytes");
    }

    #[test]
    fn boxed_own_errors_come_back_unchanged() {
        let boxed: BoxError = Box::new(Error::BodyTooLarge { limit: 3 });
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
