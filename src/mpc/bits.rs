//! XOR sharings of bits packed 64 to a word, and bit planes (plane i packs bit i of 64
//! elements per word), so that the comparison handles a bit of 64 values in one word
//! operation and sends one bit on the wire per value where it sends a bit.

/// One party's view of an XOR sharing of packed bits: components i and i+1.
#[derive(Clone, Debug)]
pub(crate) struct BoolShare {
    pub cur: Vec<u64>,
    pub next: Vec<u64>,
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
/// one per bit, since the comparison transposes every value compared.
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

/// Bit `i` of bits packed 64 to a word.
pub(crate) fn bit(packed: &[u64], i: usize) -> bool {
    (packed[i / 64] >> (i % 64)) & 1 == 1
}

/// A share's components in memory order, borrowed when they are contiguous (as the
/// interpreter's arrays are), copied otherwise.
pub(crate) fn words(x: &ndarray::ArrayD<u64>) -> std::borrow::Cow<'_, [u64]> {
    match x.as_slice() {
        Some(words) => std::borrow::Cow::Borrowed(words),
        None => std::borrow::Cow::Owned(x.iter().copied().collect()),
    }
}

pub(crate) fn unpack_bits(packed: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|k| (packed[k / 64] >> (k % 64)) & 1).collect()
}

/// Words that [`pack_fields`] makes of `count` fields of `bits` bits.
pub(crate) fn fields_words(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(64)
}

/// The low `bits` bits of each value, back to back across word boundaries: the truncation's
/// corrections are small integers, sent in the bits they need.
pub(crate) fn pack_fields(values: &[u64], bits: u32) -> Vec<u64> {
    let mask = u64::MAX >> (64 - bits);
    let mut out = vec![0u64; fields_words(values.len(), bits)];
    for (k, v) in values.iter().enumerate() {
        let at = k * bits as usize;
        let (word, offset) = (at / 64, at % 64);
        let v = v & mask;
        out[word] |= v << offset;
        if offset + bits as usize > 64 {
            out[word + 1] |= v >> (64 - offset);
        }
    }
    out
}

/// The `count` fields of `bits` bits that [`pack_fields`] packed.
pub(crate) fn unpack_fields(packed: &[u64], bits: u32, count: usize) -> Vec<u64> {
    let mask = u64::MAX >> (64 - bits);
    (0..count)
        .map(|k| {
            let at = k * bits as usize;
            let (word, offset) = (at / 64, at % 64);
            let mut v = packed[word] >> offset;
            if offset + bits as usize > 64 {
                v |= packed[word + 1] << (64 - offset);
            }
            v & mask
        })
        .collect()
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

    #[test]
    fn fields_round_trip_across_word_boundaries() {
        for bits in [1, 17, 33, 62] {
            let values: Vec<u64> = (0..100u64)
                .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let packed = pack_fields(&values, bits);
            assert_eq!(packed.len(), (100 * bits as usize).div_ceil(64));
            let mask = u64::MAX >> (64 - bits);
            let want: Vec<u64> = values.iter().map(|v| v & mask).collect();
            assert_eq!(unpack_fields(&packed, bits, 100), want);
        }
    }
}
