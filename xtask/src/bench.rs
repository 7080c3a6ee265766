//! `cargo xtask bench`: our media throughput next to this machine's ceilings.
//!
//! The ceilings are single-core `openssl speed -evp aes-128-ecb` and
//! `-evp md5` (MD5 is serial, so it bounds an upload end to end). Our
//! figures come from the `media_bench` example of `wxlink-media`, built in
//! release mode. Each figure is printed beside its ceiling as a ratio, so a
//! reader sees how close to the limit we are without trusting absolute
//! times on a shared machine.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// The prefix of the machine-readable lines `media_bench` prints:
/// `wxlink-bench <name> <MB/s>`.
const LINE_PREFIX: &str = "wxlink-bench";

/// Runs the OpenSSL ceilings and our media benchmarks and prints ratios.
pub fn run(sh: &Shell) -> Result<()> {
    let aes_ceiling = openssl_speed(sh, "aes-128-ecb")?;
    let md5_ceiling = openssl_speed(sh, "md5")?;
    println!("ceilings (openssl speed, one core, largest block size):");
    println!("  aes-128-ecb  {aes_ceiling:>10.1} MB/s");
    println!("  md5          {md5_ceiling:>10.1} MB/s");

    let output = cmd!(
        sh,
        "cargo run --release --quiet -p wxlink-media --example media_bench"
    )
    .read()
    .context("running the media_bench example failed")?;
    let figures = parse_bench_lines(&output);
    if figures.is_empty() {
        bail!("media_bench printed no `{LINE_PREFIX}` lines:\n{output}");
    }

    println!();
    println!(
        "{:<28} {:>10} {:>12} {:>8}",
        "ours", "MB/s", "ceiling", "ratio"
    );
    for (name, ours) in &figures {
        let (ceiling_name, ceiling) = if name.starts_with("encrypt") {
            ("aes-128-ecb", aes_ceiling)
        } else {
            // MD5 bounds both the digest pass and a whole upload.
            ("md5", md5_ceiling)
        };
        println!(
            "{name:<28} {ours:>10.1} {ceiling_name:>12} {:>7.0}%",
            100.0 * ours / ceiling
        );
    }
    Ok(())
}

/// Runs `openssl speed -evp <algo> -seconds 2` and returns the throughput of
/// the largest block size in MB/s (10^6 bytes per second).
fn openssl_speed(sh: &Shell, algo: &str) -> Result<f64> {
    let out = cmd!(sh, "openssl speed -evp {algo} -seconds 2")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("`openssl speed -evp {algo}` failed; is openssl installed?"))?;
    parse_openssl_speed(&out, algo)
        .with_context(|| format!("could not read the `openssl speed -evp {algo}` table:\n{out}"))
}

/// Reads the last column of the result row of `openssl speed` output. The
/// numbers are in 1000s of bytes per second with a `k` suffix, so the value
/// divided by 1000 is MB/s.
fn parse_openssl_speed(out: &str, algo: &str) -> Option<f64> {
    let row = out.lines().rev().find(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(algo))
    })?;
    let last = row.split_whitespace().last()?;
    let kilobytes: f64 = last.trim_end_matches('k').parse().ok()?;
    Some(kilobytes / 1000.0)
}

/// Collects the `wxlink-bench <name> <MB/s>` lines of the example's output.
fn parse_bench_lines(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != LINE_PREFIX {
                return None;
            }
            let name = words.next()?.to_owned();
            let value = words.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_largest_block_column_of_openssl_speed() {
        let out = "\
The 'numbers' are in 1000s of bytes per second processed.
type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes
md5              79040.91k   216897.09k   439228.87k   591619.77k   675831.73k   661880.83k
";
        let mbs = parse_openssl_speed(out, "md5").unwrap();
        assert!((mbs - 661.88083).abs() < 1e-6, "{mbs}");
        assert!(parse_openssl_speed(out, "aes-128-ecb").is_none());
    }

    #[test]
    fn reads_only_prefixed_bench_lines() {
        let out = "warming up\nwxlink-bench encrypt 8123.5\nnoise 1 2\nwxlink-bench md5 600\n";
        assert_eq!(
            parse_bench_lines(out),
            vec![("encrypt".to_owned(), 8123.5), ("md5".to_owned(), 600.0)]
        );
    }
}
