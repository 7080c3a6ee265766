//! Unit tests of the stream, the sends and the typing guard against a
//! scripted API (the simulator tests live in `tests/runtime_*.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use wxlink_proto::{
    ContextToken, GetUpdatesResponse, MessageItem, MessageItemType, MessageType, TextItem,
    TypingTicket, WeixinMessage,
};

use super::api::{ApiError, RuntimeApi};
use super::*;

/// One scripted answer to a poll.
enum Step {
    Batch(Vec<WeixinMessage>, &'static str),
    Expired,
    Fail,
}

/// A scripted iLink API that records what the runtime called.
#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<String>>,
    in_flight: Arc<AtomicUsize>,
    polls: AtomicUsize,
    /// The client-side timeout each poll was given, in order.
    poll_timeouts: Mutex<Vec<Duration>>,
    config_fails: bool,
}

/// Decrements the in-flight count when a poll future is dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn failure(session_expired: bool) -> ApiError {
    ApiError {
        session_expired,
        source: crate::Error::InvalidArgument("scripted failure".into()),
    }
}

impl Fake {
    fn with(steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(steps.into()),
            ..Self::default()
        })
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl RuntimeApi for Fake {
    fn poll(
        &self,
        cursor: String,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<GetUpdatesResponse, ApiError>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.poll_timeouts.lock().unwrap().push(timeout);
        self.record(format!("poll {cursor}"));
        let step = self.script.lock().unwrap().pop_front();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(&self.in_flight));
        Box::pin(async move {
            let _guard = guard;
            match step {
                Some(Step::Batch(msgs, cursor)) => Ok(GetUpdatesResponse {
                    msgs,
                    get_updates_buf: Some(cursor.to_owned()),
                    longpolling_timeout_ms: Some(200),
                    ..GetUpdatesResponse::default()
                }),
                Some(Step::Expired) => Err(failure(true)),
                Some(Step::Fail) => Err(failure(false)),
                // An idle long poll: hold, then answer empty.
                None => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(GetUpdatesResponse::default())
                }
            }
        })
    }

    fn send_text(
        &self,
        to: String,
        text: String,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let ctx = context.map_or("-".to_owned(), |c| c.expose_secret().to_owned());
        self.record(format!("send {to} {text} {ctx}"));
        Box::pin(async { Ok(()) })
    }

    fn get_config(
        &self,
        user: String,
        _context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<TypingTicket, ApiError>> {
        self.record(format!("getconfig {user}"));
        let fails = self.config_fails;
        Box::pin(async move {
            if fails {
                Err(failure(false))
            } else {
                Ok(TypingTicket::new("ticket"))
            }
        })
    }

    fn send_typing(
        &self,
        user: String,
        _ticket: TypingTicket,
        typing: bool,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        self.record(format!(
            "typing {user} {}",
            if typing { "on" } else { "off" }
        ));
        Box::pin(async { Ok(()) })
    }

    fn send_media(
        &self,
        to: String,
        media: super::api::MediaSend,
        context: Option<ContextToken>,
    ) -> BoxFuture<'static, Result<crate::SentMedia, ApiError>> {
        let ctx = context.map_or("-".to_owned(), |c| c.expose_secret().to_owned());
        let caption = media.caption.clone().unwrap_or_else(|| "-".to_owned());
        self.record(format!("media {to} {caption} {ctx}"));
        Box::pin(async move {
            Ok(crate::SentMedia {
                message: crate::SentMessage {
                    client_id: "media-1".into(),
                    message_id: None,
                },
                caption: None,
                kind: crate::media::MediaKind::Image,
                size: 1,
                md5: String::new(),
            })
        })
    }

    fn notify_start(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        self.record("notifystart".into());
        Box::pin(async { Ok(()) })
    }

    fn notify_stop(&self) -> BoxFuture<'static, Result<(), ApiError>> {
        self.record("notifystop".into());
        Box::pin(async { Ok(()) })
    }
}

fn text_msg(id: u64, from: &str, text: &str) -> WeixinMessage {
    WeixinMessage {
        message_id: Some(id),
        from_user_id: Some(from.to_owned()),
        to_user_id: Some("bot@im.bot".to_owned()),
        message_type: Some(MessageType::User),
        context_token: Some(ContextToken::new(format!("ctx-{id}"))),
        item_list: vec![MessageItem {
            item_type: Some(MessageItemType::Text),
            text_item: Some(TextItem {
                text: Some(text.to_owned()),
            }),
            ..MessageItem::default()
        }],
        ..WeixinMessage::default()
    }
}

