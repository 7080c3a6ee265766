//! Measurements for `wxlink bench`: latency percentiles and process memory.
//!
//! Peak RSS comes from `getrusage(2)`, the same figure `/usr/bin/time -v`
//! reports as "Maximum resident set size". The current RSS (Linux only) is
//! read from `/proc/self/statm`; `bench poll` uses it to see how much memory
//! a batch of idle long polls holds.

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

/// The peak resident set size of this process so far, in bytes.
#[allow(unsafe_code)]
pub fn peak_rss_bytes() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a whole `rusage` into the pointer we pass,
    // which points at properly sized and aligned memory owned by this frame;
    // the struct is plain data, so the zeroed value is already valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // Linux reports kibibytes, macOS bytes.
    if cfg!(target_os = "macos") {
        Some(max)
    } else {
        Some(max * 1024)
    }
}

/// The current resident set size of this process in bytes (Linux only).
pub fn current_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The size of a memory page.
#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: `sysconf` only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Raises this process's open-file limit to its hard maximum, so that
/// thousands of concurrent connections do not fail with EMFILE. Returns the
/// limit in force afterwards.
#[allow(unsafe_code)]
pub fn raise_open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let wanted = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `setrlimit` only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            lim = wanted;
        }
    }
    #[allow(clippy::useless_conversion)] // rlim_t is not u64 on every platform.
    u64::try_from(lim.rlim_cur).ok()
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

    #[cfg(target_os = "linux")]
    #[test]
    fn current_rss_is_reported_on_linux() {
        let rss = current_rss_bytes().unwrap();
        assert!(rss > 0 && rss <= peak_rss_bytes().unwrap() + (1 << 20));
    }
}
