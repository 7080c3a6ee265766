//! `wxlink-bench media`: AES-128-ECB encryption, MD5, and an end-to-end
//! upload of a 256 MiB file to the in-process simulator.
//!
//! Run it in release mode: `cargo run --release -p wxlink-bench -- media`,
//! or `cargo xtask bench`, which also shows this machine's `openssl speed`
//! ceilings. It takes well under a minute (about 15 s on
//! the 2-core development machine).
//!
//! Every figure is the median of repeated runs, as DESIGN.md asks: a single
//! run (or the best of a few) on a shared machine says more about the other
//! processes than about the code. Short runs are repeated more often
//! ([`SHORT_RUNS`]) than the 256 MiB uploads ([`LONG_RUNS`]); the human line
//! shows the fastest and slowest run beside the median so the noise is
//! visible on stderr. Each figure is a [`Row`] in MB/s (MB = 10^6 bytes)
//! on stdout.
//!
//! `encrypt` is the headline encryption figure: the streaming path an upload
//! takes, over 256 MiB that does not fit in any cache. `encrypt_cached` runs
//! the same code over one cache-resident chunk, which is what `openssl
//! speed` measures; the gap between the two is memory bandwidth, not the
//! cipher.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wxlink_media::Md5;
use wxlink_media::{AesKey, Encryptor};

use crate::report::Row;

/// The command that reproduces every row of this module.
const COMMAND: &str = "wxlink-bench media";

const MIB: usize = 1024 * 1024;
const BUFFER: usize = 256 * MIB;
const CHUNK: usize = 256 * 1024;

/// Runs of a measurement that takes well under a second (encryption, MD5).
const SHORT_RUNS: usize = 9;

/// Runs of a 256 MiB upload (about a second each).
const LONG_RUNS: usize = 5;

/// The run times of one measurement.
struct Runs(Vec<Duration>);

impl Runs {
    /// Times `runs` calls of `f`.
    fn measure(runs: usize, mut f: impl FnMut()) -> Self {
        Self(
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .collect(),
        )
    }

    /// The median run (the upper middle one of an even count).
    fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    /// The fastest and the slowest run.
    fn spread(&self) -> (Duration, Duration) {
        let min = self.0.iter().min().copied().unwrap_or_default();
        let max = self.0.iter().max().copied().unwrap_or_default();
        (min, max)
    }
}

/// Prints the median of `runs` over `bytes` as MB/s: a human line on
/// stderr and a row on stdout.
fn report(name: &str, bytes: usize, runs: &Runs) {
    let median = runs.median();
    let mbs = bytes as f64 / median.as_secs_f64() / 1e6;
    let (min, max) = runs.spread();
    eprintln!(
        "{name:<22} {:>4} MiB, median of {} runs {:>7.3} s = {mbs:>8.1} MB/s  (runs {:.3}–{:.3} s)",
        bytes / MIB,
        runs.0.len(),
        median.as_secs_f64(),
        min.as_secs_f64(),
        max.as_secs_f64(),
    );
    Row::new(name, mbs, "MB/s").command(COMMAND).print();
}

