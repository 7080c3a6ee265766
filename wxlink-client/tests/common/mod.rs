//! Helpers shared by the integration tests: a simulator with short holds
//! and a client pointed at it.

#![allow(dead_code)]

use std::time::Duration;

use wxlink_client::WxLinkClient;
use wxlink_sim::Simulator;

/// How long the simulator holds an empty long poll in tests.
pub const HOLD: Duration = Duration::from_millis(300);

/// Upper bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(10);

/// A simulator on 127.0.0.1 that holds empty polls for [`HOLD`].
pub async fn sim() -> Simulator {
    Simulator::builder().hold(HOLD).start().await.unwrap()
}

/// A client for the simulator's current session.
pub fn client(sim: &Simulator) -> WxLinkClient {
    WxLinkClient::builder()
        .base_url(sim.base_url())
        .cdn_base_url(sim.cdn_base_url())
        .token(sim.token())
        .build()
        .unwrap()
}

/// A minimal PNG: the signature and an IHDR chunk, then filler bytes.
pub fn png_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    v.extend_from_slice(&[
        0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0,
    ]);
    v.extend((0..len.saturating_sub(v.len())).map(|i| (i % 251) as u8));
    v
}

/// The start of an MP4 file (`ftyp` box), then filler bytes.
pub fn mp4_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x18];
    v.extend_from_slice(b"ftypmp42");
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(b"mp42isom");
    v.extend((0..len.saturating_sub(v.len())).map(|i| (i % 241) as u8));
    v
}
