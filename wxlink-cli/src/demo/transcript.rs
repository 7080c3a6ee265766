//! The demo's readable transcript: who said what, and the checks.
//!
//! Lines go to stdout as they happen, so a slow step is visible while it
//! runs. Each check is counted; the demo's exit code is 0 only when every
//! check passed.

use std::io::Write;
use std::time::Instant;

/// Collects the demo's checks while printing the conversation.
#[derive(Debug)]
pub struct Transcript {
    started: Instant,
    passed: usize,
    failed: Vec<String>,
}

impl Transcript {
    /// A transcript starting now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Prints a section heading.
    pub fn section(&self, title: &str) {
        self.line(&format!("\n── {title}"));
    }

    /// Prints one line of narration.
    pub fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Prints what the user sent.
    pub fn user_says(&self, what: &str) {
        self.line(&format!("user → bot: {what}"));
    }

    /// Prints what the bot sent.
    pub fn bot_says(&self, what: &str) {
        self.line(&format!("bot → user: {what}"));
    }

    /// Records and prints a check.
    pub fn check(&mut self, ok: bool, what: &str) -> bool {
        if ok {
            self.passed += 1;
            self.line(&format!("  ✓ {what}"));
        } else {
            self.failed.push(what.to_owned());
            self.line(&format!("  ✗ {what}"));
        }
        ok
    }

    /// Records a step that failed outright, with its error.
    pub fn fail(&mut self, what: &str, err: &anyhow::Error) {
        self.failed.push(what.to_owned());
        self.line(&format!("  ✗ {what}: {err:#}"));
    }

    /// Prints the summary line and returns whether every check passed.
    pub fn finish(&self) -> bool {
        let total = self.passed + self.failed.len();
        let secs = self.started.elapsed().as_secs_f64();
        if self.failed.is_empty() {
            self.line(&format!("\n✓ all {total} checks passed in {secs:.1} s"));
        } else {
            self.line(&format!(
                "\n✗ {} of {total} checks failed in {secs:.1} s:",
                self.failed.len()
            ));
            for f in &self.failed {
                self.line(&format!("  - {f}"));
            }
        }
        self.failed.is_empty()
    }
}

/// Shortens a text for one transcript line, marking what was cut.
pub fn preview(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    let flat: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if count > max_chars {
        format!("\"{flat}…\" ({count} characters)")
    } else {
        format!("\"{flat}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_marks_cut_text_and_line_breaks() {
        assert_eq!(preview("hi\nthere", 20), "\"hi⏎there\"");
        assert_eq!(preview("abcdef", 3), "\"abc…\" (6 characters)");
    }

    #[test]
    fn one_failed_check_fails_the_transcript() {
        let mut t = Transcript::new();
        assert!(t.check(true, "fine"));
        assert!(t.finish());
        assert!(!t.check(false, "broken"));
        assert!(!t.finish());
    }
}
