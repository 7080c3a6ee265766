//! One malformed field must not lose the other messages of a batch: a
//! `getupdates` response whose middle message carries a `message_id` that is
//! not an exact unsigned 64-bit integer still yields every message, the bad
//! one with `message_id: None`.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wxlink_proto::GetUpdatesResponse;

/// JSON texts that are valid JSON but not an exact `u64`.
fn bad_id() -> impl Strategy<Value = String> {
    prop_oneof![
        (i64::MIN..0i64).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite() && f.fract() != 0.0)
            .prop_map(|f| format!("{f:?}")),
        "[a-zA-Z_ -]{1,12}".prop_map(|s| format!("\"{s}\"")),
        "[0-9]{1,10}[a-z.][0-9]{0,4}".prop_map(|s| format!("\"{s}\"")),
        "-[0-9]{1,19}".prop_map(|s| format!("\"{s}\"")),
        "[1-9][0-9]{20,40}".prop_map(|s| s.clone()),
        "[1-9][0-9]{20,40}".prop_map(|s| format!("\"{s}\"")),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("[1,2,[3]]".to_owned()),
        Just("{\"id\":1,\"nested\":{\"x\":[]}}".to_owned()),
    ]
}

fn message(id_json: &str, text: &str) -> String {
    format!(
        r#"{{"seq":1,"message_id":{id_json},"from_user_id":"u@im.wechat","message_type":1,
            "item_list":[{{"type":1,"text_item":{{"text":"{text}"}}}}]}}"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_bad_message_id_keeps_the_batch(bad in bad_id(), first in any::<u64>(), last in any::<u64>()) {
        let body = format!(
            r#"{{"ret":0,"msgs":[{},{},{}],"get_updates_buf":"next"}}"#,
            message(&first.to_string(), "one"),
            message(&bad, "two"),
            message(&format!("\"{last}\""), "three"),
        );
        let resp: GetUpdatesResponse = serde_json::from_str(&body)
            .map_err(|e| TestCaseError::fail(format!("{bad}: {e}")))?;
        prop_assert_eq!(resp.msgs.len(), 3);
        prop_assert_eq!(resp.msgs[0].message_id, Some(first));
        prop_assert_eq!(resp.msgs[1].message_id, None, "{}", bad);
        prop_assert_eq!(resp.msgs[2].message_id, Some(last));
        let text = resp.msgs[1].item_list[0].text_item.as_ref().and_then(|t| t.text.as_deref());
        prop_assert_eq!(text, Some("two"));
        prop_assert_eq!(resp.get_updates_buf.as_deref(), Some("next"));
    }
}

#[test]
fn a_bad_send_message_id_does_not_fail_the_send_response() {
    let resp: wxlink_proto::SendMessageResponse =
        serde_json::from_str(r#"{"ret":0,"message_id":"not-a-number"}"#).unwrap();
    assert_eq!(resp.ret, Some(0));
    assert_eq!(resp.message_id, None);
}

/// A JSON value of the wrong type for most fields.
fn wrong_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"text\"".to_owned()),
        Just("-1".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("[1,\"x\"]".to_owned()),
        Just("{\"a\":{}}".to_owned()),
        Just("18446744073709551616".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any one field of the middle message, or of its first item, with a
    /// value of the wrong type: the batch still has three messages, the
    /// others are intact, and the bad message keeps its good fields.
    #[test]
    fn one_bad_field_keeps_the_batch(
        field in prop::sample::select(vec![
            "seq", "from_user_id", "to_user_id", "create_time_ms", "session_id",
            "message_type", "message_state", "context_token", "item_list", "group_id",
        ]),
        in_item in any::<bool>(),
        item_field in prop::sample::select(vec!["type", "text_item", "image_item", "msg_id", "create_time_ms"]),
        bad in wrong_value(),
    ) {
        let good = |id: u64, text: &str| {
            format!(
                r#"{{"seq":{id},"message_id":{id},"from_user_id":"u@im.wechat","message_type":1,
                    "context_token":"ctx-{id}","item_list":[{{"type":1,"text_item":{{"text":"{text}"}}}}]}}"#
            )
        };
        let middle = if in_item {
            format!(
                r#"{{"seq":2,"message_id":2,"from_user_id":"u@im.wechat","message_type":1,"context_token":"ctx-2",
                    "item_list":[{{"type":1,"text_item":{{"text":"two"}},"{item_field}":{bad}}},
                                 {{"type":1,"text_item":{{"text":"two-b"}}}}]}}"#
            )
        } else {
            let mut v: serde_json::Value = serde_json::from_str(&good(2, "two")).unwrap();
            v[field] = serde_json::from_str(&bad).unwrap_or(serde_json::Value::Null);
            v.to_string()
        };
        let body = format!(
            r#"{{"ret":0,"msgs":[{},{},{}],"get_updates_buf":"next"}}"#,
            good(1, "one"), middle, good(3, "three")
        );
        let resp: GetUpdatesResponse = serde_json::from_str(&body)
            .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
        prop_assert_eq!(resp.msgs.len(), 3, "{}", body);
        prop_assert_eq!(resp.msgs[0].message_id, Some(1));
        prop_assert_eq!(resp.msgs[1].message_id, Some(2));
        prop_assert_eq!(resp.msgs[2].message_id, Some(3));
        prop_assert_eq!(resp.msgs[2].item_list.len(), 1);
        prop_assert_eq!(resp.get_updates_buf.as_deref(), Some("next"));
        if in_item {
            // The sibling item is untouched.
            prop_assert_eq!(resp.msgs[1].item_list.len(), 2, "{}", body);
            let text = resp.msgs[1].item_list[1].text_item.as_ref().and_then(|t| t.text.as_deref());
            prop_assert_eq!(text, Some("two-b"));
        } else if field != "context_token" {
            prop_assert_eq!(
                resp.msgs[1].context_token.as_ref().map(|c| c.expose_secret()),
                Some("ctx-2")
            );
        }
    }
}
