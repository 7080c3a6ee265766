//! Robustness of the facade against bodies the server should not send, and
//! a secret audit of the public types that hold one.
//!
//! A `getupdates` batch in which one message has a malformed `message_id`
//! still delivers every message (the bad one without an id), and no public
//! type's `Debug` (or `Display`) shows a token, ticket or key.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use wxlink_client::{AccountRecord, Error, WxLinkClient};
use wxlink_proto::{BotToken, ContextToken, TypingTicket};
use wxlink_transport::{Body, BoxError};

const TOKEN: &str = "BOT-TOKEN-MARKER-5b1e";
const CTX: &str = "CTX-TOKEN-MARKER-77aa";
const TICKET: &str = "TICKET-MARKER-31c0";

/// A client whose transport answers every request with `body`.
fn client_answering(body: Arc<Mutex<String>>) -> WxLinkClient {
    let service = tower::service_fn(move |_req: http::Request<Body>| {
        let text = body.lock().unwrap().clone();
        async move {
            Ok::<_, BoxError>(
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(text))
                    .unwrap(),
            )
        }
    });
    WxLinkClient::builder()
        .token(BotToken::new(TOKEN))
        .base_url("http://127.0.0.1:9")
        .transport(service)
        .build()
        .unwrap()
}

fn message(id_json: &str, text: &str) -> String {
    format!(
        r#"{{"seq":1,"message_id":{id_json},"from_user_id":"u@im.wechat","to_user_id":"b@im.bot",
            "message_type":1,"message_state":2,"context_token":"{CTX}",
            "item_list":[{{"type":1,"text_item":{{"text":"{text}"}}}}]}}"#
    )
}

fn bad_id() -> impl Strategy<Value = String> {
    prop_oneof![
        (i64::MIN..0).prop_map(|n| n.to_string()),
        "[a-z -]{1,10}".prop_map(|s| format!("\"{s}\"")),
        "[1-9][0-9]{20,30}".prop_map(|s| format!("\"{s}\"")),
        "[1-9][0-9]{20,30}",
        (1u32..1000, 1u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        Just("true".to_owned()),
        Just("[7]".to_owned()),
        Just(r#"{"id":7}"#.to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// One message with a malformed id does not lose the batch: all three
    /// messages arrive, the others keep their exact ids, and the cursor
    /// moves on.
    #[test]
    fn one_bad_message_id_keeps_the_whole_batch(bad in bad_id(), first in any::<u64>()) {
        let body = format!(
            r#"{{"ret":0,"msgs":[{},{},{}],"get_updates_buf":"cursor-2","longpolling_timeout_ms":35000}}"#,
            message(&first.to_string(), "one"),
            message(&bad, "two"),
            message("\"42\"", "three"),
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = client_answering(Arc::new(Mutex::new(body)));
        let result = rt.block_on(client.poll("cursor-1").into_future());
        let result = result.map_err(|e| TestCaseError::fail(format!("{bad}: {e:?}")))?;
        let msgs = result.messages();
        prop_assert_eq!(msgs.len(), 3);
        prop_assert_eq!(msgs[0].message_id, Some(first));
        prop_assert_eq!(msgs[1].message_id, None);
        prop_assert_eq!(msgs[2].message_id, Some(42));
        let texts: Vec<_> = msgs
            .iter()
            .map(|m| m.item_list[0].text_item.as_ref().and_then(|t| t.text.clone()).unwrap())
            .collect();
        prop_assert_eq!(texts, ["one", "two", "three"]);
        prop_assert_eq!(result.next_cursor.as_str(), "cursor-2");
        // The poll's Debug output carries the messages but not their
        // context tokens.
        let shown = format!("{result:?}");
        prop_assert!(!shown.contains(CTX), "{}", shown);
    }
}

/// A body that is not JSON at all is a typed error that says so, and it
/// does not show the context token it held.
#[tokio::test]
async fn an_undecodable_batch_is_a_typed_error_without_secrets() {
    let body = Arc::new(Mutex::new(format!(
        "{{\"ret\":0,\"msgs\":[{{\"context_token\":\t\"{CTX}\",\"item_list\":5}}]"
    )));
    let client = client_answering(body);
    let err = client.poll("c").await.unwrap_err();
    let transport = err.transport().unwrap();
    assert!(transport.is_decode(), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(CTX), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
}

/// Every public client type that holds a secret keeps it out of `Debug`
/// and `Display`.
#[tokio::test]
async fn public_types_never_show_secrets() {
    let body = Arc::new(Mutex::new(r#"{"ret":0}"#.to_owned()));
    let client = client_answering(Arc::clone(&body));
    let mut shown = Vec::new();
    shown.push(format!("{client:?}"));
    shown.push(format!(
        "{:?}",
        WxLinkClient::builder().token(BotToken::new(TOKEN))
    ));
    let record = AccountRecord::new(BotToken::new(TOKEN), "http://127.0.0.1:9")
        .with_account_id("acc")
        .with_user_id("u@im.wechat");
    shown.push(format!("{record:?}"));
    shown.push(format!(
        "{:?}",
        client
            .send_text("u@im.wechat", "hi")
            .context_token(ContextToken::new(CTX))
    ));
    shown.push(format!(
        "{:?}",
        client
            .send_text_chunked("u@im.wechat", "hi")
            .context_token(ContextToken::new(CTX))
    ));
    shown.push(format!(
        "{:?}",
        client
            .send_typing("u@im.wechat")
            .context_token(ContextToken::new(CTX))
            .ticket(TypingTicket::new(TICKET))
    ));
    shown.push(format!(
        "{:?}",
        client
            .get_config("u@im.wechat")
            .context_token(ContextToken::new(CTX))
    ));
    // A config answer with a typing ticket, and an API error.
    *body.lock().unwrap() = format!(r#"{{"ret":0,"typing_ticket":"{TICKET}"}}"#);
    let config = client.get_config("u@im.wechat").await.unwrap();
    shown.push(format!("{config:?}"));
    *body.lock().unwrap() =
        format!(r#"{{"ret":-14,"errmsg":"session timeout","typing_ticket":"{TICKET}"}}"#);
    let err: Error = client.get_config("u@im.wechat").await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    *body.lock().unwrap() = format!(r#"{{"ret":"x","typing_ticket":"{TICKET}"}}"#);
    let err: Error = client.get_config("u@im.wechat").await.unwrap_err();
    shown.push(format!("{err} {err:?}"));

    for text in &shown {
        for secret in [TOKEN, CTX, TICKET] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
}
