//! The f32 reference: the plan's ops in plain floating point.

use super::{Bilinear, Domain, Linear};
use anyhow::Result;
use ndarray::ArrayD;

pub struct FloatDomain;

impl Domain for FloatDomain {
    type Value = ArrayD<f32>;

    fn shape(value: &Self::Value) -> Vec<usize> {
        value.shape().to_vec()
    }

    fn constant(&mut self, c: &ArrayD<f32>) -> Result<Self::Value> {
        Ok(c.clone())
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
        map.apply(&x.view(), &y.view())
    }

    fn relu(&mut self, x: &Self::Value) -> Result<Self::Value> {
        Ok(x.mapv(|v| v.max(0.0)))
    }
}