fn fast_options() -> UpdatesOptions {
    UpdatesOptions::default()
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(10),
            Duration::from_millis(30),
        ))
        .poll_timeout(Duration::from_secs(5))
        .poll_timeout_margin(Duration::from_millis(100))
}

fn runtime(api: &Arc<Fake>, store: Arc<dyn Store>, options: RuntimeOptions) -> BotRuntime {
    BotRuntime::from_api(Arc::clone(api) as Arc<dyn RuntimeApi>, store, options)
}

async fn next_ok(updates: &mut Updates) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("no item within 5 s")
        .expect("stream ended")
        .expect("error item")
}

#[tokio::test]
async fn yields_new_messages_once_skipping_bot_and_duplicate_ones() {
    let mut from_bot = text_msg(3, "bot@im.bot", "echo");
    from_bot.message_type = Some(MessageType::Bot);
    let api = Fake::with(vec![
        Step::Batch(vec![text_msg(1, "a@im.wechat", "hi"), from_bot], "c1"),
        Step::Batch(
            vec![
                text_msg(1, "a@im.wechat", "hi"),
                text_msg(2, "a@im.wechat", "again"),
            ],
            "c2",
        ),
    ]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let rt = runtime(&api, Arc::clone(&store), RuntimeOptions::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut updates = rt.updates_until(fast_options(), async {
        let _ = stop_rx.await;
    });

    let first = next_ok(&mut updates).await;
    assert_eq!(first.text(), Some("hi"));
    assert!(!first.is_replay());
    first.ack().await.unwrap();
    let second = next_ok(&mut updates).await;
    assert_eq!(second.message().message_id, Some(2));
    second.ack().await.unwrap();

    stop_tx.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), updates.next()).await;
    assert!(matches!(end, Ok(None)), "stream should end on shutdown");
    assert_eq!(
        api.in_flight.load(Ordering::SeqCst),
        0,
        "no poll left in flight"
    );
    let calls = api.calls();
    assert_eq!(calls.first().map(String::as_str), Some("notifystart"));
    assert_eq!(calls.last().map(String::as_str), Some("notifystop"));
    assert!(calls.contains(&"poll c2".to_owned()), "{calls:?}");
    assert_eq!(store.cursor().unwrap().as_deref(), Some("c2"));
    assert!(store.unacknowledged().unwrap().is_empty());
}

#[tokio::test]
async fn polls_wait_the_expected_hold_plus_the_margin_starting_at_40_seconds() {
    // The first batch says the server holds polls for 200 ms.
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(UpdatesOptions::default());
    next_ok(&mut updates).await;
    // Let the stream start its second (idle) poll.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), updates.next())
            .await
            .is_err()
    );
    let margin = crate::client::LONG_POLL_MARGIN;
    assert_eq!(
        *api.poll_timeouts.lock().unwrap(),
        [
            // 35 s plus the margin before the server has said anything,
            crate::client::FIRST_POLL_TIMEOUT,
            // then the server's 200 ms plus the margin.
            Duration::from_millis(200) + margin,
        ]
    );
    assert_eq!(crate::client::FIRST_POLL_TIMEOUT, Duration::from_secs(40));

    // A configured first hold and margin are used the same way.
    let api = Fake::with(vec![]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(fast_options());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), updates.next())
            .await
            .is_err()
    );
    assert_eq!(
        *api.poll_timeouts.lock().unwrap(),
        [Duration::from_millis(5_100)]
    );
}

