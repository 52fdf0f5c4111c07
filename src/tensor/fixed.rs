//! Fixed-point encoding of reals into Z_2^64: `x` is stored as `round(x * 2^f)` in two's
//! complement.
//!
//! The documented value range follows from the truncation protocol (see `mpc::truncate`),
//! which is within one unit of the rounded quotient as long as every product, held at scale
//! 2^(2f) before truncation, stays below 2^62 in magnitude. Every value, input, weight and
//! intermediate, must therefore satisfy |x| < 2^(62 - 2f): 2^30 (about 1.07e9) for f = 16.

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

/// Bits of the ring: all shares and fixed-point values live in Z_2^64.
pub const RING_BITS: u32 = 64;
/// Headroom the truncation needs: products must stay below 2^PRODUCT_BITS in magnitude.
pub const PRODUCT_BITS: u32 = 62;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPoint {
    pub frac_bits: u32,
}

/// Why a real number cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EncodeError {
    NotFinite {
        index: usize,
        value: f32,
    },
    OutOfRange {
        index: usize,
        value: f32,
        limit: f64,
    },
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::NotFinite { index, value } => {
                write!(
                    f,
                    "element {index} is {value}, which has no fixed-point encoding"
                )
            }
            EncodeError::OutOfRange {
                index,
                value,
                limit,
            } => write!(
                f,
                "element {index} is {value}, outside the fixed-point range |x| < {limit:e}"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

impl FixedPoint {
    pub const DEFAULT_FRAC_BITS: u32 = 16;
    /// Frac bits beyond this leave less than 2^10 of integer range, too little for real models.
    pub const MAX_FRAC_BITS: u32 = 26;

    pub fn new(frac_bits: u32) -> Result<Self, String> {
        if (1..=Self::MAX_FRAC_BITS).contains(&frac_bits) {
            Ok(FixedPoint { frac_bits })
        } else {
            Err(format!(
                "{frac_bits} fractional bits is outside the supported 1..={} (products at scale \
                 2^(2f) must fit below 2^{PRODUCT_BITS} with room for the integer part)",
                Self::MAX_FRAC_BITS
            ))
        }
    }

    pub fn scale(&self) -> f64 {
        (1u64 << self.frac_bits) as f64
    }

    /// Largest magnitude any value may take (exclusive).
    pub fn max_abs(&self) -> f64 {
        2f64.powi((PRODUCT_BITS - 2 * self.frac_bits) as i32)
    }

    pub fn encode(&self, x: f32, index: usize) -> Result<u64, EncodeError> {
        if !x.is_finite() {
            return Err(EncodeError::NotFinite { index, value: x });
        }
        let limit = self.max_abs();
        if (x as f64).abs() >= limit {
            return Err(EncodeError::OutOfRange {
                index,
                value: x,
                limit,
            });
        }
        Ok(((x as f64) * self.scale()).round() as i64 as u64)
    }

    pub fn decode(&self, v: u64) -> f32 {
        ((v as i64) as f64 / self.scale()) as f32
    }

    pub fn encode_array(&self, x: ArrayViewD<f32>) -> Result<ArrayD<u64>, EncodeError> {
        let mut out = ArrayD::zeros(x.raw_dim());
        for (index, (o, &v)) in out.iter_mut().zip(x.iter()).enumerate() {
            *o = self.encode(v, index)?;
        }
        Ok(out)
    }

    pub fn decode_array(&self, v: ArrayViewD<u64>) -> ArrayD<f32> {
        v.mapv(|v| self.decode(v))
    }

    /// Bits a comparison reads. Values satisfy |x| < 2^(62 - f) in ring units, so a
    /// difference of two values is below 2^(63 - f) in magnitude and its sign is bit 63 - f
    /// of the value mod 2^(64 - f); reading fewer bits makes secure comparisons cheaper.
    pub fn comparison_bits(&self) -> u32 {
        RING_BITS - self.frac_bits
    }

    /// Whether `v` is nonnegative, as a comparison of [`Self::comparison_bits`] bits reads it.
    pub fn compares_nonnegative(&self, v: u64) -> bool {
        (v >> (self.comparison_bits() - 1)) & 1 == 0
    }

    /// Division by 2^f of a two's complement value, rounded to nearest: the plaintext model
    /// of truncation.
    pub fn truncate(&self, v: u64) -> u64 {
        shift_right(v, self.frac_bits)
    }
}

/// Division by 2^bits rounding to nearest (halves up), for two's complement ring values:
/// what the truncation protocol computes up to its one unit of unbiased noise.
pub fn shift_right(v: u64, bits: u32) -> u64 {
    match bits {
        0 => v,
        _ => ((v as i64).wrapping_add(1 << (bits - 1)) >> bits) as u64,
    }
}

/// 0/1 indicators of each value's top set bit among bits 0..width, stacked along a new
/// axis 0 (all zero for values that are 0, negative, or too wide).
pub fn top_bit_onehot(x: ArrayViewD<u64>, width: u32) -> ArrayD<u64> {
    let mut shape = vec![width as usize];
    shape.extend_from_slice(x.shape());
    let flat: Vec<u64> = x.iter().copied().collect();
    let n = flat.len();
    let mut out = vec![0u64; width as usize * n];
    for (k, &v) in flat.iter().enumerate() {
        let top = 63 - v.leading_zeros();
        if v != 0 && top < width {
            out[top as usize * n + k] = 1;
        }
    }
    ArrayD::from_shape_vec(ndarray::IxDyn(&shape), out).expect("length matches shape")
}

impl Default for FixedPoint {
    fn default() -> Self {
        FixedPoint {
            frac_bits: Self::DEFAULT_FRAC_BITS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_half_an_ulp() {
        let fp = FixedPoint::default();
        for &x in &[0.0f32, 1.0, -1.0, 3.25159, -2.5e-5, 12345.678, -1.0e8] {
            let back = fp.decode(fp.encode(x, 0).unwrap());
            assert!(
                (back - x).abs() <= 0.5 / fp.scale() as f32 + x.abs() * 1e-7,
                "{x} -> {back}"
            );
        }
    }

    #[test]
    fn rejects_non_finite_and_out_of_range() {
        let fp = FixedPoint::default();
        assert!(matches!(
            fp.encode(f32::NAN, 3),
            Err(EncodeError::NotFinite { index: 3, .. })
        ));
        assert!(matches!(
            fp.encode(f32::INFINITY, 0),
            Err(EncodeError::NotFinite { .. })
        ));
        assert!(matches!(
            fp.encode(2.0e9, 0),
            Err(EncodeError::OutOfRange { .. })
        ));
        assert!(fp.encode(1.0e9, 0).is_ok());
    }

    #[test]
    fn truncation_rounds_to_nearest_on_both_signs() {
        let fp = FixedPoint::new(4).unwrap();
        assert_eq!(fp.truncate((-17i64) as u64) as i64, -1);
        assert_eq!(fp.truncate((-25i64) as u64) as i64, -2);
        assert_eq!(fp.truncate((-24i64) as u64) as i64, -1);
        assert_eq!(fp.truncate(17), 1);
        assert_eq!(fp.truncate(24), 2);
        assert_eq!(fp.truncate(23), 1);
    }

    #[test]
    fn frac_bits_are_bounded() {
        assert!(FixedPoint::new(0).is_err());
        assert!(FixedPoint::new(27).is_err());
        assert!(FixedPoint::new(16).is_ok());
    }
}
