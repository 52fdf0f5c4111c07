//! Reductions over axes fixed at convert time. ReduceSum is linear, along any axis including
//! the batch; ReduceMean is that sum times a public 1/count; ReduceSumSquare sums a secret
//! product x*x truncated once per output (a row times itself over trailing axes), and
//! ReduceL1 sums |x| = 2 relu(x) - x (one secure comparison).

use super::args::{fixed_dim, ints_arg, normalize_axes};
use super::shape::data_input;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId};
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
    let keep_dims = node.int("keepdims", 1)? != 0;
    let terms = match reducer {
        Reducer::SumSquare => {
            sum_of_squares(cx, node, x, &shape, &axes, keep_dims, To::Output)?;
            return Ok(());
        }
        Reducer::L1 => super::activation::abs_of(cx, node, x, shape)?,
        Reducer::Sum | Reducer::Mean => x,
    };
    if axes.is_empty() && scale.is_none() && terms == x {
        cx.alias(node.output(), x);
        return Ok(());
    }
    let sum = Op::ReduceSum { axes, keep_dims };
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

/// The sum of v^2 over ascending `axes`, truncated once per output: when the axes are the
/// trailing ones and of fixed size, each row's product with itself (a matrix product, so
/// only the reduced shape goes on the wire), else the squares summed.
pub fn sum_of_squares(
    cx: &mut Lowering,
    node: &Node,
    v: ValueId,
    shape: &Shape,
    axes: &[usize],
    keep_dims: bool,
    to: To,
) -> Result<ValueId> {
    let rank = shape.rank();
    let outer = rank - axes.len();
    let count = axes
        .iter()
        .map(|&a| match shape.0[a] {
            Dim::Fixed(n) => Some(n),
            Dim::Batch(_) => None,
        })
        .product::<Option<usize>>();
    let trailing = axes.iter().enumerate().all(|(i, &a)| a == outer + i);
    let (Some(count), true) = (count, trailing) else {
        let squared = To::shaped("squared", shape.clone());
        let squared = cx.emit(node, Op::Mul, &[v, v], squared)?;
        let sum = Op::ReduceSum {
            axes: axes.to_vec(),
            keep_dims,
        };
        return cx.emit(node, sum, &[squared], to);
    };
    let matrix = |rows: usize, columns: usize| {
        let dims = shape.0[..outer].iter().copied();
        Shape(
            dims.chain([Dim::Fixed(rows), Dim::Fixed(columns)])
                .collect(),
        )
    };
    let mut sides = vec![];
    for (tag, side) in [("row", matrix(1, count)), ("column", matrix(count, 1))] {
        let op = Op::Reshape {
            shape: side.clone(),
        };
        sides.push(cx.emit(node, op, &[v], To::shaped(tag, side))?);
    }
    let product = To::shaped("row_times_column", matrix(1, 1));
    let product = cx.emit(node, Op::MatMul, &sides, product)?;
    let op = Op::Reshape {
        shape: shape.reduced(axes, keep_dims),
    };
    cx.emit(node, op, &[product], to)
}