#[tokio::test]
async fn session_expiry_ends_the_stream_after_one_poll() {
    let api = Fake::with(vec![Step::Expired]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(fast_options());
    let item = tokio::time::timeout(Duration::from_secs(1), updates.next())
        .await
        .unwrap();
    assert!(matches!(item, Some(Err(RuntimeError::SessionExpired))));
    assert!(updates.next().await.is_none());
    assert_eq!(api.polls.load(Ordering::SeqCst), 1);
    // Sends are refused from now on, without a call.
    let err = rt.send_to("a@im.wechat", "hi").await.unwrap_err();
    assert!(err.is_session_expired());
    assert!(!api.calls().iter().any(|c| c.starts_with("send ")));
}

#[tokio::test]
async fn session_expiry_can_pause_and_resume() {
    let api = Fake::with(vec![
        Step::Expired,
        Step::Batch(vec![text_msg(9, "a@im.wechat", "back")], "c1"),
    ]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let options =
        fast_options().on_session_expired(OnSessionExpired::Pause(Duration::from_millis(300)));
    let mut updates = rt.updates(options);
    let started = std::time::Instant::now();
    let item = updates.next().await;
    assert!(matches!(
        item,
        Some(Err(RuntimeError::SessionPaused { .. }))
    ));
    assert!(matches!(
        rt.send_to("a@im.wechat", "x").await,
        Err(RuntimeError::SessionPaused { .. })
    ));
    let delivery = next_ok(&mut updates).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delivery.text(), Some("back"));
}

#[tokio::test]
async fn poll_failures_back_off_and_lose_nothing() {
    let api = Fake::with(vec![
        Step::Fail,
        Step::Fail,
        Step::Fail,
        Step::Fail,
        Step::Batch(vec![text_msg(1, "a@im.wechat", "made it")], "c1"),
    ]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(fast_options());
    let started = std::time::Instant::now();
    let delivery = next_ok(&mut updates).await;
    assert_eq!(delivery.text(), Some("made it"));
    // 3 short waits (10 ms ± 20%) and one long (30 ms ± 20%).
    assert!(
        started.elapsed() >= Duration::from_millis(40),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(api.polls.load(Ordering::SeqCst), 5);
}

/// A store whose batch commits fail a given number of times.
struct FlakyStore {
    inner: MemoryStore,
    commit_failures: AtomicUsize,
}

impl Store for FlakyStore {
    fn cursor(&self) -> Result<Option<String>, StoreError> {
        self.inner.cursor()
    }
    fn set_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        self.inner.set_cursor(cursor)
    }
    fn commit_batch(&self, batch: &InboundBatch) -> Result<CommitOutcome, StoreError> {
        if self
            .commit_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::new("commit a batch"));
        }
        self.inner.commit_batch(batch)
    }
    fn unacknowledged(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.unacknowledged()
    }
    fn acknowledge(&self, key: JournalKey) -> Result<bool, StoreError> {
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
async fn a_failing_store_holds_the_batch_and_does_not_poll_past_it() {
    let api = Fake::with(vec![Step::Batch(
        vec![
            text_msg(1, "a@im.wechat", "one"),
            text_msg(2, "a@im.wechat", "two"),
        ],
        "c1",
    )]);
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(),
        commit_failures: AtomicUsize::new(3),
    });
    let rt = runtime(&api, store.clone(), RuntimeOptions::default());
    let mut updates = rt.updates(fast_options());
    let texts = [
        next_ok(&mut updates).await.text().map(str::to_owned),
        next_ok(&mut updates).await.text().map(str::to_owned),
    ];
    assert_eq!(texts, [Some("one".to_owned()), Some("two".to_owned())]);
    // One poll only: the runtime retried the commit, not the poll.
    assert_eq!(api.polls.load(Ordering::SeqCst), 1);
    assert_eq!(store.cursor().unwrap().as_deref(), Some("c1"));
}

#[tokio::test]
async fn unacknowledged_messages_come_back_first_after_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let api = Fake::with(vec![Step::Batch(
        vec![
            text_msg(1, "a@im.wechat", "one"),
            text_msg(2, "a@im.wechat", "two"),
            text_msg(3, "a@im.wechat", "three"),
        ],
        "c1",
    )]);
    let rt = runtime(&api, Arc::clone(&store), RuntimeOptions::default());
    let mut updates = rt.updates(fast_options());
    next_ok(&mut updates).await.ack().await.unwrap();
    let _unacked = next_ok(&mut updates).await;
    drop(updates); // "crash" with "two" taken but not acknowledged, "three" not taken

    let api2 = Fake::with(vec![Step::Batch(
        vec![text_msg(4, "a@im.wechat", "four")],
        "c2",
    )]);
    let rt2 = runtime(&api2, Arc::clone(&store), RuntimeOptions::default());
    let mut updates = rt2.updates(fast_options());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = next_ok(&mut updates).await;
        seen.push((d.text().unwrap().to_owned(), d.is_replay()));
        d.ack().await.unwrap();
    }
    assert_eq!(
        seen,
        [
            ("two".to_owned(), true),
            ("three".to_owned(), true),
            ("four".to_owned(), false)
        ]
    );
    assert!(
        api2.calls().contains(&"poll c1".to_owned()),
        "resumes from the saved cursor"
    );
}

