//! Per-call metadata carried in the request extensions.

use std::time::Duration;

use crate::proto::{Auth, RetrySafety, TimeoutClass};

/// What the layers need to know about one call, stored in the
/// [`http::Request`] extensions.
///
/// [`ApiClient`](crate::ApiClient) inserts it for every call; a request sent
/// through the layers without one is treated as an authenticated API-class
/// call that is retried only before it was sent (see [`CallMeta::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallMeta {
    /// Short endpoint name for traces, e.g. `"sendmessage"` or `"cdn"`.
    pub endpoint: &'static str,
    /// Which timeout applies.
    pub timeout_class: TimeoutClass,
    /// When the call may be retried.
    pub retry: RetrySafety,
    /// Whether the call carries the bot token.
    pub auth: Auth,
    /// A timeout for this call that overrides the class default.
    pub timeout: Option<Duration>,
}

impl CallMeta {
    /// Metadata for a call named `endpoint`.
    pub const fn new(
        endpoint: &'static str,
        timeout_class: TimeoutClass,
        retry: RetrySafety,
    ) -> Self {
        Self {
            endpoint,
            timeout_class,
            retry,
            auth: Auth::Bearer,
            timeout: None,
        }
    }

    /// Metadata for a CDN transfer: CDN timeout class, no iLink auth,
    /// retried only before it was sent.
    pub const fn cdn() -> Self {
        Self {
            endpoint: "cdn",
            timeout_class: TimeoutClass::Cdn,
            retry: RetrySafety::BeforeSend,
            auth: Auth::None,
            timeout: None,
        }
    }

    /// Sets whether the call carries the bot token.
    #[must_use]
    pub const fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets a timeout for this call only.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The metadata of `req`, or the default when it has none.
    pub fn of<B>(req: &http::Request<B>) -> Self {
        req.extensions().get::<Self>().copied().unwrap_or_default()
    }
}

impl Default for CallMeta {
    /// An authenticated API-class call named `"request"`, retried only
    /// before it was sent.
    fn default() -> Self {
        Self::new("request", TimeoutClass::Api, RetrySafety::BeforeSend)
    }
}
