//! Pseudorandom streams: AES-128 in counter mode under keys drawn from the OS CSPRNG.
//!
//! Two parties holding the same key derive the same stream for the same nonce without
//! talking; that is how zero-sharings, masks and dealer randomness are made without a
//! trusted dealer. There is no fallback: if the OS cannot supply randomness, setup fails.

use aes::Aes128;
use anyhow::{Context, Result};
use ctr::cipher::{KeyIvInit, StreamCipher};

type Cipher = ctr::Ctr64LE<Aes128>;

pub type Key = [u8; 16];

/// A fresh key from the operating system's CSPRNG.
pub fn os_key() -> Result<Key> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).context("the operating system's random number generator failed; refusing to continue without secure randomness")?;
    Ok(key)
}

#[derive(Clone)]
pub struct Prf {
    key: Key,
}

/// A stream being read: each [`Stream::fill`] continues where the last one stopped.
pub struct Stream(Cipher);

impl Stream {
    /// Fills `out` with the next `out.len()` words of the stream.
    pub fn fill(&mut self, out: &mut [u64]) {
        out.fill(0);
        self.0.apply_keystream(bytemuck::cast_slice_mut(out));
        for v in out.iter_mut() {
            *v = u64::from_le(*v);
        }
    }
}

impl Prf {
    pub fn new(key: Key) -> Prf {
        Prf { key }
    }

    /// Fills `out` with the stream for `nonce`. Each (key, nonce) pair must be used once.
    pub fn fill(&self, nonce: u64, out: &mut [u64]) {
        self.stream(nonce).fill(out);
    }

    pub fn words(&self, nonce: u64, n: usize) -> Vec<u64> {
        let mut out = vec![0u64; n];
        self.fill(nonce, &mut out);
        out
    }

    /// The stream for `nonce`, to be read a piece at a time (the pieces concatenate to what
    /// [`Prf::fill`] gives), so that a long stream need not be held whole.
    pub fn stream(&self, nonce: u64) -> Stream {
        // Ctr64LE counts blocks in the first 8 IV bytes; the nonce takes the other 8.
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&nonce.to_le_bytes());
        Stream(Cipher::new(&self.key.into(), &iv.into()))
    }

    /// Key material as ring words, for sending a key to the party that shares it.
    pub fn key_words(&self) -> [u64; 2] {
        [
            u64::from_le_bytes(self.key[..8].try_into().unwrap()),
            u64::from_le_bytes(self.key[8..].try_into().unwrap()),
        ]
    }

    pub fn from_key_words(words: &[u64]) -> Option<Prf> {
        let [a, b]: [u64; 2] = words.try_into().ok()?;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
        Some(Prf::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_key_and_nonce_and_look_uniform() {
        let a = Prf::new([1; 16]);
        let b = Prf::new([2; 16]);
        assert_eq!(a.words(5, 100), a.words(5, 100));
        assert_ne!(a.words(5, 100), a.words(6, 100));
        assert_ne!(a.words(5, 100), b.words(5, 100));
        // prefix property: a longer draw extends a shorter one
        assert_eq!(a.words(7, 3)[..], a.words(7, 10)[..3]);
        let ones: u32 = a.words(9, 4096).iter().map(|w| w.count_ones()).sum();
        let expected = 4096 * 32;
        assert!(
            (ones as i64 - expected as i64).abs() < 2000,
            "bit balance {ones} vs {expected}"
        );
        // read in odd-sized pieces, a stream is the same words
        let mut pieces = vec![0u64; 10];
        let mut stream = a.stream(7);
        let (first, rest) = pieces.split_at_mut(3);
        stream.fill(first);
        stream.fill(rest);
        assert_eq!(pieces, a.words(7, 10));
        let key = Prf::new(os_key().unwrap());
        assert_eq!(
            Prf::from_key_words(&key.key_words()).unwrap().words(1, 4),
            key.words(1, 4)
        );
    }
}