#[tokio::test]
async fn dropping_the_stream_aborts_the_poll_and_sends_notifystop() {
    let api = Fake::with(vec![]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(fast_options());
    // Let the stream start its (endless) poll.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), updates.next())
            .await
            .is_err()
    );
    assert_eq!(api.in_flight.load(Ordering::SeqCst), 1);
    drop(updates);
    assert_eq!(api.in_flight.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(api.calls().last().map(String::as_str), Some("notifystop"));
}

#[tokio::test]
async fn replies_use_the_latest_context_and_stop_at_the_budget() {
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let mut updates = rt.updates(fast_options());
    let delivery = next_ok(&mut updates).await;
    for n in 0..10 {
        rt.reply(&delivery, &format!("r{n}")).await.unwrap();
    }
    let err = rt.reply(&delivery, "one too many").await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::RateLimited {
                sent: 10,
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let sends: Vec<_> = api
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("send "))
        .collect();
    assert_eq!(sends.len(), 10);
    assert_eq!(sends[0], "send a@im.wechat r0 ctx-1");
}

#[tokio::test]
async fn media_replies_count_their_caption_against_the_budget() {
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let options = RuntimeOptions::default().budget(SendBudgetPolicy::default().with_limit(3));
    let rt = runtime(&api, Arc::new(MemoryStore::new()), options);
    let mut updates = rt.updates(fast_options());
    let delivery = next_ok(&mut updates).await;
    rt.reply_media_from_buffer(&delivery, vec![1, 2, 3])
        .caption("look")
        .await
        .unwrap();
    // One send is left: a captioned image is refused, a bare one fits.
    let err = rt
        .reply_media_from_path(&delivery, "/nonexistent.png")
        .caption("again")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::RateLimited {
                sent: 2,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    rt.reply_voice(&delivery, vec![2, 3]).await.unwrap();
    assert!(matches!(
        rt.reply(&delivery, "more").await,
        Err(RuntimeError::RateLimited { sent: 3, .. })
    ));
    let media: Vec<_> = api
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("media ") || c.starts_with("send "))
        .collect();
    assert_eq!(
        media,
        ["media a@im.wechat look ctx-1", "media a@im.wechat - ctx-1"]
    );

    // A message without a sender has no one to reply to.
    let err = rt
        .reply_media_from_buffer(WeixinMessage::default(), vec![1])
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NoSender), "{err:?}");
}

#[tokio::test]
async fn a_captioned_media_send_larger_than_a_queued_budget_fails_at_once() {
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let options = RuntimeOptions::default().budget(
        SendBudgetPolicy::default()
            .with_limit(1)
            .when_exhausted(WhenExhausted::Queue),
    );
    let rt = runtime(&api, Arc::new(MemoryStore::new()), options);
    let mut updates = rt.updates(fast_options());
    let delivery = next_ok(&mut updates).await;
    // Two messages can never fit a budget of one, so it does not queue.
    let result = tokio::time::timeout(
        Duration::from_secs(1),
        rt.reply_media_from_buffer(&delivery, vec![1])
            .caption("x")
            .into_future(),
    )
    .await
    .expect("refused without waiting");
    assert!(
        matches!(result, Err(RuntimeError::RateLimited { .. })),
        "{result:?}"
    );
    assert!(!api.calls().iter().any(|c| c.starts_with("media ")));
}

#[tokio::test]
async fn a_queued_send_waits_for_the_next_user_message() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let options = RuntimeOptions::default().budget(
        SendBudgetPolicy::default()
            .with_limit(1)
            .when_exhausted(WhenExhausted::Queue),
    );
    let rt = runtime(&api, Arc::clone(&store), options);
    let mut updates = rt.updates(fast_options());
    let delivery = next_ok(&mut updates).await;
    rt.reply(&delivery, "first").await.unwrap();
    delivery.ack().await.unwrap();
    let queued = tokio::spawn({
        let rt = rt.clone();
        async move { rt.send_to("a@im.wechat", "second").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!queued.is_finished(), "the send waits for a new turn");
    api.script
        .lock()
        .unwrap()
        .push_back(Step::Batch(vec![text_msg(2, "a@im.wechat", "more")], "c2"));
    // The fake's idle poll holds for an hour; this stream is replaced by a
    // new one that picks up the scripted batch.
    drop(updates);
    let mut updates = rt.updates(fast_options());
    assert_eq!(next_ok(&mut updates).await.text(), Some("more"));
    tokio::time::timeout(Duration::from_secs(2), queued)
        .await
        .expect("queued send released")
        .unwrap()
        .unwrap();
    let sends: Vec<_> = api
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("send "))
        .collect();
    assert_eq!(
        sends,
        [
            "send a@im.wechat first ctx-1",
            "send a@im.wechat second ctx-2"
        ]
    );
}

