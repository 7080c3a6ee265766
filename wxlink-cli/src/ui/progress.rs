//! A small upload progress bar drawn on stderr.
//!
//! It is shown only for uploads larger than [`THRESHOLD`] bytes and only
//! when stdout is a terminal, so scripts that capture the output never see
//! it. It redraws at most ten times a second and ends with a newline.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Uploads at or below this size get no progress bar.
pub const THRESHOLD: u64 = 4 * 1024 * 1024;

/// Width of the bar itself, in characters.
const BAR_WIDTH: usize = 30;

/// A progress bar for one transfer; safe to update from any thread.
#[derive(Debug)]
pub struct ProgressBar {
    label: String,
    total: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    start: Instant,
    last_draw: Option<Instant>,
    /// Characters in the last line drawn, so a shorter line can blank them.
    last_len: usize,
    finished: bool,
}

impl ProgressBar {
    /// A bar for a transfer of `total` bytes, or `None` when the transfer
    /// is small or stdout is not a terminal.
    pub fn for_upload(label: &str, total: u64) -> Option<Self> {
        (total > THRESHOLD && std::io::stdout().is_terminal()).then(|| Self::new(label, total))
    }

    /// A bar that always draws (used by tests and by `for_upload`).
    pub fn new(label: &str, total: u64) -> Self {
        Self {
            label: label.to_owned(),
            total,
            state: Mutex::new(State {
                start: Instant::now(),
                last_draw: None,
                last_len: 0,
                finished: false,
            }),
        }
    }

    /// Reports that `done` of the total bytes have been sent.
    pub fn update(&self, done: u64) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.finished {
            return;
        }
        let now = Instant::now();
        let complete = done >= self.total;
        if !complete
            && st
                .last_draw
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        st.last_draw = Some(now);
        let line = self.line(done, now.duration_since(st.start));
        let len = line.chars().count();
        let pad = st.last_len.saturating_sub(len);
        st.last_len = len;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        if complete {
            let _ = writeln!(err);
            st.finished = true;
        }
        let _ = err.flush();
    }

    /// Ends the bar's line even if the transfer stopped early.
    pub fn finish(&self) {
        if let Ok(mut st) = self.state.lock()
            && !st.finished
            && st.last_draw.is_some()
        {
            st.finished = true;
            let _ = writeln!(std::io::stderr());
        }
    }

    /// The text of the bar for `done` bytes after `elapsed`.
    fn line(&self, done: u64, elapsed: Duration) -> String {
        let done = done.min(self.total);
        let frac = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let filled = ((frac * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
        let secs = elapsed.as_secs_f64().max(1e-6);
        let rate = done as f64 / secs / (1024.0 * 1024.0);
        format!(
            "{} [{}{}] {:>3.0}% {}/{} {:.1} MiB/s",
            self.label,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
            frac * 100.0,
            human_bytes(done),
            human_bytes(self.total),
            rate
        )
    }
}

/// Formats a byte count with a binary unit, e.g. `12.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_fraction_sizes_and_rate() {
        let bar = ProgressBar::new("upload", 10 * 1024 * 1024);
        let line = bar.line(5 * 1024 * 1024, Duration::from_secs(1));
        assert!(line.contains(" 50%"), "{line}");
        assert!(line.contains("5.0 MiB/10.0 MiB"), "{line}");
        assert!(line.contains("5.0 MiB/s"), "{line}");
        assert_eq!(line.matches('#').count(), BAR_WIDTH / 2);
    }

    #[test]
    fn progress_past_the_total_is_clamped() {
        let bar = ProgressBar::new("x", 100);
        let line = bar.line(500, Duration::from_secs(1));
        assert!(line.contains("100%"), "{line}");
        assert_eq!(line.matches('#').count(), BAR_WIDTH);
    }

    #[test]
    fn small_uploads_get_no_bar() {
        assert!(ProgressBar::for_upload("x", THRESHOLD).is_none());
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }
}
