//! AES-128-ECB with PKCS#7 padding, whole-buffer and streaming.
//!
//! The iLink CDN mandates AES-128 in ECB mode over the whole file, with PKCS#7
//! padding and no IV or MAC (docs/protocol.md, "Media encryption"). ECB is weak
//! as a cipher mode; it is used here only because the protocol requires it.
//!
//! The block cipher is the RustCrypto `aes` crate, which picks the CPU's
//! AES instructions at run time where they exist. Every function hands the
//! cipher many blocks per call so that the hardware path can pipeline them.
//!
//! The streaming [`Encryptor`] and [`Decryptor`] accept chunks of any size
//! (including empty ones) and hold back at most one block between calls, so
//! a file of any size can be processed in constant memory.

use aes::Aes128;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::error::{Error, ErrorKind};
use crate::key::AesKey;

/// The AES block size in bytes.
pub const BLOCK_LEN: usize = 16;

/// The ciphertext size of a plaintext of `rawsize` bytes:
/// `(rawsize / 16 + 1) * 16`, the `filesize` of `getuploadurl`.
///
/// PKCS#7 always adds padding, so a plaintext whose length is a multiple of
/// 16 gains a whole block: 0 → 16, 15 → 16, 16 → 32.
///
/// The formula overflows `u64` for the last 16 values below `u64::MAX`; the
/// result then saturates to the largest multiple of 16, and
/// [`checked_ciphertext_len`] says `None`.
pub const fn ciphertext_len(rawsize: u64) -> u64 {
    match checked_ciphertext_len(rawsize) {
        Some(len) => len,
        None => u64::MAX / 16 * 16,
    }
}

/// [`ciphertext_len`], or `None` when the padded size does not fit in a
/// `u64` (a plaintext within 16 bytes of `u64::MAX`, which only a
/// malicious or broken size field can announce).
pub const fn checked_ciphertext_len(rawsize: u64) -> Option<u64> {
    (rawsize / 16 + 1).checked_mul(16)
}

fn cipher(key: &AesKey) -> Aes128 {
    Aes128::new(key.as_bytes().into())
}

/// Encrypts whole blocks of `buf` in place. `buf.len()` must be a multiple
/// of the block size; callers guarantee it.
fn encrypt_blocks_in_place(cipher: &Aes128, buf: &mut [u8]) {
    let (blocks, tail) = InOutBuf::from(buf).into_chunks();
    debug_assert!(tail.is_empty());
    cipher.encrypt_blocks_inout(blocks);
}

/// Decrypts whole blocks of `buf` in place. `buf.len()` must be a multiple
/// of the block size; callers guarantee it.
fn decrypt_blocks_in_place(cipher: &Aes128, buf: &mut [u8]) {
    let (blocks, tail) = InOutBuf::from(buf).into_chunks();
    debug_assert!(tail.is_empty());
    cipher.decrypt_blocks_inout(blocks);
}

/// Appends PKCS#7 padding for a final partial block of `tail.len()` bytes
/// (0..16) and returns the padded block.
fn pad_block(tail: &[u8]) -> [u8; BLOCK_LEN] {
    let pad = (BLOCK_LEN - tail.len()) as u8;
    let mut block = [pad; BLOCK_LEN];
    block[..tail.len()].copy_from_slice(tail);
    block
}

/// Checks the PKCS#7 padding of a decrypted final block and returns how
/// many plaintext bytes it holds.
fn unpad_len(block: &[u8; BLOCK_LEN]) -> Result<usize, Error> {
    let pad = block[BLOCK_LEN - 1] as usize;
    if pad == 0 || pad > BLOCK_LEN {
        return Err(ErrorKind::BadPadding.into());
    }
    if block[BLOCK_LEN - pad..].iter().any(|&b| b as usize != pad) {
        return Err(ErrorKind::BadPadding.into());
    }
    Ok(BLOCK_LEN - pad)
}

