//! Measurements for the load subcommands: latency percentiles and process memory.
//!
//! Peak and current RSS (Linux only) are `VmHWM` and `VmRSS` of
//! `/proc/self/status`: the high-water mark of this process image and what
//! it holds now; `poll` uses the latter to see how much memory a batch
//! of idle long polls holds.

use std::time::Duration;

/// Collected latencies of one benchmark run.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// An empty collection with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            samples: Vec::with_capacity(n),
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// The `p`-th percentile (0 < p ≤ 100) by the nearest-rank method, in
    /// milliseconds; `None` without samples.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        Some(self.samples[idx].as_secs_f64() * 1000.0)
    }
}

/// The peak resident set size of this process image so far, in bytes:
/// `VmHWM` of `/proc/self/status` (Linux only; `None` elsewhere).
///
/// Unlike `getrusage`'s `ru_maxrss`, it never counts a parent's peak: across
/// `exec` Linux keeps the larger of the old and the new image's peak, and a
/// parent that spawns us through `vfork` (as `posix_spawn` and Rust's
/// `Command` do) hands over its own, so a large parent such as `cargo`
/// would be reported as ours.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// The current resident set size of this process in bytes: `VmRSS` of
/// `/proc/self/status` (Linux only; `None` elsewhere).
pub fn current_rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A figure of `/proc/self/status`, by its field name, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_bytes(&status, field)
}

/// Reads a `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text, by its
/// field name (`"VmHWM:"`), in bytes; `None` without that line or unit.
pub fn parse_status_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    let mut words = line.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile_ms(50.0), Some(50.0));
        assert_eq!(l.percentile_ms(99.0), Some(99.0));
        assert_eq!(l.percentile_ms(100.0), Some(100.0));
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let mut l = Latencies::default();
        l.record(Duration::from_micros(1500));
        assert_eq!(l.percentile_ms(50.0), Some(1.5));
        assert_eq!(l.percentile_ms(99.0), Some(1.5));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }

    #[test]
    fn peak_rss_grows_when_memory_is_touched() {
        let before = peak_rss_bytes().unwrap();
        assert!(before > 0);
        // Touch 64 MiB so that the peak must move past it.
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_rss_bytes().unwrap();
        assert!(after >= before.max(64 << 20), "{before} -> {after}");
    }

    #[test]
    fn status_figures_are_read_in_bytes() {
        let status = "Name:\twxlink\nVmHWM:\t   10240 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_bytes(status, "VmHWM:"), Some(10240 * 1024));
        assert_eq!(parse_status_bytes(status, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(parse_status_bytes(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn current_rss_is_reported_on_linux() {
        let rss = current_rss_bytes().unwrap();
        assert!(rss > 0 && rss <= peak_rss_bytes().unwrap() + (1 << 20));
    }
}
