//! The one report format of every load tool: a [`Row`] per figure.
//!
//! A row names what was measured, gives the value and its unit, the
//! baseline it is judged against (a ceiling such as a bare POST or
//! `openssl speed`, or a budget such as 64 MiB) with the ratio of the two,
//! the DESIGN.md goal on that ratio when there is one, and the command that
//! reproduces the figure. Every subcommand prints its rows on stdout as JSON
//! lines, one object per line, so that `jq` reads them and `cargo xtask
//! bench` renders them as a table. Progress and human-readable detail go to
//! stderr. A line `{"note": "..."}` carries a remark that belongs under the
//! table (how a figure was taken, the load average).

use serde::{Deserialize, Serialize};

/// What a figure is judged against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The baseline's value, in the row's unit.
    pub value: f64,
    /// The baseline's unit (the row's unit, or its equivalent).
    pub unit: String,
    /// What the baseline is, e.g. "bare POST" or "budget".
    pub label: String,
}

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What is measured, e.g. `send_text, 32 in flight`.
    pub name: String,
    /// The figure; `None` when the measurement failed.
    pub value: Option<f64>,
    /// Its unit, e.g. `req/s`, `MB/s`, `KiB/poll`.
    pub unit: String,
    /// A qualifier printed beside the value, e.g. `p99` (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// The ceiling or budget the figure is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// `value / baseline.value`, when both are finite numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The DESIGN.md goal on the ratio, in its words, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Whether the ratio meets the goal; `None` without a goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// The command that reproduces the figure.
    pub command: String,
}

impl Row {
    /// A row with a value and nothing to compare it with.
    pub fn new(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.is_finite().then_some(value),
            unit: unit.into(),
            label: String::new(),
            baseline: None,
            ratio: None,
            goal: None,
            met: None,
            command: String::new(),
        }
    }

    /// A row for a measurement that failed.
    pub fn failed(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            value: None,
            label: "failed".to_owned(),
            command: command.into(),
            ..Self::new(name, f64::NAN, "")
        }
    }

    /// The same row with a label beside its value.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The same row with the command that reproduces it.
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }

    /// The same row judged against a baseline of `value` `unit`: the
    /// ratio follows.
    pub fn against(
        mut self,
        value: f64,
        unit: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        self.baseline = Some(Baseline {
            value,
            unit: unit.into(),
            label: label.into(),
        });
        self.ratio = self.value.map(|v| v / value).filter(|r| r.is_finite());
        self
    }

    /// The same row with a goal on its ratio (set the baseline first):
    /// whether it is met follows.
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal.text().to_owned());
        self.met = self.ratio.map(|r| goal.met(r));
        self
    }

    /// Prints the row on stdout as one JSON line.
    pub fn print(&self) {
        println!("{}", serde_json::to_string(self).unwrap_or_default());
    }
}

/// A DESIGN.md goal, stated on the ratio value / baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The ratio must be at least this; the text is DESIGN.md's wording.
    AtLeast(f64, &'static str),
    /// The ratio must stay below this; the text is DESIGN.md's wording.
    Below(f64, &'static str),
}

impl Goal {
    /// Whether `ratio` meets the goal.
    pub fn met(&self, ratio: f64) -> bool {
        match *self {
            Goal::AtLeast(min, _) => ratio >= min,
            Goal::Below(max, _) => ratio < max,
        }
    }

    /// The goal as DESIGN.md words it.
    pub fn text(&self) -> &'static str {
        match self {
            Goal::AtLeast(_, t) | Goal::Below(_, t) => t,
        }
    }
}

/// Prints a note on stdout as one JSON line: `{"note": "..."}`.
pub fn note(text: &str) {
    println!("{}", serde_json::json!({ "note": text }));
}

/// The rows among `out`'s lines (other lines are skipped).
pub fn parse_rows(out: &str) -> Vec<Row> {
    out.lines()
        .filter_map(|line| serde_json::from_str::<Row>(line.trim()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_row_round_trips_through_its_json_line() {
        let row = Row::new("send_text, 1 in flight", 7_538.0, "req/s")
            .against(7_124.0, "req/s", "bare POST")
            .goal(Goal::AtLeast(0.9, "≥ 90% of a bare POST"))
            .command("wxlink-bench send-text --count 20000");
        let line = serde_json::to_string(&row).unwrap();
        let out = format!("progress\n{line}\n");
        assert_eq!(parse_rows(&out), std::slice::from_ref(&row));
        assert!((row.ratio.unwrap() - 7_538.0 / 7_124.0).abs() < 1e-12);
        assert_eq!(row.met, Some(true));
    }

    #[test]
    fn goals_judge_the_ratio() {
        let row = |v: f64| Row::new("x", v, "MB/s").against(100.0, "MB/s", "MD5");
        let at_least = Goal::AtLeast(0.7, "≥ 70%");
        assert_eq!(row(70.0).goal(at_least).met, Some(true));
        assert_eq!(row(69.0).goal(at_least).met, Some(false));
        let below = Goal::Below(1.0, "< 64 MiB");
        assert_eq!(row(99.0).goal(below).met, Some(true));
        assert_eq!(row(100.0).goal(below).met, Some(false));
        // No baseline: no ratio, so nothing to judge.
        assert_eq!(Row::new("x", 1.0, "s").goal(below).met, None);
    }

    #[test]
    fn a_failed_or_non_finite_figure_has_no_value_and_no_ratio() {
        let failed = Row::failed("upload", "wxlink-bench upload");
        assert_eq!(failed.value, None);
        assert_eq!(failed.label, "failed");
        let nan = Row::new("x", f64::NAN, "s").against(1.0, "s", "");
        assert_eq!((nan.value, nan.ratio), (None, None));
        let zero = Row::new("x", 1.0, "s").against(0.0, "s", "");
        assert_eq!(zero.ratio, None);
    }
}
