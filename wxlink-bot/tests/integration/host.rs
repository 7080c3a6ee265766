//! The multi-account host against wxlink-sim: accounts side by side,
//! order per user, `-14`, dead letters, replays, leases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wxlink_bot::store::{MemoryStore, SqliteStore, Store};
use wxlink_bot::{EventKind, Host, Incoming};
use wxlink_sim::{Fault, InboundMessage};

use crate::support::{account, account_id, eventually, fast, sim, wait_event};

/// A handler that echoes every text.
fn echo()
-> impl Fn(Incoming) -> futures_util::future::BoxFuture<'static, Result<(), wxlink_bot::Error>>
+ Send
+ Sync
+ 'static {
    |incoming: Incoming| {
        Box::pin(async move {
            let text = incoming.text().unwrap_or_default().to_owned();
            incoming.reply(&format!("echo: {text}")).await
        })
    }
}

#[tokio::test]
async fn three_accounts_on_one_host_answer_each_their_own_users_in_order() {
    let sims = [sim().await, sim().await, sim().await];
    let host = Host::builder(MemoryStore::new()).build();
    for s in &sims {
        host.add_account(account(s, fast()), echo()).await.unwrap();
    }
    assert_eq!(host.account_ids().len(), 3);
    for (n, s) in sims.iter().enumerate() {
        for i in 0..4 {
            s.inject_text("alice@im.wechat", format!("a{n}-{i}"));
            s.inject_text("bob@im.wechat", format!("b{n}-{i}"));
        }
    }
    for (n, s) in sims.iter().enumerate() {
        let sent = s.wait_for_sent(8, Duration::from_secs(20)).await.unwrap();
        let texts = |user: &str| -> Vec<String> {
            sent.iter()
                .filter(|m| m.to_user_id() == user)
                .map(|m| m.text().unwrap_or_default().to_owned())
                .collect()
        };
        let want = |p: &str| {
            (0..4)
                .map(|i| format!("echo: {p}{n}-{i}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(texts("alice@im.wechat"), want("a"));
        assert_eq!(texts("bob@im.wechat"), want("b"));
        assert!(
            sent.iter().all(|m| m.bot_id == s.bot_id()),
            "a reply went out under another bot"
        );
    }
    // Removing one account stops it alone.
    let first = account_id(&sims[0]);
    host.remove_account(&first).await.unwrap();
    sims[0].inject_text("alice@im.wechat", "after removal");
    sims[1].inject_text("alice@im.wechat", "still here");
    sims[1]
        .wait_for_sent(9, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sims[0].sent_messages().len(), 8);
    host.shutdown().await;
}

#[tokio::test]
async fn handlers_run_one_at_a_time_per_user_and_concurrently_across_users() {
    let s = sim().await;
    let host = Host::builder(MemoryStore::new()).concurrency(8).build();
    let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let running: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handler = {
        let (log, running, now, peak) = (log.clone(), running.clone(), now.clone(), peak.clone());
        move |incoming: Incoming| {
            let (log, running, now, peak) =
                (log.clone(), running.clone(), now.clone(), peak.clone());
            async move {
                let user = incoming.sender().to_owned();
                {
                    let mut r = running.lock().unwrap();
                    let n = r.entry(user.clone()).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "two handlers at once for {user}");
                }
                let at = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(at, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(60)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                *running.lock().unwrap().get_mut(&user).unwrap() -= 1;
                log.lock()
                    .unwrap()
                    .push((user, incoming.text().unwrap_or_default().to_owned()));
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    host.add_account(account(&s, fast()), handler)
        .await
        .unwrap();
    for i in 0..5 {
        for user in ["u1@im.wechat", "u2@im.wechat", "u3@im.wechat"] {
            s.inject_text(user, format!("{i}"));
        }
    }
    eventually(Duration::from_secs(15), "15 messages handled", || {
        let log = log.clone();
        async move { log.lock().unwrap().len() == 15 }
    })
    .await;
    let log = log.lock().unwrap().clone();
    for user in ["u1@im.wechat", "u2@im.wechat", "u3@im.wechat"] {
        let order: Vec<_> = log
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(order, ["0", "1", "2", "3", "4"], "order for {user}");
    }
    assert!(
        peak.load(Ordering::SeqCst) >= 2,
        "users never ran concurrently"
    );
    host.shutdown().await;
}

#[tokio::test]
async fn session_expiry_stops_only_that_account_and_a_new_token_resumes_it() {
    let (a, b) = (sim().await, sim().await);
    let host = Host::builder(MemoryStore::new()).build();
    let mut events = host.events();
    let ha = host.add_account(account(&a, fast()), echo()).await.unwrap();
    host.add_account(account(&b, fast()), echo()).await.unwrap();
    let id_a = ha.id().clone();
    a.inject_fault("getupdates", Fault::SessionExpired, 1)
        .unwrap();
    wait_event(&mut events, &id_a, Duration::from_secs(10), |k| {
        *k == EventKind::SessionExpired
    })
    .await;
    assert!(ha.is_session_expired());
    let polls_at_expiry = count_polls(&a);
    a.inject_text("alice@im.wechat", "while expired");
    b.inject_text("alice@im.wechat", "other bot");
    b.wait_for_sent(1, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        count_polls(&a),
        polls_at_expiry,
        "the expired account kept polling"
    );
    assert!(a.sent_messages().is_empty());
    // The token from a new login (here the simulator's, valid again).
    host.update_token(&id_a, a.token()).unwrap();
    wait_event(&mut events, &id_a, Duration::from_secs(10), |k| {
        *k == EventKind::Resumed
    })
    .await;
    let sent = a.wait_for_sent(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(sent[0].text(), Some("echo: while expired"));
    host.shutdown().await;
}

fn count_polls(s: &wxlink_sim::Simulator) -> usize {
    s.request_log()
        .iter()
        .filter(|r| r.endpoint == Some("getupdates"))
        .count()
}

#[tokio::test]
async fn a_message_failing_three_times_is_dead_lettered_and_can_be_requeued() {
    let s = sim().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let host = Host::builder_arc(store.clone()).build();
    let mut events = host.events();
    let attempts = Arc::new(AtomicUsize::new(0));
    let poisoned = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let handler = {
        let (attempts, poisoned) = (attempts.clone(), poisoned.clone());
        move |incoming: Incoming| {
            let (attempts, poisoned) = (attempts.clone(), poisoned.clone());
            async move {
                if incoming.text() == Some("poison") && poisoned.load(Ordering::SeqCst) {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    return Err::<(), _>(format!("cannot digest attempt {}", incoming.attempts()));
                }
                incoming.reply("ok").await.map_err(|e| e.to_string())
            }
        }
    };
    let handle = host
        .add_account(account(&s, fast()), handler)
        .await
        .unwrap();
    let id = handle.id().clone();
    s.inject_text("alice@im.wechat", "poison");
    s.inject_text("alice@im.wechat", "fine");
    let kind = wait_event(&mut events, &id, Duration::from_secs(10), |k| {
        matches!(k, EventKind::DeadLettered { .. })
    })
    .await;
    let EventKind::DeadLettered {
        key,
        attempts: n,
        error,
        ..
    } = kind
    else {
        unreachable!()
    };
    assert_eq!(n, 3);
    assert_eq!(error, "cannot digest attempt 2");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // The user's next message waited behind the poison and is handled now.
    let sent = s.wait_for_sent(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(sent.len(), 1);
    let dead = host.dead_letters(&id, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].key, dead[0].attempts), (key, 3));
    eventually(Duration::from_secs(5), "the journal is empty", || {
        let (store, id) = (store.clone(), id.clone());
        async move { store.pending(&id, None, 10).await.unwrap().is_empty() }
    })
    .await;
    // Re-queued, the running account handles it again at once.
    poisoned.store(false, Ordering::SeqCst);
    assert!(host.requeue(&id, key).await.unwrap());
    assert!(!host.requeue(&id, key).await.unwrap());
    s.wait_for_sent(2, Duration::from_secs(10)).await.unwrap();
    assert!(host.dead_letters(&id, 10).await.unwrap().is_empty());
    host.shutdown().await;
}

#[tokio::test]
async fn a_replayed_delivery_skips_the_replies_the_server_already_accepted() {
    let s = sim().await;
    let host = Host::builder(MemoryStore::new()).build();
    let handler = |incoming: Incoming| async move {
        incoming
            .reply("part one")
            .await
            .map_err(|e| e.to_string())?;
        if incoming.attempts() == 0 {
            return Err("crashed after the first reply".to_owned());
        }
        incoming.reply("part two").await.map_err(|e| e.to_string())
    };
    host.add_account(account(&s, fast()), handler)
        .await
        .unwrap();
    s.inject_message(InboundMessage::text("alice@im.wechat", "hi").message_id(4242));
    let sent = s.wait_for_sent(2, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_now = s.sent_messages();
    let texts: Vec<_> = sent_now
        .iter()
        .map(|m| m.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, ["part one", "part two"], "{sent:?}");
    let ids: Vec<_> = sent_now
        .iter()
        .map(|m| m.msg.client_id.clone().unwrap())
        .collect();
    let account_id = account_id(&s);
    let key = wxlink_bot::store::JournalKey(1);
    assert_eq!(
        ids[0],
        wxlink_bot::reply_client_id(&account_id, Some(4242), key, 0)
    );
    assert_eq!(
        ids[1],
        wxlink_bot::reply_client_id(&account_id, Some(4242), key, 1)
    );
    host.shutdown().await;
}

#[tokio::test]
async fn a_second_runner_gets_the_lease_error_then_takes_over_a_killed_runner_losing_nothing() {
    let s = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bots.db");
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = |handled: Arc<Mutex<Vec<String>>>| {
        move |incoming: Incoming| {
            let handled = handled.clone();
            async move {
                handled
                    .lock()
                    .unwrap()
                    .push(incoming.text().unwrap_or_default().to_owned());
                Ok::<(), wxlink_bot::Error>(())
            }
        }
    };
    let options = fast().lease_ttl(Duration::from_millis(900));

    // The first runner lives on its own tokio runtime, so that shutting
    // that runtime down kills it without a release, as SIGKILL would.
    let first_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let first = {
        let (path, config, handled) = (path.clone(), account(&s, options.clone()), handled.clone());
        first_rt
            .spawn(async move {
                let host = Host::builder(SqliteStore::open(&path).unwrap())
                    .owner("runner-1")
                    .build();
                host.add_account(config, recorder(handled)).await.unwrap();
                host
            })
            .await
            .unwrap()
    };
    s.inject_text("alice@im.wechat", "one");
    eventually(
        Duration::from_secs(10),
        "the first runner handled one",
        || {
            let h = handled.clone();
            async move { h.lock().unwrap().len() == 1 }
        },
    )
    .await;

    let second = Host::builder(SqliteStore::open(&path).unwrap())
        .owner("runner-2")
        .build();
    let err = second
        .add_account(account(&s, options.clone()), recorder(handled.clone()))
        .await
        .unwrap_err();
    assert!(err.is_leased(), "{err:?}");

    first_rt.shutdown_background();
    drop(first);
    // Let the simulator finish the dead runner's held poll first.
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.inject_text("alice@im.wechat", "two");
    s.inject_text("alice@im.wechat", "three");
    let mut events = second.events();
    let id = account_id(&s);
    second
        .add_account(
            account(&s, options.wait_for_lease(true)),
            recorder(handled.clone()),
        )
        .await
        .unwrap();
    match wait_event(&mut events, &id, Duration::from_secs(10), |k| {
        matches!(k, EventKind::Started { .. })
    })
    .await
    {
        EventKind::Started { epoch } => assert_eq!(epoch, 2),
        other => panic!("{other:?}"),
    }
    eventually(
        Duration::from_secs(10),
        "the second runner handled the rest",
        || {
            let h = handled.clone();
            async move { h.lock().unwrap().len() >= 3 }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*handled.lock().unwrap(), ["one", "two", "three"]);
    second.shutdown().await;
}

#[tokio::test]
async fn typing_shown_reaches_the_server_before_the_reply_and_is_cancelled_after() {
    let s = sim().await;
    let host = Host::builder(MemoryStore::new()).build();
    host.add_account(account(&s, fast()), |incoming: Incoming| async move {
        let typing = incoming.typing_shown().await;
        incoming.reply("answer").await?;
        typing.finish().await;
        Ok::<(), wxlink_bot::Error>(())
    })
    .await
    .unwrap();
    s.inject_text("alice@im.wechat", "hi");
    let sent = s.wait_for_sent(1, Duration::from_secs(10)).await.unwrap();
    let typing = s.wait_for_typing(2, Duration::from_secs(10)).await.unwrap();
    let statuses: Vec<i64> = typing.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [1, 2]);
    assert!(
        typing[0].at <= sent[0].at,
        "the reply arrived before typing"
    );
    assert!(
        typing[1].at >= sent[0].at,
        "typing was cancelled before the reply"
    );
    assert!(typing.iter().all(|t| t.ilink_user_id == "alice@im.wechat"));
    host.shutdown().await;
}

#[tokio::test]
async fn one_turn_can_take_the_users_waiting_messages_and_a_failed_turn_gives_them_back() {
    let s = sim().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let host = Host::builder_arc(store.clone()).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = {
        let calls = calls.clone();
        move |incoming: Incoming| {
            let calls = calls.clone();
            async move {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                // Let the user's next messages arrive and be journaled.
                tokio::time::sleep(Duration::from_millis(400)).await;
                let later = incoming.take_queued().await;
                let mut texts = vec![incoming.text().unwrap_or_default().to_owned()];
                texts.extend(later.iter().map(|m| {
                    m.item_list[0]
                        .text_item
                        .as_ref()
                        .unwrap()
                        .text
                        .clone()
                        .unwrap()
                }));
                if call == 0 {
                    return Err(format!("agent down while answering {texts:?}"));
                }
                incoming
                    .reply(&texts.join(" + "))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    };
    let handle = host
        .add_account(account(&s, fast()), handler)
        .await
        .unwrap();
    s.inject_text("alice@im.wechat", "one");
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.inject_text("alice@im.wechat", "two");
    s.inject_text("alice@im.wechat", "three");
    let sent = s.wait_for_sent(1, Duration::from_secs(10)).await.unwrap();
    // The failed first turn gave two and three back; the retry took them
    // again and answered all three at once.
    assert_eq!(sent[0].text(), Some("one + two + three"));
    let id = handle.id().clone();
    eventually(Duration::from_secs(5), "the journal is empty", || {
        let (store, id) = (store.clone(), id.clone());
        async move { store.pending(&id, None, 10).await.unwrap().is_empty() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the merged messages got turns of their own"
    );
    assert_eq!(s.sent_messages().len(), 1);
    host.shutdown().await;
}
