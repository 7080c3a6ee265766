//! The upload progress bar, drawn on stderr by `indicatif`.
//!
//! It is shown only for uploads larger than [`THRESHOLD`] bytes and only
//! when stderr, the stream it draws on, is a terminal, so scripts that
//! capture the output never see it. It redraws at most ten times a second
//! and stays on screen, on a line of its own, when the transfer ends.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};

/// Uploads at or below this size get no progress bar.
pub const THRESHOLD: u64 = 4 * 1024 * 1024;

/// Redraws per second at most.
const REFRESH_HZ: u8 = 10;

/// The line drawn: label, bar (30 characters), percentage, sizes and the
/// average rate.
const TEMPLATE: &str = "{msg} [{bar:30}] {percent:>3}% {done}/{total} {rate}";

/// A progress bar for one transfer; safe to update from any thread.
#[derive(Debug)]
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
}

impl ProgressBar {
    /// A bar for a transfer of `total` bytes, or `None` when the transfer
    /// is small or stderr is not a terminal.
    pub fn for_upload(label: &str, total: u64) -> Option<Self> {
        (total > THRESHOLD && std::io::stderr().is_terminal()).then(|| {
            Self::with_target(label, total, ProgressDrawTarget::stderr_with_hz(REFRESH_HZ))
        })
    }

    /// A bar drawing on `target` (a terminal in use, a recorder in tests).
    fn with_target(label: &str, total: u64, target: ProgressDrawTarget) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), target)
            .with_style(style())
            .with_message(label.to_owned());
        Self { bar }
    }

    /// Reports that `done` of the total bytes have been sent.
    pub fn update(&self, done: u64) {
        if self.bar.is_finished() {
            return;
        }
        self.bar.set_position(done);
        if self.bar.length().is_some_and(|total| done >= total) {
            self.bar.finish();
        }
    }

    /// Ends the bar's line even if the transfer stopped early.
    pub fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}

/// The bar's style: [`TEMPLATE`] with sizes and rate in binary units, the
/// transferred size clamped to the total.
fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#-")
        .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_bytes(done(s)));
        })
        .with_key("total", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_bytes(s.len().unwrap_or(0)));
        })
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = std::fmt::Write::write_fmt(
                w,
                format_args!("{:.1} MiB/s", rate_mib_per_s(done(s), s.elapsed())),
            );
        })
}

/// The bytes done so far, never past the total.
fn done(state: &ProgressState) -> u64 {
    state.pos().min(state.len().unwrap_or(u64::MAX))
}

/// The average rate of `done` bytes over `elapsed`, in MiB/s.
fn rate_mib_per_s(done: u64, elapsed: Duration) -> f64 {
    done as f64 / elapsed.as_secs_f64().max(1e-6) / (1024.0 * 1024.0)
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
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// Width of the bar itself, in characters, as [`TEMPLATE`] sets it.
    const BAR_WIDTH: usize = 30;

    /// A terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Recorder {
        /// The last line drawn with any text in it, without the blanks
        /// that pad it to the terminal's width.
        fn last_line(&self) -> String {
            let lines = self.0.lock().unwrap();
            lines
                .iter()
                .rev()
                .map(|l| l.trim_end())
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .to_owned()
        }
    }

    impl TermLike for Recorder {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_owned());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line a bar of `total` bytes shows after `done` bytes in
    /// `elapsed`.
    fn line(label: &str, total: u64, done: u64, elapsed: Duration) -> String {
        let term = Recorder::default();
        let bar = ProgressBar::with_target(
            label,
            total,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.bar.set_elapsed(elapsed);
        bar.bar.set_position(done);
        bar.bar.force_draw();
        term.last_line()
    }

    #[test]
    fn the_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        assert!(TEMPLATE.contains(&format!("{{bar:{BAR_WIDTH}}}")));
    }

    #[test]
    fn line_shows_fraction_sizes_and_rate() {
        let line = line(
            "upload",
            10 * 1024 * 1024,
            5 * 1024 * 1024,
            Duration::from_secs(1),
        );
        assert!(line.starts_with("upload ["), "{line}");
        assert!(line.contains(" 50%"), "{line}");
        assert!(line.contains("5.0 MiB/10.0 MiB"), "{line}");
        assert!(line.contains("5.0 MiB/s"), "{line}");
        assert_eq!(line.matches('#').count(), BAR_WIDTH / 2);
    }

    #[test]
    fn progress_past_the_total_is_clamped() {
        let line = line("x", 100, 500, Duration::from_secs(1));
        assert!(line.contains("100%"), "{line}");
        assert!(line.contains("100 B/100 B"), "{line}");
        assert_eq!(line.matches('#').count(), BAR_WIDTH);
    }

    #[test]
    fn a_finished_bar_ignores_later_updates() {
        let term = Recorder::default();
        let bar = ProgressBar::with_target(
            "x",
            100,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.update(100);
        bar.update(10);
        assert_eq!(bar.bar.position(), 100);
        assert!(term.last_line().contains("100%"), "{}", term.last_line());
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
