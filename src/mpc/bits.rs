//! XOR sharings of bits, laid out two ways: bit-sliced (one 64-bit word per element, bit i
//! of the word is bit i of the element) where every bit of a value is needed, and bit
//! planes (plane i packs bit i of 64 elements per word) where only some bits are, so that
//! each AND of single bits costs one bit on the wire instead of a word.

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

    pub fn xor(&self, o: &BoolShare) -> BoolShare {
        let x = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a ^ b).collect();
        BoolShare {
            cur: x(&self.cur, &o.cur),
            next: x(&self.next, &o.next),
        }
    }

    /// Words `planes` of a sharing of bit planes `words` words long each.
    pub fn planes(&self, words: usize, planes: std::ops::Range<usize>) -> BoolShare {
        let range = planes.start * words..planes.end * words;
        BoolShare {
            cur: self.cur[range.clone()].to_vec(),
            next: self.next[range].to_vec(),
        }
    }

    /// This sharing xor the listed planes of `o`, in order (planes `words` words long), in
    /// place: the planes are not gathered first.
    pub fn xor_planes(
        mut self,
        o: &BoolShare,
        words: usize,
        planes: impl Iterator<Item = usize>,
    ) -> BoolShare {
        for (at, plane) in planes.enumerate() {
            let (to, from) = (
                at * words..(at + 1) * words,
                plane * words..(plane + 1) * words,
            );
            for (mine, theirs) in [(&mut self.cur, &o.cur), (&mut self.next, &o.next)] {
                for (m, t) in mine[to.clone()].iter_mut().zip(&theirs[from.clone()]) {
                    *m ^= t;
                }
            }
        }
        self
    }

    /// This sharing followed by `more`.
    pub fn append(mut self, more: &BoolShare) -> BoolShare {
        self.cur.extend_from_slice(&more.cur);
        self.next.extend_from_slice(&more.next);
        self
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
        self.and_term_planes(o, self.cur.len(), std::iter::once((0, 0)))
    }

    /// [`BoolShare::and_term`] of plane i of `self` and plane j of `o` for each (i, j), in
    /// order (planes `words` words long), read in place.
    pub fn and_term_planes(
        &self,
        o: &BoolShare,
        words: usize,
        pairs: impl ExactSizeIterator<Item = (usize, usize)>,
    ) -> Vec<u64> {
        // Sized up front: the terms become a round's values and then a component kept.
        let mut terms = Vec::with_capacity(pairs.len() * words);
        for (i, j) in pairs {
            terms.extend((0..words).map(|k| {
                let (a, b) = (i * words + k, j * words + k);
                (self.cur[a] & o.cur[b]) ^ (self.cur[a] & o.next[b]) ^ (self.next[a] & o.cur[b])
            }));
        }
        terms
    }
}

impl From<(Vec<u64>, Vec<u64>)> for BoolShare {
    fn from((cur, next): (Vec<u64>, Vec<u64>)) -> BoolShare {
        BoolShare { cur, next }
    }
}

/// Bit planes of the low `width` bits of `values`: bit t of word j of plane i is bit i of
/// `values[64 j + t]`.
pub(crate) fn to_planes(values: &[u64], width: u32) -> Vec<u64> {
    let words = values.len().div_ceil(64);
    let mut planes = vec![0u64; width as usize * words];
    let mut block = [0u64; 64];
    for (j, chunk) in values.chunks(64).enumerate() {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose_bits(&mut block);
        for (i, &plane) in block.iter().take(width as usize).enumerate() {
            planes[i * words + j] = plane;
        }
    }
    planes
}

/// Transposes a 64x64 bit matrix in place (bit c of word r becomes bit r of word c) by
/// swapping ever smaller off-diagonal blocks: 6 passes of 32 word operations instead of
/// one per bit, since A2B transposes every value compared.
fn transpose_bits(m: &mut [u64; 64]) {
    let mut width = 32;
    let mut mask: u64 = 0x0000_0000_ffff_ffff;
    while width != 0 {
        let mut k = 0;
        while k < 64 {
            // Swap the high `width` columns of row k with the low ones of row k + width,
            // within each 2*width-column group.
            let t = ((m[k] >> width) ^ m[k + width]) & mask;
            m[k] ^= t << width;
            m[k + width] ^= t;
            k = (k + width + 1) & !width;
        }
        width >>= 1;
        mask ^= mask << width;
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

    #[test]
    fn planes_hold_one_bit_of_every_value() {
        let values: Vec<u64> = (0..70u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let planes = to_planes(&values, 64);
        assert_eq!(planes.len(), 64 * 2);
        for (k, v) in values.iter().enumerate() {
            for i in 0..64 {
                assert_eq!((planes[i * 2 + k / 64] >> (k % 64)) & 1, (v >> i) & 1);
            }
        }
        assert_eq!(to_planes(&values, 5).len(), 10);
    }
}
