//! [`Md5`]: the digest an upload declares (`rawfilemd5` of the
//! `getuploadurl` request; docs/protocol.md, "Media upload").
//!
//! MD5 is serial and every upload hashes the whole plaintext before it
//! sends a byte, so its speed bounds an upload end to end. On x86 and
//! x86-64 (not Windows) the compression function is the assembly one of
//! `md5-asm`, and this module only buffers the input and pads the last
//! block; elsewhere it is md-5's portable implementation. md-5 0.11 has no
//! assembly backend, and on the reference machine its portable code hashed
//! 512 MB/s against 595 MB/s for the assembly (`wxlink-bench media`, the
//! `md5` row, both builds in one session), which cost an upload over
//! loopback 8 % of its throughput.

/// The targets on which `md5-asm` builds.
#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    not(target_os = "windows")
))]
mod imp {
    /// The MD5 initial state (RFC 1321, 3.3).
    const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

    /// Streaming MD5 state: the chaining value, a partial block, the
    /// message length.
    #[derive(Clone)]
    pub(super) struct Inner {
        state: [u32; 4],
        block: [u8; 64],
        filled: usize,
        len: u64,
    }

    impl Inner {
        pub(super) fn new() -> Self {
            Self {
                state: INIT,
                block: [0; 64],
                filled: 0,
                len: 0,
            }
        }

        pub(super) fn len(&self) -> u64 {
            self.len
        }

        pub(super) fn update(&mut self, data: &[u8]) {
            self.len = self.len.wrapping_add(data.len() as u64);
            self.absorb(data);
        }

        /// Feeds `data` through the compression function, a block at a
        /// time, keeping what does not fill a block.
        fn absorb(&mut self, mut data: &[u8]) {
            if self.filled > 0 {
                let take = (64 - self.filled).min(data.len());
                self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
                self.filled += take;
                data = &data[take..];
                if self.filled < 64 {
                    return;
                }
                md5_asm::compress(&mut self.state, std::slice::from_ref(&self.block));
                self.filled = 0;
            }
            let (blocks, rest) = data.as_chunks::<64>();
            md5_asm::compress(&mut self.state, blocks);
            self.block[..rest.len()].copy_from_slice(rest);
            self.filled = rest.len();
        }

        /// Pads the message (RFC 1321, 3.1 and 3.2) and returns the digest.
        pub(super) fn finalize(mut self) -> [u8; 16] {
            let bits = self.len.wrapping_mul(8);
            // 0x80, then zeros up to 56 bytes into a block, then the length.
            let mut pad = [0u8; 64];
            pad[0] = 0x80;
            let pad_len = if self.filled < 56 {
                56 - self.filled
            } else {
                120 - self.filled
            };
            self.absorb(&pad[..pad_len]);
            self.absorb(&bits.to_le_bytes());
            debug_assert_eq!(self.filled, 0);
            let mut out = [0u8; 16];
            for (bytes, word) in out.chunks_exact_mut(4).zip(self.state) {
                bytes.copy_from_slice(&word.to_le_bytes());
            }
            out
        }
    }
}

/// Every other target: md-5's portable implementation.
#[cfg(not(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    not(target_os = "windows")
)))]
mod imp {
    use md5::Digest as _;

    #[derive(Clone)]
    pub(super) struct Inner {
        md5: md5::Md5,
        len: u64,
    }

    impl Inner {
        pub(super) fn new() -> Self {
            Self {
                md5: md5::Md5::new(),
                len: 0,
            }
        }

        pub(super) fn len(&self) -> u64 {
            self.len
        }

        pub(super) fn update(&mut self, data: &[u8]) {
            self.len = self.len.wrapping_add(data.len() as u64);
            self.md5.update(data);
        }

        pub(super) fn finalize(self) -> [u8; 16] {
            let mut out = [0u8; 16];
            out.copy_from_slice(&self.md5.finalize());
            out
        }
    }
}

/// A streaming MD5 hasher, the one uploads use.
///
/// ```
/// let mut md5 = wxlink_media::Md5::new();
/// md5.update(b"a");
/// md5.update(b"bc");
/// assert_eq!(hex::encode(md5.finalize()), "900150983cd24fb0d6963f7d28e17f72");
/// ```
#[derive(Clone)]
pub struct Md5(imp::Inner);

impl Md5 {
    /// A hasher that has seen no input.
    pub fn new() -> Self {
        Self(imp::Inner::new())
    }

    /// Hashes `data` after what came before.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The 16-byte digest of everything given to [`update`](Self::update).
    pub fn finalize(self) -> [u8; 16] {
        self.0.finalize()
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut md5 = Self::new();
        md5.update(data);
        md5.finalize()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state says nothing a reader needs; the length shows progress.
        f.debug_struct("Md5")
            .field("bytes", &self.0.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use md5::Digest as _;
    use proptest::prelude::*;

    use super::Md5;

    fn reference(data: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&md5::Md5::digest(data));
        out
    }

    #[test]
    fn rfc_1321_test_suite() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex::encode(Md5::digest(input)), want);
        }
    }

    #[test]
    fn every_length_around_the_padding_boundaries_matches_md5() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                Md5::digest(&data[..len]),
                reference(&data[..len]),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn debug_shows_the_length_only() {
        let mut md5 = Md5::new();
        md5.update(b"secret plaintext");
        assert_eq!(format!("{md5:?}"), "Md5 { bytes: 16, .. }");
    }

    proptest! {
        #[test]
        fn any_split_of_the_input_gives_md5s_digest(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut md5 = Md5::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                md5.update(&data[at..cut]);
                at = cut;
            }
            prop_assert_eq!(md5.finalize(), reference(&data));
        }
    }
}
