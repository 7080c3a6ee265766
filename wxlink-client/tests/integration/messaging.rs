//! Text, polling, typing, config and presence calls against the simulator,
//! checking what the simulator recorded.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{HOLD, WAIT, client, sim};
use wxlink_client::{Error, WxLinkClient, chunk_text};
use wxlink_proto::{
    BotToken, ContextToken, MessageItemType, MessageState, MessageType, StatusKind, TypingTicket,
};
use wxlink_sim::{Fault, Fidelity};

#[tokio::test]
async fn send_text_has_the_official_reply_shape_and_echoes_the_context() {
    let sim = sim().await;
    let client = client(&sim);
    let user = sim.user_id();
    let ctx = ContextToken::new("ctx-from-inbound-123");

    let sent = client
        .send_text(&user, "好的，明天 10:00 提醒你 👍")
        .context_token(ctx.clone())
        .await
        .unwrap();

    let recorded = sim.sent_messages();
    assert_eq!(recorded.len(), 1);
    let msg = &recorded[0].msg;
    assert_eq!(msg.from_user_id.as_deref(), Some(""));
    assert_eq!(msg.to_user_id.as_deref(), Some(user.as_str()));
    assert_eq!(msg.message_type, Some(MessageType::Bot));
    assert_eq!(msg.message_state, Some(MessageState::Finish));
    assert_eq!(msg.item_list.len(), 1);
    assert_eq!(msg.item_list[0].item_type, Some(MessageItemType::Text));
    assert_eq!(recorded[0].text(), Some("好的，明天 10:00 提醒你 👍"));
    assert_eq!(msg.context_token.as_ref(), Some(&ctx));
    // The id returned is the client_id the message carried.
    assert_eq!(msg.client_id.as_deref(), Some(sent.id()));
    assert!(sent.id().starts_with("wxlink:"), "{}", sent.id());
}

#[tokio::test]
async fn send_text_without_context_leaves_the_field_out() {
    let sim = sim().await;
    client(&sim).send_text(sim.user_id(), "hi").await.unwrap();
    assert_eq!(sim.sent_messages()[0].msg.context_token, None);
}

#[tokio::test]
async fn empty_text_is_refused_before_anything_is_sent() {
    let sim = sim().await;
    let err = client(&sim).send_text(sim.user_id(), "").await.unwrap_err();
    assert!(err.is_empty_text(), "{err:?}");
    assert!(!err.may_have_been_sent());
    let err = client(&sim)
        .send_text_chunked(sim.user_id(), "")
        .await
        .unwrap_err();
    assert!(err.is_empty_text(), "{err:?}");
    assert!(sim.sent_messages().is_empty());
}

#[tokio::test]
async fn a_client_without_a_token_is_refused_at_construction() {
    let err = WxLinkClient::builder()
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap_err();
    assert!(err.is_missing_token(), "{err:?}");
    let err = WxLinkClient::builder()
        .token(BotToken::new("   "))
        .build()
        .unwrap_err();
    assert!(err.is_missing_token(), "{err:?}");
    assert_eq!(err.to_string(), "no bot token configured");
}

#[tokio::test]
async fn from_account_uses_the_records_token_and_urls() {
    let sim = sim().await;
    let record = wxlink_client::AccountRecord::new(sim.token(), sim.base_url())
        .with_cdn_base_url(sim.cdn_base_url());
    let client = WxLinkClient::from_account(&record).unwrap();
    assert_eq!(client.base_url(), sim.base_url());
    assert_eq!(client.cdn_base_url(), sim.cdn_base_url());
    client
        .send_text(sim.user_id(), "from a record")
        .await
        .unwrap();
    assert_eq!(sim.sent_messages()[0].text(), Some("from a record"));
    // Debug output of the client never shows the token.
    let shown = format!("{client:?}");
    assert!(!shown.contains(sim.token().expose_secret()), "{shown}");
}

