//! Tidy checks on the workspace's own source, run as tests, in the style of
//! rust-analyzer's `xtask/src/tidy.rs`.
//!
//! The check here keeps each crate layered: no import cycle between the
//! top-level modules of one crate. A module is a node; `use crate::x::…`,
//! any `crate::x::` path and `super::` paths that climb out of a top-level
//! module are its edges. A name re-exported from the crate root
//! (`pub use error::Error;` and then `crate::Error`) counts as an edge to the
//! module it comes from, because that is where the code lives.
//!
//! The reader is a small lexer, not a Rust parser: it skips comments, strings
//! and character literals, follows `mod x;` declarations from the crate root
//! to find the files, and tracks inline `mod x { … }` blocks so that `super`
//! resolves where it is written. It sees what a reviewer sees in the text;
//! paths produced by macros other than `$crate` are outside its view.
//!
//! [`KNOWN_CYCLES`] is a ratchet: an import that closes a cycle and is not
//! listed fails the test, and so does a listed import that no longer closes
//! one, so the list can only shrink.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Imports that still close a cycle, as `(package, from module, to module)`.
///
/// Each entry is one edge of the module graph that lies on a cycle today.
/// Remove an entry when its cycle is broken; the test fails until you do.
/// Empty: no crate of the workspace has an import cycle.
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[];

/// One use of a path, reduced to what the graph needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsePath {
    /// The path's segments after its prefix (`crate`, `super`, `self`).
    segments: Vec<String>,
    /// The name the path is bound to in a `use` item (its alias or its last
    /// segment); `None` for a glob.
    bound: Option<String>,
}

/// A token of Rust source, as far as the graph needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword (raw identifiers lose their `r#`).
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation character.
    Punct(char),
}

