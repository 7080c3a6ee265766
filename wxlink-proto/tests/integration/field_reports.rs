//! The message shapes of the newest field reports decode without loss:
//! quotes by server id (above `i64::MAX`), partial quotes, `type: 0` quoted
//! items and tool-call progress items.

use wxlink_proto::{GetUpdatesResponse, MessageItemType, WeixinMessage};

#[test]
fn a_quote_by_server_id_keeps_the_id_exactly_above_i64_max() {
    for svr_id in [
        "18446744073709551615",
        "\"18446744073709551615\"",
        "9223372036854775808",
    ] {
        let body = format!(
            r#"{{"msgs":[{{"message_id":1,"item_list":[{{"type":1,"text_item":{{"text":"yes"}},
            "ref_msg":{{"svr_id":{svr_id},"title":"t",
              "message_item":{{"type":0,"msg_id":"778899","button_item_list":[{{"x":1}}]}},
              "partial_text":{{"start":3,"end":9,"startindex":"3","endindex":9,"quotemd5":"0cc175b9c0f1b6a831c399e269772661"}}}}}}]}}]}}"#
        );
        let resp: GetUpdatesResponse = serde_json::from_str(&body).unwrap();
        let item = &resp.msgs[0].item_list[0];
        let quote = item.ref_msg.as_ref().unwrap();
        let want: u64 = svr_id.trim_matches('"').parse().unwrap();
        assert_eq!(quote.svr_id, Some(want), "{svr_id}");
        let quoted = quote.message_item.as_ref().unwrap();
        assert_eq!(quoted.item_type, Some(MessageItemType::None));
        assert_eq!(quoted.msg_id.as_deref(), Some("778899"));
        let part = quote.partial_text.as_ref().unwrap();
        assert_eq!((part.start, part.end), (Some(3), Some(9)));
        assert_eq!((part.start_index, part.end_index), (Some(3), Some(9)));
        assert_eq!(
            part.quote_md5.as_deref(),
            Some("0cc175b9c0f1b6a831c399e269772661")
        );
        // It encodes back with the id as an exact number.
        let again = serde_json::to_string(&resp).unwrap();
        assert!(again.contains(&format!("\"svr_id\":{want}")), "{again}");
    }
}

#[test]
fn tool_call_items_and_run_id_are_kept() {
    let body = r#"{"run_id":"run-1","item_list":[
        {"type":11,"tool_call_start_item":{"tool_name":"search","tool_call_id":"c1"}},
        {"type":12,"tool_call_result_item":{"tool_name":"search","tool_call_id":"c1","status":2}}]}"#;
    let msg: WeixinMessage = serde_json::from_str(body).unwrap();
    assert_eq!(msg.run_id.as_deref(), Some("run-1"));
    assert_eq!(
        msg.item_list[0].item_type,
        Some(MessageItemType::ToolCallStart)
    );
    let start = msg.item_list[0].tool_call_start_item.as_ref().unwrap();
    assert_eq!(start.tool_name.as_deref(), Some("search"));
    assert_eq!(
        msg.item_list[1].item_type,
        Some(MessageItemType::ToolCallResult)
    );
    let result = msg.item_list[1].tool_call_result_item.as_ref().unwrap();
    assert_eq!(result.tool_call_id.as_deref(), Some("c1"));
    assert_eq!(result.status, Some(2));
}

#[test]
fn a_malformed_server_id_drops_only_that_field() {
    let body = r#"{"item_list":[{"type":1,"text_item":{"text":"kept"},"ref_msg":{"svr_id":1.5,"title":"t"}}]}"#;
    let msg: WeixinMessage = serde_json::from_str(body).unwrap();
    let quote = msg.item_list[0].ref_msg.as_ref().unwrap();
    assert_eq!(quote.svr_id, None);
    assert_eq!(quote.title.as_deref(), Some("t"));
}
