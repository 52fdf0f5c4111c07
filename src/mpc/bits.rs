//! XOR sharings: bit-sliced 64-bit words (one word per element), and single bits packed 64
//! to a word for sending.

use super::party::Party;

/// One party's view of an XOR sharing of words: components i and i+1.
#[derive(Clone, Debug)]
pub(crate) struct BoolShare {
    pub cur: Vec<u64>,
    pub next: Vec<u64>,
}

impl BoolShare {
    fn map(&self, f: impl Fn(u64) -> u64) -> BoolShare {
        BoolShare {
            cur: self.cur.iter().map(|&w| f(w)).collect(),
            next: self.next.iter().map(|&w| f(w)).collect(),
        }
    }

    pub fn shl(&self, s: u32) -> BoolShare {
        self.map(|w| w << s)
    }

    pub fn shr(&self, s: u32) -> BoolShare {
        self.map(|w| w >> s)
    }

    /// Bit `at` of every word, as 0/1 words.
    pub fn bit(&self, at: u32) -> BoolShare {
        self.map(|w| (w >> at) & 1)
    }

    pub fn xor(&self, o: &BoolShare) -> BoolShare {
        let x = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a ^ b).collect();
        BoolShare {
            cur: x(&self.cur, &o.cur),
            next: x(&self.next, &o.next),
        }
    }

    /// Complements the shared value under `mask` (flipping component 0 only).
    pub fn not(&self, party: &Party, mask: u64) -> BoolShare {
        let flip = |on: bool| if on { mask } else { 0 };
        let (fc, fn_) = (flip(party.id() == 0), flip(party.peer(1) == 0));
        BoolShare {
            cur: self.cur.iter().map(|w| w ^ fc).collect(),
            next: self.next.iter().map(|w| w ^ fn_).collect(),
        }
    }

    /// This party's XOR term of `self & o`, before masking and resharing: summed over the
    /// parties, the terms cover all nine cross products of components.
    pub fn and_term(&self, o: &BoolShare) -> Vec<u64> {
        (0..self.cur.len())
            .map(|i| {
                (self.cur[i] & o.cur[i]) ^ (self.cur[i] & o.next[i]) ^ (self.next[i] & o.cur[i])
            })
            .collect()
    }
}

/// Bit 0 of word k goes to bit k % 64 of word k / 64.
pub(crate) fn pack_bits(bits: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; bits.len().div_ceil(64)];
    for (k, b) in bits.iter().enumerate() {
        out[k / 64] |= (b & 1) << (k % 64);
    }
    out
}

pub(crate) fn unpack_bits(packed: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|k| (packed[k / 64] >> (k % 64)) & 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let bits: Vec<u64> = (0..130).map(|i| (i * 7 % 3 == 0) as u64).collect();
        let packed = pack_bits(&bits);
        assert_eq!(packed.len(), 3);
        assert_eq!(unpack_bits(&packed, 130), bits);
    }
}
