//! The command list printed by `cargo xtask help`.

/// Usage text.
pub const HELP: &str = "\
cargo xtask <command>

commands:
  lint                 cargo fmt --check, then clippy with -D warnings
  deps                 check the dependency edges between our crates
  test [ARGS...]       the whole test suite (nextest or cargo test), then doc tests
  ci                   lint, deps, test, cargo doc with -D warnings
  help                 this text
";
