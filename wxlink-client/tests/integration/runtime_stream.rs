//! The bot runtime against the simulator: restarts, fault storms, session
//! expiry, cancellation, typing and crashes between journaling and
//! acknowledging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use wxlink_client::WxLinkClient;
use wxlink_client::runtime::{
    BackoffPolicy, BotRuntime, CommitOutcome, ContextRecord, Delivery, InboundBatch, JournalEntry,
    JournalKey, MemoryStore, OnSessionExpired, RuntimeError, RuntimeOptions, SqliteStore, Store,
    StoreError, TurnRecord, Updates, UpdatesOptions,
};
use wxlink_sim::{Fault, Simulator};

/// How long the simulator holds an idle long poll.
const HOLD: Duration = Duration::from_millis(300);

async fn sim() -> Simulator {
    Simulator::builder().hold(HOLD).start().await.unwrap()
}

fn client(sim: &Simulator) -> WxLinkClient {
    WxLinkClient::builder()
        .base_url(sim.base_url())
        .token(sim.token())
        .build()
        .unwrap()
}

fn fast() -> UpdatesOptions {
    UpdatesOptions::default()
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(20),
            Duration::from_millis(60),
        ))
        .poll_timeout(Duration::from_secs(5))
        .poll_timeout_margin(Duration::from_millis(500))
}

async fn next(updates: &mut Updates) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("no message within 10 s")
        .expect("stream ended")
        .expect("stream error")
}

/// Collects `n` deliveries, acknowledging each, and returns their texts.
async fn take_acked(updates: &mut Updates, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for _ in 0..n {
        let d = next(updates).await;
        texts.push(d.text().unwrap().to_owned());
        d.ack().await.unwrap();
    }
    texts
}

#[tokio::test]
async fn restart_mid_stream_loses_nothing_and_repeats_nothing() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    let user = sim.user_id();
    for i in 0..5 {
        sim.inject_text(&user, format!("m{i}"));
    }

    let mut seen = Vec::new();
    {
        let bot = BotRuntime::new(client(&sim), SqliteStore::open(&path).unwrap());
        let mut updates = bot.updates(fast());
        seen.extend(take_acked(&mut updates, 2).await);
        // Taken but not acknowledged when the process "dies".
        let unacked = next(&mut updates).await;
        assert_eq!(unacked.text(), Some("m2"));
        drop(updates);
    }
    // Let the simulator finish the poll the old stream abandoned.
    tokio::time::sleep(HOLD * 2).await;
    for i in 5..8 {
        sim.inject_text(&user, format!("m{i}"));
    }

    let bot = BotRuntime::new(client(&sim), SqliteStore::open(&path).unwrap());
    let mut updates = bot.updates(fast());
    let first = next(&mut updates).await;
    assert!(first.is_replay(), "the unacknowledged message comes first");
    seen.push(first.text().unwrap().to_owned());
    first.ack().await.unwrap();
    seen.extend(take_acked(&mut updates, 5).await);

    let expected: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
    // Nothing else is pending: the next item does not come.
    assert!(
        tokio::time::timeout(HOLD * 3, updates.next())
            .await
            .is_err(),
        "no message is delivered twice"
    );
}

#[tokio::test]
async fn fault_storm_delivers_every_message_exactly_once() {
    let sim = sim().await;
    let user = sim.user_id();
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast());

    let faults = [
        Fault::HttpStatus(502, "bad gateway".into()),
        Fault::DropConnection,
        Fault::Delay(Duration::from_millis(200)),
        Fault::HttpStatus(524, "origin timeout".into()),
        Fault::InvalidJson,
        Fault::HttpStatus(500, "oops".into()),
    ];
    let faults_len = faults.len();
    // Faults and messages arrive while the stream is polling: each round
    // queues two faults, then three messages, then waits a little.
    let injector = tokio::spawn({
        let sim = sim.clone();
        let user = user.clone();
        async move {
            let mut injected = Vec::new();
            for (round, fault) in faults.iter().enumerate() {
                sim.inject_fault("getupdates", fault.clone(), 2).unwrap();
                for k in 0..3 {
                    let text = format!("r{round}-{k}");
                    sim.inject_text(&user, &text);
                    injected.push(text);
                }
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
            injected
        }
    });
    let received = take_acked(&mut updates, faults_len * 3).await;
    let injected = injector.await.unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in received {
        *counts.entry(text).or_default() += 1;
    }
    for text in &injected {
        assert_eq!(counts.get(text), Some(&1), "{text} delivered once");
    }
    assert!(
        tokio::time::timeout(HOLD * 3, updates.next())
            .await
            .is_err(),
        "nothing extra after the storm"
    );
    let failed = sim
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("getupdates") && r.status != 200)
        .count();
    assert!(
        failed >= 6,
        "the faults really happened ({failed} failed polls)"
    );
}