#[tokio::test]
async fn a_sendmessage_rejection_is_a_typed_error_not_a_success() {
    let sim = sim().await;
    let mut fidelity = Fidelity::default();
    fidelity.max_text_bytes = Some(10);
    sim.set_fidelity(fidelity);
    let err = client(&sim)
        .send_text(sim.user_id(), "this text is longer than ten bytes")
        .await
        .unwrap_err();
    let status = err.api_status().expect("an api status");
    assert_eq!(status.ret, Some(-2));
    assert_eq!(status.kind(), StatusKind::Rejected);
    // A -2 comes with a guess at its cause; the transport error is its
    // source.
    let cause = std::error::Error::source(&err).and_then(|c| c.downcast_ref::<Error>());
    assert!(
        err.rejection().is_some() && cause.is_some_and(|c| c.is_api() && c.transport().is_some()),
        "{err:?}"
    );
    assert!(err.rejection().is_some());
    assert!(err.may_have_been_sent());
    assert!(!err.is_session_expired());
    assert!(sim.sent_messages().is_empty());
}

#[tokio::test]
async fn session_expiry_is_a_typed_error_on_every_call() {
    let sim = sim().await;
    let client = client(&sim);
    sim.expire_session();
    let err = client.poll("").await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(err.api_status().unwrap().code(), -14);
    let err = client.send_text(sim.user_id(), "hi").await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    let err = client.get_config(sim.user_id()).await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
}

#[tokio::test]
async fn injected_session_expired_fault_on_sendmessage() {
    let sim = sim().await;
    sim.inject_fault("sendmessage", Fault::SessionExpired, 1)
        .unwrap();
    let err = client(&sim)
        .send_text(sim.user_id(), "x")
        .await
        .unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
}

#[tokio::test]
async fn poll_returns_messages_and_the_next_cursor() {
    let sim = sim().await;
    let client = client(&sim);
    let injected = sim.inject_text(sim.user_id(), "hello bot");

    let first = client.poll("").await.unwrap();
    assert!(!first.timed_out);
    let msgs = first.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].message_id, Some(injected.message_id));
    assert_eq!(
        msgs[0].context_token.as_ref(),
        Some(&injected.context_token)
    );
    let text = msgs[0].item_list[0]
        .text_item
        .as_ref()
        .unwrap()
        .text
        .as_deref();
    assert_eq!(text, Some("hello bot"));
    assert!(!first.next_cursor.is_empty());

    // The next poll with the new cursor does not see the message again.
    let second = client.poll(&first.next_cursor).await.unwrap();
    assert!(second.messages().is_empty());
    assert!(!second.next_cursor.is_empty());
}

