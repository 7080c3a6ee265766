//! The `Endpoint` trait and the descriptors every call carries.
//!
//! Each iLink endpoint is a unit struct (generated from the schema) that
//! implements [`Endpoint`]. The trait ties a request type to its response
//! type and states how the call travels: HTTP method, relative path, whether
//! it needs the bot token, which timeout applies, whether it may be retried
//! and whether the body gets a `base_info` object. The transport reads these
//! constants; nothing here does I/O.

use std::time::Duration;

use crate::status::ApiResponse;

/// One iLink API call: its request and response types and how it travels.
pub trait Endpoint: 'static {
    /// The JSON request body (query fields are skipped by serde and returned
    /// by [`Endpoint::query`] instead).
    type Request: serde::Serialize + Send + Sync + 'static;
    /// The JSON response body.
    type Response: serde::de::DeserializeOwned + ApiResponse + Send + 'static;
    /// Short stable name used in logs and metrics, e.g. `"sendmessage"`.
    const NAME: &'static str;
    /// The HTTP method.
    const METHOD: HttpMethod;
    /// The path relative to the API base URL, without a leading slash and
    /// without a query string, e.g. `"ilink/bot/sendmessage"`
    /// (docs/protocol.md, "Hosts and URL joining").
    const PATH: &'static str;
    /// Whether the call carries `Authorization: Bearer <bot_token>`.
    const AUTH: Auth;
    /// Which client-side timeout applies (docs/protocol.md, "Timeouts and
    /// retries").
    const TIMEOUT: TimeoutClass;
    /// When the call may be retried automatically.
    const RETRY: RetrySafety;
    /// Whether the transport adds a top-level `base_info` object to the body
    /// (docs/protocol.md, "`base_info` and `bot_agent`").
    const BASE_INFO: bool;

    /// The query parameters of this request, unencoded and in order.
    ///
    /// Most endpoints have none; the login calls carry `bot_type`, `qrcode`
    /// and `verify_code` here. The transport percent-encodes the values.
    fn query(req: &Self::Request) -> Vec<(&'static str, String)> {
        let _ = req;
        Vec::new()
    }
}

/// The HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpMethod {
    /// `GET`, with no body (only `get_qrcode_status`).
    Get,
    /// `POST` with a JSON body.
    Post,
}

impl HttpMethod {
    /// The method name as it appears on the wire, e.g. `"POST"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Whether a call carries the bot token (docs/protocol.md, "Request headers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Auth {
    /// No `Authorization` header (the login calls).
    None,
    /// `Authorization: Bearer <bot_token>`.
    Bearer,
}

/// The client-side timeout class of a call (docs/protocol.md, "Timeouts and
/// retries").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutClass {
    /// A long poll the server may hold for about 35 s: `getupdates` and
    /// `get_qrcode_status`.
    LongPoll,
    /// An ordinary API call: `sendmessage`, `getuploadurl`, `get_bot_qrcode`.
    Api,
    /// A small configuration call: `getconfig`, `sendtyping`, the notify calls.
    Config,
    /// A CDN transfer, which the official client never times out.
    Cdn,
}

impl TimeoutClass {
    /// The default timeout of the class: 35 s, 15 s, 10 s, or none for the CDN.
    pub const fn default_timeout(self) -> Option<Duration> {
        match self {
            Self::LongPoll => Some(Duration::from_millis(crate::consts::LONG_POLL_TIMEOUT_MS)),
            Self::Api => Some(Duration::from_millis(crate::consts::API_TIMEOUT_MS)),
            Self::Config => Some(Duration::from_millis(crate::consts::CONFIG_TIMEOUT_MS)),
            Self::Cdn => None,
        }
    }
}

/// When a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetrySafety {
    /// Repeating the call has no effect the user would notice; it may be
    /// retried after any transport failure.
    Always,
    /// The call may be retried only when the request certainly never reached
    /// the server (for example the connection was refused). A `sendmessage`
    /// that may have arrived must not be sent twice, and a `getupdates` that
    /// may have arrived may have advanced the cursor.
    BeforeSend,
}

/// A plain-data description of one endpoint, for documentation, routing in
/// the simulator and diagnostics. See [`crate::ENDPOINTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EndpointInfo {
    /// Same as [`Endpoint::NAME`].
    pub name: &'static str,
    /// Same as [`Endpoint::METHOD`].
    pub method: HttpMethod,
    /// Same as [`Endpoint::PATH`].
    pub path: &'static str,
    /// Same as [`Endpoint::AUTH`].
    pub auth: Auth,
    /// Same as [`Endpoint::TIMEOUT`].
    pub timeout: TimeoutClass,
    /// Same as [`Endpoint::RETRY`].
    pub retry: RetrySafety,
    /// Same as [`Endpoint::BASE_INFO`].
    pub base_info: bool,
    /// The Rust name of the request type.
    pub request: &'static str,
    /// The Rust name of the response type.
    pub response: &'static str,
}

impl EndpointInfo {
    /// Builds the description of endpoint `E` (request and response names
    /// are given by the caller, since the trait does not carry them).
    pub const fn of<E: Endpoint>(request: &'static str, response: &'static str) -> Self {
        Self {
            name: E::NAME,
            method: E::METHOD,
            path: E::PATH,
            auth: E::AUTH,
            timeout: E::TIMEOUT,
            retry: E::RETRY,
            base_info: E::BASE_INFO,
            request,
            response,
        }
    }

    /// Finds the endpoint served at `path` (relative, no leading slash, no
    /// query), if any.
    pub fn by_path(path: &str) -> Option<&'static EndpointInfo> {
        crate::ENDPOINTS.iter().find(|e| e.path == path)
    }

    /// Finds the endpoint with the given [`Endpoint::NAME`], if any.
    pub fn by_name(name: &str) -> Option<&'static EndpointInfo> {
        crate::ENDPOINTS.iter().find(|e| e.name == name)
    }
}
