//! The account-file parser on arbitrary bytes: it never panics, a parsed
//! record saves and loads back equal, and its Debug output hides the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxlink_client::AccountRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<AccountRecord>(data) else {
        return;
    };
    let encoded = serde_json::to_vec(&record).expect("a record encodes");
    let back: AccountRecord = serde_json::from_slice(&encoded).expect("a saved record loads");
    assert!(back == record);
    let token = record.token.expose_secret();
    // The other fields are shown as given, so a token that the input also
    // wrote into one of them (say the base URL) is no leak.
    let mut others = serde_json::to_value(&record).expect("a record encodes");
    if let Some(map) = others.as_object_mut() {
        map.remove("token");
    }
    if token.len() >= 6 && !others.to_string().contains(token) {
        assert!(
            !format!("{record:?}").contains(token),
            "debug shows the token"
        );
    }
});