/// Encrypts `plaintext` with AES-128-ECB and PKCS#7 padding.
///
/// The result is always [`ciphertext_len`]`(plaintext.len())` bytes long.
pub fn encrypt(key: &AesKey, plaintext: &[u8]) -> Vec<u8> {
    let full = plaintext.len() - plaintext.len() % BLOCK_LEN;
    let mut out = Vec::with_capacity(full + BLOCK_LEN);
    out.extend_from_slice(&plaintext[..full]);
    out.extend_from_slice(&pad_block(&plaintext[full..]));
    encrypt_blocks_in_place(&cipher(key), &mut out);
    out
}

/// Decrypts AES-128-ECB `ciphertext` and strips its PKCS#7 padding.
///
/// # Errors
///
/// [`Error::bad_ciphertext_len`] when the length is zero or not a multiple
/// of 16 (a truncated download), [`Error::is_bad_padding`] when the final
/// block does not end in valid padding (a corrupt download or a wrong key).
pub fn decrypt(key: &AesKey, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(ErrorKind::CiphertextLength {
            len: ciphertext.len() as u64,
        }
        .into());
    }
    let mut out = ciphertext.to_vec();
    decrypt_blocks_in_place(&cipher(key), &mut out);
    let last_start = out.len() - BLOCK_LEN;
    let mut last = [0u8; BLOCK_LEN];
    last.copy_from_slice(&out[last_start..]);
    let keep = unpad_len(&last)?;
    out.truncate(last_start + keep);
    Ok(out)
}

/// A streaming AES-128-ECB encryptor with PKCS#7 padding.
///
/// Feed plaintext with [`update`](Self::update) in chunks of any size; each
/// call appends every block it can complete. [`finish`](Self::finish)
/// returns the final padded block. At most 15 plaintext bytes are held
/// between calls.
///
/// ```
/// use wxlink_media::{AesKey, crypto};
///
/// let key = AesKey::from_bytes([7; 16]);
/// let mut enc = crypto::Encryptor::new(&key);
/// let mut out = Vec::new();
/// enc.update(b"hello ", &mut out);
/// enc.update(b"ilink", &mut out);
/// out.extend_from_slice(&enc.finish());
/// assert_eq!(out, crypto::encrypt(&key, b"hello ilink"));
/// ```
pub struct Encryptor {
    cipher: Aes128,
    pending: [u8; BLOCK_LEN],
    pending_len: usize,
    consumed: u64,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// Starts encrypting with `key`.
    pub fn new(key: &AesKey) -> Self {
        Self {
            cipher: cipher(key),
            pending: [0; BLOCK_LEN],
            pending_len: 0,
            consumed: 0,
        }
    }

    /// Plaintext bytes fed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Encrypts `input`, appending every completed ciphertext block to `out`.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.consumed += input.len() as u64;
        if self.pending_len > 0 {
            let take = (BLOCK_LEN - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if self.pending_len < BLOCK_LEN {
                return;
            }
            let start = out.len();
            out.extend_from_slice(&self.pending);
            self.pending_len = 0;
            // The completed pending block is encrypted together with the
            // bulk below, in one call.
            let full = input.len() - input.len() % BLOCK_LEN;
            out.extend_from_slice(&input[..full]);
            encrypt_blocks_in_place(&self.cipher, &mut out[start..]);
            input = &input[full..];
        } else {
            let full = input.len() - input.len() % BLOCK_LEN;
            let start = out.len();
            out.extend_from_slice(&input[..full]);
            encrypt_blocks_in_place(&self.cipher, &mut out[start..]);
            input = &input[full..];
        }
        self.pending[..input.len()].copy_from_slice(input);
        self.pending_len = input.len();
    }

