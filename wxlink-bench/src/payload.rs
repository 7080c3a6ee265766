//! A generated payload of a given size for `wxlink-bench upload`.
//!
//! The bytes come from a small xorshift generator, so any size costs only a
//! few bytes of state: the payload is produced as it is read and never held
//! in memory. The content looks random (nothing for a compressor or a
//! deduplicating store to exploit), and the same seed always gives the
//! same bytes, so a run can be checked and repeated.

use std::io::{self, Read};

/// A reader that yields exactly `len` pseudo-random bytes.
#[derive(Debug, Clone)]
pub struct Payload {
    state: u64,
    remaining: u64,
    /// Bytes of the current 8-byte word not yet handed out.
    pending: [u8; 8],
    pending_len: usize,
}

impl Payload {
    /// A payload of `len` bytes derived from `seed`.
    pub fn new(len: u64, seed: u64) -> Self {
        Self {
            // xorshift must not start at zero.
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            remaining: len,
            pending: [0; 8],
            pending_len: 0,
        }
    }

    /// The next 64-bit word of the generator (xorshift64*).
    fn next_word(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Read for Payload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let out = &mut buf[..want];
        let mut i = 0;
        // First hand out what is left of the previous word.
        while i < out.len() && self.pending_len > 0 {
            out[i] = self.pending[8 - self.pending_len];
            self.pending_len -= 1;
            i += 1;
        }
        // Then whole words.
        while out.len() - i >= 8 {
            let w = self.next_word().to_le_bytes();
            out[i..i + 8].copy_from_slice(&w);
            i += 8;
        }
        // And a partial word, keeping the rest for the next read.
        if i < out.len() {
            self.pending = self.next_word().to_le_bytes();
            self.pending_len = 8;
            while i < out.len() {
                out[i] = self.pending[8 - self.pending_len];
                self.pending_len -= 1;
                i += 1;
            }
        }
        self.remaining -= want as u64;
        Ok(want)
    }
}

/// Writes a payload of `len` bytes to `path` in 256 KiB pieces, so memory
/// use does not depend on `len`.
pub fn write_file(path: &std::path::Path, len: u64, seed: u64) -> io::Result<()> {
    let mut file = io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(path)?);
    io::copy(&mut Payload::new(len, seed), &mut file)?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_exactly_the_requested_size() {
        for len in [0u64, 1, 7, 8, 9, 1000, 65_537] {
            let mut out = Vec::new();
            Payload::new(len, 1).read_to_end(&mut out).unwrap();
            assert_eq!(out.len() as u64, len);
        }
    }

    #[test]
    fn the_same_bytes_whatever_the_read_sizes() {
        let mut whole = Vec::new();
        Payload::new(10_000, 42).read_to_end(&mut whole).unwrap();
        let mut p = Payload::new(10_000, 42);
        let mut pieces = Vec::new();
        let mut step = 1;
        loop {
            let mut buf = vec![0u8; step];
            let n = p.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            pieces.extend_from_slice(&buf[..n]);
            step = step % 13 + 1;
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn content_is_not_trivially_repetitive() {
        let mut out = vec![0u8; 4096];
        Payload::new(4096, 7).read_exact(&mut out).unwrap();
        let distinct: std::collections::HashSet<_> = out.iter().collect();
        assert!(distinct.len() > 200);
        let mut other = vec![0u8; 4096];
        Payload::new(4096, 8).read_exact(&mut other).unwrap();
        assert_ne!(out, other);
    }

    #[test]
    fn writes_a_file_of_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.bin");
        write_file(&path, 300_001, 3).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 300_001);
    }
}