#[tokio::test]
async fn a_client_side_long_poll_timeout_is_an_empty_poll_with_the_same_cursor() {
    let sim = wxlink_sim::Simulator::builder()
        .hold(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let client = client(&sim);
    let started = std::time::Instant::now();
    let result = client
        .poll("cursor-we-sent")
        .timeout(Duration::from_millis(200))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(result.timed_out);
    assert!(result.messages().is_empty());
    assert_eq!(result.next_cursor, "cursor-we-sent");
    assert_eq!(
        result.response.get_updates_buf.as_deref(),
        Some("cursor-we-sent")
    );
}

#[tokio::test]
async fn an_empty_server_cursor_never_replaces_ours() {
    // A transport that answers every getupdates with an empty cursor.
    let service = tower::service_fn(|_req: http::Request<wxlink_transport::Body>| async {
        let body = r#"{"ret":0,"msgs":[],"get_updates_buf":"","longpolling_timeout_ms":1000}"#;
        Ok::<_, std::convert::Infallible>(http::Response::new(wxlink_transport::Body::from(
            body.as_bytes().to_vec(),
        )))
    });
    let client = WxLinkClient::builder()
        .base_url("http://127.0.0.1:9")
        .token(BotToken::new("t"))
        .transport(service)
        .build()
        .unwrap();
    let result = client.poll("keep-me").await.unwrap();
    assert_eq!(result.next_cursor, "keep-me");
    // The server's suggested timeout, plus the margin, applies next time.
    assert_eq!(
        client.next_poll_timeout(),
        Some(Duration::from_millis(1000) + wxlink_client::client::LONG_POLL_MARGIN)
    );
}

/// A transport that answers every getupdates at once with an empty batch
/// and `longpolling_timeout_ms: 20000`, and records the client-side timeout
/// each poll was given (the transport sees it in the call's `CallMeta`).
fn timeout_recording_client(
    timeouts: Option<wxlink_transport::Timeouts>,
) -> (
    WxLinkClient,
    std::sync::Arc<std::sync::Mutex<Vec<Option<Duration>>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = tower::service_fn({
        let seen = std::sync::Arc::clone(&seen);
        move |req: http::Request<wxlink_transport::Body>| {
            let meta = wxlink_transport::CallMeta::of(&req);
            seen.lock().unwrap().push(meta.timeout);
            async {
                let body =
                    r#"{"ret":0,"msgs":[],"get_updates_buf":"c1","longpolling_timeout_ms":20000}"#;
                Ok::<_, std::convert::Infallible>(http::Response::new(
                    wxlink_transport::Body::from(body.as_bytes().to_vec()),
                ))
            }
        }
    });
    let mut builder = WxLinkClient::builder()
        .base_url("http://127.0.0.1:9")
        .token(BotToken::new("t"))
        .transport(service);
    if let Some(timeouts) = timeouts {
        builder = builder.timeouts(timeouts);
    }
    (builder.build().unwrap(), seen)
}

#[tokio::test]
async fn the_first_poll_waits_the_servers_35_second_hold_plus_the_margin() {
    use wxlink_client::client::{FIRST_POLL_TIMEOUT, LONG_POLL_MARGIN};
    let (client, seen) = timeout_recording_client(None);
    let first = client.poll("").await.unwrap();
    client.poll(&first.next_cursor).await.unwrap();
    // One poll with a bare 35 s timer would race the real server's 35 s
    // answer; the first waits 40 s, the next the server's 20 s plus 5 s.
    assert_eq!(
        FIRST_POLL_TIMEOUT,
        Duration::from_secs(35) + LONG_POLL_MARGIN
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(Duration::from_secs(40)), Some(Duration::from_secs(25))]
    );

    // A configured hold gets the same margin; a per-poll override is exact.
    let mut timeouts = wxlink_transport::Timeouts::default();
    timeouts.long_poll = Some(Duration::from_secs(10));
    let (client, seen) = timeout_recording_client(Some(timeouts));
    client.poll("").await.unwrap();
    client
        .poll("c1")
        .timeout(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(Duration::from_secs(15)), Some(Duration::from_secs(3))]
    );
}

#[tokio::test]
async fn a_poll_outlives_a_server_hold_equal_to_the_configured_one() {
    // The real server holds for 35 s and the client is configured for 35 s;
    // here both are scaled down to 300 ms. The client's timer starts before
    // the server's, so without the margin it fires first and throws the
    // server's answer (with any message in it) away.
    let sim = wxlink_sim::Simulator::builder()
        .hold(HOLD)
        .start()
        .await
        .unwrap();
    let mut timeouts = wxlink_transport::Timeouts::default();
    timeouts.long_poll = Some(HOLD);
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .token(sim.token())
        .timeouts(timeouts)
        .build()
        .unwrap();
    let mut cursor = String::new();
    for _ in 0..3 {
        let result = client.poll(&cursor).await.unwrap();
        assert!(!result.timed_out, "the server's answer arrived");
        assert!(!result.next_cursor.is_empty(), "the server's cursor");
        cursor = result.next_cursor;
    }
}