    /// Encrypts the plaintext in `buf` in place, for a caller that owns the
    /// buffer (e.g. it just read a chunk of a file into it); this saves the
    /// copy that [`update`](Self::update) makes.
    ///
    /// `buf` may hold any number of bytes, none included, and calls may be
    /// mixed freely with [`update`](Self::update) on the same encryptor. On
    /// return `buf` holds the ciphertext of every block completed by this
    /// call, in order: the caller appends it to the output as it is, so its
    /// length is always a multiple of [`BLOCK_LEN`] and may differ from the
    /// plaintext's:
    ///
    /// - a trailing partial block (1 to 15 bytes) is cut off `buf` and held
    ///   back for the next call or [`finish`](Self::finish);
    /// - bytes held back by an earlier call are put in front of `buf`'s
    ///   plaintext first, so `buf` can grow by up to 15 bytes (reallocating
    ///   when its capacity has no room) and its contents move.
    ///
    /// Nothing moves and nothing is held back while every chunk but the
    /// last is a whole number of blocks long: that is the copy-free path,
    /// the one uploads take (their chunk size is a multiple of 16).
    pub fn update_in_place(&mut self, buf: &mut Vec<u8>) {
        self.consumed += buf.len() as u64;
        if self.pending_len > 0 {
            // Rare path: a previous chunk ended mid-block. Prepend its tail.
            let held = self.pending_len;
            buf.splice(0..0, self.pending[..held].iter().copied());
            self.pending_len = 0;
        }
        let full = buf.len() - buf.len() % BLOCK_LEN;
        let tail_len = buf.len() - full;
        self.pending[..tail_len].copy_from_slice(&buf[full..]);
        self.pending_len = tail_len;
        buf.truncate(full);
        encrypt_blocks_in_place(&self.cipher, buf);
    }

    /// Pads and encrypts the held-back bytes and returns the final block.
    pub fn finish(self) -> [u8; BLOCK_LEN] {
        let mut block = pad_block(&self.pending[..self.pending_len]);
        encrypt_blocks_in_place(&self.cipher, &mut block);
        block
    }
}

/// A streaming AES-128-ECB decryptor that checks PKCS#7 padding.
///
/// Feed ciphertext with [`update`](Self::update) in chunks of any size; each
/// call appends the plaintext of every block it can release. The last block
/// is always held back (it carries the padding) until
/// [`finish`](Self::finish), which validates the padding and the total
/// length and returns the last plaintext bytes. At most one block is held
/// between calls.
///
/// ```
/// use wxlink_media::{AesKey, crypto};
///
/// let key = AesKey::from_bytes([7; 16]);
/// let ciphertext = crypto::encrypt(&key, b"hello ilink, hello cdn");
/// let mut dec = crypto::Decryptor::new(&key);
/// let mut out = Vec::new();
/// for chunk in ciphertext.chunks(5) {
///     dec.update(chunk, &mut out);
/// }
/// out.extend_from_slice(&dec.finish()?);
/// assert_eq!(out, b"hello ilink, hello cdn");
/// # Ok::<(), wxlink_media::Error>(())
/// ```
pub struct Decryptor {
    cipher: Aes128,
    held: [u8; BLOCK_LEN],
    held_len: usize,
    consumed: u64,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("consumed", &self.consumed)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// Starts decrypting with `key`.
    pub fn new(key: &AesKey) -> Self {
        Self {
            cipher: cipher(key),
            held: [0; BLOCK_LEN],
            held_len: 0,
            consumed: 0,
        }
    }