/// Splits `text` into tokens with their 1-based line numbers, dropping
/// whitespace, comments, literals and lifetimes.
fn lex(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Advances over `chars[i..j]`, counting the newlines it passes.
    let advance = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to.min(chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count();
        to
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            let mut j = i;
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = advance(i, j, &mut line);
        } else if c == '"' {
            let end = skip_quoted(&chars, i, '"');
            i = advance(i, end, &mut line);
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{1F600}') or a lifetime.
            if next == Some('\\') {
                let end = skip_quoted(&chars, i, '\'');
                i = advance(i, end, &mut line);
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix && matches!(chars.get(i), Some('"' | '#')) {
                let mut hashes = 0;
                while chars.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if chars.get(i + hashes) == Some(&'"') {
                    let end = skip_raw_string(&chars, i + hashes, hashes);
                    i = advance(i, end, &mut line);
                    continue;
                }
                if word == "r" && hashes == 1 {
                    // A raw identifier: `r#type`.
                    let start = i + 1;
                    i = start;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                    out.push((Tok::Ident(chars[start..i].iter().collect()), line));
                    continue;
                }
            }
            out.push((Tok::Ident(word), line));
        } else if c == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Whether `c` may start an identifier.
fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

/// Whether `c` may continue an identifier (or a number's suffix).
fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The index just past the literal opened by `chars[start] == quote`,
/// honouring backslash escapes.
fn skip_quoted(chars: &[char], start: usize, quote: char) -> usize {
    let mut j = start + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    j
}

/// The index just past a raw string whose opening `"` is at `quote` and
/// which closes with `"` and `hashes` hash signs.
fn skip_raw_string(chars: &[char], quote: usize, hashes: usize) -> usize {
    let mut j = quote + 1;
    while j < chars.len() {
        if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
            return j + 1 + hashes;
        }
        j += 1;
    }
    j
}

/// What one file says about the module graph.
#[derive(Debug, Default)]
struct FileFacts {
    /// Modules declared with `mod x;`, as paths relative to this file's
    /// module (inline modules included: `mod a { mod b; }` gives `[a, b]`).
    declared: Vec<Vec<String>>,
    /// Every path that leaves this file's module, resolved to a path from
    /// the crate root, with the line it is on.
    paths: Vec<(UsePath, usize)>,
    /// The `use` items at the top of the file, resolved from the crate root
    /// (`use error::Error;` in the crate root gives `[error, Error]`).
    uses: Vec<UsePath>,
}

/// Reads the module declarations and the crate-relative paths of a file
/// whose module path is `module` (empty for the crate root).
fn file_facts(module: &[String], text: &str) -> FileFacts {
    let toks = lex(text);
    let mut facts = FileFacts::default();
    // Inline modules entered so far, with the brace depth inside each.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let tok = |k: usize| toks.get(k).map(|(t, _)| t);
    let mut i = 0;
    while i < toks.len() {
        let (t, line) = &toks[i];
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(word) if word == "mod" => {
                if let Some(name) = ident(i + 1) {
                    match tok(i + 2) {
                        Some(Tok::Punct(';')) => {
                            let mut path: Vec<String> =
                                inline.iter().map(|(n, _)| n.clone()).collect();
                            path.push(name.to_owned());
                            facts.declared.push(path);
                        }
                        Some(Tok::Punct('{')) => {
                            inline.push((name.to_owned(), depth + 1));
                            depth += 1;
                            i += 3;
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(word)
                if matches!(word.as_str(), "crate" | "super" | "self")
                    && tok(i + 1) == Some(&Tok::PathSep)
                    && !matches!(
                        i.checked_sub(1).and_then(tok),
                        Some(Tok::PathSep | Tok::Punct('$'))
                    ) =>
            {
                // The module this path is written in: the file's, plus the
                // inline modules around it.
                let mut base: Vec<String> = module.to_vec();
                base.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut k = i;
                let mut from_root = false;
                loop {
                    match ident(k) {
                        Some("crate") => {
                            base.clear();
                            from_root = true;
                        }
                        Some("super") => {
                            base.pop();
                        }
                        Some("self") => {}
                        _ => break,
                    }
                    if tok(k + 1) != Some(&Tok::PathSep) {
                        break;
                    }
                    k += 2;
                    if from_root {
                        break;
                    }
                }
                let is_use = i.checked_sub(1).and_then(ident) == Some("use") && depth == 0;
                let (trees, end) = parse_tree(&toks, k, &base);
                for tree in trees {
                    if is_use && inline.is_empty() {
                        facts.uses.push(tree.clone());
                    }
                    facts.paths.push((tree, *line));
                }
                i = end.max(i + 1);
                continue;
            }
            Tok::Ident(word) if word == "use" && depth == 0 && inline.is_empty() => {
                // A `use` that starts with a plain name: relative to this
                // module (or an external crate, which the graph ignores).
                if let Some(first) = ident(i + 1)
                    && !matches!(first, "crate" | "super" | "self")
                {
                    let (trees, end) = parse_tree(&toks, i + 1, module);
                    facts.uses.extend(trees);
                    i = end.max(i + 1);
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    facts
}

/// Parses a use tree or path starting at `toks[start]`, with the segments in
/// `prefix` before it; returns each leaf path and the index after the tree.
fn parse_tree(toks: &[(Tok, usize)], start: usize, prefix: &[String]) -> (Vec<UsePath>, usize) {
    let mut segments = prefix.to_vec();
    let mut i = start;
    loop {
        match toks.get(i).map(|(t, _)| t) {
            Some(Tok::Ident(name)) => {
                if name != "self" {
                    segments.push(name.clone());
                }
                i += 1;
                if toks.get(i).map(|(t, _)| t) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                let mut bound = segments.last().cloned();
                if let (Some((Tok::Ident(kw), _)), Some((Tok::Ident(alias), _))) =
                    (toks.get(i), toks.get(i + 1))
                    && kw == "as"
                {
                    bound = Some(alias.clone());
                    i += 2;
                }
                return (vec![UsePath { segments, bound }], i);
            }
            Some(Tok::Punct('*')) => {
                return (
                    vec![UsePath {
                        segments,
                        bound: None,
                    }],
                    i + 1,
                );
            }
            Some(Tok::Punct('{')) => {
                let mut all = Vec::new();
                i += 1;
                loop {
                    match toks.get(i).map(|(t, _)| t) {
                        Some(Tok::Punct('}')) => return (all, i + 1),
                        Some(Tok::Punct(',')) => i += 1,
                        None => return (all, i),
                        Some(_) => {
                            let (trees, end) = parse_tree(toks, i, &segments);
                            all.extend(trees);
                            // Skip anything the tree grammar does not cover.
                            i = if end > i { end } else { i + 1 };
                        }
                    }
                }
            }
            _ => {
                return (
                    vec![UsePath {
                        bound: segments.last().cloned(),
                        segments,
                    }],
                    i,
                );
            }
        }
    }
}

/// The import graph of one crate's top-level modules.
#[derive(Debug, Default)]
struct Graph {
    /// `from → to → where the first such import is` (`file:line`).
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

impl Graph {
    /// Builds the graph from each file's module path, display name and text.
    /// The crate root (the empty module path) is not a node.
    fn build(files: &[(Vec<String>, String, String)]) -> Self {
        let facts: Vec<FileFacts> = files
            .iter()
            .map(|(module, _, text)| file_facts(module, text))
            .collect();
        let top: BTreeSet<String> = files
            .iter()
            .filter_map(|(module, _, _)| module.first().cloned())
            .collect();
        // Names the crate root binds with `use`, mapped to their module.
        let mut reexports: HashMap<String, String> = HashMap::new();
        for ((module, _, _), facts) in files.iter().zip(&facts) {
            if module.is_empty() {
                for u in &facts.uses {
                    if let (Some(first), Some(bound)) = (u.segments.first(), &u.bound)
                        && top.contains(first)
                        && u.segments.len() > 1
                    {
                        reexports.insert(bound.clone(), first.clone());
                    }
                }
            }
        }
        let mut graph = Self::default();
        for ((module, shown, _), facts) in files.iter().zip(&facts) {
            let Some(from) = module.first() else { continue };
            for (path, line) in &facts.paths {
                let Some(first) = path.segments.first() else {
                    continue;
                };
                let to = if top.contains(first) {
                    first
                } else if let Some(m) = reexports.get(first) {
                    m
                } else {
                    continue;
                };
                if to != from {
                    graph
                        .edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to.clone())
                        .or_insert_with(|| format!("{shown}:{line}"));
                }
            }
        }
        graph
    }

    /// The modules `from` imports.
    fn targets(&self, from: &str) -> impl Iterator<Item = &String> {
        self.edges.get(from).into_iter().flat_map(|m| m.keys())
    }

    /// Every edge that lies on a cycle: `(from, to)` where `to` reaches
    /// `from` again.
    fn cycle_edges(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (from, tos) in &self.edges {
            for to in tos.keys() {
                if self.path(to, from).is_some() {
                    out.push((from.clone(), to.clone()));
                }
            }
        }
        out
    }

    /// A shortest path of modules from `start` to `goal`, both included.
    fn path(&self, start: &str, goal: &str) -> Option<Vec<String>> {
        let mut prev: HashMap<String, String> = HashMap::new();
        let mut seen: HashSet<String> = HashSet::from([start.to_owned()]);
        let mut queue = VecDeque::from([start.to_owned()]);
        while let Some(node) = queue.pop_front() {
            if node == goal {
                let mut path = vec![node.clone()];
                let mut at = node;
                while let Some(p) = prev.get(&at) {
                    path.push(p.clone());
                    at = p.clone();
                }
                path.reverse();
                return Some(path);
            }
            for next in self.targets(&node) {
                if seen.insert(next.clone()) {
                    prev.insert(next.clone(), node.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        None
    }

    /// The cycle that the edge `from → to` closes, each step with the line
    /// that makes it.
    fn describe_cycle(&self, from: &str, to: &str) -> String {
        let mut cycle = vec![from.to_owned()];
        cycle.extend(self.path(to, from).unwrap_or_default());
        let mut text = cycle.join(" -> ");
        for step in cycle.windows(2) {
            if let Some(at) = self.edges.get(&step[0]).and_then(|m| m.get(&step[1])) {
                let _ = write!(text, "\n      {} -> {}: {at}", step[0], step[1]);
            }
        }
        text
    }
}

/// The workspace's packages: `(package name, directory)`.
fn workspace_packages(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let table: toml::Table = manifest
        .parse()
        .context("the root Cargo.toml is not TOML")?;
    let members = table
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .context("the root Cargo.toml has no [workspace] members")?;
    let mut out = Vec::new();
    for member in members {
        let dir = root.join(
            member
                .as_str()
                .context("a workspace member is not a string")?,
        );
        let manifest: toml::Table = read(&dir.join("Cargo.toml"))?
            .parse()
            .with_context(|| format!("{}/Cargo.toml is not TOML", dir.display()))?;
        let name = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .with_context(|| format!("{}/Cargo.toml has no package name", dir.display()))?;
        out.push((name.to_owned(), dir));
    }
    Ok(out)
}

/// The files of the crate rooted at `root_file`, found by following `mod`
/// declarations: `(module path, path shown in messages, text)`.
fn crate_files(workspace: &Path, root_file: &Path) -> Result<Vec<(Vec<String>, String, String)>> {
    let mut out = Vec::new();
    let mut todo = vec![(Vec::new(), root_file.to_path_buf())];
    while let Some((module, file)) = todo.pop() {
        let text = read(&file)?;
        let facts = file_facts(&module, &text);
        // Children of `src/a.rs` live in `src/a/`; children of a crate root
        // or a `mod.rs` live beside it.
        let dir = if module.is_empty() || file.ends_with("mod.rs") {
            file.parent()
                .map(Path::to_path_buf)
                .context("a module file has no directory")?
        } else {
            file.with_extension("")
        };
        for child in facts.declared {
            let mut base = dir.clone();
            for part in &child[..child.len() - 1] {
                base.push(part);
            }
            let name = &child[child.len() - 1];
            let flat = base.join(format!("{name}.rs"));
            let nested = base.join(name).join("mod.rs");
            let found = if flat.is_file() {
                flat
            } else if nested.is_file() {
                nested
            } else {
                bail!(
                    "{} declares `mod {name};` but neither {} nor {} exists",
                    file.display(),
                    flat.display(),
                    nested.display()
                );
            };
            let mut path = module.clone();
            path.extend(child.iter().cloned());
            todo.push((path, found));
        }
        let shown = file
            .strip_prefix(workspace)
            .unwrap_or(&file)
            .display()
            .to_string();
        out.push((module, shown, text));
    }
    Ok(out)
}

/// Reads a file as text.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The import graph of every crate in the workspace, by package name (a
/// package with a library and a binary has one graph for each).
fn workspace_graphs(workspace: &Path) -> Result<Vec<(String, Graph)>> {
    let mut graphs = Vec::new();
    for (package, dir) in workspace_packages(workspace)? {
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let root_file = dir.join(root_file);
            if root_file.is_file() {
                let graph = Graph::build(&crate_files(workspace, &root_file)?);
                graphs.push((package.clone(), graph));
            }
        }
    }
    Ok(graphs)
}

/// Every cycle edge of `graphs` checked against `known`: the problems
/// found, one paragraph each.
fn cycle_problems(graphs: &[(String, Graph)], known: &[(&str, &str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut still_there: HashSet<(&str, &str, &str)> = HashSet::new();
    for (package, graph) in graphs {
        for (from, to) in graph.cycle_edges() {
            let entry = known
                .iter()
                .find(|&&(p, f, t)| (p, f, t) == (package.as_str(), from.as_str(), to.as_str()));
            match entry {
                Some(&entry) => {
                    still_there.insert(entry);
                }
                None => problems.push(format!(
                    "{package}: import cycle {}",
                    graph.describe_cycle(&from, &to)
                )),
            }
        }
    }
    for &(package, from, to) in known {
        if !still_there.contains(&(package, from, to)) {
            problems.push(format!(
                "{package}: `{from} -> {to}` no longer closes a cycle; \
                 remove it from KNOWN_CYCLES in xtask/src/tidy.rs"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One file of a made-up crate: its module path and its text.
    fn file(module: &str, text: &str) -> (Vec<String>, String, String) {
        let path: Vec<String> = module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (path, format!("{module}.rs"), text.to_owned())
    }

    /// The cycle edges of a made-up crate, as `from->to`.
    fn cycles(files: &[(Vec<String>, String, String)]) -> Vec<String> {
        Graph::build(files)
            .cycle_edges()
            .into_iter()
            .map(|(f, t)| format!("{f}->{t}"))
            .collect()
    }

    #[test]
    fn no_import_cycles_between_top_level_modules() {
        let graphs =
            workspace_graphs(&crate::project_root()).expect("the workspace sources are readable");
        assert!(
            graphs.iter().any(|(p, _)| p == "wxlink-cli"),
            "no crate was read"
        );
        let problems = cycle_problems(&graphs, KNOWN_CYCLES);
        assert!(
            problems.is_empty(),
            "top-level modules of a crate must not import each other in a cycle; \
             move what both sides need into a lower module:\n  {}",
            problems.join("\n  ")
        );
    }

    #[test]
    fn the_allowlist_is_a_ratchet() {
        let cyclic = Graph::build(&[
            file("a", "use crate::b::X;\n"),
            file("b", "use crate::a::Y;\n"),
        ]);
        let graphs = [("demo".to_owned(), cyclic)];
        // Listed in full: nothing to report.
        let known = [("demo", "a", "b"), ("demo", "b", "a")];
        assert!(cycle_problems(&graphs, &known).is_empty());
        // An import that closes a cycle and is not listed fails...
        let problems = cycle_problems(&graphs, &known[..1]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("demo: import cycle b -> a -> b"),
            "{problems:?}"
        );
        // ...and so does a listed one that closes no cycle any more.
        let stale = [("demo", "a", "b"), ("demo", "b", "a"), ("demo", "a", "c")];
        let problems = cycle_problems(&graphs, &stale);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`a -> c` no longer closes a cycle"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_two_module_cycle_is_found_with_its_lines() {
        let files = [
            file("", "mod a;\nmod b;\n"),
            file("a", "use crate::b::Thing;\n"),
            file("b", "\n\nfn f() { crate::a::g() }\n"),
        ];
        assert_eq!(cycles(&files), ["a->b", "b->a"]);
        let text = Graph::build(&files).describe_cycle("a", "b");
        assert_eq!(
            text,
            "a -> b -> a\n      a -> b: a.rs:1\n      b -> a: b.rs:3"
        );
    }

    #[test]
    fn a_layered_crate_has_no_cycle() {
        let files = [
            file("", "mod a;\nmod b;\nmod c;\n"),
            file("a", "use crate::{b::X, c};\n"),
            file("b", "use crate::c::Y;\n"),
            file("c", "use std::fmt;\n"),
        ];
        let graph = Graph::build(&files);
        assert!(graph.cycle_edges().is_empty());
        assert_eq!(graph.targets("a").collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn grouped_and_nested_imports_each_count() {
        let files = [
            file("a", "use crate::{b::{X, Y as Z}, self as me};\n"),
            file("b", "pub use crate::{x, a};\n"),
        ];
        assert_eq!(cycles(&files), ["a->b", "b->a"]);
    }

    #[test]
    fn super_resolves_from_where_it_is_written() {
        let files = [
            // `super` in a nested file stays inside its top-level module...
            file("a::inner", "use super::helper;\nuse super::super::b::X;\n"),
            // ...and in a top-level file it reaches a sibling.
            file("b", "use super::a::Y;\n"),
            // Inside an inline module, one `super` is the file's module.
            file("c", "mod tests { use super::*; use super::super::a::Z; }\n"),
        ];
        let graph = Graph::build(&files);
        assert_eq!(cycles(&files), ["a->b", "b->a"]);
        assert_eq!(graph.targets("c").collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn root_reexports_point_at_their_module() {
        let files = [
            file(
                "",
                "mod error;\nmod client;\npub use error::{Error, Result as Res};\n",
            ),
            file("error", "use crate::client::Client;\n"),
            file(
                "client",
                "use crate::Res;\nfn f() -> crate::Error { todo!() }\n",
            ),
        ];
        assert_eq!(cycles(&files), ["client->error", "error->client"]);
    }

    #[test]
    fn comments_strings_and_macros_are_not_imports() {
        let files = [
            file("a", "use crate::b::X;\n"),
            file(
                "b",
                "// use crate::a::X;\n/* crate::a:: /* nested */ crate::a */\n\
                 const S: &str = \"crate::a::X\";\nconst R: &str = r#\"crate::a\"#;\n\
                 const C: char = '\"'; fn f<'a>(x: &'a str) {}\n\
                 macro_rules! m { () => { $crate::a::X } }\n",
            ),
        ];
        assert!(cycles(&files).is_empty());
    }

    #[test]
    fn paths_after_a_path_separator_are_not_crate_paths() {
        let files = [
            file("a", "use crate::b::X;\n"),
            file(
                "b",
                "fn f() { other::crate_like::a::X; std::super_x::a(); }\n",
            ),
        ];
        assert!(cycles(&files).is_empty());
    }
}
