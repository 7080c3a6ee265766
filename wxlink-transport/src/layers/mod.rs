//! The tower layers of the WxLink stack.
//!
//! Each layer is public and usable on its own, named like tower's own
//! middleware (`Foo<S>`, `FooLayer`, `foo::ResponseFuture`). Every layer
//! reads the per-call [`CallMeta`](crate::CallMeta) from the request
//! extensions. [`ApiClient`](crate::ApiClient) stacks them, outermost
//! first:
//!
//! | layer | what it does |
//! |---|---|
//! | [`TraceLayer`] | one span per call: endpoint, method, redacted URL, status, attempts, latency |
//! | [`IlinkHeadersLayer`] | the iLink headers (docs/protocol.md, "Request headers"), POST set or GET set |
//! | [`RetryLayer`] | tower's retry middleware with [`RetryPolicy`]: a budget, backoff with jitter, and a [`RetryRule`] (the call's retry safety by default); a fresh `X-WECHAT-UIN` on each repeated attempt |
//! | [`TimeoutLayer`] | one deadline per attempt, by [`Timeouts`] class or per-call override |
//! | [`BodyLimitLayer`] | fails responses larger than a limit with `BodyTooLarge` |

pub mod headers;
pub mod limit;
pub mod retry;
pub mod timeout;
pub mod trace;

pub use headers::{IlinkHeaderValues, IlinkHeaders, IlinkHeadersLayer};
pub use limit::{BodyLimit, BodyLimitLayer};
pub use retry::{ApiRetryRule, ReplayBody, Retry, RetryLayer, RetryPolicy, RetryRule};
pub use timeout::{Timeout, TimeoutLayer, Timeouts};
pub use trace::{Trace, TraceLayer};
