//! The f32 reference: the plan's ops in plain floating point, non-linear functions exact.

use super::{Bilinear, Domain, Linear};
use crate::plan::Function;
use anyhow::Result;
use ndarray::{ArrayD, Zip};

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

    fn gate(&mut self, x: &Self::Value, ys: &[&Self::Value]) -> Result<Vec<Self::Value>> {
        Ok(ys
            .iter()
            .map(|y| {
                Zip::from(x)
                    .and(*y)
                    .map_collect(|&x, &y| if x >= 0.0 { y } else { 0.0 })
            })
            .collect())
    }

    fn function(&mut self, f: Function, x: &Self::Value) -> Result<Self::Value> {
        Ok(x.mapv(|v| f.exact(v as f64) as f32))
    }
}
