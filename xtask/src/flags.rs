//! The command list printed by `cargo xtask help`.

/// Usage text.
pub const HELP: &str = "\
cargo xtask <command>

commands:
  codegen [--check]    regenerate wxlink-proto/src/generated and docs/protocol.md
                       from the schema, or with --check fail if they are stale
  lint                 cargo fmt --check and clippy with -D warnings
  deps                 check the dependency edges between our crates
  test [ARGS...]       the whole test suite (nextest or cargo test), then doc tests
  examples             run the client's examples against a standalone simulator
                       and check what it recorded
  ci                   codegen --check, lint, deps, test, examples, each fuzz
                       target for 5 s, cargo doc with -D warnings
  fuzz [--seconds N] [TARGET...]
                       run the cargo-fuzz targets in fuzz/ for N s each
                       (default 30, all targets) from their committed corpus
  bench [--quick]      build and run `wxlink-bench suite`: every DESIGN.md
                       target against a standalone simulator (send_text vs a
                       bare POST, upload vs the MD5 ceiling, peak RSS, memory
                       per idle long poll, the media, store and bridge
                       figures), printed as one table, each figure beside its
                       ceiling as a ratio; --quick uses smaller counts and sizes
  help                 this text
";
