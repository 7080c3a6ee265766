//! Media throughput: AES-128-ECB encryption, MD5, and (with the `transport`
//! feature) an end-to-end upload of a 256 MiB file to the in-process
//! simulator.
//!
//! Run it in release mode: `cargo run --release -p wxlink-media --example
//! media_bench`, or `cargo xtask bench`, which also prints this machine's
//! `openssl speed` ceilings. Each figure is printed as a human line and as a
//! machine line `wxlink-bench <name> <MB/s>` (MB = 10^6 bytes).

use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use wxlink_media::{AesKey, Encryptor};

const MIB: usize = 1024 * 1024;
const BUFFER: usize = 256 * MIB;
const CHUNK: usize = 256 * 1024;

fn report(name: &str, bytes: usize, elapsed: Duration) {
    let mbs = bytes as f64 / elapsed.as_secs_f64() / 1e6;
    println!(
        "{name:<12} {:>5} MiB in {:>7.3} s = {mbs:>9.1} MB/s",
        bytes / MIB,
        elapsed.as_secs_f64()
    );
    println!("wxlink-bench {name} {mbs:.1}");
}

/// Best of three runs of `f`, to keep a noisy shared machine from hiding
/// the real figure.
fn best_of_three(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn bench_encrypt(data: &[u8]) {
    let key = AesKey::random();
    let mut buf = Vec::with_capacity(CHUNK + 16);
    let elapsed = best_of_three(|| {
        // The path an upload takes: take a chunk, encrypt it in place.
        let mut enc = Encryptor::new(&key);
        for chunk in data.chunks(CHUNK) {
            buf.clear();
            buf.extend_from_slice(chunk);
            enc.update_in_place(&mut buf);
            std::hint::black_box(&buf);
        }
        std::hint::black_box(enc.finish());
    });
    report("encrypt", data.len(), elapsed);

    // The same work on one cache-resident chunk, which is what `openssl
    // speed` measures: the difference to the figure above is memory
    // bandwidth, not the cipher.
    let mut hot = vec![0x5a_u8; CHUNK];
    let rounds = data.len() / CHUNK;
    let elapsed = best_of_three(|| {
        let mut enc = Encryptor::new(&key);
        for _ in 0..rounds {
            enc.update_in_place(&mut hot);
        }
        std::hint::black_box(&hot);
    });
    report("encrypt_cached", rounds * CHUNK, elapsed);
}

fn bench_md5(data: &[u8]) {
    let elapsed = best_of_three(|| {
        let mut md5 = Md5::new();
        for chunk in data.chunks(CHUNK) {
            md5.update(chunk);
        }
        std::hint::black_box(md5.finalize());
    });
    report("md5", data.len(), elapsed);
}

fn main() {
    let data: Vec<u8> = (0..BUFFER).map(|i| (i as u8).wrapping_mul(31)).collect();
    bench_encrypt(&data);
    bench_md5(&data);
    drop(data);
    #[cfg(feature = "transport")]
    upload::bench_upload();
}

#[cfg(feature = "transport")]
mod upload {
    /// The end-to-end upload benchmark; filled in once the simulator exists.
    pub fn bench_upload() {}
}
