//! Arguments that several rules read alike: required inputs, axes and indices that may be negative, integer
//! lists given as an attribute (older opsets) or as a constant input (newer ones), sizes
//! that must not depend on the batch, and whether a tensor is boolean.

use super::Lowering;
use crate::import::{Graph, Node};
use crate::plan::{Dim, Shape};
use anyhow::{Context, Result, anyhow, bail, ensure};

/// The node's input number `i`, which it must have.
pub fn required_input<'n>(node: &'n Node, i: usize, what: &str) -> Result<&'n str> {
    node.input(i)
        .ok_or_else(|| anyhow!("{} without its {what} input", node.op_type))
}

/// `axis` in `[-rank, rank)` as an axis in `[0, rank)`.
pub fn normalize_axis(node: &Node, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let resolved = if axis < 0 { axis + r } else { axis };
    ensure!(
        (0..r).contains(&resolved),
        "{} axis {axis} is out of range for a rank-{rank} input",
        node.op_type
    );
    Ok(resolved as usize)
}

/// Distinct axes, normalised, in the order given.
pub fn normalize_axes(node: &Node, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let resolved = axes
        .iter()
        .map(|&a| normalize_axis(node, a, rank))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = vec![false; rank];
    ensure!(
        resolved
            .iter()
            .all(|&a| !std::mem::replace(&mut seen[a], true)),
        "{} axes {axes:?} name an axis twice",
        node.op_type
    );
    Ok(resolved)
}

/// An index into an axis of size `dim`, counting from the end when negative.
pub fn normalize_index(node: &Node, index: i64, dim: usize) -> Result<usize> {
    let d = dim as i64;
    let resolved = if index < 0 { index + d } else { index };
    ensure!(
        (0..d).contains(&resolved),
        "{} index {index} is out of range for an axis of size {dim}",
        node.op_type
    );
    Ok(resolved as usize)
}

/// The integer list `name`: the node's attribute of that name when it has one (older
/// opsets), else its constant input number `input` (newer opsets), else `None`.
pub fn ints_arg(cx: &Lowering, node: &Node, name: &str, input: usize) -> Result<Option<Vec<i64>>> {
    if let Some(values) = node.ints(name)? {
        return Ok(Some(values));
    }
    node.input(input)
        .map(|tensor| {
            cx.constant_ints(tensor)
                .with_context(|| format!("{} input {name}", node.op_type))
        })
        .transpose()
}

/// The size of `axis`, refusing a batch-dependent one: data movement along the batch axis
/// would need the batch size at convert time.
pub fn fixed_dim(node: &Node, shape: &Shape, axis: usize) -> Result<usize> {
    match shape.0.get(axis) {
        Some(Dim::Fixed(n)) => Ok(*n),
        Some(Dim::Batch(_)) => bail!(
            "{} along the batch axis (axis {axis} of shape {shape}) depends on the batch size, which is only known at run time; convert with --fixed-shapes",
            node.op_type
        ),
        None => bail!(
            "{} axis {axis} is out of range for shape {shape}",
            node.op_type
        ),
    }
}

/// The input's shape with `axis` set to `dim`.
pub fn with_dim(shape: &Shape, axis: usize, dim: Dim) -> Shape {
    let mut dims = shape.0.clone();
    dims[axis] = dim;
    Shape(dims)
}

/// Whether the ONNX element type of a tensor is bool; tfe holds such a tensor as a
/// fixed-point 0/1.
pub fn is_bool(graph: &Graph, tensor: &str) -> bool {
    graph
        .fact(tensor)
        .and_then(|f| f.datum_type)
        .is_some_and(|d| d == tract_onnx::prelude::DatumType::Bool)
}
