//! A guard for the declared `rust-version` that clippy does not give.
//!
//! Clippy's `incompatible_msrv` lint catches standard-library items newer
//! than the declared version, but no lint catches newer *syntax*. The one
//! that keeps creeping in is the let-chain (`if let A = b && c`), stable only
//! since Rust 1.88 while the workspace declares 1.85; this machine has only a
//! newer toolchain, so a build would not notice. The scan is textual: it
//! looks, after each `if let` / `while let`, for `&&` before the block opens.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// This file, skipped by the scan: its tests spell out let-chains in strings.
const THIS_FILE: &str = "xtask/src/msrv.rs";

/// Fails with every let-chain found in the workspace's Rust files.
pub fn check(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for line in let_chains(&text) {
            let shown = file.strip_prefix(root).unwrap_or(&file);
            found.push(format!("{}:{line}", shown.display()));
        }
    }
    if !found.is_empty() {
        bail!(
            "let-chains need Rust 1.88, but the workspace declares rust-version 1.85; \
             rewrite them as nested `if let` or with Option combinators:\n  {}",
            found.join("\n  ")
        );
    }
    println!("msrv: no let-chains");
    Ok(())
}

/// The `.rs` files under `dir`, skipping build output and hidden folders.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect(&path, out)?;
            }
        } else if name.ends_with(".rs") && !path.ends_with(THIS_FILE) {
            out.push(path);
        }
    }
    Ok(())
}

/// The 1-based line numbers where a let-chain starts in `text`.
fn let_chains(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for keyword in ["if let ", "while let "] {
        let mut from = 0;
        while let Some(at) = text[from..].find(keyword) {
            let start = from + at;
            from = start + keyword.len();
            // A keyword glued to an identifier (`elif let`) is not one.
            let glued = text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if glued || in_comment(text, start) {
                continue;
            }
            let head_end = text[from..]
                .find(['{', ';'])
                .map_or(text.len(), |end| from + end);
            if text[from..head_end].contains("&&") {
                lines.push(text[..start].matches('\n').count() + 1);
            }
        }
    }
    lines.sort_unstable();
    lines
}

/// Whether `at` is inside a `//` comment on its line.
fn in_comment(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    text[line_start..at].contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_let_chains_on_one_or_several_lines() {
        let code = "fn f() {\n    if let Some(x) = a && x > 1 {\n    }\n    if let Some(y) = b\n        && y\n    {\n    }\n    while let Some(z) = c.next() && z {\n    }\n}\n";
        assert_eq!(let_chains(code), vec![2, 4, 8]);
    }

    #[test]
    fn plain_if_let_and_conditions_are_fine() {
        let code = "fn f() {\n    if let Some(x) = a {\n        if x && y {}\n    }\n    if a && b {}\n    let ok = matches!(x, Some(_)) && y;\n    // if let Some(x) = a && b, in a comment\n}\n";
        assert!(let_chains(code).is_empty());
    }

    #[test]
    fn the_workspace_has_none() {
        check(&crate::project_root()).unwrap();
    }
}
