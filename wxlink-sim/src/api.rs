//! The authenticated bot endpoints: `getupdates`, `sendmessage`,
//! `getconfig`, `sendtyping`, `getuploadurl` and the notify calls.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http::Response;
use rand::RngExt as _;
use wxlink_media::{AesKey, KeyEncoding, ciphertext_len};
use wxlink_proto::{
    GetConfigRequest, GetConfigResponse, GetUpdatesRequest, GetUploadUrlRequest,
    GetUploadUrlResponse, MessageItem, MessageItemType, MessageState, MessageType,
    SendMessageRequest, SendMessageResponse, SendTypingRequest, TypingTicket,
};

use crate::body::SimBody;
use crate::config::{SendOkBody, UploadUrlMode};
use crate::http::{Answer, Call, SESSION_EXPIRED, json, json_response, wait_shutdown};
use crate::records::{NotifyCall, PollRecord, SentMessage, TypingCall};
use crate::state::{Queued, Shared, State};
use crate::storage::UploadSlot;

/// `{"ret":-2,"errmsg":"invalid arguments"}`, the observed answer to a
/// malformed message, such as several items in one (`docs/protocol.md`,
/// `sendmessage`).
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

/// `getupdates`: a long poll held until a message is queued for the
/// token's account, the hold time passes, the account expires, a newer
/// poll ends it (with [`Fidelity::newer_poll_wins`](crate::Fidelity)) or
/// the simulator shuts down. Overlapping polls of one account are counted.
pub(crate) async fn getupdates(shared: &Arc<Shared>, call: Call) -> Answer {
    let started = SystemTime::now();
    let cursor_sent = match decode::<GetUpdatesRequest>(&call.body) {
        Ok(req) => req.get_updates_buf,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let hold = shared.config.hold;
    let deadline = tokio::time::Instant::now() + hold;
    let mut shutdown = shared.shutdown.clone();
    let (inbound, mine) = {
        let mut st = shared.state();
        let newer_wins = st.fidelity.newer_poll_wins;
        let Some(bot) = st.bot_mut(id) else {
            return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
        };
        let polls = &mut bot.polls;
        if polls.in_flight > 0 {
            polls.overlapping += 1;
        }
        polls.in_flight += 1;
        polls.max_in_flight = polls.max_in_flight.max(polls.in_flight);
        polls.newest += 1;
        let mine = polls.newest;
        if newer_wins {
            // Ends the older polls of this token, which look again.
            bot.inbound.notify_waiters();
        }
        (bot.inbound.clone(), mine)
    };
    let _in_flight = InFlight { shared, id };
    let mut superseded = false;
    let batch = loop {
        let notified = inbound.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.state();
            let newer_wins = st.fidelity.newer_poll_wins;
            let Some(bot) = st.bot_mut(id).filter(|b| b.valid) else {
                // The session expired (or the account went) while the poll
                // was held.
                return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
            };
            if newer_wins && bot.polls.newest != mine {
                superseded = true;
                break Vec::new();
            }
            if !bot.queue.is_empty() {
                let n = bot.queue.len().min(shared.config.max_batch);
                let batch: Vec<Queued> = bot.queue.drain(..n).collect();
                bot.delivered_batches += 1;
                for q in &batch {
                    bot.truth.handed_out(q.message_id, call.answer_lost);
                    if !call.answer_lost {
                        for _ in &call.redeliver {
                            bot.truth.copied(q.message_id);
                        }
                    }
                }
                break batch;
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => break Vec::new(),
            _ = wait_shutdown(&mut shutdown) => break Vec::new(),
        }
    };
    if !call.redeliver.is_empty() && !call.answer_lost {
        redeliver(shared, id, &batch, &call.redeliver);
    }
    let mut st = shared.state();
    let omit_ret = st
        .rng
        .random_bool(shared.config.omit_ret_probability.clamp(0.0, 1.0));
    let delivered = st.bot(id).map_or(0, |b| b.delivered_batches);
    let cursor = cursor(id, delivered, shared.config.seed);
    let limit = shared.config.record_limit;
    if let Some(bot) = st.bot_mut(id)
        && limit > 0
    {
        if bot.poll_log.len() >= limit {
            bot.poll_log.pop_front();
        }
        bot.poll_log.push_back(PollRecord {
            started,
            ended: SystemTime::now(),
            cursor_sent,
            cursor_returned: cursor.clone(),
            message_ids: batch.iter().map(|q| q.message_id).collect(),
            answer_lost: call.answer_lost,
        });
    }
    drop(st);
    let timeout_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
    let cursor = serde_json::Value::from(cursor).to_string();
    let mut text =
        String::with_capacity(64 + batch.iter().map(|q| q.json.len() + 1).sum::<usize>());
    text.push('{');
    // The real server leaves out `ret`, and then an empty `msgs`, at
    // times; otherwise it sends `"ret":0,"msgs":[…]`.
    if !omit_ret {
        text.push_str(r#""ret":0,"#);
    }
    if !omit_ret || !batch.is_empty() {
        text.push_str(r#""msgs":["#);
        for (i, q) in batch.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&q.json);
        }
        text.push_str("],");
    }
    text.push_str(&format!(
        r#""get_updates_buf":{cursor},"longpolling_timeout_ms":{timeout_ms}}}"#
    ));
    let answer = Answer::ok(json_response(text));
    if superseded {
        Answer {
            note: Some("a newer poll of this token took over".to_owned()),
            ..answer
        }
    } else {
        answer
    }
}

/// Counts a poll out of its account's polls in flight when it ends, also
/// when the connection goes away mid-poll.
struct InFlight<'a> {
    shared: &'a Shared,
    id: u32,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(bot) = self.shared.state().bot_mut(self.id) {
            bot.polls.in_flight = bot.polls.in_flight.saturating_sub(1);
        }
    }
}