#[tokio::test]
async fn session_expiry_ends_the_stream_within_one_poll() {
    let sim = sim().await;
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast());
    // Let the first poll start, then expire the session under it.
    assert!(
        tokio::time::timeout(HOLD / 2, updates.next())
            .await
            .is_err()
    );
    sim.expire_session();
    let expired_at = Instant::now();
    let item = tokio::time::timeout(HOLD * 3, updates.next())
        .await
        .expect("the stream reacts within one poll");
    assert!(
        matches!(item, Some(Err(RuntimeError::SessionExpired))),
        "{item:?}"
    );
    assert!(expired_at.elapsed() < HOLD * 3);
    assert!(updates.next().await.is_none(), "the stream ends");

    let polls = |sim: &Simulator| {
        sim.request_log()
            .iter()
            .filter(|r| r.endpoint == Some("getupdates"))
            .count()
    };
    let after_end = polls(&sim);
    tokio::time::sleep(HOLD * 2).await;
    assert_eq!(polls(&sim), after_end, "no polling after the end");
    assert!(after_end <= 2, "{after_end} polls: it did not spin");
    let err = bot.send_to(&sim.user_id(), "hi").await.unwrap_err();
    assert!(err.is_session_expired());
}

#[tokio::test]
async fn cancellation_stops_within_a_second_with_nothing_in_flight() {
    let sim = Simulator::builder()
        .hold(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut updates = bot.updates_until(fast(), async {
        let _ = stop_rx.await;
    });
    let consumer = tokio::spawn(async move {
        let mut items = 0;
        while updates.next().await.is_some() {
            items += 1;
        }
        items
    });
    // The stream is now inside a 30 s long poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stop_at = Instant::now();
    stop_tx.send(()).unwrap();
    let items = tokio::time::timeout(Duration::from_secs(1), consumer)
        .await
        .expect("stopped within a second")
        .unwrap();
    assert_eq!(items, 0);
    assert!(stop_at.elapsed() < Duration::from_secs(1));
    let ended = SystemTime::now();

    let notify: Vec<bool> = sim.notify_calls().iter().map(|c| c.start).collect();
    assert_eq!(notify, [true, false], "notifystart, then notifystop");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sim.request_log().iter().all(|r| r.at <= ended),
        "no request was made after the stream ended"
    );
}

#[tokio::test]
async fn replies_carry_the_users_latest_context_token() {
    let sim = sim().await;
    let user = sim.user_id();
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast());
    sim.inject_text(&user, "first");
    let d1 = next(&mut updates).await;
    d1.ack().await.unwrap();
    let second = sim.inject_text(&user, "second");
    let d2 = next(&mut updates).await;
    // A proactive send after the second message uses its token.
    bot.send_to(&user, "proactive").await.unwrap();
    bot.reply(&d2, "reply").await.unwrap();
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2);
    for message in &sent {
        assert_eq!(
            message.msg.context_token.as_ref(),
            Some(&second.context_token)
        );
        assert_eq!(message.to_user_id(), user);
    }
    let err = bot.send_to("stranger@im.wechat", "hi").await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::UserMustWriteFirst { .. }),
        "{err:?}"
    );
    assert_eq!(sim.sent_messages().len(), 2, "nothing sent to the stranger");
}

#[tokio::test]
async fn typing_guard_starts_keeps_alive_and_cancels() {
    let sim = sim().await;
    let user = sim.user_id();
    let options = RuntimeOptions::default().typing_keepalive(Duration::from_millis(100));
    let bot = BotRuntime::with_options(client(&sim), MemoryStore::new(), options);
    let mut updates = bot.updates(fast());
    sim.inject_text(&user, "think about it");
    let delivery = next(&mut updates).await;

    let typing = bot.typing(delivery.sender());
    tokio::time::sleep(Duration::from_millis(350)).await;
    bot.reply(&delivery, "done").await.unwrap();
    typing.finish().await;

    let calls: Vec<i64> = sim
        .typing_calls()
        .iter()
        .filter(|c| c.ilink_user_id == user)
        .map(|c| c.status)
        .collect();
    assert!(calls.len() >= 4, "start, keep-alives and cancel: {calls:?}");
    assert_eq!(calls.last(), Some(&2), "cancelled last: {calls:?}");
    assert!(
        calls[..calls.len() - 1].iter().all(|s| *s == 1),
        "{calls:?}"
    );
    let log = sim.request_log();
    let getconfigs = log
        .iter()
        .filter(|r| r.endpoint == Some("getconfig"))
        .count();
    assert_eq!(getconfigs, 1, "one getconfig: the ticket is cached");

    // Dropping a guard cancels too.
    drop(bot.typing(&user));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.typing_calls().last().map(|c| c.status), Some(2));
}

