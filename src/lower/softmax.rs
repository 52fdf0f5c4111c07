//! Softmax and LogSoftmax: subtract the max (exact comparisons), exp, sum, then the
//! reciprocal or the log of the sum.

use super::args::normalize_axis;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Shape};
use anyhow::{Result, anyhow, bail};

pub fn softmax(cx: &mut Lowering, node: &Node) -> Result<()> {
    let log = node.op_type == "LogSoftmax";
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("{} without input", node.op_type))?;
    let shape = cx.shape(x_name)?;
    let rank = shape.rank();
    let x = cx.value(x_name)?;
    let opset = cx.graph.model.opset;
    let axis = normalize_axis(
        node,
        node.int("axis", if opset >= 13 { -1 } else { 1 })?,
        rank,
    )?;
    if opset >= 13 || axis == rank - 1 {
        cx.emit(node, Op::Softmax { axis, log }, &[x], To::Output)?;
        return Ok(());
    }
    // Before opset 13 the input is read as a matrix [d0 .. d(axis-1), d(axis) .. d(n-1)].
    let product = |dims: &[Dim]| -> Result<Dim> {
        let fixed: usize = dims
            .iter()
            .map(|d| if let Dim::Fixed(n) = d { *n } else { 1 })
            .product();
        match dims
            .iter()
            .filter(|d| matches!(d, Dim::Batch(_)))
            .collect::<Vec<_>>()[..]
        {
            [] => Ok(Dim::Fixed(fixed)),
            [Dim::Batch(k)] => Ok(Dim::Batch(k * fixed)),
            _ => bail!("cannot flatten {shape} for {}", node.op_type),
        }
    };
    let matrix = Shape(vec![product(&shape.0[..axis])?, product(&shape.0[axis..])?]);
    if matches!(matrix.0[1], Dim::Batch(_)) {
        bail!(
            "{} over the batch axis is not supported; convert with --fixed-shapes",
            node.op_type
        );
    }
    let reshape = Op::Reshape {
        shape: matrix.clone(),
    };
    let flat = cx.emit(node, reshape, &[x], To::shaped("matrix", matrix.clone()))?;
    let softmax = Op::Softmax { axis: 1, log };
    let soft = cx.emit(node, softmax, &[flat], To::shaped("softmax", matrix))?;
    cx.emit(node, Op::Reshape { shape }, &[soft], To::Output)?;
    Ok(())
}
