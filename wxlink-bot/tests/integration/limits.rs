//! The server's send limits as the runtime applies them: the bot-wide
//! throttle with one probe, pacing, and the reply and push budgets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wxlink_bot::store::MemoryStore;
use wxlink_bot::{EventKind, Host, Incoming, OnRefusal};
use wxlink_client::reject::RejectCause;
use wxlink_sim::{Fault, Fidelity, Simulator, Throttle};

use crate::support::{account, eventually, fast, sim, wait_event};

#[tokio::test]
async fn after_a_throttle_no_send_of_that_bot_reaches_the_server_before_the_probe_while_others_send()
 {
    // Bot A's server throttles a second send within a second; bot B's never.
    let a = Simulator::builder()
        .hold(Duration::from_millis(200))
        .fidelity(
            Fidelity::default().with_burst_throttle(Throttle::new(1, Duration::from_millis(300))),
        )
        .start()
        .await
        .unwrap();
    let b = sim().await;
    let host = Host::builder(MemoryStore::new()).build();
    let mut events = host.events();
    let cooldown = Duration::from_millis(1500);
    // No pacing on A, so that its handler trips the throttle at once.
    let options = fast()
        .pace(Duration::ZERO)
        .throttle_cooldown(cooldown, Duration::from_secs(10));
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler = {
        let results = results.clone();
        move |incoming: Incoming| {
            let results = results.clone();
            async move {
                for i in 0..4 {
                    let r = incoming.reply(&format!("reply {i}")).await;
                    results
                        .lock()
                        .unwrap()
                        .push(r.map_err(|e| (e.is_throttled(), e.next_probe())));
                }
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    let ha = host
        .add_account(account(&a, options), handler)
        .await
        .unwrap();
    host.add_account(
        account(&b, fast().pace(Duration::from_millis(100))),
        |i: Incoming| async move {
            i.reply("b").await?;
            i.reply("b again").await
        },
    )
    .await
    .unwrap();
    a.inject_text("alice@im.wechat", "go");
    let kind = wait_event(&mut events, ha.id(), Duration::from_secs(10), |k| {
        matches!(k, EventKind::Throttled { .. })
    })
    .await;
    let EventKind::Throttled {
        since,
        next_probe,
        failed_probes,
    } = kind
    else {
        unreachable!()
    };
    assert_eq!(failed_probes, 0);
    let span = next_probe.duration_since(since).unwrap();
    assert!(
        span >= cooldown && span < cooldown + Duration::from_millis(200),
        "{span:?}"
    );
    eventually(Duration::from_secs(5), "four reply results", || {
        let r = results.clone();
        async move { r.lock().unwrap().len() == 4 }
    })
    .await;
    {
        let r = results.lock().unwrap();
        assert!(r[0].is_ok());
        // The second send met the throttle; the rest were refused typed,
        // without a request, carrying the probe time.
        for later in &r[1..] {
            let (throttled, probe) = (*later).unwrap_err();
            assert!(throttled);
            assert_eq!(probe, Some(next_probe));
        }
    }
    // Other bots keep sending meanwhile.
    for n in 0..3 {
        b.inject_text("bob@im.wechat", format!("b{n}"));
    }
    b.wait_for_sent(6, Duration::from_secs(10)).await.unwrap();
    let a_sends: Vec<SystemTime> = a
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("sendmessage"))
        .map(|r| r.at)
        .collect();
    assert_eq!(
        a_sends.len(),
        2,
        "only the send that tripped the throttle followed the first"
    );
    // The probe: after the cool-down one reply goes through and lifts it.
    let probe_wait = next_probe
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(probe_wait + Duration::from_millis(50)).await;
    let before_probe = a.sent_messages().len();
    let handle = ha.clone();
    a.inject_text("alice@im.wechat", "again");
    wait_event(&mut events, handle.id(), Duration::from_secs(10), |k| {
        *k == EventKind::ThrottleLifted
    })
    .await;
    assert!(handle.throttled().is_none());
    let sends_after: Vec<SystemTime> = a
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("sendmessage"))
        .map(|r| r.at)
        .collect();
    assert!(
        sends_after[2] >= next_probe,
        "a send reached the server before the probe time"
    );
    assert!(a.sent_messages().len() > before_probe);
    host.shutdown().await;
}

#[tokio::test]
async fn a_failed_probe_doubles_the_cool_down_and_the_throttle_survives_a_restart() {
    let a = Simulator::builder()
        .hold(Duration::from_millis(200))
        .fidelity(
            Fidelity::default().with_burst_throttle(Throttle::new(1, Duration::from_secs(60))),
        )
        .start()
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let host = Host::builder_arc(store.clone()).build();
    let mut events = host.events();
    let cooldown = Duration::from_millis(400);
    let options = fast()
        .pace(Duration::ZERO)
        .throttle_cooldown(cooldown, Duration::from_secs(10));
    let reply_twice = |i: Incoming| async move {
        let _ = i.reply("one").await;
        let _ = i.reply("two").await;
        Ok::<(), wxlink_bot::Error>(())
    };
    let ha = host
        .add_account(account(&a, options.clone()), reply_twice)
        .await
        .unwrap();
    a.inject_text("alice@im.wechat", "go");
    wait_event(&mut events, ha.id(), Duration::from_secs(10), |k| {
        matches!(
            k,
            EventKind::Throttled {
                failed_probes: 0,
                ..
            }
        )
    })
    .await;
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    // The server still throttles: the probe fails and the wait doubles.
    a.inject_text("alice@im.wechat", "probe");
    let kind = wait_event(&mut events, ha.id(), Duration::from_secs(10), |k| {
        matches!(
            k,
            EventKind::Throttled {
                failed_probes: 1,
                ..
            }
        )
    })
    .await;
    let EventKind::Throttled { next_probe, .. } = kind else {
        unreachable!()
    };
    let left = next_probe
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(
        left > cooldown,
        "the second cool-down ({left:?}) did not grow"
    );
    // A restarted runner reads the throttle back and does not send.
    let id = ha.id().clone();
    host.remove_account(&id).await.unwrap();
    let sends = a
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("sendmessage"))
        .count();
    let again = host
        .add_account(account(&a, options), reply_twice)
        .await
        .unwrap();
    a.inject_text("alice@im.wechat", "after restart");
    eventually(
        Duration::from_secs(5),
        "the restarted runner knows the throttle",
        || {
            let again = again.clone();
            async move { again.throttled().is_some() }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.request_log()
            .iter()
            .filter(|r| r.endpoint == Some("sendmessage"))
            .count(),
        sends
    );
    host.shutdown().await;
}

#[tokio::test]
async fn sends_of_one_bot_are_paced_and_budgets_refuse_with_typed_errors() {
    let s = sim().await;
    let host = Host::builder(MemoryStore::new()).build();
    let pace = Duration::from_millis(250);
    let outcome = Arc::new(std::sync::Mutex::new(None));
    let handler = {
        let outcome = outcome.clone();
        move |i: Incoming| {
            let outcome = outcome.clone();
            async move {
                let mut results = Vec::new();
                for n in 0..3 {
                    results.push(i.reply(&format!("r{n}")).await);
                }
                *outcome.lock().unwrap() = Some(results);
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    let options = fast()
        .pace(pace)
        .reply_budget(2)
        .push_budget(1, Duration::from_secs(3600));
    let handle = host
        .add_account(account(&s, options), handler)
        .await
        .unwrap();
    s.inject_text("alice@im.wechat", "hi");
    eventually(Duration::from_secs(10), "three reply results", || {
        let o = outcome.clone();
        async move { o.lock().unwrap().is_some() }
    })
    .await;
    let results = outcome.lock().unwrap().take().unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    let refused = results[2].as_ref().unwrap_err();
    assert!(
        refused.is_budget_exhausted() && !refused.may_have_been_sent(),
        "{refused:?}"
    );
    let sent = s.sent_messages();
    assert_eq!(sent.len(), 2);
    let gap = sent[1].at.duration_since(sent[0].at).unwrap();
    assert!(
        gap >= pace - Duration::from_millis(20),
        "sends {gap:?} apart"
    );
    // Pushes have their own budget: one per window here.
    handle.push_text("alice@im.wechat", "news").await.unwrap();
    let second = handle
        .push_text("alice@im.wechat", "more news")
        .await
        .unwrap_err();
    assert!(second.is_budget_exhausted());
    // Nobody who never wrote can be pushed to.
    let stranger = handle
        .push_text("stranger@im.wechat", "hello")
        .await
        .unwrap_err();
    assert!(stranger.is_user_must_write_first());
    assert_eq!(s.sent_messages().len(), 3);
    host.shutdown().await;
}

#[tokio::test]
async fn queued_pushes_wait_for_the_next_window_and_a_full_queue_or_a_zero_budget_refuses() {
    let s = sim().await;
    let host = Host::builder(MemoryStore::new()).build();
    let replies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler = {
        let replies = replies.clone();
        move |i: Incoming| {
            let replies = replies.clone();
            async move {
                let first = i.reply("a").await;
                // The message's budget of 1 is used, and it never renews:
                // refused at once even in queue mode.
                let second = i.reply("b").await;
                replies
                    .lock()
                    .unwrap()
                    .push((first.is_ok(), second.map_err(|e| e.is_budget_exhausted())));
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    let window = Duration::from_millis(700);
    let options = fast()
        .reply_budget(1)
        .push_budget(1, window)
        .on_refusal(OnRefusal::Queue(1));
    let handle = host
        .add_account(account(&s, options), handler)
        .await
        .unwrap();
    s.inject_text("alice@im.wechat", "hi");
    eventually(Duration::from_secs(10), "the handler ran", || {
        let r = replies.clone();
        async move { !r.lock().unwrap().is_empty() }
    })
    .await;
    assert_eq!(replies.lock().unwrap()[0], (true, Err(true)));

    handle.push_text("alice@im.wechat", "push 1").await.unwrap();
    let started = std::time::Instant::now();
    let waiting = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.push_text("alice@im.wechat", "push 2").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The queue holds one send; a second one waiting is refused.
    let full = handle
        .push_text("alice@im.wechat", "push 3")
        .await
        .unwrap_err();
    assert!(full.is_queue_full(), "{full:?}");
    waiting.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= window - Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let texts: Vec<_> = s
        .sent_messages()
        .iter()
        .map(|m| m.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, ["a", "push 1", "push 2"]);
    host.shutdown().await;

    // A zero push budget disables pushes, queue or not.
    let host = Host::builder(MemoryStore::new()).build();
    let options = fast()
        .push_budget(0, window)
        .on_refusal(OnRefusal::Queue(4));
    let handle = host
        .add_account(account(&s, options), |_i: Incoming| async move {
            Ok::<(), wxlink_bot::Error>(())
        })
        .await
        .unwrap();
    let refused = handle
        .push_text("alice@im.wechat", "push")
        .await
        .unwrap_err();
    assert!(refused.is_budget_exhausted(), "{refused:?}");
    host.shutdown().await;
}

/// What one send of the `-2` classification test saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// Refused with the bot-wide throttle error.
    Held,
    /// Refused by the server for this send only, with the facade's guess.
    Refused(Option<RejectCause>),
}

fn outcome(r: &Result<(), wxlink_bot::Error>) -> Outcome {
    match r {
        Ok(()) => Outcome::Sent,
        Err(e) if e.is_throttled() => Outcome::Held,
        Err(e) => Outcome::Refused(
            e.client_error()
                .and_then(wxlink_client::Error::rejection)
                .map(|g| g.cause),
        ),
    }
}

/// Runs a handler that replies `ok`, then (after `before_trip`) the text
/// `trip`, then `ok` again, on a simulator with `fidelity`; returns the
/// three outcomes, the `sendmessage` requests that reached the simulator
/// and whether the bot ended up throttled.
async fn three_replies(
    fidelity: Fidelity,
    trip: String,
    before_trip: impl Fn(&Simulator) + Send + Sync + 'static,
) -> (Vec<Outcome>, usize, bool) {
    let s = Simulator::builder()
        .hold(Duration::from_millis(200))
        .fidelity(fidelity)
        .start()
        .await
        .unwrap();
    let host = Host::builder(MemoryStore::new()).build();
    let results = Arc::new(std::sync::Mutex::new(None));
    let before_trip = Arc::new(before_trip);
    let handler = {
        let (results, s, trip) = (results.clone(), s.clone(), trip.clone());
        move |i: Incoming| {
            let (results, s, trip, before_trip) = (
                results.clone(),
                s.clone(),
                trip.clone(),
                before_trip.clone(),
            );
            async move {
                let first = i.reply("ok").await;
                before_trip(&s);
                let tripped = i.reply(&trip).await;
                let after = i.reply("ok again").await;
                *results.lock().unwrap() = Some([first, tripped, after].map(|r| outcome(&r)));
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    // Long texts go out whole, so that the server's length limit is the
    // one that speaks; the throttle's cool-down is long enough to see.
    let options = fast()
        .max_chars(8_000)
        .throttle_cooldown(Duration::from_secs(3600), Duration::from_secs(7200));
    let handle = host
        .add_account(account(&s, options), handler)
        .await
        .unwrap();
    s.inject_text("alice@im.wechat", "hi");
    eventually(Duration::from_secs(10), "three reply outcomes", || {
        let r = results.clone();
        async move { r.lock().unwrap().is_some() }
    })
    .await;
    let outcomes = results.lock().unwrap().take().unwrap().to_vec();
    let sends = s
        .request_log()
        .iter()
        .filter(|r| r.endpoint == Some("sendmessage"))
        .count();
    let throttled = handle.throttled().is_some();
    host.shutdown().await;
    (outcomes, sends, throttled)
}

#[tokio::test]
async fn a_minus_2_holds_every_send_only_when_it_reads_as_the_burst_throttle() {
    // The burst throttle: the second send within a second trips it; the
    // third never reaches the server.
    let (o, sends, throttled) = three_replies(
        Fidelity::default().with_burst_throttle(Throttle::new(1, Duration::from_secs(60))),
        "second".into(),
        |_| {},
    )
    .await;
    assert_eq!(o, [Outcome::Sent, Outcome::Held, Outcome::Held]);
    assert_eq!(sends, 2);
    assert!(throttled);

    // Over the server's character limit ("prepare failed", as the throttle
    // answers): the text is too long, the next reply goes out.
    let (o, sends, throttled) = three_replies(
        Fidelity::default().with_max_text_chars(5_000),
        "x".repeat(5_500),
        |_| {},
    )
    .await;
    let too_long = Outcome::Refused(Some(RejectCause::TextTooLong));
    assert_eq!(o, [Outcome::Sent, too_long, Outcome::Sent]);
    assert_eq!(sends, 3);
    assert!(!throttled);

    // Over the byte limit (a `-2` with no errmsg): the same.
    let (o, _, throttled) = three_replies(
        Fidelity::default().with_max_text_bytes(16_384),
        "好".repeat(6_000),
        |_| {},
    )
    .await;
    assert_eq!(o, [Outcome::Sent, too_long, Outcome::Sent]);
    assert!(!throttled);

    // The user's window closed on the server's clock (a `-2` with no
    // errmsg): a stale context, which concerns this user only; the next
    // send still reaches the server.
    let stale = Outcome::Refused(Some(RejectCause::NoContext));
    let (o, sends, throttled) = three_replies(
        Fidelity::default().with_push_window(Duration::from_secs(24 * 3600)),
        "later".into(),
        |s| s.advance_clock(Duration::from_secs(25 * 3600)),
    )
    .await;
    assert_eq!(o, [Outcome::Sent, stale, stale]);
    assert_eq!(sends, 3);
    assert!(!throttled);

    // The server's own reply cap per inbound message: not the throttle.
    let (o, sends, throttled) = three_replies(
        Fidelity::default().with_replies_per_inbound(1),
        "second".into(),
        |_| {},
    )
    .await;
    assert_eq!(o, [Outcome::Sent, stale, stale]);
    assert_eq!(sends, 3);
    assert!(!throttled);

    // `-2 "unknown error"`, seen when a session went stale: not the
    // throttle either.
    let (o, sends, throttled) = three_replies(Fidelity::default(), "second".into(), |s| {
        s.inject_fault(
            "sendmessage",
            Fault::Json(r#"{"ret":-2,"errmsg":"unknown error"}"#.into()),
            1,
        )
        .unwrap();
    })
    .await;
    assert_eq!(o, [Outcome::Sent, stale, Outcome::Sent]);
    assert_eq!(sends, 3);
    assert!(!throttled);
}
