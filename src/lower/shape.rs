//! Data movement: reshapes (Reshape, Flatten, Squeeze, Unsqueeze all take the inferred
//! output shape), Transpose, Concat, and the no-ops Identity and inference-mode Dropout.

use super::args::{normalize_axis, required_input};
use super::{Lowering, Op, To};
use crate::import::Node;
use anyhow::{Result, anyhow, bail};

pub(super) fn data_input(node: &Node) -> Result<&str> {
    required_input(node, 0, "data")
}

pub fn reshape(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.value(data_input(node)?)?;
    let shape = cx.shape(node.output())?;
    cx.emit(node, Op::Reshape { shape }, &[x], To::Output)?;
    Ok(())
}

pub fn transpose(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let rank = cx.shape(x_name)?.rank();
    let perm: Vec<usize> = match node.ints("perm")? {
        Some(p) => p
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| anyhow!("perm {p:?} has a negative axis")))
            .collect::<Result<_>>()?,
        None => (0..rank).rev().collect(),
    };
    let x = cx.value(x_name)?;
    cx.emit(node, Op::Transpose { perm }, &[x], To::Output)?;
    Ok(())
}

pub fn concat(cx: &mut Lowering, node: &Node) -> Result<()> {
    let rank = cx.shape(node.output())?.rank();
    let axis = node.int("axis", i64::MIN)?;
    if axis == i64::MIN {
        bail!("Concat needs the axis attribute");
    }
    let axis = normalize_axis(node, axis, rank)?;
    let inputs = node
        .inputs
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| cx.value(i))
        .collect::<Result<Vec<_>>>()?;
    cx.emit(node, Op::Concat { axis }, &inputs, To::Output)?;
    Ok(())
}

/// Identity, and Dropout at inference, whose optional mask output is all true.
pub fn identity(cx: &mut Lowering, node: &Node) -> Result<()> {
    if node.op_type == "Dropout" {
        if let Some(mode) = node.input(2)
            && cx.constant_ints(mode).ok().as_deref() != Some(&[0])
        {
            bail!("Dropout in training mode; export the model in eval mode");
        }
        if let Some(mask) = node.outputs.get(1).filter(|o| !o.is_empty()) {
            cx.fill(mask, 1.0);
        }
    }
    let x = cx.value(data_input(node)?)?;
    cx.alias(node.output(), x);
    Ok(())
}