#[tokio::test]
async fn sends_without_a_recent_message_fail_early() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let api = Fake::with(vec![]);
    let rt = runtime(&api, Arc::clone(&store), RuntimeOptions::default());
    let err = rt.send_to("stranger@im.wechat", "hello").await.unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::UserMustWriteFirst {
            problem: ContextProblem::Missing,
            ..
        }
    ));
    assert_eq!(err.to_string(), "the user must write first");
    store
        .set_context(
            "old@im.wechat",
            &ContextRecord {
                token: ContextToken::new("t"),
                seen_at_ms: super::bot::now_ms() - 25 * 3_600_000,
            },
        )
        .unwrap();
    let err = rt.send_to("old@im.wechat", "hello").await.unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::UserMustWriteFirst {
            problem: ContextProblem::Expired { .. },
            ..
        }
    ));
    assert!(
        api.calls().is_empty(),
        "nothing was sent: {:?}",
        api.calls()
    );
}

#[tokio::test]
async fn typing_guard_starts_keeps_alive_and_cancels() {
    let api = Fake::with(vec![]);
    let options = RuntimeOptions::default().typing_keepalive(Duration::from_millis(50));
    let rt = runtime(&api, Arc::new(MemoryStore::new()), options);
    let guard = rt.typing("a@im.wechat");
    tokio::time::sleep(Duration::from_millis(180)).await;
    guard.finish().await;
    let calls = api.calls();
    let ons = calls
        .iter()
        .filter(|c| *c == "typing a@im.wechat on")
        .count();
    assert!(ons >= 3, "start plus keep-alives: {calls:?}");
    assert_eq!(
        calls.first().map(String::as_str),
        Some("getconfig a@im.wechat")
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("typing a@im.wechat off")
    );

    // The ticket is cached: a second guard does not call getconfig again,
    // and dropping it cancels in the background.
    drop(rt.typing("a@im.wechat"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let calls = api.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("getconfig")).count(),
        1
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("typing a@im.wechat off")
    );
}

#[tokio::test]
async fn replying_through_the_typing_guard_cancels_right_after_the_reply() {
    let api = Fake::with(vec![Step::Batch(
        vec![text_msg(1, "a@im.wechat", "hi")],
        "c1",
    )]);
    let options = RuntimeOptions::default().typing_keepalive(Duration::from_millis(30));
    let rt = runtime(&api, Arc::new(MemoryStore::new()), options);
    let mut updates = rt.updates(fast_options());
    let delivery = next_ok(&mut updates).await;
    let guard = rt.typing(delivery.sender());
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.reply("done").await.unwrap();
    let typing_and_sends = |calls: Vec<String>| -> Vec<String> {
        calls
            .into_iter()
            .filter(|c| c.starts_with("typing ") || c.starts_with("send "))
            .collect()
    };
    let calls = typing_and_sends(api.calls());
    let n = calls.len();
    assert!(n >= 4, "keep-alives, the reply and the cancel: {calls:?}");
    // Keep-alives only before the reply, the cancel right after it, and it
    // has gone out by the time `reply` returns.
    assert!(
        calls[..n - 2].iter().all(|c| c == "typing a@im.wechat on"),
        "{calls:?}"
    );
    assert_eq!(
        calls[n - 2..],
        ["send a@im.wechat done ctx-1", "typing a@im.wechat off"]
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        typing_and_sends(api.calls()).len(),
        n,
        "no keep-alive after"
    );

    // A reply that is refused still ends typing.
    let guard = rt.typing("stranger@im.wechat");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = guard.reply("hello").await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::UserMustWriteFirst { .. }),
        "{err:?}"
    );
    assert_eq!(
        api.calls().last().map(String::as_str),
        Some("typing stranger@im.wechat off")
    );
}

#[tokio::test]
async fn no_ticket_means_no_typing_calls() {
    let api = Arc::new(Fake {
        config_fails: true,
        ..Fake::default()
    });
    let rt = runtime(
        &api,
        Arc::new(MemoryStore::new()),
        RuntimeOptions::default(),
    );
    let guard = rt.typing("a@im.wechat");
    tokio::time::sleep(Duration::from_millis(50)).await;
    guard.finish().await;
    assert_eq!(api.calls(), ["getconfig a@im.wechat"]);
}
