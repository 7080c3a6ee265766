//! `cargo xtask bench [--quick]`: builds the release `wxlink-bench` (the one
//! home of the load tools) and `wxlink` (whose `wxlink sim` it loads), runs
//! `wxlink-bench suite`, and prints its rows as a table, each figure beside
//! its ceiling as a ratio, then its notes.
//!
//! The suite prints one JSON line per row (`name`, `value`, `unit`,
//! `baseline`, `ratio`, `goal`, `met`, `command`; see
//! `wxlink-bench/src/report.rs`) and one per note (`{"note": ...}`); its
//! progress goes to stderr, which passes through. Nothing here runs in CI or
//! in tests: only the parsing and the table are unit-tested, never a time.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

/// Usage of this command.
const USAGE: &str = "usage: cargo xtask bench [--quick]";

/// What a figure is judged against (the suite's `Baseline`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Baseline {
    /// The baseline's value.
    value: f64,
    /// Its unit.
    unit: String,
    /// What it is, e.g. "bare POST" or "budget".
    label: String,
}

/// One row of the suite's report (the suite's `Row`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Row {
    /// What is measured.
    name: String,
    /// The figure; `None` when the measurement failed.
    value: Option<f64>,
    /// Its unit.
    unit: String,
    /// A qualifier printed beside the value.
    #[serde(default)]
    label: String,
    /// The ceiling or budget.
    #[serde(default)]
    baseline: Option<Baseline>,
    /// value / baseline.
    #[serde(default)]
    ratio: Option<f64>,
    /// The DESIGN.md goal on the ratio.
    #[serde(default)]
    goal: Option<String>,
    /// Whether the goal is met.
    #[serde(default)]
    met: Option<bool>,
    /// The command that reproduces the figure.
    command: String,
}

/// One line of the suite's stdout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Line {
    /// A remark for under the table.
    Note {
        /// Its text.
        note: String,
    },
    /// A figure.
    Row(Row),
}

