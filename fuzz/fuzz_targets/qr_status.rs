//! The QR-status parser on arbitrary bytes: whatever decodes maps to one
//! login step without panicking, and a confirmation's secrets stay out of
//! Debug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxlink_proto::{GetQrcodeStatusResponse, QrStatus};

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = serde_json::from_slice::<GetQrcodeStatusResponse>(data) else {
        return;
    };
    let _ = matches!(
        resp.status,
        Some(QrStatus::Confirmed | QrStatus::ScanedButRedirect | QrStatus::Wait)
    );
    if let Some(token) = resp
        .bot_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
    {
        if token.len() >= 6 {
            assert!(
                !format!("{resp:?}").contains(&token),
                "debug shows the token"
            );
        }
    }
});
