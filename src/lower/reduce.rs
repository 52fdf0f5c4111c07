//! Reductions over axes fixed at convert time. ReduceSum is linear, along any axis including
//! the batch; ReduceMean is that sum times a public 1/count; ReduceSumSquare sums a secret
//! product x*x, and ReduceL1 sums |x| = 2 relu(x) - x (one secure comparison).

use super::args::{fixed_dim, ints_arg, normalize_axes};
use super::shape::data_input;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::ValueId;
use anyhow::Result;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reducer {
    Sum,
    Mean,
    SumSquare,
    L1,
}

pub fn reduce_sum(cx: &mut Lowering, node: &Node) -> Result<()> {
    reduce(cx, node, Reducer::Sum)
}

pub fn reduce_mean(cx: &mut Lowering, node: &Node) -> Result<()> {
    reduce(cx, node, Reducer::Mean)
}

pub fn reduce_sum_square(cx: &mut Lowering, node: &Node) -> Result<()> {
    reduce(cx, node, Reducer::SumSquare)
}

pub fn reduce_l1(cx: &mut Lowering, node: &Node) -> Result<()> {
    reduce(cx, node, Reducer::L1)
}

fn reduce(cx: &mut Lowering, node: &Node, reducer: Reducer) -> Result<()> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let axes = reduced_axes(cx, node, shape.rank())?;
    let mut scale = None;
    if reducer == Reducer::Mean {
        let count = axes
            .iter()
            .map(|&a| fixed_dim(node, &shape, a))
            .product::<Result<usize>>()?;
        if count > 1 {
            scale = Some(cx.scalar(node, "count", 1.0 / count as f32)?);
        }
    }
    let x = cx.value(x_name)?;
    let terms = match reducer {
        Reducer::SumSquare => cx.emit(node, Op::Mul, &[x, x], To::shaped("square", shape))?,
        Reducer::L1 => super::activation::abs_of(cx, node, x, shape)?,
        Reducer::Sum | Reducer::Mean => x,
    };
    if axes.is_empty() && scale.is_none() && terms == x {
        cx.alias(node.output(), x);
        return Ok(());
    }
    let sum = Op::ReduceSum {
        axes,
        keep_dims: node.int("keepdims", 1)? != 0,
    };
    sum_times(cx, node, sum, terms, scale)
}

/// The node's output: the sum of `terms` by `sum`, times the public `scale` when given (a
/// mean's 1/count). Pooling by average shares it.
pub fn sum_times(
    cx: &mut Lowering,
    node: &Node,
    sum: Op,
    terms: ValueId,
    scale: Option<ValueId>,
) -> Result<()> {
    match scale {
        Some(scale) => {
            let total = cx.emit(node, sum, &[terms], To::temp(format!("{}_0", node.op_type)))?;
            cx.emit(node, Op::Mul, &[total, scale], To::Output)?
        }
        None => cx.emit(node, sum, &[terms], To::Output)?,
    };
    Ok(())
}

/// Ascending axes to reduce: the `axes` attribute (ReduceSum before opset 13, the others
/// before 18) or input. None given means every axis, or none at all with
/// `noop_with_empty_axes`.
pub fn reduced_axes(cx: &Lowering, node: &Node, rank: usize) -> Result<Vec<usize>> {
    let axes = ints_arg(cx, node, "axes", 1)?.unwrap_or_default();
    if axes.is_empty() {
        let noop = node.int("noop_with_empty_axes", 0)? != 0;
        return Ok(if noop { vec![] } else { (0..rank).collect() });
    }
    let mut axes = normalize_axes(node, &axes, rank)?;
    axes.sort_unstable();
    Ok(axes)
}
