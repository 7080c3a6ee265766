//! The HTTP transport of WxLink: a tower stack on hyper and rustls with
//! iLink headers, timeouts, retries and typed errors, plus `ApiClient<S>`
//! that calls any iLink endpoint over any `tower::Service`.

mod body;
mod client;
mod error;
pub mod layers;
mod meta;
mod redact;
mod transport;

pub(crate) use wxlink_proto as proto;

pub use body::{Body, DataStream};
pub use client::{
    ApiClient, ApiConfig, ApiStack, CallOptions, CdnService, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use error::{BoxError, Error};
pub use layers::{RetryPolicy, Timeouts};
pub use meta::CallMeta;
pub use transport::{HttpsTransport, Proxy, TransportFuture, TransportOptions};
