//! The `wxlink` binary's behaviour without a server: help, usage errors and
//! a missing account.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

/// Runs `wxlink` with `args` in an empty directory and with none of the
/// WXLINK_* variables set, so that no account can be found by accident.
fn wxlink(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_wxlink"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("WXLINK_TOKEN")
        .env_remove("WXLINK_BASE_URL")
        .env_remove("WXLINK_CDN_BASE_URL")
        .env_remove("WXLINK_ACCOUNT")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_every_command() {
    let out = wxlink(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["demo", "sim", "login", "send", "listen", "typing"] {
        assert!(text.contains(cmd), "`{cmd}` missing from:\n{text}");
    }
}

#[test]
fn each_command_help_shows_examples() {
    for cmd in ["demo", "sim", "login", "send", "listen", "typing"] {
        let out = wxlink(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{cmd} --help:\n{text}");
        assert!(
            text.contains(&format!("wxlink {cmd}")),
            "{cmd} --help:\n{text}"
        );
    }
}

#[test]
fn unknown_flags_and_missing_arguments_exit_2() {
    for args in [
        &["send", "--to", "u@im.wechat"][..], // no content
        &["send", "--to", "u", "--text", "a", "--file", "f"][..], // two contents
        &["listen", "--no-such-flag"][..],
        &[][..], // no command
    ] {
        let out = wxlink(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn missing_account_exits_1_and_says_how_to_log_in() {
    let out = wxlink(&["send", "--to", "u@im.wechat", "--text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no bot token"), "{err}");
    assert!(err.contains("wxlink login"), "{err}");
    assert!(err.contains("WXLINK_TOKEN"), "{err}");
}

#[test]
fn unreadable_account_file_is_named_in_the_error() {
    let out = wxlink(&["--account", "missing-bot.json", "listen", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("missing-bot.json"), "{err}");
    assert!(err.contains("wxlink login --out missing-bot.json"), "{err}");
}

#[test]
fn broken_account_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.json");
    std::fs::write(&path, "{ not json").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wxlink"))
        .args(["--account", path.to_str().unwrap(), "typing", "--to", "u"])
        .env_remove("WXLINK_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not valid account JSON"),
        "{}",
        stderr(&out)
    );
}
