//! Every response decoder on arbitrary bytes: decoding never panics, and
//! whatever decodes encodes again and decodes to the same value, with the
//! same status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wxlink_proto::{
    ApiResponse, GetBotQrcodeResponse, GetConfigResponse, GetQrcodeStatusResponse,
    GetUpdatesResponse, GetUploadUrlResponse, NotifyStartResponse, NotifyStopResponse,
    SendMessageResponse, SendTypingResponse,
};

fn check<T>(data: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + ApiResponse,
{
    let Ok(first) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let status = first.status();
    let _ = (status.is_success(), status.kind(), status.rejection());
    let encoded = serde_json::to_vec(&first).expect("a decoded response encodes");
    let again: T = serde_json::from_slice(&encoded).expect("an encoded response decodes");
    assert!(again == first, "round trip changed the value");
    assert_eq!(again.status(), status);
}

fuzz_target!(|data: &[u8]| {
    check::<GetUpdatesResponse>(data);
    check::<SendMessageResponse>(data);
    check::<GetConfigResponse>(data);
    check::<SendTypingResponse>(data);
    check::<GetUploadUrlResponse>(data);
    check::<GetBotQrcodeResponse>(data);
    check::<GetQrcodeStatusResponse>(data);
    check::<NotifyStartResponse>(data);
    check::<NotifyStopResponse>(data);
});
