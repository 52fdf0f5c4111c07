//! Plaintext fixed point: the MPC arithmetic without the secret sharing. Products are
//! truncated by flooring, where the protocol may add one unit in the last place.

use super::{Bilinear, Domain, Linear};
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::ArrayD;

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

    fn relu(&mut self, x: &Self::Value) -> Result<Self::Value> {
        Ok(x.mapv(|v| if (v as i64) < 0 { 0 } else { v }))
    }
}
