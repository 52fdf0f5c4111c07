//! Element-wise arithmetic with numpy broadcasting; either operand may be a constant. Division
//! is by constants only (a product with the reciprocal), and Mean is a sum times a public 1/n.

use super::args::required_input;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::ValueId;
use anyhow::{Result, anyhow};

fn binary(cx: &mut Lowering, node: &Node, op: Op) -> Result<()> {
    let a = cx.value(required_input(node, 0, "A")?)?;
    let b = cx.value(required_input(node, 1, "B")?)?;
    cx.emit(node, op, &[a, b], To::Output)?;
    Ok(())
}

pub fn add(cx: &mut Lowering, node: &Node) -> Result<()> {
    binary(cx, node, Op::Add)
}

pub fn sub(cx: &mut Lowering, node: &Node) -> Result<()> {
    binary(cx, node, Op::Sub)
}

pub fn mul(cx: &mut Lowering, node: &Node) -> Result<()> {
    binary(cx, node, Op::Mul)
}

pub fn neg(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.value(required_input(node, 0, "X")?)?;
    cx.emit(node, Op::Neg, &[x], To::Output)?;
    Ok(())
}

pub fn sum(cx: &mut Lowering, node: &Node) -> Result<()> {
    let total = add_inputs(cx, node, true)?;
    cx.alias(node.output(), total);
    Ok(())
}

pub fn mean(cx: &mut Lowering, node: &Node) -> Result<()> {
    let count = node.inputs.iter().filter(|i| !i.is_empty()).count();
    let total = add_inputs(cx, node, false)?;
    let scale = cx.scalar(node, "count", 1.0 / count as f32)?;
    cx.emit(node, Op::Mul, &[total, scale], To::Output)?;
    Ok(())
}

/// The sum of the node's inputs, added left to right with numpy broadcasting. With
/// `to_output` the last addition computes the node's output.
fn add_inputs(cx: &mut Lowering, node: &Node, to_output: bool) -> Result<ValueId> {
    let names: Vec<&String> = node.inputs.iter().filter(|i| !i.is_empty()).collect();
    let (first, rest) = names
        .split_first()
        .ok_or_else(|| anyhow!("{} without inputs", node.op_type))?;
    let mut total = cx.value(first)?;
    for (i, name) in rest.iter().enumerate() {
        let term = cx.value(name)?;
        let to = if to_output && i + 1 == rest.len() {
            To::Output
        } else {
            let (a, b) = (cx.shape_of(total), cx.shape_of(term));
            let shape = a.broadcast(b).ok_or_else(|| {
                anyhow!(
                    "{} operands of shapes {a} and {b} do not broadcast",
                    node.op_type
                )
            })?;
            To::shaped(format!("sum_{i}"), shape)
        };
        total = cx.emit(node, Op::Add, &[total, term], to)?;
    }
    Ok(total)
}
