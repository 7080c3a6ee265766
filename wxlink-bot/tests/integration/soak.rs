//! The chaos soak: 100 accounts of one simulator, each polling with its own
//! token, 20,000 injected messages, and the simulator's seeded chaos on
//! every endpoint the runtime calls.
//!
//! The simulator keeps the ground truth of every injected message (handed
//! out, lost by its own fault, copied for a re-delivery). At the end the
//! soak compares what the handlers saw with it, per account and id:
//! every message the server did not lose itself must have been handled
//! exactly once, duplicated deliveries included, and a table says so.
//!
//! `WXLINK_SOAK_MESSAGES` sets another number of messages (the default is
//! the full 20,000); `WXLINK_SOAK_SEED` another chaos seed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wxlink_bot::backoff::BackoffPolicy;
use wxlink_bot::store::{AccountId, MemoryStore};
use wxlink_bot::{AccountConfig, Host, Incoming};
use wxlink_client::WxLinkClient;
use wxlink_sim::{Account, Chaos, Fault, GroundTruth, InboundMessage, Simulator};

use crate::support::fast;

const ACCOUNTS: usize = 100;
const MESSAGES: usize = 20_000;
const SEED: u64 = 0x5eed;

/// A number from the environment, or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Faults on every endpoint. On `getupdates`: a batch lost for good (the
/// server's own loss, which no client can undo), a delivery repeated
/// 300 ms later, a gateway 524, a body cut short after the batch left the
/// queue, a dropped connection and a delay. On the others: error statuses,
/// a 503 with `Retry-After`, a dropped connection, an unreadable body, a
/// delay and, on `sendmessage`, a send accepted whose answer is lost.
fn chaos(seed: u64) -> Chaos {
    Chaos::new(seed)
        .endpoint(
            "getupdates",
            0.08,
            [
                Fault::LoseResponse,
                Fault::Duplicate(vec![Duration::from_millis(300)]),
                Fault::HttpStatus(524, "origin timeout".into()),
                Fault::TruncatedBody,
                Fault::DropConnection,
                Fault::Delay(Duration::from_millis(100)),
            ],
        )
        .endpoint(
            "sendmessage",
            0.05,
            [
                Fault::HttpStatus(502, "bad gateway".into()),
                Fault::DropConnection,
                Fault::InvalidJson,
                Fault::TruncatedBody,
                Fault::LoseResponse,
                Fault::Delay(Duration::from_millis(50)),
            ],
        )
        .all(
            0.08,
            [
                Fault::HttpStatus(500, "chaos".into()),
                Fault::unavailable(Duration::ZERO),
                Fault::DropConnection,
                Fault::InvalidJson,
                Fault::Delay(Duration::from_millis(50)),
            ],
        )
}

/// Per account and id, how often a handler finished.
type Handled = Arc<Mutex<HashMap<(usize, u64), u32>>>;

