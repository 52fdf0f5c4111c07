//! Element-wise arithmetic with numpy broadcasting; either operand may be a constant.

use super::{Lowering, Op};
use crate::import::Node;
use anyhow::{Result, anyhow};

fn binary(cx: &mut Lowering, node: &Node, op: Op) -> Result<()> {
    let operand = |i: usize| {
        node.input(i)
            .ok_or_else(|| anyhow!("{} needs two inputs", node.op_type))
    };
    let a = cx.value(operand(0)?)?;
    let b = cx.value(operand(1)?)?;
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
