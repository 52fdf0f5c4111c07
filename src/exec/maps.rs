//! The linear and bilinear maps behind each op, written once over any element type.

use super::{Bilinear, Linear};
use crate::tensor::{
    Elem, Window,
    broadcast::{select, zip_with},
    conv::conv,
    layout,
    matmul::matmul,
    movement::{self, AxisSlice},
    window,
};
use anyhow::Result;
use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

pub struct MatMulMap;
impl Bilinear for MatMulMap {
    fn apply<E: Elem>(&self, a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>> {
        matmul(a, b)
    }
}

pub struct ConvMap<'a> {
    pub window: &'a Window,
    pub groups: usize,
}
impl Bilinear for ConvMap<'_> {
    fn apply<E: Elem>(&self, a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>> {
        conv(a, b, self.window, self.groups)
    }
}

pub struct ConvTransposeMap<'a> {
    pub window: &'a Window,
    pub groups: usize,
    pub output: &'a [usize],
}
impl Bilinear for ConvTransposeMap<'_> {
    fn apply<E: Elem>(&self, a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>> {
        crate::tensor::conv::conv_transpose(a, b, self.window, self.output, self.groups)
    }
}

pub struct MulMap;
impl Bilinear for MulMap {
    fn apply<E: Elem>(&self, a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>> {
        zip_with(a, b, E::mul)
    }
}

pub struct AddMap;
impl Linear for AddMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        zip_with(&xs[0], &xs[1], E::add)
    }
}

pub struct SubMap;
impl Linear for SubMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        zip_with(&xs[0], &xs[1], E::sub)
    }
}

pub struct WindowPlanesMap<'a> {
    pub window: &'a Window,
}
impl Linear for WindowPlanesMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        window::window_planes(&xs[0], self.window)
    }
}

pub struct SumPoolMap<'a> {
    pub window: &'a Window,
}
impl Linear for SumPoolMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        window::sum_pool(&xs[0], self.window)
    }
}

pub struct ReduceSumMap<'a> {
    pub axes: &'a [usize],
    pub keep_dims: bool,
}
impl Linear for ReduceSumMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        layout::reduce_sum(&xs[0], self.axes, self.keep_dims)
    }
}

pub struct ReshapeMap {
    pub shape: Vec<usize>,
}
impl Linear for ReshapeMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        layout::reshape(&xs[0], &self.shape)
    }
}

pub struct TransposeMap<'a> {
    pub perm: &'a [usize],
}
impl Linear for TransposeMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        layout::transpose(&xs[0], self.perm)
    }
}

pub struct ConcatMap {
    pub axis: usize,
}
impl Linear for ConcatMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        layout::concat(xs, self.axis)
    }
}

pub struct SliceAxis0Map {
    pub start: usize,
    pub end: usize,
}
impl Linear for SliceAxis0Map {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        Ok(xs[0]
            .slice_axis(Axis(0), Slice::from(self.start..self.end))
            .to_owned())
    }
}

/// Stacks same-shaped inputs along a new axis 0 (so one comparison round serves them all).
pub struct StackMap;
impl Linear for StackMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        let views: Vec<_> = xs.iter().map(|x| x.clone().insert_axis(Axis(0))).collect();
        Ok(ndarray::concatenate(Axis(0), &views)?)
    }
}

pub struct BroadcastMap<'a> {
    pub shape: &'a [usize],
}
impl Linear for BroadcastMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        xs[0]
            .broadcast(ndarray::IxDyn(self.shape))
            .map(|v| v.to_owned())
            .ok_or_else(|| {
                anyhow::anyhow!("cannot broadcast {:?} to {:?}", xs[0].shape(), self.shape)
            })
    }
}

/// Multiplication by a public integer: exact, no rescaling.
pub struct ScaleMap(pub i64);
impl Linear for ScaleMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        let k = E::from_i64(self.0);
        Ok(xs[0].mapv(|v| v.mul(k)))
    }
}

/// Sum over axis 0 with public integer weights, one per index.
pub struct WeightedSumMap<'a>(pub &'a [i64]);
impl Linear for WeightedSumMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        anyhow::ensure!(
            xs[0].shape()[0] == self.0.len(),
            "weights do not match axis 0"
        );
        let mut out = ArrayD::from_elem(ndarray::IxDyn(&xs[0].shape()[1..]), E::ZERO);
        for (plane, &w) in xs[0].axis_iter(Axis(0)).zip(self.0) {
            let w = E::from_i64(w);
            ndarray::Zip::from(&mut out)
                .and(&plane)
                .for_each(|o, &v| *o = o.add(v.mul(w)));
        }
        Ok(out)
    }
}

/// `count` elements of axis 0 from `start` every `step`.
pub struct StridedAxis0Map {
    pub start: usize,
    pub step: usize,
    pub count: usize,
}
impl Linear for StridedAxis0Map {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        let end = self.start + self.step * (self.count.max(1) - 1) + 1;
        let slice = Slice::new(self.start as isize, Some(end as isize), self.step as isize);
        Ok(xs[0].slice_axis(Axis(0), slice).to_owned())
    }
}

/// Element-wise product with a public 0/1 mask (a selection by a public condition).
pub struct MaskMap<'a> {
    pub mask: &'a ArrayD<u64>,
}
impl Linear for MaskMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        let mask = self
            .mask
            .mapv(|m| if m == 1 { E::from_i64(1) } else { E::ZERO });
        zip_with(&xs[0], &mask.view(), E::mul)
    }
}

pub struct SliceMap<'a> {
    pub slices: &'a [AxisSlice],
}
impl Linear for SliceMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::slice(&xs[0], self.slices)
    }
}

pub struct GatherMap<'a> {
    pub axis: usize,
    pub indices: &'a [usize],
}
impl Linear for GatherMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::gather(&xs[0], self.axis, self.indices)
    }
}

pub struct GatherElementsMap<'a> {
    pub axis: usize,
    pub indices: &'a [usize],
    pub shape: &'a [usize],
}
impl Linear for GatherElementsMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::gather_elements(&xs[0], self.axis, self.indices, self.shape)
    }
}

pub struct TileMap<'a> {
    pub repeats: &'a [usize],
}
impl Linear for TileMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::tile(&xs[0], self.repeats)
    }
}

pub struct PadMap<'a> {
    pub begin: &'a [usize],
    pub end: &'a [usize],
}
impl Linear for PadMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::pad(&xs[0], self.begin, self.end)
    }
}

pub struct ExpandMap {
    pub shape: Vec<usize>,
}
impl Linear for ExpandMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        movement::broadcast_to(&xs[0], &self.shape)
    }
}

/// A select with a condition fixed at convert time is linear in the two branches.
pub struct WhereMap<'a> {
    pub condition: ArrayViewD<'a, bool>,
}
impl Linear for WhereMap<'_> {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        select(&self.condition, &xs[0], &xs[1])
    }
}

pub struct NegMap;
impl Linear for NegMap {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>> {
        Ok(xs[0].mapv(E::neg))
    }
}
