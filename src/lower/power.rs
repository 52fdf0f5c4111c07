//! Division and powers: by constants at convert time, by secret values through the
//! reciprocal, square root and log approximations.

use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Function, Shape, ValueId, Visibility};
use anyhow::{Result, anyhow, bail};

pub fn div(cx: &mut Lowering, node: &Node) -> Result<()> {
    let a = cx.input_value(node, 0)?;
    let b_name = node
        .input(1)
        .ok_or_else(|| anyhow!("Div needs two inputs"))?
        .to_string();
    let inverse = if cx.is_constant(&b_name) {
        let b = cx.constant(&b_name)?;
        if b.iter().any(|v| *v == 0.0) {
            bail!("division by a constant that contains zero");
        }
        cx.weight(
            &format!("{}/inverse", node.name),
            b.mapv(|v| 1.0 / v),
            Visibility::Secret,
        )?
    } else {
        let b = cx.value(&b_name)?;
        let shape = cx.shape(&b_name)?;
        let reciprocal = Op::Function {
            function: Function::Reciprocal,
        };
        cx.emit(node, reciprocal, &[b], To::shaped("inverse", shape))?
    };
    cx.emit(node, Op::Mul, &[a, inverse], To::Output)?;
    Ok(())
}

/// x^n for an integer n >= 1 by repeated squaring: intermediate powers of `shape`, the
/// last one going `to`.
pub(super) fn integer_power(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    n: u32,
    shape: &Shape,
    to: To,
) -> Result<ValueId> {
    if n == 1 {
        return Ok(x);
    }
    let temp = |k: u32| To::shaped(format!("pow{k}"), shape.clone());
    let half = integer_power(cx, node, x, n / 2, shape, temp(n / 2))?;
    if n.is_multiple_of(2) {
        cx.emit(node, Op::Mul, &[half, half], to)
    } else {
        let square = cx.emit(node, Op::Mul, &[half, half], temp(n - 1))?;
        cx.emit(node, Op::Mul, &[square, x], to)
    }
}

/// x^y = exp(y ln x) for x > 0, when the exponent is secret or differs per element.
fn general_power(cx: &mut Lowering, node: &Node, x: ValueId, exponent: &str) -> Result<()> {
    let y = cx.value(exponent)?;
    let shape = cx.shape(node.input(0).expect("Pow has a base"))?;
    let log = Op::Function {
        function: Function::Log,
    };
    let ln = cx.emit(node, log, &[x], To::shaped("ln", shape))?;
    let scaled = cx.emit(node, Op::Mul, &[ln, y], To::temp("scaled"))?;
    let exp = Op::Function {
        function: Function::Exp,
    };
    cx.emit(node, exp, &[scaled], To::Output)?;
    Ok(())
}

pub fn pow(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let exponent_name = node
        .input(1)
        .ok_or_else(|| anyhow!("Pow needs an exponent"))?;
    if !cx.is_constant(exponent_name) {
        return general_power(cx, node, x, exponent_name);
    }
    let exponents = cx.constant(exponent_name)?;
    let p = *exponents
        .iter()
        .next()
        .ok_or_else(|| anyhow!("empty exponent"))?;
    if exponents.iter().any(|&e| e != p) {
        return general_power(cx, node, x, exponent_name);
    }
    let function = |f| Op::Function { function: f };
    match p {
        1.0 => cx.alias(node.output(), x),
        0.5 => {
            cx.emit(node, function(Function::Sqrt), &[x], To::Output)?;
        }
        -0.5 => {
            cx.emit(node, function(Function::Rsqrt), &[x], To::Output)?;
        }
        p if p.fract() == 0.0 && (1.0..=64.0).contains(&p.abs()) => {
            let n = p.abs() as u32;
            let shape = cx.shape(node.output())?;
            if p > 0.0 {
                integer_power(cx, node, x, n, &shape, To::Output)?;
            } else {
                let power = integer_power(cx, node, x, n, &shape, To::temp(format!("pow{n}")))?;
                cx.emit(node, function(Function::Reciprocal), &[power], To::Output)?;
            }
        }
        // x^p = exp(p ln x) for x > 0.
        p => {
            let ln = cx.emit(node, function(Function::Log), &[x], To::temp("ln"))?;
            let k = cx.scalar(node, "exponent", p)?;
            let scaled = cx.emit(node, Op::Mul, &[ln, k], To::temp("scaled"))?;
            cx.emit(node, function(Function::Exp), &[scaled], To::Output)?;
        }
    }
    Ok(())
}
