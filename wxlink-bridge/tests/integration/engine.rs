//! Turn semantics over a recording outbox: typing around the agent call,
//! chunks, one turn at a time per user with queued messages merged,
//! concurrency across users, retries, notices and dead letters, commands
//! and the allow-list.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use wxlink_bridge::{
    Agent, BoxFuture, Engine, EngineOptions, Error, Inbound, Outbox, Reply, ReplyMedia, ReplySink,
    ReplyTo, Settle, Turn, Typing,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TypingOn(String),
    TypingOff(String),
    Text(String, u32, String),
    Media(String, u32, ReplyMedia),
    Done(u64),
    Failed(u64, String),
}

#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
    pub fn texts(&self, user: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Text(u, _, t) if u == user => Some(t),
                _ => None,
            })
            .collect()
    }
}

struct RecTyping(Arc<Recorder>, String);

impl Typing for RecTyping {
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.0.push(Event::TypingOff(self.1.clone()));
        Box::pin(async {})
    }
}

pub struct RecOutbox(pub Arc<Recorder>);

impl Outbox for RecOutbox {
    fn typing<'a>(&'a self, to: &'a ReplyTo) -> BoxFuture<'a, Box<dyn Typing>> {
        self.0.push(Event::TypingOn(to.user.clone()));
        let t: Box<dyn Typing> = Box::new(RecTyping(self.0.clone(), to.user.clone()));
        Box::pin(async move { t })
    }
    fn send_text<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        text: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.0.push(Event::Text(to.user.clone(), index, text));
        Box::pin(async { Ok(()) })
    }
    fn send_media<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        media: &'a ReplyMedia,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.0
            .push(Event::Media(to.user.clone(), index, media.clone()));
        Box::pin(async { Ok(()) })
    }
}

struct RecSettle(Arc<Recorder>, u64);

impl Settle for RecSettle {
    fn done(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.0.push(Event::Done(self.1));
        Box::pin(async {})
    }
    fn failed(self: Box<Self>, reason: String) -> BoxFuture<'static, ()> {
        self.0.push(Event::Failed(self.1, reason));
        Box::pin(async {})
    }
}

/// An agent that answers from a closure and records every turn.
pub struct Scripted {
    pub turns: Mutex<Vec<Turn>>,
    pub resets: Mutex<Vec<String>>,
    answer: AnswerFn,
}

type AnswerFn = Box<dyn Fn(&Turn, usize) -> BoxFuture<'static, Result<Reply, Error>> + Send + Sync>;

impl Scripted {
    pub fn new(
        answer: impl Fn(&Turn, usize) -> BoxFuture<'static, Result<Reply, Error>>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            turns: Mutex::default(),
            resets: Mutex::default(),
            answer: Box::new(answer),
        })
    }
    pub fn turns(&self) -> Vec<Turn> {
        self.turns.lock().unwrap().clone()
    }
}

impl Agent for Scripted {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        let n = {
            let mut turns = self.turns.lock().unwrap();
            turns.push(turn.clone());
            turns.len() - 1
        };
        (self.answer)(turn, n)
    }
    fn reset<'a>(&'a self, _account: &'a str, user: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.resets.lock().unwrap().push(user.to_owned());
        Box::pin(async { Ok(()) })
    }
}

pub fn fast_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.retry_delay = Duration::from_millis(10);
    o.agent_timeout = Duration::from_secs(5);
    o
}

pub fn setup(agent: Arc<dyn Agent>, options: EngineOptions) -> (Engine, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(agent, Arc::new(RecOutbox(rec.clone())), options);
    (engine, rec)
}

pub fn inbound(rec: &Arc<Recorder>, user: &str, id: u64, text: &str) -> Inbound {
    Inbound::new("bot", user, id, text, Box::new(RecSettle(rec.clone(), id)))
}

async fn idle(engine: &Engine) {
    tokio::time::timeout(Duration::from_secs(20), engine.idle())
        .await
        .expect("the engine went idle");
}