#[tokio::test]
async fn a_reply_through_the_typing_guard_ends_typing_when_it_is_sent() {
    let sim = sim().await;
    let user = sim.user_id();
    let options = RuntimeOptions::default().typing_keepalive(Duration::from_millis(100));
    let bot = BotRuntime::with_options(client(&sim), MemoryStore::new(), options);
    let mut updates = bot.updates(fast());
    let inbound = sim.inject_text(&user, "think about it");
    let delivery = next(&mut updates).await;

    let typing = bot.typing(delivery.sender());
    tokio::time::sleep(Duration::from_millis(350)).await;
    typing.reply("done").await.unwrap();

    // Without waiting: the reply is out, with the user's context token, and
    // the cancel already followed it.
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text(), Some("done"));
    assert_eq!(
        sent[0].msg.context_token.as_ref(),
        Some(&inbound.context_token)
    );
    let reply_at = sent[0].at;
    let calls: Vec<_> = sim
        .typing_calls()
        .into_iter()
        .filter(|c| c.ilink_user_id == user)
        .collect();
    let statuses: Vec<i64> = calls.iter().map(|c| c.status).collect();
    assert!(
        statuses.len() >= 3,
        "start, keep-alives, cancel: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&2), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 2).count(), 1);
    let (cancel, keepalives) = calls.split_last().unwrap();
    assert!(cancel.at >= reply_at, "the cancel follows the reply");
    assert!(
        keepalives.iter().all(|c| c.status == 1 && c.at <= reply_at),
        "no typing shown after the reply"
    );

    // The keep-alives have stopped for good.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = sim
        .typing_calls()
        .iter()
        .filter(|c| c.ilink_user_id == user)
        .count();
    assert_eq!(after, calls.len());
}

#[tokio::test]
async fn typing_failures_never_fail_the_reply() {
    let sim = sim().await;
    let user = sim.user_id();
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast());
    sim.inject_text(&user, "hi");
    let delivery = next(&mut updates).await;
    sim.inject_fault("sendtyping", Fault::HttpStatus(500, "down".into()), 10)
        .unwrap();
    let typing = bot.typing(&user);
    bot.reply(&delivery, "still answered").await.unwrap();
    typing.finish().await;
    assert_eq!(sim.sent_messages().len(), 1);
}

/// A store that fails chosen operations, to simulate a disk that errors
/// between journaling and acknowledging.
struct FailingStore {
    inner: SqliteStore,
    fail_commits: AtomicUsize,
    fail_acks: AtomicUsize,
}

fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Store for FailingStore {
    fn cursor(&self) -> Result<Option<String>, StoreError> {
        self.inner.cursor()
    }
    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        self.inner.set_cursor(cursor)
    }
    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError> {
        if take_one(&self.fail_commits) {
            return Err(StoreError::new("commit a batch"));
        }
        self.inner.commit_batch(batch)
    }
    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.unacknowledged()
    }
    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError> {
        if take_one(&self.fail_acks) {
            return Err(StoreError::new("acknowledge a message"));
        }
        self.inner.acknowledge(key)
    }
    fn is_seen(&self, id: u64) -> Result<bool, StoreError> {
        self.inner.is_seen(id)
    }
    fn context(&self, user: &str) -> Result<Option<ContextRecord>, StoreError> {
        self.inner.context(user)
    }
    fn set_context(&self, user: &str, record: &ContextRecord) -> Result<(), StoreError> {
        self.inner.set_context(user, record)
    }
    fn turn(&self, user: &str) -> Result<Option<TurnRecord>, StoreError> {
        self.inner.turn(user)
    }
    fn set_turn(&self, user: &str, record: &TurnRecord) -> Result<(), StoreError> {
        self.inner.set_turn(user, record)
    }
}

