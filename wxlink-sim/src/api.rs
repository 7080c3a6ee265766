//! The authenticated bot endpoints: `getupdates`, `sendmessage`,
//! `getconfig`, `sendtyping`, `getuploadurl` and the notify calls.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http::Response;
use rand::Rng as _;
use wxlink_media::{AesKey, KeyEncoding, ciphertext_len};
use wxlink_proto::{
    GetConfigRequest, GetConfigResponse, GetUpdatesRequest, GetUpdatesResponse,
    GetUploadUrlRequest, GetUploadUrlResponse, MessageItem, MessageItemType, MessageState,
    MessageType, SendMessageRequest, SendMessageResponse, SendTypingRequest, TypingTicket,
};

use crate::body::SimBody;
use crate::cdn::UploadSlot;
use crate::config::{SendOkBody, UploadUrlMode};
use crate::records::{NotifyCall, SentMessage, TypingCall};
use crate::server::{Answer, Call, SESSION_EXPIRED, json, json_response, wait_shutdown};
use crate::state::{Shared, State};

/// `{"ret":-2,"errmsg":"invalid arguments"}`, the observed answer to a
/// malformed message (ILINK.md §11.5).
const INVALID_ARGUMENTS: &str = r#"{"ret":-2,"errmsg":"invalid arguments"}"#;

/// The body of a business error (always HTTP 200).
fn business_error(ret: i64, errmsg: Option<&str>) -> Response<SimBody> {
    let mut value = serde_json::json!({ "ret": ret });
    if let Some(msg) = errmsg {
        value["errmsg"] = serde_json::Value::from(msg);
    }
    json(&value)
}

/// Decodes a JSON request body leniently: an empty body is `{}`.
fn decode<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("request body is not valid: {e}"))
}