/// Queues `msgs` again after each of `delays`, unless the simulator was
/// reset or shut down in between.
fn redeliver(shared: &Arc<Shared>, id: u32, msgs: &[Queued], delays: &[Duration]) {
    if msgs.is_empty() {
        return;
    }
    let generation = shared.state().generation;
    for delay in delays {
        let shared = shared.clone();
        let msgs = msgs.to_vec();
        let delay = *delay;
        let mut shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wait_shutdown(&mut shutdown) => return,
            }
            let mut st = shared.state();
            if st.generation != generation {
                return;
            }
            if let Some(bot) = st.bot_mut(id) {
                bot.queue.extend(msgs);
                bot.inbound.notify_waiters();
            }
        });
    }
}

/// The opaque cursor after `delivered` batches: base64 of a tagged
/// counter, so it looks like the real server's and cannot be confused with
/// another simulator's.
fn cursor(account: u32, delivered: u64, seed: u64) -> String {
    let text = format!("wxlink-sim:{seed:x}:{account}:{delivered}");
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `sendmessage`: validates the reply shape (see `docs/protocol.md`,
/// `sendmessage`), applies the fidelity switches of the sending bot and
/// records the message.
pub(crate) fn sendmessage(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: SendMessageRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(msg) = req.msg else {
        return Answer::refused(json_response(INVALID_ARGUMENTS), "msg missing");
    };
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let mut guard = shared.state();
    let st = &mut *guard;
    if let Err(why) = check_reply(st, &msg) {
        return Answer::refused(json_response(INVALID_ARGUMENTS), why);
    }
    let to_user = msg.to_user_id.clone().unwrap_or_default();
    let fidelity = st.fidelity.clone();
    let now_ms = st.now_ms();
    let Some(bot) = st.bots.get_mut(&id) else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };

    if fidelity.reject_unknown_users && !bot.users.contains(&to_user) {
        return Answer::refused(
            business_error(-3, Some("invalid arguments")),
            "to_user_id is not a user this bot knows",
        );
    }
    if let Some(throttle) = fidelity.burst_throttle {
        let now = Instant::now();
        if bot.throttled_until.is_some_and(|t| t > now) {
            if throttle.extend_on_attempt {
                bot.throttled_until = now.checked_add(throttle.cooldown);
            }
            return Answer::refused(
                business_error(-2, Some("prepare failed")),
                "burst throttle cool-down",
            );
        }
        while bot
            .send_times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            bot.send_times.pop_front();
        }
        bot.send_times.push_back(now);
        if bot.send_times.len() > throttle.max_per_second as usize {
            bot.throttled_until = now.checked_add(throttle.cooldown);
            bot.send_times.clear();
            return Answer::refused(
                business_error(-2, Some("prepare failed")),
                "burst throttle tripped",
            );
        }
    }
    let texts = || {
        msg.item_list
            .iter()
            .filter_map(|i| i.text_item.as_ref()?.text.as_ref())
    };
    if let Some(limit) = fidelity.max_text_bytes
        && texts().any(|t| t.len() > limit)
    {
        return Answer::refused(business_error(-2, None), "text over the byte limit");
    }
    if let Some(limit) = fidelity.max_text_chars
        && texts().any(|t| t.chars().count() > limit)
    {
        return Answer::refused(
            business_error(-2, Some("prepare failed")),
            "text over the character limit",
        );
    }
    let conversation = bot.conversations.get(&to_user).cloned().unwrap_or_default();
    let within = |window: Duration| {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        conversation
            .last_inbound_ms
            .is_some_and(|last| now_ms.saturating_sub(last) <= window_ms)
    };
    if let Some(window) = fidelity.push_window
        && !within(window)
    {
        return Answer::refused(business_error(-2, None), "a push outside the reply window");
    }
    if let Some(limit) = fidelity.replies_per_inbound
        && conversation.replies_since >= limit
    {
        return Answer::refused(business_error(-2, None), "reply limit per inbound message");
    }
    let mut not_shown = None;
    if let Some(window) = fidelity.reply_window
        && !within(window)
    {
        not_shown = Some("outside the reply window");
    }
    let is_voice = msg
        .item_list
        .iter()
        .any(|i| i.item_type == Some(MessageItemType::Voice));
    if fidelity.voice_not_shown && is_voice {
        not_shown = Some("voice is not shown");
    }
    let bot_id = bot.bot_id.clone();
    bot.conversations.entry(to_user).or_default().replies_since += 1;
    st.log_sent(
        id,
        SentMessage {
            at: SystemTime::now(),
            bot_id,
            msg,
            delivered: not_shown.is_none(),
            not_shown,
        },
    );
    let form = match shared.config.send_ok_body {
        // Voice that is never shown still gets a message id, as reported.
        _ if not_shown == Some("voice is not shown") => SendOkBody::WithMessageId,
        SendOkBody::Random => match st.rng.random_range(0..3u8) {
            0 => SendOkBody::Empty,
            1 => SendOkBody::RetZero,
            _ => SendOkBody::WithMessageId,
        },
        other => other,
    };
    let server_id = st.rng.random_range(1u64 << 53..u64::MAX >> 1);
    drop(guard);
    shared.touch();
    let resp = SendMessageResponse {
        ret: (form != SendOkBody::Empty).then_some(0),
        message_id: (form == SendOkBody::WithMessageId).then_some(server_id),
        ..Default::default()
    };
    let answer = Answer::ok(json(&resp));
    match not_shown {
        None => answer,
        Some(why) => Answer {
            note: Some(format!("{why}: dropped silently")),
            ..answer
        },
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
/// base64 `typing_ticket` on success (`docs/protocol.md`, `getconfig`).
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
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let mut st = shared.state();
    let issued = st
        .bot(id)
        .and_then(|b| b.typing_tickets.get(&user).cloned());
    let ticket = match issued {
        Some(t) => t,
        None => {
            let t = st.random_b64(33);
            if let Some(bot) = st.bot_mut(id) {
                bot.typing_tickets.insert(user, t.clone());
            }
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
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let mut st = shared.state();
    let issued = st.bot(id).and_then(|b| b.typing_tickets.get(&user));
    let bot_id = st.bot(id).map(|b| b.bot_id.clone()).unwrap_or_default();
    let ticket_ok = match (&req.typing_ticket, issued) {
        (Some(sent), Some(issued)) => sent.expose_secret() == issued,
        _ => false,
    };
    if !ticket_ok {
        return Answer::refused(
            json_response(INVALID_ARGUMENTS),
            "typing_ticket was not issued for this user",
        );
    }
    st.log_typing(
        id,
        TypingCall {
            at: SystemTime::now(),
            bot_id,
            ilink_user_id: user,
            status,
        },
    );
    drop(st);
    shared.touch();
    Answer::ok(json_response(r#"{"ret":0}"#))
}

/// `getuploadurl`: validates the declared sizes and key, then issues an
/// upload parameter (`docs/protocol.md`, `getuploadurl`): `filesize` must
/// be the padded ciphertext size and `aeskey` 32 hex digits.
pub(crate) fn getuploadurl(shared: &Arc<Shared>, call: Call) -> Answer {
    let req: GetUploadUrlRequest = match decode(&call.body) {
        Ok(r) => r,
        Err(e) => return Answer::refused(json_response(INVALID_ARGUMENTS), e),
    };
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let mut st = shared.state();
    let to_user = req.to_user_id.clone().unwrap_or_default();
    if !st.bot(id).is_some_and(|b| b.users.contains(&to_user)) {
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
                account: Some(id),
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
            account: Some(id),
        },
    );
    drop(st);
    let full_url = format!(
        "{}/upload?encrypted_query_param={}&filekey={}",
        shared.cdn_base_url,
        crate::http::encode_component(&param),
        crate::http::encode_component(&filekey),
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
    let Some(id) = call.account else {
        return Answer::refused(json_response(SESSION_EXPIRED), "session expired");
    };
    let mut st = shared.state();
    let bot_id = st.bot(id).map(|b| b.bot_id.clone()).unwrap_or_default();
    st.log_notify(
        id,
        NotifyCall {
            at: SystemTime::now(),
            start,
            bot_id,
        },
    );
    drop(st);
    shared.touch();
    Answer::ok(json_response(r#"{"ret":0}"#))
}