/// Encryption along the upload path, and of one cache-resident chunk.
fn bench_encrypt(data: &[u8]) {
    let key = AesKey::random();
    let mut buf = Vec::with_capacity(CHUNK + 16);
    let runs = Runs::measure(SHORT_RUNS, || {
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
    report("encrypt", data.len(), &runs);

    // The same work on one cache-resident chunk, which is what `openssl
    // speed` measures: the difference to the figure above is memory
    // bandwidth, not the cipher.
    let mut hot = vec![0x5a_u8; CHUNK];
    let rounds = data.len() / CHUNK;
    let runs = Runs::measure(SHORT_RUNS, || {
        let mut enc = Encryptor::new(&key);
        for _ in 0..rounds {
            enc.update_in_place(&mut hot);
        }
        std::hint::black_box(&hot);
    });
    report("encrypt_cached", rounds * CHUNK, &runs);
}

/// MD5 over the whole buffer, chunk by chunk.
fn bench_md5(data: &[u8]) {
    let runs = Runs::measure(SHORT_RUNS, || {
        let mut md5 = Md5::new();
        for chunk in data.chunks(CHUNK) {
            md5.update(chunk);
        }
        std::hint::black_box(md5.finalize());
    });
    report("md5", data.len(), &runs);
}

/// Runs every media measurement and prints its rows.
pub fn run() -> Result<ExitCode> {
    let started = Instant::now();
    eprintln!(
        "media: each figure is the median of {SHORT_RUNS} runs ({LONG_RUNS} for uploads); \
         MB = 10^6 bytes. `encrypt` (streaming, 256 MiB) is the headline; \
         `encrypt_cached` (one hot 256 KiB chunk) measures what `openssl speed` does."
    );
    let data: Vec<u8> = (0..BUFFER).map(|i| (i as u8).wrapping_mul(31)).collect();
    bench_encrypt(&data);
    bench_md5(&data);
    drop(data);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(upload::run())?;
    eprintln!("media: {:.1} s in all", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The 256 MiB uploads.
mod upload {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use anyhow::{Result, ensure};

    use wxlink_media::{Phase, ProgressHook, UploadOptions, UploadSource, upload};
    use wxlink_sim::{CdnStorage, Simulator};
    use wxlink_transport::{ApiClient, ApiConfig};

    use super::{BUFFER, LONG_RUNS, Runs, report};

    /// Uploads a 256 MiB file to the in-process simulator (digest-only CDN
    /// storage: it decrypts and checks size and MD5 but keeps nothing), end
    /// to end: MD5 pass, getuploadurl, encrypted streaming POST. The median
    /// of [`LONG_RUNS`] uploads; then the same to a sink that only counts.
    pub async fn run() -> Result<()> {
        let sim = Simulator::builder()
            .cdn_storage(CdnStorage::DigestOnly)
            .start()
            .await?;
        let api = ApiClient::new(
            ApiConfig::default()
                .base_url(sim.base_url())
                .token(Some(sim.token())),
        );
        let cdn = api.cdn_service();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bench.bin");
        // Real (non-sparse) data, so the read pass does real work; it sits
        // in the page cache after the first run, as a recently written file
        // would.
        let data: Vec<u8> = (0..BUFFER)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect();
        std::fs::write(&path, &data)?;
        drop(data);
        // The progress hook notes when the first body bytes go out, which
        // splits the time into the MD5 pass and the encrypt-and-POST pass.
        let post_started: Arc<Mutex<Option<Instant>>> = Arc::default();
        let hook = {
            let post_started = Arc::clone(&post_started);
            ProgressHook::new(move |p| {
                if p.phase == Phase::Uploading
                    && let Ok(mut at) = post_started.lock()
                {
                    at.get_or_insert_with(Instant::now);
                }
            })
        };
        let options = UploadOptions::with_cdn_base_url(sim.cdn_base_url()).progress(hook);
        // (whole upload, MD5 pass) of each run.
        let mut runs: Vec<(Duration, Duration)> = Vec::with_capacity(LONG_RUNS);
        for _ in 0..LONG_RUNS {
            if let Ok(mut at) = post_started.lock() {
                *at = None;
            }
            let start = Instant::now();
            let up = upload(
                &api,
                &cdn,
                &sim.user_id(),
                UploadSource::path(&path),
                &options,
            )
            .await?;
            let total = start.elapsed();
            let first_pass = post_started
                .lock()
                .ok()
                .and_then(|at| *at)
                .map(|at| at - start)
                .unwrap_or_default();
            runs.push((total, first_pass));
            ensure!(
                up.rawsize == BUFFER as u64,
                "the upload reported {} bytes",
                up.rawsize
            );
        }
        // The split of the median run.
        let totals = Runs(runs.iter().map(|r| r.0).collect());
        let median = totals.median();
        let first_pass = runs
            .iter()
            .find(|r| r.0 == median)
            .map_or(Duration::ZERO, |r| r.1);
        eprintln!(
            "  (median run: md5 pass + getuploadurl {:.3} s, encrypt-and-post pass {:.3} s)",
            first_pass.as_secs_f64(),
            median.saturating_sub(first_pass).as_secs_f64()
        );
        report("upload_256mib", BUFFER, &totals);

        // The same upload to a receiver that only counts the bytes, as a
        // remote CDN would look from here: the simulator above verifies the
        // MD5 on this machine's cores, a real CDN does not.
        let sink_url = super::sink::start().await?;
        let api = super::sink::FixedUrl(sink_url);
        let options = UploadOptions::default();
        let mut totals = Runs(Vec::with_capacity(LONG_RUNS));
        for _ in 0..LONG_RUNS {
            let start = Instant::now();
            let up = upload(&api, &cdn, "bench", UploadSource::path(&path), &options).await?;
            totals.0.push(start.elapsed());
            ensure!(
                up.rawsize == BUFFER as u64,
                "the upload reported {} bytes",
                up.rawsize
            );
        }
        report("upload_256mib_to_sink", BUFFER, &totals);
        Ok(())
    }
}

/// A CDN stand-in that reads and discards upload bodies, for the
/// client-side upload figure.
mod sink {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use wxlink_media::UploadUrlApi;
    use wxlink_proto::{GetUploadUrlRequest, GetUploadUrlResponse};

    /// Starts the sink on 127.0.0.1 and returns its upload URL.
    pub async fn start() -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/upload", listener.local_addr()?);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
                            let mut body = req.into_body();
                            let mut received = 0u64;
                            while let Some(Ok(frame)) = body.frame().await {
                                if let Ok(data) = frame.into_data() {
                                    received += data.len() as u64;
                                }
                            }
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            resp.headers_mut().insert(
                                "x-encrypted-param",
                                hyper::header::HeaderValue::from(received),
                            );
                            Ok::<_, Infallible>(resp)
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(url)
    }

    /// A `getuploadurl` that always answers with the sink's URL.
    pub struct FixedUrl(pub String);

    impl UploadUrlApi for FixedUrl {
        async fn get_upload_url(
            &self,
            _request: &GetUploadUrlRequest,
        ) -> Result<GetUploadUrlResponse, wxlink_transport::Error> {
            Ok(GetUploadUrlResponse {
                upload_full_url: Some(self.0.clone()),
                ..GetUploadUrlResponse::default()
            })
        }
    }
}
