//! The linear and bilinear maps behind each op, written once over any element type.

use super::{Bilinear, Linear};
use crate::tensor::{
    Elem, Window, broadcast::zip_with, conv::conv, layout, matmul::matmul, window,
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
