//! The ring an aggregation runs in: Z_2^32 when the sum's bound allows it (4 bytes per value
//! on the wire, two values packed per transport word), Z_2^64 otherwise. Values are held in
//! u64 throughout and reduced only when packed, since reduction mod 2^32 commutes with the
//! wrapping sums and products of Z_2^64.

use crate::mpc::prf::Prf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    Z32,
    Z64,
}

impl Ring {
    pub fn bits(self) -> u32 {
        match self {
            Ring::Z32 => 32,
            Ring::Z64 => 64,
        }
    }

    /// The smallest ring whose signed range holds every |value| up to `bound` (the largest
    /// magnitude the sum can take), or `None` when not even Z_2^64 does.
    pub fn holding(bound: f64) -> Option<Ring> {
        [Ring::Z32, Ring::Z64]
            .into_iter()
            .find(|r| bound < 2f64.powi(r.bits() as i32 - 1))
    }

    /// Transport words that carry `n` values.
    pub fn words(self, n: usize) -> usize {
        match self {
            Ring::Z32 => n.div_ceil(2),
            Ring::Z64 => n,
        }
    }

    /// `values` reduced into the ring, packed into transport words.
    pub fn pack(self, values: &[u64]) -> Vec<u64> {
        match self {
            Ring::Z64 => values.to_vec(),
            Ring::Z32 => values
                .chunks(2)
                .map(|p| (p[0] & 0xffff_ffff) | (p.get(1).copied().unwrap_or(0) << 32))
                .collect(),
        }
    }

    /// The first `n` values packed in `words`.
    pub fn unpack(self, words: &[u64], n: usize) -> Vec<u64> {
        match self {
            Ring::Z64 => words[..n].to_vec(),
            Ring::Z32 => words
                .iter()
                .flat_map(|w| [w & 0xffff_ffff, w >> 32])
                .take(n)
                .collect(),
        }
    }

    /// `n` uniform ring elements from `prf`'s stream for `nonce`.
    pub fn uniform(self, prf: &Prf, nonce: u64, n: usize) -> Vec<u64> {
        self.unpack(&prf.words(nonce, self.words(n)), n)
    }

    /// A ring element read as a signed integer (two's complement in the ring's width).
    pub fn signed(self, v: u64) -> i64 {
        match self {
            Ring::Z32 => v as u32 as i32 as i64,
            Ring::Z64 => v as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_reduces_and_reads_signs() {
        let values = [1u64, u64::MAX, 5, (1 << 40) + 7, 3];
        let packed = Ring::Z32.pack(&values);
        assert_eq!(packed.len(), Ring::Z32.words(values.len()));
        let back = Ring::Z32.unpack(&packed, values.len());
        assert_eq!(back, [1, 0xffff_ffff, 5, 7, 3]);
        assert_eq!(Ring::Z32.signed(back[1]), -1);
        assert_eq!(Ring::Z64.signed(u64::MAX), -1);
        assert_eq!(Ring::Z64.unpack(&Ring::Z64.pack(&values), 5), values);
        assert_eq!(Ring::holding(2f64.powi(31) - 1.0), Some(Ring::Z32));
        assert_eq!(Ring::holding(2f64.powi(31)), Some(Ring::Z64));
        assert_eq!(Ring::holding(2f64.powi(63)), None);
        let prf = Prf::new([7; 16]);
        let u = Ring::Z32.uniform(&prf, 1, 3);
        assert!(u.iter().all(|&v| v < 1 << 32));
        assert_eq!(u, Ring::Z32.unpack(&prf.words(1, 2), 3));
    }
}