#[tokio::test]
async fn chunked_cjk_text_arrives_in_order_and_whole() {
    let sim = sim().await;
    let text = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n\n".repeat(20);
    let sent = client(&sim)
        .send_text_chunked(sim.user_id(), text.clone())
        .max_chars(100)
        .context_token(ContextToken::new("ctx-1"))
        .await
        .unwrap();
    let recorded = sim.wait_for_sent(sent, WAIT).await.unwrap();
    assert_eq!(recorded.len(), sent);
    assert_eq!(sent, chunk_text(&text, 100).len());
    assert!(sent > 1);
    let joined: String = recorded.iter().map(|m| m.text().unwrap()).collect();
    assert_eq!(joined, text);
    for m in &recorded {
        assert!(m.text().unwrap().chars().count() <= 100);
        assert_eq!(m.msg.context_token, Some(ContextToken::new("ctx-1")));
    }
    // Paragraph breaks were preferred: every chunk but the last ends in one.
    for m in &recorded[..recorded.len() - 1] {
        assert!(m.text().unwrap().ends_with("\n\n"), "{:?}", m.text());
    }
}

#[tokio::test]
async fn chunked_emoji_and_unbroken_text_never_split_a_character() {
    let sim = sim().await;
    let client = client(&sim);
    let emoji = "👨‍👩‍👧‍👦🇨🇳😀".repeat(30);
    let unbroken = "x".repeat(95);
    let text = format!("{emoji}{unbroken}");
    let sent = client
        .send_text_chunked(sim.user_id(), text.clone())
        .max_chars(40)
        .await
        .unwrap();
    let recorded = sim.wait_for_sent(sent, WAIT).await.unwrap();
    let pieces: Vec<&str> = recorded.iter().map(|m| m.text().unwrap()).collect();
    assert_eq!(pieces.concat(), text);
    for p in &pieces {
        assert!(p.chars().count() <= 40);
        // No piece starts inside a family emoji or between flag halves.
        assert!(!p.starts_with('\u{200D}'), "{p:?}");
        assert!(!p.starts_with('🇳'), "{p:?}");
    }
    // The unbroken tail is split hard into full-size pieces.
    assert!(pieces.iter().any(|p| *p == "x".repeat(40)));
}

#[tokio::test]
async fn chunked_with_default_size_sends_one_message_for_short_text() {
    let sim = sim().await;
    let n = client(&sim)
        .send_text_chunked(sim.user_id(), "short")
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(sim.sent_messages()[0].text(), Some("short"));
}

#[tokio::test]
async fn a_chunk_failing_midway_reports_how_many_went_out() {
    let sim = sim().await;
    let mut fidelity = Fidelity::default();
    fidelity.max_text_bytes = Some(5);
    sim.set_fidelity(fidelity);
    // "aaaa " fits in 5 bytes; the next chunk is longer and refused.
    let err = client(&sim)
        .send_text_chunked(sim.user_id(), "aaaa bbbbbbbbbb")
        .max_chars(10)
        .await
        .unwrap_err();
    assert_eq!(err.partially_sent(), Some(1), "{err:?}");
    assert_eq!(err.api_status().unwrap().ret, Some(-2));
    assert_eq!(sim.sent_messages().len(), 1);
}

#[tokio::test]
async fn typing_fetches_the_ticket_then_starts_and_cancels() {
    let sim = sim().await;
    let client = client(&sim);
    let user = sim.user_id();
    let ctx = ContextToken::new("ctx-typing");
    client
        .send_typing(&user)
        .context_token(ctx.clone())
        .await
        .unwrap();
    client
        .cancel_typing(&user)
        .context_token(ctx)
        .await
        .unwrap();

    // The simulator accepts a typing call only with the ticket it issued
    // to this user through getconfig.
    let calls = sim.wait_for_typing(2, WAIT).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].ilink_user_id, user);
    assert_eq!(calls[0].status, 1);
    assert_eq!(calls[1].status, 2);
    let getconfigs = sim.wait_for_requests("getconfig", 1, WAIT).await.unwrap();
    assert_eq!(getconfigs.len(), 1, "cancel reuses the cached ticket");
}