#[tokio::test]
async fn a_crash_between_journaling_and_acknowledging_loses_nothing() {
    let sim = sim().await;
    let user = sim.user_id();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    for i in 0..4 {
        sim.inject_text(&user, format!("m{i}"));
    }
    {
        // The first two commits fail (the batch is held and retried), and
        // the first acknowledgement fails.
        let store = FailingStore {
            inner: SqliteStore::open(&path).unwrap(),
            fail_commits: AtomicUsize::new(2),
            fail_acks: AtomicUsize::new(1),
        };
        let bot = BotRuntime::new(client(&sim), store);
        let mut updates = bot.updates(fast());
        let m0 = next(&mut updates).await;
        assert_eq!(m0.text(), Some("m0"));
        assert!(m0.ack().await.is_err(), "the acknowledgement failed");
        let m1 = next(&mut updates).await;
        assert_eq!(m1.text(), Some("m1"));
        m1.ack().await.unwrap();
        // m2 and m3 are journaled; the stream dies before handing them out.
        drop(updates);
    }
    tokio::time::sleep(HOLD * 2).await;
    sim.inject_text(&user, "m4");

    let bot = BotRuntime::new(client(&sim), SqliteStore::open(&path).unwrap());
    let mut updates = bot.updates(fast());
    let texts = take_acked(&mut updates, 4).await;
    assert_eq!(texts, ["m0", "m2", "m3", "m4"]);
    assert!(
        tokio::time::timeout(HOLD * 3, updates.next())
            .await
            .is_err(),
        "each unacknowledged message came back once"
    );
}

