//! A malformed optional hint of a `getupdates` response must not lose the
//! batch: `longpolling_timeout_ms`, `sync_buf` and `errmsg` read as absent
//! when malformed, while the cursor `get_updates_buf` and the status fields
//! `ret`/`errcode`, whose loss would be a silent error, still fail the
//! decode.

#![allow(clippy::unwrap_used)]

use wxlink_proto::{ApiResponse, GetUpdatesResponse};

/// A body with one text message, a cursor and `field: <json>` on top.
fn body_with(field: &str, json: &str) -> String {
    format!(
        r#"{{"ret":0,
            "msgs":[{{"seq":7,"message_id":7423198823477151811,"from_user_id":"u@im.wechat",
                      "message_type":1,"item_list":[{{"type":1,"text_item":{{"text":"hello"}}}}]}}],
            "get_updates_buf":"cursor-9",
            "{field}":{json}}}"#
    )
}

fn decode(body: &str) -> Result<GetUpdatesResponse, serde_json::Error> {
    serde_json::from_str(body)
}

/// The message and the cursor of `body_with` came through.
fn assert_batch_kept(resp: &GetUpdatesResponse, what: &str) {
    assert_eq!(resp.msgs.len(), 1, "{what}");
    let msg = &resp.msgs[0];
    assert_eq!(msg.message_id, Some(7_423_198_823_477_151_811), "{what}");
    let text = msg.item_list[0].text_item.as_ref().unwrap().text.as_deref();
    assert_eq!(text, Some("hello"), "{what}");
    assert_eq!(resp.get_updates_buf.as_deref(), Some("cursor-9"), "{what}");
}

#[test]
fn a_malformed_long_poll_timeout_reads_as_absent_and_keeps_the_batch() {
    for bad in [
        r#""abc""#,
        r#""""#,
        r#""35000ms""#,
        r#""+35000""#,
        r#""3.5e4""#,
        "35000.5",
        "35000.0",
        "1e3",
        "99999999999999999999",
        r#""99999999999999999999""#,
        "true",
        "null",
        "[35000]",
        r#"{"ms":35000,"nested":[1,{}]}"#,
    ] {
        let body = body_with("longpolling_timeout_ms", bad);
        let resp = decode(&body).unwrap_or_else(|e| panic!("{bad}: {e}"));
        assert_batch_kept(&resp, bad);
        assert_eq!(resp.longpolling_timeout_ms, None, "{bad}");
    }
}

#[test]
fn a_long_poll_timeout_as_a_numeric_string_is_the_number() {
    for (json, want) in [
        ("35000", 35_000),
        (r#""35000""#, 35_000),
        (r#"" 35000 ""#, 35_000),
        ("0", 0),
        // A negative integer is still an integer; the client ignores any
        // timeout that is not positive (docs/protocol.md, "Long polling").
        ("-5", -5),
        (r#""-5""#, -5),
    ] {
        let resp = decode(&body_with("longpolling_timeout_ms", json)).unwrap();
        assert_batch_kept(&resp, json);
        assert_eq!(resp.longpolling_timeout_ms, Some(want), "{json}");
    }
    // It is written back as a JSON number.
    let resp = decode(&body_with("longpolling_timeout_ms", r#""35000""#)).unwrap();
    let back = serde_json::to_value(&resp).unwrap();
    assert_eq!(back["longpolling_timeout_ms"], serde_json::json!(35000));
}

#[test]
fn a_malformed_sync_buf_or_errmsg_reads_as_absent() {
    let resp = decode(&body_with("sync_buf", r#"{"old":1}"#)).unwrap();
    assert_batch_kept(&resp, "sync_buf");
    assert_eq!(resp.sync_buf, None);

    // A failure whose text is not a string still reports the failure.
    let resp = decode(r#"{"errcode":-14,"errmsg":{"zh":"会话超时"}}"#).unwrap();
    assert_eq!(resp.errmsg, None);
    assert!(resp.status().is_session_expired());
    let resp = decode(&body_with("errmsg", "42")).unwrap();
    assert_batch_kept(&resp, "errmsg");
    assert_eq!(resp.errmsg, None);
}

#[test]
fn a_malformed_cursor_or_status_still_fails_the_decode() {
    for bad in ["5", "5.5", "true", "[\"c\"]", r#"{"c":"cursor"}"#] {
        let body = format!(r#"{{"msgs":[],"get_updates_buf":{bad}}}"#);
        assert!(decode(&body).is_err(), "get_updates_buf: {bad} decoded");
    }
    for field in ["ret", "errcode"] {
        let body = format!(r#"{{"{field}":"abc","get_updates_buf":"c"}}"#);
        assert!(decode(&body).is_err(), "{field}: \"abc\" decoded");
    }
}
