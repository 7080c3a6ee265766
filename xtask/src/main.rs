//! Project automation for WxLink: `cargo xtask <command>`.
//!
//! Every command is plain Rust run through `xshell`, so nothing here needs a
//! shell script. Run `cargo xtask help` for the list.

mod bench;
mod codegen;
mod examples;
mod flags;
mod fuzz;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "codegen" => codegen::run(&sh, codegen_check_flag(rest)?),
        "lint" => lint(&sh),
        "deps" => deps(&sh),
        "test" => test(&sh, rest),
        "ci" => ci(&sh),
        "examples" => examples::run(&sh),
        "bench" => bench::run(&sh),
        "fuzz" => fuzz::run_args(&sh, rest),
        "help" | "--help" | "-h" => {
            print!("{}", flags::HELP);
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{}", flags::HELP),
    }
}

/// Reads the arguments of `codegen`: nothing, or `--check`.
fn codegen_check_flag(args: &[String]) -> Result<bool> {
    match args {
        [] => Ok(false),
        [flag] if flag == "--check" => Ok(true),
        _ => bail!("usage: cargo xtask codegen [--check]"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo fmt --check` and clippy with every warning an error.
fn lint(sh: &Shell) -> Result<()> {
    cmd!(sh, "cargo fmt --all -- --check")
        .run()
        .context("code is not formatted; run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()
    .context("clippy found problems")
}

/// Checks the dependency edges between our crates (DESIGN.md): each crate
/// may depend only on the crates listed for it.
fn deps(sh: &Shell) -> Result<()> {
    let allowed: &[(&str, &[&str])] = &[
        ("wxlink-proto", &[]),
        ("wxlink-transport", &["wxlink-proto"]),
        ("wxlink-media", &["wxlink-proto", "wxlink-transport"]),
        (
            "wxlink-client",
            &["wxlink-proto", "wxlink-transport", "wxlink-media"],
        ),
        (
            "wxlink-bot",
            &[
                "wxlink-proto",
                "wxlink-transport",
                "wxlink-media",
                "wxlink-client",
            ],
        ),
        ("wxlink-sim", &["wxlink-proto", "wxlink-media"]),
        (
            "wxlink-bridge",
            &[
                "wxlink-proto",
                "wxlink-transport",
                "wxlink-media",
                "wxlink-client",
                "wxlink-bot",
            ],
        ),
        (
            "wxlink-cli",
            &[
                "wxlink-proto",
                "wxlink-transport",
                "wxlink-media",
                "wxlink-client",
                "wxlink-bot",
                "wxlink-sim",
                "wxlink-bridge",
            ],
        ),
        // The load tools measure the SDK from the outside, as a user's
        // program would, plus the simulator they load.
        (
            "wxlink-bench",
            &[
                "wxlink-proto",
                "wxlink-transport",
                "wxlink-media",
                "wxlink-client",
                "wxlink-bot",
                "wxlink-sim",
                "wxlink-bridge",
                "wxlink-pgtest",
            ],
        ),
        ("wxlink-pgtest", &[]),
        ("xtask", &[]),
    ];
    let fmt = "{p}";
    let mut bad = Vec::new();
    for (krate, ok) in allowed {
        let tree = cmd!(
            sh,
            "cargo tree --locked -p {krate} -e normal --prefix none --format {fmt}"
        )
        .quiet()
        .read()?;
        for line in tree.lines().skip(1) {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with("wxlink-") && name != *krate && !ok.contains(&name) {
                bad.push(format!("{krate} -> {name}"));
            }
        }
    }
    // The sim must not pull the media crate's transport feature.
    let sim = cmd!(
        sh,
        "cargo tree --locked -p wxlink-sim -e normal --prefix none --format {fmt}"
    )
    .quiet()
    .read()?;
    if sim.lines().any(|l| l.starts_with("wxlink-transport ")) {
        bad.push("wxlink-sim -> wxlink-transport (through wxlink-media's default feature)".into());
    }
    // A program that only uses the facade builds no SQLite: the bot
    // runtime's store is the only crate allowed to pull it in.
    let client = cmd!(
        sh,
        "cargo tree --locked -p wxlink-client -e normal --prefix none --format {fmt}"
    )
    .quiet()
    .read()?;
    if client.lines().any(|l| l.starts_with("rusqlite ")) {
        bad.push("wxlink-client -> rusqlite (the store belongs to wxlink-bot)".into());
    }
    if !bad.is_empty() {
        bail!("forbidden crate edges:\n  {}", bad.join("\n  "));
    }
    println!("crate edges ok");
    Ok(())
}

/// The whole test suite: nextest when installed (else `cargo test`), then
/// the doc tests, which nextest does not run.
fn test(sh: &Shell, extra: &[String]) -> Result<()> {
    // Tests that need PostgreSQL and find no server binaries list themselves
    // here (see wxlink-pgtest); the list is printed after the run.
    let skipped = std::env::temp_dir().join(format!("wxlink-pg-skipped-{}", std::process::id()));
    let _ = std::fs::remove_file(&skipped);
    let _skipped_env = sh.push_env("WXLINK_PG_SKIPPED_FILE", &skipped);
    let result = run_tests(sh, extra);
    report_pg_skips(&skipped);
    result
}

/// Prints, loudly, the tests that skipped for want of PostgreSQL.
fn report_pg_skips(list: &Path) {
    let Ok(names) = std::fs::read_to_string(list) else {
        return;
    };
    let _ = std::fs::remove_file(list);
    let mut names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    names.sort_unstable();
    names.dedup();
    if !names.is_empty() {
        eprintln!(
            "\n!!! {} PostgreSQL test(s) SKIPPED: no PostgreSQL server binaries \
             (install `postgresql`; WXLINK_REQUIRE_PG=1 makes this an error):\n!!!   {}\n",
            names.len(),
            names.join("\n!!!   ")
        );
    }
}

/// nextest (or `cargo test`) and the doc tests.
fn run_tests(sh: &Shell, extra: &[String]) -> Result<()> {
    let have_nextest = cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if have_nextest {
        cmd!(
            sh,
            "cargo nextest run --workspace --locked --no-fail-fast {extra...}"
        )
        .run()?;
    } else {
        cmd!(
            sh,
            "cargo test --workspace --locked --no-fail-fast {extra...}"
        )
        .run()?;
    }
    cmd!(sh, "cargo test --workspace --locked --doc").run()?;
    Ok(())
}

/// Everything CI checks, in the order that fails fastest.
fn ci(sh: &Shell) -> Result<()> {
    codegen::run(sh, true)?;
    lint(sh)?;
    deps(sh)?;
    // CI never skips the PostgreSQL tests: without a server they fail.
    let _pg = sh.push_env("WXLINK_REQUIRE_PG", "1");
    test(sh, &[])?;
    examples::run(sh)?;
    let all: Vec<String> = fuzz::TARGETS.iter().map(|t| (*t).to_owned()).collect();
    fuzz::run(sh, fuzz::CI_SECONDS, &all)?;
    let _doc = sh.push_env("RUSTDOCFLAGS", "-D warnings");
    cmd!(sh, "cargo doc --workspace --no-deps --locked").run()?;
    println!("xtask ci: all checks passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_root_is_the_workspace_root() {
        let manifest = std::fs::read_to_string(project_root().join("Cargo.toml"))
            .expect("the root manifest is readable");
        assert!(manifest.contains("[workspace]"));
        assert!(manifest.contains("\"wxlink-proto\""));
    }
}
