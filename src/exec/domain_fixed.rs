//! Plaintext fixed point: the MPC arithmetic without the secret sharing. Products are
//! truncated by rounding to nearest, where the protocol adds one unit of unbiased noise, and
//! non-linear functions use the same approximations as mpc.

use super::approx::{self, Ring};
use super::maps::AddMap;
use super::{Bilinear, Domain, Linear};
use crate::plan::Function;
use crate::tensor::FixedPoint;
use crate::tensor::fixed::{shift_right, top_bit_onehot};
use anyhow::Result;
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
        Ok(map
            .apply(&x.view(), &y.view())?
            .mapv(|v| self.fixed.truncate(v)))
    }

    fn gate(&mut self, x: &Self::Value, ys: &[&Self::Value]) -> Result<Vec<Self::Value>> {
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
        Ok(top_bit_onehot(x.view(), width))
    }
}
