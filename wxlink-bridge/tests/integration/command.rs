//! The command agent against real child processes (small Python programs),
//! per turn and long-lived.

use std::time::Duration;

use wxlink_bridge::{Agent, CommandAgent, CommandConfig, CommandMode, Turn};

fn python(script: &str) -> CommandConfig {
    CommandConfig::new("python3").args(["-c", script])
}

fn turn(n: u64, text: &str) -> Turn {
    Turn::new("bot-1@im.bot", "alice@im.wechat", n, text)
}

const PER_TURN: &str = r#"
import json, os, sys
turn = json.load(sys.stdin)
print("working on", turn["message_id"], file=sys.stderr)
json.dump({"text": "echo " + turn["text"] + " for " + turn["user"], "media": [{"path": str(os.getpid())}]}, sys.stdout)
"#;

#[tokio::test]
async fn a_per_turn_program_reads_the_turn_and_a_fresh_one_runs_each_turn() {
    let agent = CommandAgent::new(python(PER_TURN));
    let first = agent.respond(&turn(1, "hi")).await.unwrap();
    let second = agent.respond(&turn(2, "again")).await.unwrap();
    assert_eq!(first.text.as_deref(), Some("echo hi for alice@im.wechat"));
    assert_eq!(
        second.text.as_deref(),
        Some("echo again for alice@im.wechat")
    );
    assert_ne!(first.media, second.media, "each turn runs its own process");
}

const LONG_LIVED: &str = r#"
import json, os, sys
held = None
for line in sys.stdin:
    turn = json.loads(line)
    if turn["text"] == "hold":
        held = turn
        continue
    print(json.dumps({"id": turn["id"], "text": "%s from %d" % (turn["text"], os.getpid())}), flush=True)
    if held is not None:
        print(json.dumps({"id": held["id"], "text": "held from %d" % os.getpid()}), flush=True)
        held = None
"#;

#[tokio::test]
async fn a_long_lived_program_answers_ndjson_by_id_in_any_order_from_one_process() {
    let agent = CommandAgent::new(python(LONG_LIVED).mode(CommandMode::LongLived));
    let held = turn(1, "hold");
    let quick = turn(2, "quick");
    // The first turn is only answered after the second, on the same process.
    let (a, b) = tokio::join!(agent.respond(&held), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        agent.respond(&quick).await
    });
    let (a, b) = (a.unwrap().text.unwrap(), b.unwrap().text.unwrap());
    let pid_a = a.strip_prefix("held from ").unwrap();
    let pid_b = b.strip_prefix("quick from ").unwrap();
    assert_eq!(pid_a, pid_b);
    let c = agent
        .respond(&turn(3, "later"))
        .await
        .unwrap()
        .text
        .unwrap();
    assert_eq!(c, format!("later from {pid_a}"));
}

#[tokio::test]
async fn a_long_lived_program_that_exits_fails_the_turn_and_is_started_again() {
    // Answers once, then exits.
    let script = r#"
import json, os, sys
turn = json.loads(sys.stdin.readline())
if turn["text"] == "die":
    sys.exit(3)
print(json.dumps({"id": turn["id"], "text": str(os.getpid())}), flush=True)
sys.exit(0)
"#;
    let agent = CommandAgent::new(python(script).mode(CommandMode::LongLived));
    let err = agent.respond(&turn(1, "die")).await.unwrap_err();
    assert!(err.is_process(), "{err:?}");
    let first = agent.respond(&turn(2, "x")).await.unwrap().text.unwrap();
    // A turn that reaches the program before its exit was seen fails; a
    // later one starts a new process. Bounded, for a loaded machine.
    let mut second = None;
    for id in 3..53 {
        match agent.respond(&turn(id, "x")).await {
            Ok(reply) => {
                second = reply.text;
                break;
            }
            Err(err) => {
                assert!(err.is_process(), "{err:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let second = second.expect("a new process answered within 5 s");
    assert_ne!(first, second, "a new process answered");
}

#[tokio::test]
async fn an_overrunning_program_times_out_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "import os, time\nopen({:?}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n",
        pid_file.display().to_string()
    );
    let agent = CommandAgent::new(python(&script).timeout(Duration::from_secs(3)));
    let err = agent.respond(&turn(1, "x")).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    // The process is gone (or a zombie being reaped) within a few seconds.
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "process {pid} still runs");

    let long = CommandAgent::new(
        python("import time\ntime.sleep(30)\n")
            .mode(CommandMode::LongLived)
            .timeout(Duration::from_millis(300)),
    );
    assert!(long.respond(&turn(2, "x")).await.unwrap_err().is_timeout());
}

#[tokio::test]
async fn garbage_empty_answers_failures_and_missing_programs_are_typed() {
    let garbage = CommandAgent::new(python("print('hello, not json')"));
    assert!(
        garbage
            .respond(&turn(1, "x"))
            .await
            .unwrap_err()
            .is_unreadable()
    );
    let empty = CommandAgent::new(python("print('{}')"));
    assert!(
        empty
            .respond(&turn(1, "x"))
            .await
            .unwrap_err()
            .is_unreadable()
    );
    let failing = CommandAgent::new(python("import sys\nsys.exit(2)"));
    let err = failing.respond(&turn(1, "x")).await.unwrap_err();
    assert!(err.is_process(), "{err:?}");
    assert!(err.to_string().contains("exit"), "{err}");
    let missing = CommandAgent::new(CommandConfig::new("/nonexistent/agent-program"));
    let err = missing.respond(&turn(1, "x")).await.unwrap_err();
    assert!(err.is_process(), "{err:?}");
    let long_garbage = CommandAgent::new(
        python("import sys\nsys.stdin.readline()\nprint('garbage', flush=True)\nimport time\ntime.sleep(5)")
            .mode(CommandMode::LongLived),
    );
    assert!(
        long_garbage
            .respond(&turn(1, "x"))
            .await
            .unwrap_err()
            .is_unreadable()
    );
}