/// Builds and runs the suite and prints the table.
pub fn run(sh: &Shell) -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let quick = match args.as_slice() {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => bail!("{USAGE}\n  --quick   smaller counts and sizes, for a smoke run"),
    };
    println!("building the release wxlink-bench and wxlink binaries…");
    cmd!(
        sh,
        "cargo build --release --locked --quiet -p wxlink-bench -p wxlink-cli"
    )
    .run()
    .context("building wxlink-bench and wxlink-cli in release mode failed")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"));
    let exe = target.join("release").join("wxlink-bench");
    let mut child = Command::new(&exe)
        .arg("suite")
        .args(quick.then_some("--quick"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("the suite's stdout was not captured")?;
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    for line in BufReader::new(stdout).lines() {
        match parse_line(&line?) {
            Some(Line::Row(row)) => rows.push(row),
            Some(Line::Note { note }) => notes.push(note),
            None => {}
        }
    }
    let status = child.wait()?;
    println!();
    print!("{}", render_table(&rows));
    println!();
    for note in &notes {
        println!("- {note}");
    }
    if !status.success() {
        bail!("wxlink-bench suite exited with {status}; see the messages above");
    }
    Ok(())
}

/// A row or note of the suite's output; `None` for any other line.
fn parse_line(line: &str) -> Option<Line> {
    serde_json::from_str(line.trim()).ok()
}

/// `12,345 req/s (bare POST)`.
fn cell(value: f64, unit: &str, label: &str) -> String {
    let number = if value.abs() >= 100.0 {
        group_thousands(value.round() as i64)
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if label.is_empty() {
        format!("{number} {unit}")
    } else {
        format!("{number} {unit} ({label})")
    }
}

/// `1234567` → `1,234,567`.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

impl Row {
    /// The cells: target, ours, ceiling, ratio, goal, met?, command.
    fn cells(&self) -> [String; 7] {
        let dash = || "—".to_owned();
        let Some(value) = self.value else {
            return [
                self.name.clone(),
                "failed".to_owned(),
                dash(),
                dash(),
                self.goal.clone().unwrap_or_else(dash),
                "FAILED".to_owned(),
                self.command.clone(),
            ];
        };
        let ceiling = self.baseline.as_ref().map_or_else(dash, |b| {
            if b.value.is_finite() {
                cell(b.value, &b.unit, &b.label)
            } else {
                b.label.clone()
            }
        });
        let met = match self.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        };
        [
            self.name.clone(),
            cell(value, &self.unit, &self.label),
            ceiling,
            self.ratio
                .map_or_else(dash, |r| format!("{:.0}%", 100.0 * r)),
            self.goal.clone().unwrap_or_else(dash),
            met.to_owned(),
            self.command.clone(),
        ]
    }
}

/// The rows as a Markdown table with aligned columns.
fn render_table(rows: &[Row]) -> String {
    let header = [
        "target",
        "ours",
        "ceiling",
        "ratio",
        "DESIGN.md goal",
        "met?",
        "command",
    ]
    .map(str::to_owned);
    let body: Vec<[String; 7]> = rows.iter().map(Row::cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for cells in &body {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 7]| {
        let mut s = String::from("|");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            // Numbers and the ratio read best right-aligned.
            if (1..=3).contains(&i) {
                let _ = write!(s, " {pad}{c} |");
            } else {
                let _ = write!(s, " {c}{pad} |");
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if (1..=3).contains(&i) {
            let _ = write!(out, " {}: |", &dashes[1..]);
        } else {
            let _ = write!(out, " {dashes} |");
        }
    }
    out.push('\n');
    for cells in &body {
        out.push_str(&line(cells));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row as the suite prints it.
    fn row(json: &str) -> Row {
        match parse_line(json) {
            Some(Line::Row(row)) => row,
            other => panic!("not a row: {other:?}"),
        }
    }

    #[test]
    fn reads_rows_and_notes_and_skips_other_lines() {
        let r = row(
            r#"{"name":"send_text, 1 in flight","value":7538.0,"unit":"req/s","baseline":{"value":7124.0,"unit":"req/s","label":"bare POST"},"ratio":1.058,"goal":"≥ 90% of a bare POST","met":true,"command":"wxlink-bench send-text"}"#,
        );
        assert_eq!(r.value, Some(7538.0));
        assert_eq!(r.baseline.unwrap().label, "bare POST");
        assert_eq!(
            parse_line(r#"{"note":"load average 1 2 3"}"#),
            Some(Line::Note {
                note: "load average 1 2 3".into()
            })
        );
        assert_eq!(parse_line("building…"), None);
        assert_eq!(parse_line(r#"{"bench":"send-text"}"#), None);
    }

    #[test]
    fn cells_show_the_ratio_the_goal_and_whether_it_is_met() {
        let met = row(
            r#"{"name":"t","value":9500,"unit":"req/s","baseline":{"value":10000,"unit":"req/s","label":"bare POST"},"ratio":0.95,"goal":"≥ 90%","met":true,"command":"c"}"#,
        );
        assert_eq!(met.cells()[3..6], ["95%", "≥ 90%", "yes"]);
        let missed = row(
            r#"{"name":"t","value":70,"unit":"MiB","baseline":{"value":64,"unit":"MiB","label":"budget"},"ratio":1.09,"goal":"< 64 MiB","met":false,"command":"c"}"#,
        );
        assert_eq!(missed.cells()[3..6], ["109%", "< 64 MiB", "no"]);
        let info = row(r#"{"name":"t","value":1,"unit":"s","command":"c"}"#);
        assert_eq!(info.cells()[2..6], ["—", "—", "—", "—"]);
        let failed = row(
            r#"{"name":"upload","value":null,"unit":"","label":"failed","command":"wxlink-bench upload"}"#,
        )
        .cells();
        assert_eq!(failed[1], "failed");
        assert_eq!(failed[5], "FAILED");
        assert_eq!(failed[6], "wxlink-bench upload");
    }

    #[test]
    fn figures_are_readable() {
        assert_eq!(
            cell(12_345.6, "req/s", "bare POST"),
            "12,346 req/s (bare POST)"
        );
        assert_eq!(cell(27.512, "KiB/poll", ""), "27.5 KiB/poll");
        assert_eq!(cell(0.4712, "ms", "p99"), "0.47 ms (p99)");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-999), "-999");
    }

    #[test]
    fn the_table_has_aligned_columns_and_one_line_per_row() {
        let rows = vec![
            row(
                r#"{"name":"send_text, 1 in flight","value":30000,"unit":"req/s","baseline":{"value":32000,"unit":"req/s","label":"bare POST"},"ratio":0.9375,"goal":"≥ 90% of a bare POST","met":true,"command":"wxlink-bench send-text"}"#,
            ),
            row(
                r#"{"name":"idle long polls, 10000","value":null,"unit":"","command":"wxlink-bench poll --count 10000"}"#,
            ),
        ];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("| target "), "{table}");
        assert!(
            lines[2].contains("| 30,000 req/s |") && lines[2].contains("94%"),
            "{table}"
        );
        assert!(lines[2].contains("| yes    |"), "{table}");
        assert!(lines[3].contains("| FAILED |"), "{table}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    }
}
