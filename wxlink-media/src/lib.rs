//! Media for the iLink bot API: kind inference, streaming AES-128-ECB,
//! inbound key parsing, outbound item builders and (with the `transport`
//! feature) CDN upload and download in constant memory.
