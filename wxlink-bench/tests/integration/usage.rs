//! The command line of `wxlink-bench`: help and usage errors.

use std::process::{Command, Output};

/// Runs the binary with `args` and no server settings.
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wxlink-bench"))
        .args(args)
        .env_remove("WXLINK_TOKEN")
        .env_remove("WXLINK_BASE_URL")
        .env_remove("WXLINK_CDN_BASE_URL")
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_subcommand() {
    let out = bench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "suite",
        "send-text",
        "upload",
        "poll",
        "bare-post",
        "media",
        "call-overhead",
        "idle-accounts",
    ] {
        assert!(text.contains(cmd), "`{cmd}` missing from:\n{text}");
    }
}

#[test]
fn unknown_subcommands_and_bad_counts_exit_2() {
    for args in [
        &["teleport"][..],
        &["send-text", "--count", "0"][..],
        &["suite", "--fast"][..],
        &[][..],
    ] {
        let out = bench(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_load_run_without_a_server_says_which_variable_is_missing() {
    let out = bench(&["send-text", "--to", "u@im.wechat"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WXLINK_BASE_URL"), "{err}");
    assert!(out.stdout.is_empty());
}
