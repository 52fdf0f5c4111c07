//! Max, Min, ReduceMax, ReduceMin, ArgMax and ArgMin: trees of exact comparisons.

use super::args::normalize_axis;
use super::{Lowering, Op, To};
use crate::import::Node;
use anyhow::{Result, anyhow};

/// Variadic Max or Min with broadcasting: a chain of `[a - b >= 0] ? a : b`.
pub fn max_min(cx: &mut Lowering, node: &Node) -> Result<()> {
    let min = node.op_type == "Min";
    let inputs: Vec<&String> = node.inputs.iter().filter(|i| !i.is_empty()).collect();
    let mut acc = cx.value(inputs[0])?;
    for (k, name) in inputs.iter().enumerate().skip(1) {
        let next = cx.value(name)?;
        let shape = cx
            .shape_of(acc)
            .broadcast(cx.shape_of(next))
            .ok_or_else(|| anyhow!("inputs of {} do not broadcast", node.name))?;
        let diff = cx.emit(
            node,
            Op::Sub,
            &[acc, next],
            To::shaped(format!("diff{k}"), shape),
        )?;
        let (x, a, b) = if min {
            (diff, next, acc)
        } else {
            (diff, acc, next)
        };
        let to = To::output_if(k == inputs.len() - 1, format!("pick{k}"));
        acc = cx.emit(node, Op::Select, &[x, a, b], to)?;
    }
    if inputs.len() == 1 {
        cx.alias(node.output(), acc);
    }
    Ok(())
}

pub fn reduce_max(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("{} without input", node.op_type))?;
    let rank = cx.shape(x_name)?.rank();
    let x = cx.value(x_name)?;
    let axes = super::reduce::reduced_axes(cx, node, rank)?;
    if axes.is_empty() {
        cx.alias(node.output(), x);
        return Ok(());
    }
    let op = Op::ReduceMax {
        axes,
        keep_dims: node.int("keepdims", 1)? != 0,
        min: node.op_type == "ReduceMin",
    };
    cx.emit(node, op, &[x], To::Output)?;
    Ok(())
}

pub fn arg_max(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("{} without input", node.op_type))?;
    let rank = cx.shape(x_name)?.rank();
    let op = Op::ArgMax {
        axis: normalize_axis(node, node.int("axis", 0)?, rank)?,
        keep_dims: node.int("keepdims", 1)? != 0,
        min: node.op_type == "ArgMin",
        last_index: node.int("select_last_index", 0)? != 0,
    };
    let x = cx.value(x_name)?;
    let index = cx.emit(node, op, &[x], To::Output)?;
    cx.mark_integral(index);
    Ok(())
}