#[tokio::test]
async fn typing_comes_before_the_agent_and_goes_after_the_last_chunk() {
    let code: String = (0..300)
        .map(|i| format!("x = {i}  # a line of code\n"))
        .collect();
    let answer = format!("Intro.\n\n```python\n{code}```\n\nBye.");
    let a2 = answer.clone();
    let agent = Scripted::new(move |_, _| {
        let a = a2.clone();
        Box::pin(async move { Ok(Reply::text(a)) })
    });
    let (engine, rec) = setup(agent.clone(), fast_options());
    engine.dispatch(inbound(&rec, "u", 1, "write code"));
    idle(&engine).await;

    let events = rec.events();
    assert_eq!(events.first(), Some(&Event::TypingOn("u".into())));
    let off = events
        .iter()
        .position(|e| *e == Event::TypingOff("u".into()))
        .unwrap();
    let last_text = events
        .iter()
        .rposition(|e| matches!(e, Event::Text(..)))
        .unwrap();
    assert!(
        off > last_text,
        "typing is cancelled after the reply: {events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Done(1)));

    let chunks = rec.texts("u");
    assert!(chunks.len() >= 4, "{}", chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        assert!(chunk.chars().count() <= 2000);
        assert_eq!(
            chunk.matches("```").count() % 2,
            0,
            "chunk {i} leaves a fence open"
        );
    }
    // Removing the added fence lines gives the answer back.
    let mut joined = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut c = chunk.as_str();
        if i > 0 {
            c = c.strip_prefix("```python\n").unwrap_or(c);
        }
        if i + 1 < chunks.len() {
            c = c.strip_suffix("```\n").unwrap_or(c);
        }
        joined.push_str(c);
    }
    assert_eq!(joined, answer);
    // Indexes count up from 0.
    let indexes: Vec<u32> = rec
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Text(_, i, _) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(indexes, (0..chunks.len() as u32).collect::<Vec<_>>());
}

#[tokio::test]
async fn messages_sent_while_the_agent_works_go_together_into_the_next_turn() {
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let agent = Scripted::new(move |turn, n| {
        let g = g.clone();
        let text = turn.text.clone();
        Box::pin(async move {
            if n == 0 {
                g.acquire().await.unwrap().forget();
            }
            Ok(Reply::text(format!("re: {text}")))
        })
    });
    let (engine, rec) = setup(agent.clone(), fast_options());
    engine.dispatch(inbound(&rec, "u", 1, "a"));
    // Wait until the first turn is with the agent.
    while agent.turns().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (id, text) in [(2, "b"), (3, "c"), (4, "d")] {
        engine.dispatch(inbound(&rec, "u", id, text));
    }
    gate.add_permits(1);
    idle(&engine).await;

    let turns = agent.turns();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0].message_ids, [1]);
    assert_eq!(turns[1].text, "b\nc\nd");
    assert_eq!(turns[1].message_ids, [2, 3, 4]);
    assert_eq!(rec.texts("u"), ["re: a", "re: b\nc\nd"]);
    let done: Vec<_> = rec
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Done(_)))
        .collect();
    assert_eq!(
        done,
        [
            Event::Done(1),
            Event::Done(2),
            Event::Done(3),
            Event::Done(4)
        ]
    );
}

#[tokio::test]
async fn turns_of_different_users_run_at_the_same_time() {
    // Each call waits until both users' calls are in flight: serialised
    // turns would never get there.
    let both = Arc::new(tokio::sync::Barrier::new(2));
    let b = both.clone();
    let agent = Scripted::new(move |turn, _| {
        let b = b.clone();
        let user = turn.user.clone();
        Box::pin(async move {
            b.wait().await;
            Ok(Reply::text(format!("hi {user}")))
        })
    });
    let (engine, rec) = setup(agent, fast_options());
    engine.dispatch(inbound(&rec, "alice", 1, "x"));
    engine.dispatch(inbound(&rec, "bob", 2, "y"));
    idle(&engine).await;
    assert_eq!(rec.texts("alice"), ["hi alice"]);
    assert_eq!(rec.texts("bob"), ["hi bob"]);
}

#[tokio::test]
async fn a_failing_agent_gets_a_notice_retries_and_a_dead_letter() {
    let agent = Scripted::new(|_, _| Box::pin(async { Err(Error::unreadable("garbage")) }));
    let mut options = fast_options();
    options.failure_notice = Some("hold on".into());
    options.give_up_notice = Some("giving up".into());
    let (engine, rec) = setup(agent.clone(), options);
    engine.dispatch(inbound(&rec, "u", 7, "q"));
    idle(&engine).await;

    assert_eq!(agent.turns().len(), 3);
    assert_eq!(
        agent.turns().iter().map(|t| t.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        rec.texts("u"),
        ["hold on", "giving up"],
        "one notice, not one per retry"
    );
    let events = rec.events();
    assert!(
        matches!(events.last(), Some(Event::Failed(7, reason)) if reason.contains("garbage")),
        "{events:?}"
    );
    assert!(events.contains(&Event::TypingOff("u".into())));
    assert_eq!(engine.metrics().dead_letters(), 1);
    assert!(
        engine
            .metrics()
            .encode()
            .contains("wxlink_bridge_agent_errors_total{kind=\"unreadable\"} 3")
    );
}

#[tokio::test]
async fn a_timeout_then_a_success_answers_after_one_notice() {
    let agent = Scripted::new(|_, n| {
        Box::pin(async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Ok(Reply::text("finally"))
        })
    });
    let mut options = fast_options();
    options.agent_timeout = Duration::from_millis(200);
    options.failure_notice = Some("slow today".into());
    let (engine, rec) = setup(agent.clone(), options);
    engine.dispatch(inbound(&rec, "u", 1, "q"));
    idle(&engine).await;
    assert_eq!(rec.texts("u"), ["slow today", "finally"]);
    assert_eq!(rec.events().last(), Some(&Event::Done(1)));
    assert!(engine.metrics().encode().contains("kind=\"timeout\"} 1"));
}

