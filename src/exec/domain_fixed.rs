//! Plaintext fixed point: the MPC arithmetic without the secret sharing. Products are
//! truncated by rounding to nearest, where the protocol adds one unit of unbiased noise, and
//! non-linear functions use the same approximations as mpc.

use super::approx::{self, Ring};
use super::maps::AddMap;
use super::{Bilinear, Domain, Linear};
use crate::plan::Function;
use crate::tensor::FixedPoint;
use crate::tensor::fixed::{shift_right, top_bit_onehot};
use anyhow::{Result, bail};
use ndarray::{ArrayD, IxDyn, Zip};

pub struct FixedDomain {
    pub fixed: FixedPoint,
}

impl Domain for FixedDomain {
    type Value = ArrayD<u64>;

    fn shape(value: &Self::Value) -> Vec<usize> {
        value.shape().to_vec()
    }

    fn constant(&mut self, c: &ArrayD<f32>) -> Result<Self::Value> {
        Ok(self.fixed.encode_array(c.view())?)
    }

    fn linear<L: Linear>(&mut self, map: &L, xs: &[&Self::Value]) -> Result<Self::Value> {
        map.apply_to(xs)
    }

    fn bilinear<B: Bilinear>(
        &mut self,
        map: &B,
        x: &Self::Value,
        y: &Self::Value,
    ) -> Result<Self::Value> {
        let product = map.apply(&x.view(), &y.view())?;
        check_product(map, x, y, &product, self.fixed.frac_bits)?;
        Ok(product.mapv(|v| self.fixed.truncate(v)))
    }

    fn gate(&mut self, x: &Self::Value, ys: &[&Self::Value]) -> Result<Vec<Self::Value>> {
        let width = self.fixed.comparison_bits();
        check_range(x, 1 << (width - 1), |at, v| {
            format!(
                "a comparison input reaches {} (element {at}), outside the {width}-bit comparison's range |x| < 2^{}; the secure comparison would answer wrongly",
                magnitude(v),
                width - 1
            )
        })?;
        Ok(ys
            .iter()
            .map(|y| {
                Zip::from(x).and(*y).map_collect(|&x, &y| {
                    if self.fixed.compares_nonnegative(x) {
                        y
                    } else {
                        0
                    }
                })
            })
            .collect())
    }

    fn function(&mut self, f: Function, x: &Self::Value) -> Result<Self::Value> {
        approx::evaluate(self, f, x)
    }
}

impl Ring for FixedDomain {
    fn frac_bits(&self) -> u32 {
        self.fixed.frac_bits
    }

    fn ring_scalar(&mut self, v: u64) -> Result<Self::Value> {
        Ok(ArrayD::from_elem(IxDyn(&[]), v))
    }

    fn products_shift<B: Bilinear>(
        &mut self,
        map: &B,
        pairs: &[(&Self::Value, &Self::Value)],
        addend: Option<&Self::Value>,
        shift: u32,
    ) -> Result<Self::Value> {
        let mut sum: Option<Self::Value> = addend.cloned();
        for (x, y) in pairs {
            let product = map.apply(&x.view(), &y.view())?;
            sum = Some(match sum {
                None => product,
                Some(acc) => AddMap.apply_to(&[&acc, &product])?,
            });
        }
        let sum = sum.ok_or_else(|| anyhow::anyhow!("a sum of no products"))?;
        Ok(sum.mapv(|v| shift_right(v, shift)))
    }

    fn msb_onehot(&mut self, x: &Self::Value, width: u32) -> Result<Self::Value> {
        // Its comparisons read x - 2^i at width + 1 bits.
        check_range(x, 1 << width.min(62), |at, v| {
            format!(
                "a value whose top bit is located reaches {} (element {at}), outside its range |x| < 2^{width}",
                magnitude(v)
            )
        })?;
        Ok(top_bit_onehot(x.view(), width))
    }
}

/// What fixed point adds to the error when a value leaves the range the protocol handles.
const FIX: &str = "mpc would give a wrong answer here. Use fewer fractional bits (tfe-convert --frac-bits N) or scale the model's inputs; tfe-convert --calibrate SAMPLES.npy reports every node's range and recommends the bits";

/// `v` in ring units as a power of two, for messages.
fn magnitude(v: i128) -> String {
    format!("2^{:.1}", (v.unsigned_abs() as f64).log2())
}

/// Refuses the first element of `x` with |x| >= `limit` (ring units, two's complement).
fn check_range(x: &ArrayD<u64>, limit: i128, what: impl Fn(usize, i128) -> String) -> Result<()> {
    match x.iter().position(|&v| (v as i64 as i128).abs() >= limit) {
        Some(at) => bail!(
            "{}; {FIX}",
            what(at, x.iter().nth(at).map_or(0, |&v| v as i64 as i128))
        ),
        None => Ok(()),
    }
}

/// Refuses a step's product that the ring cannot hold as the protocol needs: below 2^62
/// before its truncation (the secure truncation is exact only there). The ring wraps
/// silently, so the product is estimated again in f32 from the operands (a relative error
/// near 1e-7, far below the gap): a wrapped product differs from its estimate by a multiple
/// of 2^64. Products inside the approximations are not checked: some of their lanes leave
/// the range by design where a select then discards them, and their inputs are.
fn check_product<B: Bilinear>(
    map: &B,
    x: &ArrayD<u64>,
    y: &ArrayD<u64>,
    product: &ArrayD<u64>,
    frac_bits: u32,
) -> Result<()> {
    let real = |v: &ArrayD<u64>| v.mapv(|v| v as i64 as f32);
    let estimate = map.apply(&real(x).view(), &real(y).view())?;
    let wrong = product.iter().zip(&estimate).position(|(&exact, &e)| {
        let exact = exact as i64;
        let off = (e - exact as f32).abs();
        exact.unsigned_abs() >= 1 << 62 || off.is_nan() || off >= 2f32.powi(61)
    });
    let Some(at) = wrong else {
        return Ok(());
    };
    let e = estimate.iter().nth(at).copied().unwrap_or_default() as f64;
    let scale = 2f64.powi(2 * frac_bits as i32);
    bail!(
        "a product reaches {:.4e} (element {at}; 2^{:.1} in the ring) before its truncation, beyond the range |z| < 2^62 in the ring ({:.4e} at {frac_bits} fractional bits); {FIX}",
        e / scale,
        e.abs().log2(),
        2f64.powi(62) / scale
    )
}
