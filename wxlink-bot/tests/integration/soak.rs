//! The chaos soak: 100 accounts, 20,000 messages, seeded faults on every
//! endpoint the runtime calls, and a table of what happened.
//!
//! The faults are the ones after which the simulator itself loses nothing:
//! error statuses, dropped connections and unreadable bodies (the call did
//! not take effect), delays, and on the calls that send something a body cut
//! short after the call took effect (the send was accepted, its answer was
//! lost). Faults that make the server drop a polled batch for good are the
//! protocol's own loss, not the client's, and are left out, so the "lost by
//! the server" column counts messages the simulator still holds at the end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wxlink_bot::backoff::BackoffPolicy;
use wxlink_bot::store::MemoryStore;
use wxlink_bot::{Host, Incoming};
use wxlink_sim::{Fault, InboundMessage, Simulator};

use crate::support::{account, account_id, fast};

const ACCOUNTS: usize = 100;
const MESSAGES: usize = 20_000;

/// A fault for `endpoint`, drawn from `rng`.
fn fault(endpoint: &str, rng: &mut StdRng) -> Fault {
    let sends = endpoint != "getupdates";
    match rng.random_range(0..if sends { 6 } else { 5 }) {
        0 => Fault::HttpStatus(500, "chaos".into()),
        1 => Fault::HttpStatus(503, "chaos".into()),
        2 => Fault::DropConnection,
        3 => Fault::InvalidJson,
        4 => Fault::Delay(Duration::from_millis(rng.random_range(10..150))),
        _ => Fault::TruncatedBody,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_handles_every_message_exactly_once_across_100_accounts() {
    let mut sims = Vec::with_capacity(ACCOUNTS);
    for _ in 0..ACCOUNTS {
        sims.push(
            Simulator::builder()
                .hold(Duration::from_millis(300))
                .record_limit(1_000)
                .start()
                .await
                .unwrap(),
        );
    }
    let host = Host::builder(MemoryStore::new()).concurrency(64).build();
    let handled: Arc<Mutex<HashMap<(usize, u64), u32>>> = Arc::default();
    let index: HashMap<String, usize> = sims
        .iter()
        .enumerate()
        .map(|(n, s)| (account_id(s).to_string(), n))
        .collect();
    let index = Arc::new(index);
    let options = fast()
        .pace(Duration::ZERO)
        .max_attempts(1_000)
        .retry_delay(Duration::from_millis(10))
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ));
    for s in &sims {
        let (handled, index) = (handled.clone(), index.clone());
        host.add_account(account(s, options.clone()), move |incoming: Incoming| {
            let (handled, index) = (handled.clone(), index.clone());
            async move {
                let id = incoming.message_id().unwrap_or_default();
                if id.is_multiple_of(10) {
                    // Typing now and then, so getconfig and sendtyping see faults too.
                    incoming.typing().finish().await;
                }
                incoming.reply(&format!("ok {id}")).await?;
                let n = index[incoming.account().as_str()];
                *handled.lock().unwrap().entry((n, id)).or_default() += 1;
                Ok::<(), wxlink_bot::Error>(())
            }
        })
        .await
        .unwrap();
    }

    let started = Instant::now();
    // Seeded faults, injected while the traffic runs.
    let faults = Arc::new(Mutex::new(HashMap::<&'static str, u32>::new()));
    let chaos = {
        let (sims, faults) = (sims.clone(), faults.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(0x5eed);
            let endpoints = [
                "getupdates",
                "sendmessage",
                "getconfig",
                "sendtyping",
                "notifystart",
                "notifystop",
            ];
            for _ in 0..2_000 {
                let s = &sims[rng.random_range(0..sims.len())];
                let endpoint = endpoints[rng.random_range(0..endpoints.len())];
                let f = fault(endpoint, &mut rng);
                s.inject_fault(endpoint, f, 1).unwrap();
                *faults.lock().unwrap().entry(endpoint).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..MESSAGES {
        let n = i % ACCOUNTS;
        let user = format!("user{}@im.wechat", rng.random_range(0..5));
        let id = 10_000_000 + i as u64;
        sims[n].inject_message(InboundMessage::text(user, format!("m{id}")).message_id(id));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    chaos.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while handled.lock().unwrap().len() < MESSAGES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    host.shutdown().await;

    let handled = handled.lock().unwrap().clone();
    let twice = handled.values().filter(|n| **n > 1).count();
    let still_queued: usize = sims.iter().map(Simulator::pending_messages).sum();
    let lost_by_client = MESSAGES - handled.len() - still_queued;
    let mut repeated = 0usize;
    for s in &sims {
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for m in s.sent_messages() {
            *by_id
                .entry(m.msg.client_id.clone().unwrap_or_default())
                .or_default() += 1;
        }
        repeated += by_id.values().map(|n| n - 1).sum::<usize>();
    }
    let faults = faults.lock().unwrap().clone();
    let mut fault_list: Vec<_> = faults.iter().collect();
    fault_list.sort();
    println!(
        "chaos soak: {ACCOUNTS} accounts, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "| injected | handled | handled twice | lost by the client | lost by the server's own fault |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {MESSAGES} | {} | {twice} | {lost_by_client} | {still_queued} |",
        handled.len()
    );
    println!("faults injected: {fault_list:?}");
    println!("replies repeated under the same client_id (accepted, answer lost): {repeated}");
    assert_eq!(twice, 0);
    assert_eq!(lost_by_client, 0);
    assert_eq!(handled.len() + still_queued, MESSAGES);
}
