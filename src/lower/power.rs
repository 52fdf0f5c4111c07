//! Division and powers: by constants at convert time, by secret values through the
//! reciprocal, square root and log approximations.

use super::{Lowering, Op};
use crate::import::Node;
use crate::plan::{Function, ValueId, Visibility};
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
        cx.emit_temp(
            node,
            Op::Function {
                function: Function::Reciprocal,
            },
            &[b],
            "inverse",
            shape,
        )
    };
    cx.finish(node, Op::Mul, &[a, inverse])
}

/// x^n for an integer n >= 1 by repeated squaring.
fn integer_power(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    n: u32,
    last: bool,
) -> Result<ValueId> {
    if n == 1 {
        return Ok(x);
    }
    let half = integer_power(cx, node, x, n / 2, false)?;
    if n.is_multiple_of(2) {
        cx.step_or_finish(node, Op::Mul, &[half, half], &format!("pow{n}"), last)
    } else {
        let square = cx.step(node, Op::Mul, &[half, half], &format!("pow{}", n - 1))?;
        cx.step_or_finish(node, Op::Mul, &[square, x], &format!("pow{n}"), last)
    }
}

/// x^y = exp(y ln x) for x > 0, when the exponent is secret or differs per element.
fn general_power(cx: &mut Lowering, node: &Node, x: ValueId, exponent: &str) -> Result<()> {
    let y = cx.value(exponent)?;
    let shape = cx.shape(node.input(0).expect("Pow has a base"))?;
    let ln = cx.emit_temp(
        node,
        Op::Function {
            function: Function::Log,
        },
        &[x],
        "ln",
        shape,
    );
    let scaled = cx.step(node, Op::Mul, &[ln, y], "scaled")?;
    cx.finish(
        node,
        Op::Function {
            function: Function::Exp,
        },
        &[scaled],
    )
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
        1.0 => {
            cx.alias(node.output(), x);
            Ok(())
        }
        0.5 => cx.finish(node, function(Function::Sqrt), &[x]),
        -0.5 => cx.finish(node, function(Function::Rsqrt), &[x]),
        p if p.fract() == 0.0 && (1.0..=64.0).contains(&p.abs()) => {
            let n = p.abs() as u32;
            if p > 0.0 {
                integer_power(cx, node, x, n, true).map(|_| ())
            } else {
                let power = if n == 1 {
                    x
                } else {
                    integer_power(cx, node, x, n, false)?
                };
                cx.finish(node, function(Function::Reciprocal), &[power])
            }
        }
        // x^p = exp(p ln x) for x > 0.
        p => {
            let ln = cx.step(node, function(Function::Log), &[x], "ln")?;
            let k = cx.scalar(node, "exponent", p)?;
            let scaled = cx.step(node, Op::Mul, &[ln, k], "scaled")?;
            cx.finish(node, function(Function::Exp), &[scaled])
        }
    }
}