/// `getupdates`: a long poll held until a message is queued, the hold time
/// passes or the simulator shuts down (ILINK.md §4.4, §11.4).
pub(crate) async fn getupdates(shared: &Arc<Shared>, call: Call) -> Answer {
    if let Err(e) = decode::<GetUpdatesRequest>(&call.body) {
        return Answer::refused(json_response(INVALID_ARGUMENTS), e);
    }
    let token = call.token.unwrap_or_default();
    let hold = shared.config.hold;
    let deadline = tokio::time::Instant::now() + hold;
    let mut shutdown = shared.shutdown.clone();
    let msgs = loop {
        let notified = shared.inbound.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.state();
            if st.binding_for(&token).is_none() {
                // The session expired while the poll was held.
                return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
            }
            if !st.queue.is_empty() {
                let n = st.queue.len().min(shared.config.max_batch);
                let batch: Vec<_> = st.queue.drain(..n).collect();
                st.delivered_batches += 1;
                break batch;
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => break Vec::new(),
            _ = wait_shutdown(&mut shutdown) => break Vec::new(),
        }
    };
    let mut st = shared.state();
    let omit_ret = st
        .rng
        .random_bool(shared.config.omit_ret_probability.clamp(0.0, 1.0));
    let cursor = cursor(st.delivered_batches, shared.config.seed);
    let resp = GetUpdatesResponse {
        ret: (!omit_ret).then_some(0),
        msgs,
        get_updates_buf: Some(cursor),
        longpolling_timeout_ms: Some(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    drop(st);
    let Ok(mut text) = serde_json::to_string(&resp) else {
        return Answer::ok(json(&resp));
    };
    // The proto type leaves an empty `msgs` out; the real server sends
    // `"msgs":[]` unless it also leaves out `ret`.
    if !omit_ret && resp.msgs.is_empty() {
        text = text.replacen(r#"{"ret":0"#, r#"{"ret":0,"msgs":[]"#, 1);
    }
    Answer::ok(json_response(text))
}

/// The opaque cursor after `delivered` batches: base64 of a tagged
/// counter, so it looks like the real server's and cannot be confused with
/// another simulator's.
fn cursor(delivered: u64, seed: u64) -> String {
    let text = format!("wxlink-sim:{seed:x}:{delivered}");
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `sendmessage`: validates the reply shape (ILINK.md §5.6, §11.5), applies
/// the fidelity switches and records the message.
pub(crate) fn sendmessage(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: SendMessageRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(msg) = req.msg else {
        return Answer::refused(json_response(INVALID_ARGUMENTS), "msg missing");
    };
    let mut st = shared.state();
    if let Err(why) = check_reply(&st, &msg) {
        return Answer::refused(json_response(INVALID_ARGUMENTS), why);
    }
    let to_user = msg.to_user_id.clone().unwrap_or_default();
    let fidelity = st.fidelity.clone();

    if let Some(throttle) = fidelity.burst_throttle {
        let now = Instant::now();
        if st.throttled_until.is_some_and(|t| t > now) {
            return Answer::refused(
                business_error(-2, Some("prepare failed")),
                "burst throttle cool-down",
            );
        }
        while st
            .send_times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            st.send_times.pop_front();
        }
        st.send_times.push_back(now);
        if st.send_times.len() > throttle.max_per_second as usize {
            st.throttled_until = Some(now + throttle.cooldown);
            st.send_times.clear();
            return Answer::refused(
                business_error(-2, Some("prepare failed")),
                "burst throttle tripped",
            );
        }
    }
    if let Some(limit) = fidelity.max_text_bytes {
        let too_long = msg
            .item_list
            .iter()
            .filter_map(|i| i.text_item.as_ref()?.text.as_ref())
            .any(|t| t.len() > limit);
        if too_long {
            return Answer::refused(business_error(-2, None), "text over the byte limit");
        }
    }
    let conversation = st.conversations.get(&to_user).cloned().unwrap_or_default();
    if let Some(limit) = fidelity.replies_per_inbound
        && conversation.replies_since >= limit
    {
        return Answer::refused(business_error(-2, None), "reply limit per inbound message");
    }
    let delivered = match fidelity.reply_window {
        Some(window) => {
            let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            conversation
                .last_inbound_ms
                .is_some_and(|last| st.now_ms().saturating_sub(last) <= window_ms)
        }
        None => true,
    };
    let bot_id = call
        .token
        .as_deref()
        .and_then(|t| st.binding_for(t))
        .map(|b| b.bot_id.clone())
        .unwrap_or_default();
    st.conversations.entry(to_user).or_default().replies_since += 1;
    st.sent.push(SentMessage {
        at: SystemTime::now(),
        bot_id,
        msg,
        delivered,
    });
    let form = match shared.config.send_ok_body {
        SendOkBody::Random => match st.rng.random_range(0..3u8) {
            0 => SendOkBody::Empty,
            1 => SendOkBody::RetZero,
            _ => SendOkBody::WithMessageId,
        },
        other => other,
    };
    let server_id = st.rng.random_range(1u64 << 53..u64::MAX >> 1);
    drop(st);
    shared.touch();
    let resp = SendMessageResponse {
        ret: (form != SendOkBody::Empty).then_some(0),
        message_id: (form == SendOkBody::WithMessageId).then_some(server_id),
        ..Default::default()
    };
    let answer = Answer::ok(json(&resp));
    if delivered {
        answer
    } else {
        Answer {
            note: Some("outside the reply window: dropped silently".to_owned()),
            ..answer
        }
    }
}

/// The structural checks of a bot reply.
fn check_reply(st: &State, msg: &wxlink_proto::WeixinMessage) -> Result<(), String> {
    if msg.to_user_id.as_deref().is_none_or(str::is_empty) {
        return Err("msg.to_user_id missing".into());
    }
    if msg.message_type != Some(MessageType::Bot) {
        return Err("msg.message_type must be 2 (BOT)".into());
    }
    if msg.message_state != Some(MessageState::Finish) {
        return Err("msg.message_state must be 2 (FINISH)".into());
    }
    let [item] = msg.item_list.as_slice() else {
        return Err(format!(
            "msg.item_list must hold exactly one item, not {}",
            msg.item_list.len()
        ));
    };
    let to_user = msg.to_user_id.as_deref().unwrap_or_default();
    check_item(st, item, to_user)
}

fn check_item(st: &State, item: &MessageItem, to_user: &str) -> Result<(), String> {
    let media = match item.item_type {
        Some(MessageItemType::Text) => {
            let text = item.text_item.as_ref().and_then(|t| t.text.as_deref());
            return match text {
                Some(t) if !t.is_empty() => Ok(()),
                _ => Err("text item without text".into()),
            };
        }
        Some(MessageItemType::Image) => {
            let image = item
                .image_item
                .as_ref()
                .ok_or("image item without image_item")?;
            let hex_key = image.aeskey.as_ref().map(|k| k.expose_secret().to_owned());
            (image.media.as_ref(), hex_key)
        }
        Some(MessageItemType::Voice) => (
            item.voice_item.as_ref().and_then(|v| v.media.as_ref()),
            None,
        ),
        Some(MessageItemType::File) => {
            (item.file_item.as_ref().and_then(|v| v.media.as_ref()), None)
        }
        Some(MessageItemType::Video) => (
            item.video_item.as_ref().and_then(|v| v.media.as_ref()),
            None,
        ),
        other => return Err(format!("unsupported item type {other:?}")),
    };
    let (Some(media), hex_key) = media else {
        return Err("media item without media".into());
    };
    let param = media
        .encrypt_query_param
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or("media without encrypt_query_param")?;
    let stored = st
        .cdn
        .media(param)
        .ok_or("encrypt_query_param does not name uploaded media")?;
    if let Some(owner) = &stored.to_user_id
        && owner != to_user
    {
        return Err("media was uploaded for another user".into());
    }
    let key = match (&media.aes_key, hex_key) {
        (Some(text), _) => match AesKey::parse_inbound(text.expose_secret()) {
            Ok((key, KeyEncoding::Base64Hex | KeyEncoding::Base64Raw)) => key,
            Ok(_) => return Err("media.aes_key must be base64".into()),
            Err(_) => return Err("media.aes_key is not a valid key encoding".into()),
        },
        (None, Some(hex)) => AesKey::from_hex(&hex).map_err(|_| "image_item.aeskey is not hex")?,
        (None, None) => return Err("media without aes_key".into()),
    };
    if key != stored.key {
        return Err("aes_key does not decrypt the uploaded media".into());
    }
    Ok(())
}

/// `getconfig`: requires `ilink_user_id`; always answers `"ret":0` with a
/// base64 `typing_ticket` on success (ILINK.md §4.6).
pub(crate) fn getconfig(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: GetConfigRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(user) = req.ilink_user_id.filter(|u| !u.is_empty()) else {
        return Answer::refused(
            business_error(-2, Some("ilink_user_id required")),
            "ilink_user_id missing",
        );
    };
    let mut st = shared.state();
    let ticket = match st.typing_tickets.get(&user) {
        Some(t) => t.clone(),
        None => {
            let t = st.random_b64(33);
            st.typing_tickets.insert(user, t.clone());
            t
        }
    };
    drop(st);
    Answer::ok(json(&GetConfigResponse {
        ret: Some(0),
        typing_ticket: Some(TypingTicket::new(ticket)),
        ..Default::default()
    }))
}

/// `sendtyping`: checks the ticket issued by `getconfig` for that user and
/// the status (1 or 2), records the call and answers `{"ret":0}`.
pub(crate) fn sendtyping(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: SendTypingRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(user) = req.ilink_user_id.filter(|u| !u.is_empty()) else {
        return Answer::refused(
            business_error(-2, Some("ilink_user_id required")),
            "ilink_user_id missing",
        );
    };
    let status = req.status.map(|s| s.to_wire()).unwrap_or(1);
    if !(1..=2).contains(&status) {
        return Answer::refused(json_response(INVALID_ARGUMENTS), "status must be 1 or 2");
    }
    let mut st = shared.state();
    let ticket_ok = match (&req.typing_ticket, st.typing_tickets.get(&user)) {
        (Some(sent), Some(issued)) => sent.expose_secret() == issued,
        _ => false,
    };
    if !ticket_ok {
        return Answer::refused(
            json_response(INVALID_ARGUMENTS),
            "typing_ticket was not issued for this user",
        );
    }
    st.typing.push(TypingCall {
        at: SystemTime::now(),
        ilink_user_id: user,
        status,
    });
    drop(st);
    shared.touch();
    Answer::ok(json_response(r#"{"ret":0}"#))
}

/// `getuploadurl`: validates the declared sizes and key, then issues an
/// upload parameter (ILINK.md §4.8, §11.7).
pub(crate) fn getuploadurl(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: GetUploadUrlRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let mut st = shared.state();
    let to_user = req.to_user_id.clone().unwrap_or_default();
    if !st.users.contains(&to_user) {
        return Answer::refused(
            business_error(-1, Some("invalid to_user_id")),
            "to_user_id is not a known user",
        );
    }
    let invalid = |why: &str| Answer::refused(json_response(INVALID_ARGUMENTS), why.to_owned());
    let Some(filekey) = req.filekey.clone().filter(|k| !k.is_empty()) else {
        return invalid("filekey missing");
    };
    let media_type = req.media_type.map(|m| m.to_wire()).unwrap_or(0);
    if !(1..=4).contains(&media_type) {
        return invalid("media_type must be 1..4");
    }
    let (Some(rawsize), Some(filesize)) = (req.rawsize, req.filesize) else {
        return invalid("rawsize and filesize are required");
    };
    if filesize != ciphertext_len(rawsize) {
        return invalid("filesize is not ceil((rawsize+1)/16)*16");
    }
    let Some(md5) = req.rawfilemd5.as_deref().filter(|m| is_hex(m, 32)) else {
        return invalid("rawfilemd5 must be 32 hex characters");
    };
    let Some(key_text) = req.aeskey.as_ref().map(|k| k.expose_secret().to_owned()) else {
        return invalid("aeskey missing");
    };
    if !is_hex(&key_text, 32) {
        return invalid("aeskey must be 32 hex characters");
    }
    let Ok(key) = AesKey::from_hex(&key_text) else {
        return invalid("aeskey must be 32 hex characters");
    };
    let wants_thumb = req.no_need_thumb == Some(false)
        && req.thumb_rawsize.is_some()
        && req.thumb_filesize.is_some()
        && req.thumb_rawfilemd5.is_some();
    let mut thumb_param = None;
    if wants_thumb {
        let (Some(t_raw), Some(t_file)) = (req.thumb_rawsize, req.thumb_filesize) else {
            return invalid("thumbnail sizes missing");
        };
        let Some(t_md5) = req.thumb_rawfilemd5.as_deref().filter(|m| is_hex(m, 32)) else {
            return invalid("thumb_rawfilemd5 must be 32 hex characters");
        };
        if t_file != ciphertext_len(t_raw) {
            return invalid("thumb_filesize is not ceil((thumb_rawsize+1)/16)*16");
        }
        let param = st.random_param(36);
        st.cdn.insert_slot(
            param.clone(),
            UploadSlot {
                filekey: filekey.clone(),
                key: key.clone(),
                rawsize: t_raw,
                rawfilemd5: t_md5.to_ascii_lowercase(),
                filesize: t_file,
                media_type,
                to_user_id: to_user.clone(),
            },
        );
        thumb_param = Some(param);
    }
    let param = st.random_param(36);
    st.cdn.insert_slot(
        param.clone(),
        UploadSlot {
            filekey: filekey.clone(),
            key,
            rawsize,
            rawfilemd5: md5.to_ascii_lowercase(),
            filesize,
            media_type,
            to_user_id: to_user,
        },
    );
    drop(st);
    let full_url = format!(
        "{}/upload?encrypted_query_param={}&filekey={}",
        shared.cdn_base_url,
        crate::cdn::encode_component(&param),
        crate::cdn::encode_component(&filekey),
    );
    let mode = shared.config.upload_url_mode;
    let resp = GetUploadUrlResponse {
        upload_param: (mode != UploadUrlMode::FullUrl).then_some(param),
        upload_full_url: (mode != UploadUrlMode::Param).then_some(full_url),
        thumb_upload_param: thumb_param,
        ..Default::default()
    };
    Answer::ok(json(&resp))
}

/// Whether `s` is exactly `len` hex digits.
fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `msg/notifystart` and `msg/notifystop`: recorded, `{"ret":0}`.
pub(crate) fn notify(shared: &Arc<Shared>, call: Call, start: bool) -> Answer {
    let mut st = shared.state();
    let bot_id = call
        .token
        .as_deref()
        .and_then(|t| st.binding_for(t))
        .map(|b| b.bot_id.clone())
        .unwrap_or_default();
    st.notify_calls.push(NotifyCall {
        at: SystemTime::now(),
        start,
        bot_id,
    });
    drop(st);
    shared.touch();
    Answer::ok(json_response(r#"{"ret":0}"#))
}