#[tokio::test]
async fn messages_above_two_to_the_63_keep_their_exact_id_through_the_journal() {
    let sim = sim().await;
    let user = sim.user_id();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    let big = u64::MAX - 7;
    sim.inject_message(wxlink_sim::InboundMessage::text(&user, "big").message_id(big));
    {
        let bot = BotRuntime::new(client(&sim), SqliteStore::open(&path).unwrap());
        let mut updates = bot.updates(fast());
        assert_eq!(next(&mut updates).await.message().message_id, Some(big));
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    assert!(store.is_seen(big).unwrap());
    let bot = BotRuntime::with_shared_store(client(&sim), store, RuntimeOptions::default());
    let mut updates = bot.updates(fast());
    let replay = next(&mut updates).await;
    assert!(replay.is_replay());
    assert_eq!(replay.message().message_id, Some(big));
}

#[tokio::test]
async fn run_acknowledges_only_what_the_handler_accepted() {
    let sim = sim().await;
    let user = sim.user_id();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    for text in ["ok-1", "fail", "ok-2"] {
        sim.inject_text(&user, text);
    }
    let bot = BotRuntime::new(client(&sim), SqliteStore::open(&path).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    let mut handled = Vec::new();
    let result = bot
        .run(
            fast(),
            async {
                let _ = stop_rx.await;
            },
            |message| {
                let text = message.item_list[0]
                    .text_item
                    .as_ref()
                    .and_then(|t| t.text.clone())
                    .unwrap();
                handled.push(text.clone());
                if handled.len() == 3 {
                    stop_tx.take().unwrap().send(()).unwrap();
                }
                async move {
                    if text == "fail" {
                        Err("handler refused")
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(handled, ["ok-1", "fail", "ok-2"]);
    let left: Vec<_> = SqliteStore::open(&path)
        .unwrap()
        .unacknowledged()
        .unwrap()
        .into_iter()
        .map(|e| e.json.contains("\"fail\""))
        .collect();
    assert_eq!(left, [true], "only the refused message stays journaled");
}

#[tokio::test]
async fn the_fingerprint_window_drops_resends_under_new_ids() {
    let sim = sim().await;
    let user = sim.user_id();
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast().fingerprint_window(Duration::from_secs(300)));
    sim.inject_text(&user, "same text");
    sim.inject_text(&user, "same text");
    sim.inject_text(&user, "other text");
    let texts = take_acked(&mut updates, 2).await;
    assert_eq!(texts, ["same text", "other text"]);
    assert!(
        tokio::time::timeout(HOLD * 2, updates.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn long_replies_are_split_and_counted_against_the_budget() {
    let sim = sim().await;
    let user = sim.user_id();
    let options = RuntimeOptions::default().max_chars(10);
    let bot = BotRuntime::with_options(client(&sim), MemoryStore::new(), options);
    let mut updates = bot.updates(fast());
    sim.inject_text(&user, "write a lot");
    let delivery = next(&mut updates).await;
    // 95 characters in pieces of at most 10: 10 messages, the whole budget.
    let long = "abcdefghi ".repeat(9) + "tail.";
    bot.reply(&delivery, &long).await.unwrap();
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|m| m.text().unwrap().chars().count() <= 10));
    let err = bot.reply(&delivery, "more").await.unwrap_err();
    assert!(matches!(err, RuntimeError::RateLimited { .. }), "{err:?}");
    assert_eq!(sim.sent_messages().len(), 10, "the refused send never left");

    // The user writes again: a new turn with a fresh budget.
    delivery.ack().await.unwrap();
    sim.inject_text(&user, "and again");
    let again = next(&mut updates).await;
    bot.reply(&again, "sure").await.unwrap();
    assert_eq!(sim.sent_messages().len(), 11);
}

#[tokio::test]
async fn media_replies_carry_the_latest_context_and_captions_count_twice() {
    let sim = sim().await;
    let user = sim.user_id();
    // This client also knows the simulator's CDN.
    let bot = BotRuntime::new(crate::common::client(&sim), MemoryStore::new());
    let mut updates = bot.updates(fast());
    sim.inject_text(&user, "first");
    let first = next(&mut updates).await;
    let first_message = first.message().clone();
    first.ack().await.unwrap();
    let latest = sim.inject_text(&user, "send me charts");
    let delivery = next(&mut updates).await;
    let png = crate::common::png_bytes(3000);

    // One text and four captioned images: 9 of the 10 sends. A reply to the
    // older message still goes with the user's latest context token.
    bot.reply(&delivery, "coming up").await.unwrap();
    for n in 0..4 {
        let sent = bot
            .reply_media_from_buffer(&first_message, png.clone())
            .file_name("chart.png")
            .caption(format!("chart {n}"))
            .await
            .unwrap();
        assert_eq!(sent.kind, wxlink_client::media::MediaKind::Image);
        assert!(sent.caption.is_some());
    }
    assert_eq!(sim.sent_messages().len(), 9);
    assert_eq!(sim.uploads().len(), 4);

    // A captioned image needs two sends; one is left, so it is refused
    // before anything is uploaded.
    let err = bot
        .reply_media_from_buffer(&delivery, png.clone())
        .caption("one too many")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::RateLimited {
                sent: 9,
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.uploads().len(), 4, "nothing uploaded for the refusal");
    // Without a caption it fits, and then the turn is used up.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.png");
    std::fs::write(&path, &png).unwrap();
    bot.reply_media_from_path(&delivery, &path).await.unwrap();
    let err = bot
        .reply_voice(&delivery, b"\x02#!SILK_V3 frames".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::RateLimited { .. }), "{err:?}");

    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 10);
    assert_eq!(sim.uploads().len(), 5);
    for message in &sent {
        assert_eq!(message.to_user_id(), user);
        assert_eq!(
            message.msg.context_token.as_ref(),
            Some(&latest.context_token),
            "every message carries the latest context token"
        );
    }
    // Captions precede their images.
    let texts: Vec<Option<&str>> = sent.iter().map(|m| m.text()).collect();
    assert_eq!(texts[1], Some("chart 0"));
    assert_eq!(texts[2], None);

    // A stranger gets nothing, and no upload happens for them.
    let err = bot
        .send_media_from_buffer("stranger@im.wechat", png)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::UserMustWriteFirst { .. }),
        "{err:?}"
    );
    assert_eq!(sim.uploads().len(), 5);
}

#[tokio::test]
async fn a_pause_on_expiry_waits_between_polls_instead_of_spinning() {
    let sim = sim().await;
    let bot = BotRuntime::new(client(&sim), MemoryStore::new());
    sim.expire_session();
    let pause = Duration::from_millis(300);
    let mut updates = bot.updates(fast().on_session_expired(OnSessionExpired::Pause(pause)));
    let started = Instant::now();
    let mut pauses = 0;
    while started.elapsed() < Duration::from_millis(1_000) {
        match tokio::time::timeout(Duration::from_millis(100), updates.next()).await {
            Ok(Some(Err(RuntimeError::SessionPaused { .. }))) => pauses += 1,
            Ok(other) => panic!("unexpected item {other:?}"),
            Err(_) => {}
        }
    }
    let polls = sim
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("getupdates"))
        .count();
    // One poll per pause: about 1 s / 300 ms.
    assert!((2..=5).contains(&pauses), "{pauses} pauses");
    assert!(polls <= pauses + 1, "{polls} polls for {pauses} pauses");
    assert!(matches!(
        bot.send_to(&sim.user_id(), "hi").await,
        Err(RuntimeError::SessionPaused { .. })
    ));
}
