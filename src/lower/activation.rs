//! Activations computed exactly with secure comparison.

use super::{Lowering, Op};
use crate::import::Node;
use anyhow::{Result, anyhow};

pub fn relu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.value(node.input(0).ok_or_else(|| anyhow!("Relu without input"))?)?;
    cx.emit(node, Op::Relu, &[x], node.output())?;
    Ok(())
}
