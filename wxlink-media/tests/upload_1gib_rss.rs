//! A 1 GiB upload through the real code path stays under 64 MiB of peak RSS.
//!
//! This file holds one test so that it runs in its own process and the peak
//! RSS it reads belongs to this upload (and the in-process simulator) alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use wxlink_media::{MediaKind, UploadSource, crypto, upload};
use wxlink_sim::{CdnStorage, Simulator};

const GIB: u64 = 1024 * 1024 * 1024;
const RSS_LIMIT_KIB: i64 = 64 * 1024;

/// The process's peak resident set size in KiB.
///
/// On Linux this is `VmHWM` from `/proc/self/status`: the high-water mark of
/// this process image. `getrusage(RUSAGE_SELF).ru_maxrss` is not usable
/// here, because Linux carries the pre-`exec` peak over into it, so a test
/// binary started by cargo (itself ~60 MiB) would report cargo's peak.
/// Elsewhere `ru_maxrss` is the best available figure.
fn peak_rss_kib() -> i64 {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/self/status");
        line.trim_start_matches("VmHWM:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }
    #[cfg(not(target_os = "linux"))]
    {
        rusage_max_kib()
    }
}

/// `getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux, bytes on macOS).
// `c_long` is `i64` on some targets and `i32` on others.
#[allow(clippy::useless_conversion)]
fn rusage_max_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: getrusage returned 0, so the struct is initialised.
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    let unit = if cfg!(target_os = "macos") { 1024 } else { 1 };
    i64::from(usage.ru_maxrss) / unit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_sparse_file_uploads_in_constant_memory() {
    let sim = Simulator::builder()
        .cdn_storage(CdnStorage::DigestOnly)
        .start()
        .await
        .unwrap();
    let env = Env::with(sim);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    let file = std::fs::File::create(&path).unwrap();
    // A sparse file: no disk space, reads return zeros.
    file.set_len(GIB).unwrap();
    drop(file);

    let before = peak_rss_kib();
    let up = upload(
        &env.api,
        &env.cdn,
        &env.sim.user_id(),
        UploadSource::path(&path),
        &env.options(),
    )
    .await
    .unwrap();
    let peak = peak_rss_kib();

    assert_eq!(up.rawsize, GIB);
    assert_eq!(up.ciphertext_size, crypto::ciphertext_len(GIB));
    // Zeros have no magic bytes; the extension decides.
    assert_eq!(up.kind, MediaKind::Video);
    // The simulator decrypted all of it and checked size and MD5.
    let records = env.sim.uploads();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].received, crypto::ciphertext_len(GIB));
    assert_eq!(records[0].stored, Some("digest"));
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB (before the upload {before} KiB) is not under {RSS_LIMIT_KIB} KiB"
    );
    eprintln!(
        "peak RSS {peak} KiB (before the upload {before} KiB; getrusage, which includes the pre-exec parent, says {} KiB)",
        rusage_max_kib()
    );
}
