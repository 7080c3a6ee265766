//! The HTTP transport of WxLink: a tower stack on hyper and rustls with
//! iLink headers, timeouts, retries and typed errors, plus `ApiClient<S>`
//! that calls any iLink endpoint over any `tower::Service`.