    /// Ciphertext bytes fed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Decrypts `input`, appending the plaintext of every block that is
    /// certainly not the last one to `out`.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        self.consumed += input.len() as u64;
        // Of all bytes not yet released (held + input), release every whole
        // block but keep 1..=16 bytes back: the last block may be padding.
        let total = self.held_len + input.len();
        let release = (total - 1) / BLOCK_LEN * BLOCK_LEN;
        if release == 0 {
            self.held[self.held_len..total].copy_from_slice(input);
            self.held_len = total;
            return;
        }
        let start = out.len();
        out.reserve(release);
        out.extend_from_slice(&self.held[..self.held_len]);
        let from_input = release - self.held_len;
        out.extend_from_slice(&input[..from_input]);
        input = &input[from_input..];
        decrypt_blocks_in_place(&self.cipher, &mut out[start..]);
        self.held[..input.len()].copy_from_slice(input);
        self.held_len = input.len();
    }

    /// Validates the total length and the padding and returns the plaintext
    /// of the last block (0 to 15 bytes).
    ///
    /// # Errors
    ///
    /// [`Error::bad_ciphertext_len`] when the total length was zero or not
    /// a multiple of 16, [`Error::is_bad_padding`] when the padding is
    /// invalid.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        if self.held_len != BLOCK_LEN {
            return Err(ErrorKind::CiphertextLength { len: self.consumed }.into());
        }
        let mut block = self.held;
        decrypt_blocks_in_place(&self.cipher, &mut block);
        let keep = unpad_len(&block)?;
        Ok(block[..keep].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AesKey {
        AesKey::from_bytes([0x42; 16])
    }

    #[test]
    fn size_formula_matches_protocol_examples() {
        for (raw, cipher) in [(0, 16), (1, 16), (15, 16), (16, 32), (31, 32), (32, 48)] {
            assert_eq!(ciphertext_len(raw), cipher, "rawsize {raw}");
        }
    }

    #[test]
    fn decrypt_rejects_empty_and_unaligned_input() {
        assert!(matches!(
            decrypt(&key(), &[]).as_ref().map_err(Error::kind),
            Err(ErrorKind::CiphertextLength { len: 0 })
        ));
        let ct = encrypt(&key(), b"some bytes that span two blocks!");
        assert!(matches!(
            decrypt(&key(), &ct[..ct.len() - 1])
                .as_ref()
                .map_err(Error::kind),
            Err(ErrorKind::CiphertextLength { len: 47 })
        ));
    }

    #[test]
    fn decrypt_with_wrong_key_reports_bad_padding() {
        let ct = encrypt(&key(), b"hello");
        // A wrong key turns the padding into noise; the chance that noise
        // is valid padding is about 1/256 and this fixed key is not such a case.
        let wrong = AesKey::from_bytes([0x43; 16]);
        assert!(matches!(
            decrypt(&wrong, &ct).as_ref().map_err(Error::kind),
            Err(ErrorKind::BadPadding)
        ));
    }

    #[test]
    fn decryptor_rejects_truncation_at_a_block_boundary_as_bad_padding_or_length() {
        let ct = encrypt(&key(), &[9u8; 40]);
        let mut dec = Decryptor::new(&key());
        let mut out = Vec::new();
        dec.update(&ct[..33], &mut out);
        assert!(matches!(
            dec.finish().as_ref().map_err(Error::kind),
            Err(ErrorKind::CiphertextLength { len: 33 })
        ));
    }

    #[test]
    fn in_place_update_matches_copying_update() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut enc = Encryptor::new(&key());
        let mut out = Vec::new();
        for chunk in data.chunks(37) {
            let mut buf = chunk.to_vec();
            enc.update_in_place(&mut buf);
            out.extend_from_slice(&buf);
        }
        out.extend_from_slice(&enc.finish());
        assert_eq!(out, encrypt(&key(), &data));
    }

    #[test]
    fn key_and_decryption_errors_never_show_the_key() {
        let key = AesKey::from_bytes([0x5a; 16]);
        let ciphertext = encrypt(&key, b"a secret file");
        let wrong = AesKey::from_bytes([0x42; 16]);
        let mut errors = vec![
            decrypt(&wrong, &ciphertext).unwrap_err(),
            decrypt(&key, &ciphertext[..ciphertext.len() - 1]).unwrap_err(),
        ];
        // One hex digit short, one hex digit wrong, and base64 of 17 bytes.
        let hex = key.to_hex();
        errors.push(AesKey::from_hex(&hex[1..]).unwrap_err());
        errors.push(AesKey::from_hex(&format!("{}g", &hex[1..])).unwrap_err());
        errors.push(AesKey::parse_inbound(&format!("{}=", key.to_base64_raw())).unwrap_err());
        errors.push(
            crate::key::resolve_item_key(crate::kind::MediaKind::File, Some(&hex), None)
                .unwrap_err(),
        );
        for err in errors {
            let shown = format!("{err} {err:?}");
            for secret in [&hex[1..], &key.to_base64_raw(), &wrong.to_hex()] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
    }
}