#[tokio::test]
async fn a_wrong_ticket_is_refused_by_the_server() {
    let sim = sim().await;
    let err = client(&sim)
        .send_typing(sim.user_id())
        .ticket(TypingTicket::new("not-issued"))
        .await
        .unwrap_err();
    assert!(err.api_status().is_some(), "{err:?}");
    assert!(sim.typing_calls().is_empty());
}

#[tokio::test]
async fn get_config_returns_the_ticket_that_typing_uses() {
    let sim = sim().await;
    let client = client(&sim);
    let config = client
        .get_config(sim.user_id())
        .context_token(ContextToken::new("ctx"))
        .await
        .unwrap();
    let ticket = config.typing_ticket.unwrap();
    assert!(!ticket.is_empty());
    assert_eq!(config.ret, Some(0));
    client
        .send_typing(sim.user_id())
        .ticket(ticket)
        .await
        .unwrap();
    assert_eq!(sim.typing_calls().len(), 1);
}

#[tokio::test]
async fn notify_start_and_stop_are_recorded_in_order() {
    let sim = sim().await;
    let client = client(&sim);
    client.notify_start().await.unwrap();
    client.notify_stop().await.unwrap();
    let calls = sim.notify_calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].start);
    assert!(!calls[1].start);
    assert_eq!(calls[0].bot_id, sim.bot_id());
}

#[tokio::test]
async fn requests_carry_the_route_tag_and_a_valid_token() {
    let sim = sim().await;
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .token(sim.token())
        .bot_agent("EchoBot/1.0")
        .route_tag("1001")
        .build()
        .unwrap();
    client.notify_start().await.unwrap();
    let reqs = sim.wait_for_requests("notifystart", 1, WAIT).await.unwrap();
    assert_eq!(reqs[0].header("SKRouteTag"), Some("1001"));
    assert_eq!(reqs[0].auth, wxlink_sim::AuthSeen::Valid);
}

#[tokio::test]
async fn a_long_poll_is_held_and_woken_by_a_message() {
    let sim = wxlink_sim::Simulator::builder()
        .hold(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let client = client(&sim);
    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.poll("").await }
    });
    tokio::time::sleep(HOLD).await;
    sim.inject_text(sim.user_id(), "wake up");
    let result = tokio::time::timeout(WAIT, poll)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(result.messages().len(), 1);
}