/// True once every account's messages were either lost by the server or
/// delivered and handled, and no copy waits for a re-delivery.
fn settled(accounts: &[Account], handled: &HashMap<(usize, u64), u32>) -> bool {
    accounts.iter().enumerate().all(|(n, a)| {
        let truth = a.ground_truth();
        a.pending_messages() == 0
            && truth.undelivered().is_empty()
            && truth
                .delivered()
                .iter()
                .all(|id| handled.contains_key(&(n, *id)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_handles_every_message_exactly_once_across_100_accounts() {
    let messages = usize::try_from(env_or("WXLINK_SOAK_MESSAGES", MESSAGES as u64)).unwrap();
    let seed = env_or("WXLINK_SOAK_SEED", SEED);
    let sim = Simulator::builder()
        .hold(Duration::from_millis(300))
        .record_limit(4 * messages)
        .chaos(chaos(seed))
        .start()
        .await
        .unwrap();
    let accounts = sim.create_accounts(ACCOUNTS);
    let index: Arc<HashMap<String, usize>> = Arc::new(
        accounts
            .iter()
            .enumerate()
            .map(|(n, a)| (a.bot_id().to_owned(), n))
            .collect(),
    );
    let host = Host::builder(MemoryStore::new()).concurrency(64).build();
    let handled: Handled = Arc::default();
    let options = fast()
        .pace(Duration::ZERO)
        .max_attempts(1_000)
        .retry_delay(Duration::from_millis(10))
        .backoff(BackoffPolicy::with_delays(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ));
    let started = Instant::now();
    for a in &accounts {
        let (handled, index) = (handled.clone(), index.clone());
        let config = AccountConfig::new(
            AccountId::new(a.bot_id()).unwrap(),
            WxLinkClient::builder()
                .base_url(sim.base_url())
                .token(a.token()),
        )
        .options(options.clone());
        host.add_account(config, move |incoming: Incoming| {
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

    let mut rng = StdRng::seed_from_u64(seed ^ 7);
    for i in 0..messages {
        let n = i % ACCOUNTS;
        let user = format!("user{}@im.wechat", rng.random_range(0..5));
        let id = 10_000_000 + i as u64;
        accounts[n]
            .inject_message(InboundMessage::text(user, format!("m{id}")).message_id(id))
            .unwrap();
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    while !settled(&accounts, &handled.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    host.shutdown().await;

    let handled = handled.lock().unwrap().clone();
    let truths: Vec<GroundTruth> = accounts.iter().map(Account::ground_truth).collect();
    let (mut injected, mut lost_by_client, mut twice, mut never, mut server_lost) = (0, 0, 0, 0, 0);
    let mut duplicated = 0;
    for (n, truth) in truths.iter().enumerate() {
        let ids = handled
            .iter()
            .filter(|((account, _), _)| *account == n)
            .flat_map(|((_, id), times)| std::iter::repeat_n(*id, *times as usize));
        let verdict = truth.judge(ids);
        injected += truth.injected();
        lost_by_client += verdict.lost_by_client.len() + truth.undelivered().len();
        twice += verdict.handled_twice.len();
        never += verdict.never_delivered.len();
        server_lost += verdict.lost_by_server.len();
        duplicated += truth.duplicated().len();
    }
    let mut repeated = 0usize;
    for a in &accounts {
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for m in a.sent_messages() {
            *by_id
                .entry(m.msg.client_id.clone().unwrap_or_default())
                .or_default() += 1;
        }
        repeated += by_id.values().map(|n| n - 1).sum::<usize>();
    }
    let mut faults: HashMap<(&str, &str), usize> = HashMap::new();
    for event in sim.chaos_log() {
        *faults.entry((event.endpoint, event.kind)).or_default() += 1;
    }
    let mut fault_list: Vec<_> = faults.iter().collect();
    fault_list.sort();
    println!(
        "chaos soak: {ACCOUNTS} accounts on one simulator, seed {seed:#x}, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "| injected | handled | handled twice | lost by the client | lost by the server's own fault |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {injected} | {} | {twice} | {lost_by_client} | {server_lost} |",
        handled.len()
    );
    println!("delivered more than once by the server (handled once): {duplicated}");
    println!("faults drawn: {} in all", sim.chaos_faults());
    for ((endpoint, kind), n) in &fault_list {
        println!("  {endpoint:<12} {kind:<16} {n}");
    }
    println!("replies repeated under the same client_id (accepted, answer lost): {repeated}");

    assert_eq!(injected, messages, "the simulator lost track of injections");
    assert_eq!(twice, 0, "messages handled twice");
    assert_eq!(lost_by_client, 0, "messages the client lost");
    assert_eq!(never, 0, "messages handled that were never delivered");
    assert_eq!(handled.len() + server_lost, messages);
    // The chaos really reached every endpoint the runtime calls, and both
    // the server's losses and its duplicates happened.
    for endpoint in [
        "getupdates",
        "sendmessage",
        "getconfig",
        "sendtyping",
        "notifystart",
    ] {
        assert!(
            faults.keys().any(|(e, _)| *e == endpoint),
            "no fault drawn on {endpoint}"
        );
    }
    if messages >= 1_000 {
        assert!(server_lost > 0, "no batch was lost by the server");
        assert!(duplicated > 0, "no message was delivered twice");
    }
}