#[tokio::test]
async fn reset_and_help_are_answered_in_order_without_the_agent() {
    let agent = Scripted::new(|t, _| {
        let text = t.text.clone();
        Box::pin(async move { Ok(Reply::text(format!("re: {text}"))) })
    });
    let mut options = fast_options();
    options.help_text = "HELP".into();
    options.reset_text = "CLEARED".into();
    let (engine, rec) = setup(agent.clone(), options);
    engine.dispatch(inbound(&rec, "u", 1, "/help"));
    engine.dispatch(inbound(&rec, "u", 2, " /reset "));
    engine.dispatch(inbound(&rec, "u", 3, "hello"));
    idle(&engine).await;
    assert_eq!(rec.texts("u"), ["HELP", "CLEARED", "re: hello"]);
    assert_eq!(*agent.resets.lock().unwrap(), ["u"]);
    assert_eq!(agent.turns().len(), 1);
}

#[tokio::test]
async fn users_off_the_allow_list_get_no_answer_and_are_settled() {
    let agent = Scripted::new(|_, _| Box::pin(async { Ok(Reply::text("ok")) }));
    let mut options = fast_options();
    options.allow = HashMap::from([("bot".to_owned(), HashSet::from(["friend".to_owned()]))]);
    let (engine, rec) = setup(agent.clone(), options);
    engine.dispatch(inbound(&rec, "stranger", 1, "hi"));
    engine.dispatch(inbound(&rec, "friend", 2, "hi"));
    idle(&engine).await;
    assert!(rec.texts("stranger").is_empty());
    assert_eq!(rec.texts("friend"), ["ok"]);
    assert_eq!(agent.turns().len(), 1);
    assert!(rec.events().contains(&Event::Done(1)));
}

#[tokio::test]
async fn reply_files_must_lie_inside_the_media_directory() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    std::fs::write(media.join("ok.png"), b"png").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"secret").unwrap();
    let agent = Scripted::new(|_, _| {
        Box::pin(async {
            Ok(Reply::text("files")
                .with_media(ReplyMedia::Path("ok.png".into()))
                .with_media(ReplyMedia::Path("../secret.txt".into()))
                .with_media(ReplyMedia::Path("/etc/passwd".into()))
                .with_media(ReplyMedia::Url("https://example.com/x.pdf".into())))
        })
    });
    let mut options = fast_options();
    options.media_dir = Some(media.clone());
    let (engine, rec) = setup(agent, options);
    engine.dispatch(inbound(&rec, "u", 1, "send files"));
    idle(&engine).await;
    let sent: Vec<_> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Media(_, i, m) => Some((i, m)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            (
                1,
                ReplyMedia::Path(media.canonicalize().unwrap().join("ok.png"))
            ),
            (4, ReplyMedia::Url("https://example.com/x.pdf".into())),
        ]
    );
}

#[tokio::test]
async fn a_deferred_reply_is_sent_later_with_indexes_of_its_own() {
    let agent = Scripted::new(|_, _| Box::pin(async { Ok(Reply::deferred()) }));
    let (engine, rec) = setup(agent, fast_options());
    engine.dispatch(inbound(&rec, "u", 5, "long job"));
    idle(&engine).await;
    assert!(rec.texts("u").is_empty());
    assert!(rec.events().contains(&Event::Done(5)));
    let later = |text: &str| {
        let mut r = wxlink_bridge::DeferredReply::new("bot", "u", Reply::text(text));
        r.message_id = Some(5);
        r
    };
    engine.deliver(later("part one")).await.unwrap();
    engine.deliver(later("part two")).await.unwrap();
    let texts: Vec<_> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Text(_, i, t) => Some((i, t)),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [(1000, "part one".to_owned()), (1001, "part two".to_owned())]
    );
}

