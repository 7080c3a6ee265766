//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the coverage-guided
//! fuzz targets in `fuzz/` (cargo-fuzz over libFuzzer) for a bounded time
//! each.
//!
//! libFuzzer needs nightly compiler flags; on a stable toolchain they are
//! unlocked with `RUSTC_BOOTSTRAP=1`, which only this command sets. Each
//! target starts from its committed corpus in `fuzz/corpus/<target>`, adds
//! what it finds there, and stops after `N` seconds (`-max_total_time`); a
//! crash fails the command and leaves its reproducer in
//! `fuzz/artifacts/<target>`, to be committed with the fix. `cargo xtask ci`
//! runs every target for [`CI_SECONDS`].

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::project_root;

/// How long CI fuzzes each target.
pub const CI_SECONDS: u64 = 5;

/// Every fuzz target, as `fuzz/Cargo.toml` names them.
pub const TARGETS: &[&str] = &[
    "responses",
    "aes_key",
    "chunker",
    "account_file",
    "qr_status",
    "decryptor",
];

/// Parses `--seconds N` and target names, then runs them.
pub fn run_args(sh: &Shell, args: &[String]) -> Result<()> {
    let mut seconds = 30;
    let mut targets = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = rest.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value} is not a whole number"))?;
            }
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => bail!(
                "usage: cargo xtask fuzz [--seconds N] [TARGET...]; unknown `{other}`, targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    run(sh, seconds, &targets)
}

/// Builds the targets once, then fuzzes each for `seconds`.
pub fn run(sh: &Shell, seconds: u64, targets: &[String]) -> Result<()> {
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_err()
    {
        // A fresh machine has only the toolchain; cargo-fuzz comes from
        // crates.io like every other dependency.
        eprintln!("xtask fuzz: cargo-fuzz is not installed; installing it");
        cmd!(sh, "cargo install cargo-fuzz --locked")
            .run()
            .context("cannot install cargo-fuzz; run `cargo install cargo-fuzz`")?;
    }
    let root = project_root();
    let _dir = sh.push_dir(&root);
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
    // The fuzz build has its own flags; keep it beside the normal build.
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
        .join("fuzz");
    cmd!(sh, "cargo fuzz build -O --target-dir {target_dir}").run()?;
    let max_time = format!("-max_total_time={seconds}");
    for target in targets {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        println!("xtask fuzz: {target} for {seconds} s");
        cmd!(
            sh,
            "cargo fuzz run -O --target-dir {target_dir} {target} {corpus} -- {max_time} -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1"
        )
        .run()
        .with_context(|| format!("fuzz target {target} failed; see fuzz/artifacts/{target}"))?;
    }
    println!(
        "xtask fuzz: {} targets ran clean for {seconds} s each",
        targets.len()
    );
    Ok(())
}
