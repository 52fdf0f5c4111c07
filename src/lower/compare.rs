//! Exact comparisons: Greater, Less, GreaterOrEqual, LessOrEqual and Equal as secret 0/1
//! values (one gate per element), and Max, Min, ReduceMax, ReduceMin, ArgMax and ArgMin as
//! trees of them.

use super::args::{normalize_axis, required_input};
use super::{Lowering, Op, To, logic};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId};
use anyhow::{Result, anyhow};

/// `[x >= 0]` as a 0/1 value, or its complement `[x < 0]` with `negated`: one gate,
/// `Select(x, 1, 0)` or `Select(x, 0, 1)`.
pub(super) fn nonnegative(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    negated: bool,
    to: To,
) -> Result<ValueId> {
    let one = cx.scalar(node, "one", 1.0)?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    let (then, otherwise) = if negated { (zero, one) } else { (one, zero) };
    let bit = cx.emit(node, Op::Select, &[x, then, otherwise], to)?;
    cx.mark_integral(bit);
    Ok(bit)
}

/// Greater, Less, GreaterOrEqual and LessOrEqual with numpy broadcasting, by the sign of
/// one difference. On fixed-point encodings a > b is exactly not (b - a >= 0), so the strict
/// forms are exact even one unit apart.
pub fn order(cx: &mut Lowering, node: &Node) -> Result<()> {
    let a = cx.value(required_input(node, 0, "A")?)?;
    let b = cx.value(required_input(node, 1, "B")?)?;
    let (minuend, subtrahend, strict) = match node.op_type.as_str() {
        "GreaterOrEqual" => (a, b, false),
        "Greater" => (b, a, true),
        "LessOrEqual" => (b, a, false),
        _ => (a, b, true),
    };
    let diff = cx.emit(node, Op::Sub, &[minuend, subtrahend], To::temp("diff"))?;
    nonnegative(cx, node, diff, strict, To::Output)?;
    Ok(())
}

/// Equal: exact equality of the fixed-point encodings, which is what integer-valued tensors
/// (labels, indices, token ids) need; reals computed in two ways may differ in the last
/// unit. Booleans by `1 - a xor b`.
pub fn equal(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (a_name, b_name) = (required_input(node, 0, "A")?, required_input(node, 1, "B")?);
    if cx.is_bool(a_name) && cx.is_bool(b_name) {
        return logic::xnor(cx, node, a_name, b_name);
    }
    let (a, b) = (cx.value(a_name)?, cx.value(b_name)?);
    let diff = cx.emit(node, Op::Sub, &[a, b], To::temp("diff"))?;
    zero_test(cx, node, diff, true, To::Output)?;
    Ok(())
}

/// `[d = 0]` (or, with `equal` false, `[d != 0]`) exactly: `[d >= 0] + [-d >= 0]` is 2 when
/// d = 0 and 1 otherwise. Both comparisons run in one gate call on `[d, -d]` stacked.
pub(super) fn zero_test(
    cx: &mut Lowering,
    node: &Node,
    d: ValueId,
    equal: bool,
    to: To,
) -> Result<ValueId> {
    let shape = cx.shape_of(d).clone();
    let negated = cx.emit(node, Op::Neg, &[d], To::shaped("negated", shape.clone()))?;
    let lifted = Shape([Dim::Fixed(1)].into_iter().chain(shape.0.clone()).collect());
    let mut halves = vec![];
    for (v, tag) in [(d, "lifted"), (negated, "negated_lifted")] {
        let op = Op::Reshape {
            shape: lifted.clone(),
        };
        halves.push(cx.emit(node, op, &[v], To::shaped(tag, lifted.clone()))?);
    }
    let both = Shape([Dim::Fixed(2)].into_iter().chain(shape.0.clone()).collect());
    let stacked = cx.emit(
        node,
        Op::Concat { axis: 0 },
        &halves,
        To::shaped("signs", both.clone()),
    )?;
    let bits = nonnegative(cx, node, stacked, false, To::shaped("sign_bits", both))?;
    let sum = Op::ReduceSum {
        axes: vec![0],
        keep_dims: false,
    };
    let count = cx.emit(node, sum, &[bits], To::shaped("sign_count", shape))?;
    let result = if equal {
        let minus_one = cx.scalar(node, "minus_one", -1.0)?;
        cx.emit(node, Op::Add, &[count, minus_one], to)?
    } else {
        let two = cx.scalar(node, "two", 2.0)?;
        cx.emit(node, Op::Sub, &[two, count], to)?
    };
    cx.mark_integral(result);
    Ok(result)
}

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