#[tokio::test]
async fn many_users_and_accounts_are_all_answered_once() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let agent = Scripted::new(move |t, _| {
        c.fetch_add(1, Ordering::Relaxed);
        let text = t.text.clone();
        Box::pin(async move { Ok(Reply::text(text)) })
    });
    let mut options = fast_options();
    options.max_concurrent_turns = 8;
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(agent, Arc::new(RecOutbox(rec.clone())), options);
    for n in 0..400u64 {
        // 100 conversations over 4 accounts (a user's account is fixed).
        let user = format!("user{}", n % 100);
        let mut m = inbound(&rec, &user, n, &format!("m{n}"));
        m.account = format!("bot{}", n % 4);
        engine.dispatch(m);
    }
    idle(&engine).await;
    let done = rec
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Done(_)))
        .count();
    assert_eq!(done, 400);
    // Every message was answered exactly once, in order per user (merged
    // turns echo their messages joined by line breaks).
    let mut seen = Vec::new();
    for u in 0..100 {
        let said: Vec<u64> = rec
            .texts(&format!("user{u}"))
            .iter()
            .flat_map(|t| {
                t.lines()
                    .map(|l| l[1..].parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(said.windows(2).all(|w| w[0] < w[1]), "user{u}: {said:?}");
        seen.extend(said);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..400).collect::<Vec<_>>());
    assert!(calls.load(Ordering::Relaxed) <= 400);
}

#[tokio::test]
async fn with_attempts_counted_by_the_runtime_each_delivery_calls_the_agent_once() {
    use wxlink_bridge::DeliveryAttempt;
    let agent = Scripted::new(|t, _| {
        let ok = t.text == "ok";
        Box::pin(async move {
            if ok {
                Ok(Reply::text("answer"))
            } else {
                Err(Error::unreadable("bad"))
            }
        })
    });
    let mut options = fast_options();
    options.failure_notice = Some("notice".into());
    options.give_up_notice = Some("gave up".into());
    let (engine, rec) = setup(agent.clone(), options);
    let indexed = |rec: &Recorder| -> Vec<(u32, String)> {
        rec.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Text(_, i, t) => Some((i, t)),
                _ => None,
            })
            .collect()
    };

    // Attempt 1 of 3 fails: the notice, and the runtime is told to retry.
    engine.dispatch(inbound(&rec, "u", 1, "bad").attempt(DeliveryAttempt::new(1, 3)));
    idle(&engine).await;
    assert_eq!(agent.turns().len(), 1);
    assert_eq!(indexed(&rec), [(0, "notice".to_owned())]);
    assert!(matches!(rec.events().last(), Some(Event::Failed(1, _))));
    assert_eq!(engine.metrics().dead_letters(), 0);

    // Attempt 2 succeeds: the notice again as message 0 (the runtime
    // skips it as already accepted), the answer as message 1.
    rec.events.lock().unwrap().clear();
    engine.dispatch(inbound(&rec, "u", 1, "ok").attempt(DeliveryAttempt::new(2, 3)));
    idle(&engine).await;
    assert_eq!(
        indexed(&rec),
        [(0, "notice".to_owned()), (1, "answer".to_owned())]
    );
    assert_eq!(rec.events().last(), Some(&Event::Done(1)));

    // The last attempt fails: the give-up notice follows, and a dead letter.
    rec.events.lock().unwrap().clear();
    engine.dispatch(inbound(&rec, "u", 2, "bad").attempt(DeliveryAttempt::new(3, 3)));
    idle(&engine).await;
    assert_eq!(
        indexed(&rec),
        [(0, "notice".to_owned()), (1, "gave up".to_owned())]
    );
    assert!(matches!(rec.events().last(), Some(Event::Failed(2, _))));
    assert_eq!(engine.metrics().dead_letters(), 1);
    assert_eq!(
        agent.turns().iter().map(|t| t.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[tokio::test]
async fn the_budget_counts_a_retried_deliverys_notice_and_a_refused_file_costs_one_message() {
    use wxlink_bridge::DeliveryAttempt;
    let agent = Scripted::new(|_, _| {
        let text = (0..6)
            .map(|i| format!("part {i} {}", "y".repeat(30)))
            .collect::<Vec<_>>()
            .join("\n\n");
        Box::pin(
            async move { Ok(Reply::text(text).with_media(ReplyMedia::Path("/etc/passwd".into()))) },
        )
    });
    let mut options = fast_options();
    options.chunk_chars = 40;
    options.failure_notice = Some("notice".into());
    options.media_notice = Some("no file".into());
    let (engine, rec) = setup(agent, options);

    // The second attempt of a delivery with a budget of 5: the notice
    // again as message 0, three parts, and the cut notice as message 4.
    engine.dispatch(
        inbound(&rec, "u", 1, "go")
            .attempt(DeliveryAttempt::new(2, 3))
            .reply_budget(5),
    );
    idle(&engine).await;
    let texts = rec.texts("u");
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert_eq!(texts[0], "notice");
    assert!(texts[1].starts_with("part 0") && texts[3].starts_with("part 2"));
    assert!(texts[4].contains("4 more messages"), "{}", texts[4]);
    assert_eq!(engine.held("bot", "u"), 4);

    // `/more` with a budget of its own: the three parts left, then the
    // notice in place of the refused file (outside any media directory).
    rec.events.lock().unwrap().clear();
    engine.dispatch(inbound(&rec, "u", 2, "/more").reply_budget(10));
    idle(&engine).await;
    let texts = rec.texts("u");
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[0].starts_with("part 3") && texts[2].starts_with("part 5"));
    assert_eq!(texts[3], "no file");
    assert!(
        !rec.events().iter().any(|e| matches!(e, Event::Media(..))),
        "the refused file was not handed to the outbox"
    );
    assert_eq!(engine.metrics().media_refused(), 1);
    assert_eq!(engine.held("bot", "u"), 0);
}

/// Records like [`RecOutbox`], but the first send of a text starting with
/// `fail_on` fails (as a broken connection would).
struct FlakyOutbox {
    rec: Arc<Recorder>,
    fail_on: &'static str,
    failed: AtomicU32,
}

impl Outbox for FlakyOutbox {
    fn typing<'a>(&'a self, to: &'a ReplyTo) -> BoxFuture<'a, Box<dyn Typing>> {
        let t: Box<dyn Typing> = Box::new(RecTyping(self.rec.clone(), to.user.clone()));
        Box::pin(async move { t })
    }
    fn send_text<'a>(
        &'a self,
        to: &'a ReplyTo,
        index: u32,
        text: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if text.starts_with(self.fail_on) && self.failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Box::pin(async { Err(Error::unreadable("the connection broke")) });
        }
        self.rec.push(Event::Text(to.user.clone(), index, text));
        Box::pin(async { Ok(()) })
    }
    fn send_media<'a>(
        &'a self,
        _to: &'a ReplyTo,
        _index: u32,
        _media: &'a ReplyMedia,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_more_whose_send_fails_keeps_the_rest_for_its_retry() {
    let agent = Scripted::new(|_, _| {
        let text = (0..6)
            .map(|i| format!("part {i} {}", "z".repeat(30)))
            .collect::<Vec<_>>()
            .join("\n\n");
        Box::pin(async move { Ok(Reply::text(text)) })
    });
    let mut options = fast_options();
    options.chunk_chars = 40;
    let rec = Arc::new(Recorder::default());
    let outbox = Arc::new(FlakyOutbox {
        rec: rec.clone(),
        fail_on: "part 4",
        failed: AtomicU32::new(0),
    });
    let engine = Engine::new(agent, outbox, options);

    engine.dispatch(inbound(&rec, "u", 1, "go").reply_budget(3));
    idle(&engine).await;
    // Two parts and the cut notice; four wait.
    assert_eq!(engine.held("bot", "u"), 4);

    // The `/more` breaks at its second message: it is settled as failed,
    // for the runtime to deliver again, and the rest still waits.
    engine.dispatch(inbound(&rec, "u", 2, "/more").reply_budget(10));
    idle(&engine).await;
    assert!(matches!(rec.events().last(), Some(Event::Failed(2, _))));
    assert_eq!(engine.held("bot", "u"), 4);

    // The retry sends all four, at the indexes of the first try.
    rec.events.lock().unwrap().clear();
    engine.dispatch(inbound(&rec, "u", 2, "/more").reply_budget(10));
    idle(&engine).await;
    let sent: Vec<(u32, String)> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Text(_, i, t) => Some((i, t[..6].to_owned())),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            (0, "part 2".to_owned()),
            (1, "part 3".to_owned()),
            (2, "part 4".to_owned()),
            (3, "part 5".to_owned())
        ]
    );
    assert_eq!(rec.events().last(), Some(&Event::Done(2)));
    assert_eq!(engine.held("bot", "u"), 0);
}
