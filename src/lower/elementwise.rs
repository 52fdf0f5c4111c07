//! Element-wise arithmetic with numpy broadcasting; either operand may be a constant. Division
//! is by constants only (a product with the reciprocal), and Mean is a sum times a public 1/n.

use super::args::required_input;
use super::{Lowering, Op};
use crate::import::Node;
use crate::plan::{ValueId, Visibility};
use anyhow::{Result, anyhow, bail, ensure};
use ndarray::{ArrayD, IxDyn};

fn binary(cx: &mut Lowering, node: &Node, op: Op) -> Result<()> {
    let a = cx.value(required_input(node, 0, "A")?)?;
    let b = cx.value(required_input(node, 1, "B")?)?;
    cx.emit(node, op, &[a, b], node.output())?;
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
    cx.emit(node, Op::Neg, &[x], node.output())?;
    Ok(())
}

/// Division by a constant: a product with its reciprocal, computed at convert time and kept
/// secret like any model parameter.
pub fn div(cx: &mut Lowering, node: &Node) -> Result<()> {
    let divisor = required_input(node, 1, "B")?;
    if !cx.is_constant(divisor) {
        bail!(
            "division by a secret tensor needs the reciprocal approximation, which is not available yet; only division by a constant is lowered"
        );
    }
    let d = cx.constant(divisor)?;
    ensure!(
        d.iter().all(|&v| v != 0.0),
        "Div by the constant {divisor}, which holds a zero"
    );
    let reciprocal = cx.weight(
        &format!("{}/reciprocal", node.name),
        d.mapv(|v| 1.0 / v),
        Visibility::Secret,
    )?;
    let a = cx.value(required_input(node, 0, "A")?)?;
    cx.emit(node, Op::Mul, &[a, reciprocal], node.output())?;
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
    let scale = ArrayD::from_elem(IxDyn(&[]), 1.0 / count as f32);
    let scale = cx.public(&format!("{}/count", node.name), scale)?;
    cx.emit(node, Op::Mul, &[total, scale], node.output())?;
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
        total = if to_output && i + 1 == rest.len() {
            cx.emit(node, Op::Add, &[total, term], node.output())?
        } else {
            let (a, b) = (cx.shape_of(total), cx.shape_of(term));
            let shape = a.broadcast(b).ok_or_else(|| {
                anyhow!(
                    "{} operands of shapes {a} and {b} do not broadcast",
                    node.op_type
                )
            })?;
            cx.emit_temp(node, Op::Add, &[total, term], &format!("sum_{i}"), shape)
        };
    }
    Ok(total)
}