#[tokio::test]
async fn pacing_keeps_chunks_under_the_burst_throttle() {
    let sim = sim().await;
    let mut fidelity = Fidelity::default();
    fidelity.burst_throttle = Some(wxlink_sim::Throttle::new(2, Duration::from_secs(60)));
    sim.set_fidelity(fidelity);
    let text = "one. two. three.";
    let sent = client(&sim)
        .send_text_chunked(sim.user_id(), text)
        .max_chars(6)
        .pace(Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(sent, 3);
    let recorded = sim.sent_messages();
    assert_eq!(recorded.len(), 3);
    let gap = recorded[2].at.duration_since(recorded[0].at).unwrap();
    assert!(gap >= Duration::from_millis(1100), "{gap:?}");
}

#[tokio::test]
async fn an_unpaced_burst_hits_the_throttle_as_a_typed_rejection() {
    let sim = sim().await;
    let mut fidelity = Fidelity::default();
    fidelity.burst_throttle = Some(wxlink_sim::Throttle::new(2, Duration::from_secs(60)));
    sim.set_fidelity(fidelity);
    let err = client(&sim)
        .send_text_chunked(sim.user_id(), "one. two. three.")
        .max_chars(6)
        .await
        .unwrap_err();
    assert!(err.partially_sent() == Some(2), "{err:?}");
    let status = err.api_status().unwrap();
    assert_eq!(
        status.rejection(),
        Some(wxlink_proto::RejectReason::PrepareFailed)
    );
}

#[tokio::test]
async fn a_send_that_times_out_is_typed_and_may_have_been_sent() {
    let sim = sim().await;
    sim.inject_fault("sendmessage", Fault::Delay(Duration::from_secs(3)), 1)
        .unwrap();
    let mut timeouts = wxlink_client::client::Timeouts::default();
    timeouts.api = Some(Duration::from_millis(200));
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .token(sim.token())
        .timeouts(timeouts)
        .retry(wxlink_client::client::RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.send_text(sim.user_id(), "slow").await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.may_have_been_sent());
    assert!(!err.is_session_expired());
}

#[tokio::test]
async fn a_custom_layer_sees_every_request() {
    let sim = sim().await;
    let client = WxLinkClient::builder()
        .base_url(sim.base_url())
        .token(sim.token())
        .layer(tower::util::MapRequestLayer::new(
            |mut req: http::Request<wxlink_transport::Body>| {
                req.headers_mut()
                    .insert("x-traced-by", http::HeaderValue::from_static("test-layer"));
                req
            },
        ))
        .build()
        .unwrap();
    client.send_text(sim.user_id(), "traced").await.unwrap();
    let reqs = sim.wait_for_requests("sendmessage", 1, WAIT).await.unwrap();
    assert_eq!(reqs[0].header("x-traced-by"), Some("test-layer"));
}

#[tokio::test]
async fn a_minus_3_names_the_recipient_with_a_hint() {
    let sim = sim().await;
    let client = client(&sim);
    sim.inject_fault(
        "sendmessage",
        wxlink_sim::Fault::Json(r#"{"ret":-3,"errmsg":"invalid arguments"}"#.into()),
        1,
    )
    .unwrap();
    let wrapped = format!("user:{}", sim.user_id());
    let err = client.send_text(&wrapped, "hi").await.unwrap_err();
    assert!(err.is_invalid_recipient(), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains(&wrapped), "{shown}");
    assert!(shown.contains("case-exact"), "{shown}");
    assert!(shown.contains("`user:`"), "{shown}");
    // The server's status is still there.
    assert_eq!(err.api_status().map(|s| s.code()), Some(-3));
}

#[tokio::test]
async fn a_minus_2_carries_a_guess_from_the_errmsg_and_the_request() {
    use wxlink_client::reject::RejectCause;
    let sim = sim().await;
    let client = client(&sim);
    let prepare_failed =
        || wxlink_sim::Fault::Json(r#"{"ret":-2,"errmsg":"prepare failed"}"#.into());
    // Without a context token: the missing context is the likely cause.
    sim.inject_fault("sendmessage", prepare_failed(), 1)
        .unwrap();
    let err = client.send_text(sim.user_id(), "hi").await.unwrap_err();
    let guess = err.rejection().unwrap();
    assert_eq!(guess.cause, RejectCause::NoContext, "{guess}");
    assert!(
        err.to_string().contains("no context token was sent"),
        "{err}"
    );
    // With one and a short text: the burst throttle.
    sim.inject_fault("sendmessage", prepare_failed(), 1)
        .unwrap();
    let err = client
        .send_text(sim.user_id(), "hi")
        .context_token(ContextToken::new("ctx"))
        .await
        .unwrap_err();
    assert_eq!(err.rejection().unwrap().cause, RejectCause::Throttled);
    // A long text.
    sim.inject_fault("sendmessage", prepare_failed(), 1)
        .unwrap();
    let err = client
        .send_text(sim.user_id(), "长".repeat(6000))
        .context_token(ContextToken::new("ctx"))
        .await
        .unwrap_err();
    assert_eq!(err.rejection().unwrap().cause, RejectCause::TextTooLong);
    assert!(err.api_status().and_then(|s| s.rejection()).is_some());
    assert!(sim.sent_messages().is_empty());
}
