//! Exact comparisons: Greater, Less, GreaterOrEqual, LessOrEqual and Equal as secret 0/1
//! values (one gate per element), and Max, Min, ReduceMax, ReduceMin, ArgMax and ArgMin as
//! trees of them.

use super::args::{normalize_axis, required_input};
use super::{Lowering, Op, To, logic};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId};
use crate::tensor::movement::AxisSlice;
use anyhow::{Result, anyhow};
use ndarray::{ArrayD, IxDyn};

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

/// What a comparison reads: the sign of a - b (of b - a when `swapped`), as `[x >= 0]` or,
/// `negated`, `[x < 0]`; or, for Equal, both signs. On fixed-point encodings a > b is
/// exactly not (b - a >= 0), so the strict forms are exact even one unit apart.
#[derive(Clone, Copy)]
enum Reading {
    Sign { swapped: bool, negated: bool },
    Zero,
}

fn reading(op: &str) -> Reading {
    let sign = |swapped, negated| Reading::Sign { swapped, negated };
    match op {
        "GreaterOrEqual" => sign(false, false),
        "Greater" => sign(true, true),
        "LessOrEqual" => sign(true, false),
        "Less" => sign(false, true),
        _ => Reading::Zero,
    }
}

/// Greater, Less, GreaterOrEqual, LessOrEqual and Equal, with numpy broadcasting: one gate,
/// shared by every comparison of the same tensor with a constant (`compare_groups.rs`).
/// Equal is exact equality of the fixed-point encodings, which is what integer-valued
/// tensors (labels, indices, token ids) need; reals computed in two ways may differ in the
/// last unit. Equal of booleans is `1 - a xor b`.
pub fn comparison(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (a, b) = (required_input(node, 0, "A")?, required_input(node, 1, "B")?);
    if node.op_type == "Equal" && cx.is_bool(a) && cx.is_bool(b) {
        return logic::xnor(cx, node, a, b);
    }
    let members = match cx.comparison_group(&node.name) {
        Some(group) => group.to_vec(),
        None => vec![node.clone()],
    };
    let mut rows = vec![];
    for (i, member) in members.iter().enumerate() {
        let a = cx.value(required_input(member, 0, "A")?)?;
        let b = cx.value(required_input(member, 1, "B")?)?;
        let shape = cx.shape(member.output())?;
        let (minuend, subtrahend, negated) = match reading(&member.op_type) {
            Reading::Sign { swapped, negated } if swapped => (b, a, negated),
            Reading::Sign { negated, .. } => (a, b, negated),
            Reading::Zero => (a, b, false),
        };
        let diff = To::shaped(format!("diff{i}"), shape.clone());
        let diff = cx.emit(node, Op::Sub, &[minuend, subtrahend], diff)?;
        rows.push((diff, negated));
        if let Reading::Zero = reading(&member.op_type) {
            let negation = To::shaped(format!("negated{i}"), shape);
            rows.push((cx.emit(node, Op::Neg, &[diff], negation)?, false));
        }
    }
    if let [(diff, negated)] = rows[..] {
        nonnegative(cx, node, diff, negated, To::Output)?;
        return Ok(());
    }
    let shape = cx.shape(node.output())?;
    let bits = signs(cx, node, &rows, &shape)?;
    let mut start = 0;
    for (i, member) in members.iter().enumerate() {
        let zero = matches!(reading(&member.op_type), Reading::Zero);
        let len = if zero { 2 } else { 1 };
        let slices = vec![AxisSlice {
            axis: 0,
            start,
            len,
            step: 1,
        }];
        let taken = if len == rows.len() {
            bits
        } else {
            let to = To::shaped(format!("bits{i}"), lifted(len, &shape));
            cx.emit(node, Op::Slice { slices }, &[bits], to)?
        };
        let to = To::Tensor(member.output());
        if zero {
            equality_of(cx, node, taken, &shape, (true, &format!("count{i}")), to)?;
        } else {
            let op = Op::Reshape {
                shape: shape.clone(),
            };
            let bit = cx.emit(node, op, &[taken], to)?;
            cx.mark_integral(bit);
        }
        start += len;
    }
    Ok(())
}

/// `shape` with a new leading axis of `len`.
fn lifted(len: usize, shape: &Shape) -> Shape {
    Shape(
        [Dim::Fixed(len)]
            .into_iter()
            .chain(shape.0.clone())
            .collect(),
    )
}

/// The bits of every row `(x, negated)` (each of `shape`) from one gate: the rows stacked
/// along a new axis 0, then one Select between per-row public constants (1 and 0, or 0 and
/// 1 for a negated row). The result has shape `[rows, ..shape]`.
fn signs(
    cx: &mut Lowering,
    node: &Node,
    rows: &[(ValueId, bool)],
    shape: &Shape,
) -> Result<ValueId> {
    let one_row = lifted(1, shape);
    let mut lifted_rows = vec![];
    for (i, &(x, _)) in rows.iter().enumerate() {
        let op = Op::Reshape {
            shape: one_row.clone(),
        };
        let to = To::shaped(format!("row{i}"), one_row.clone());
        lifted_rows.push(cx.emit(node, op, &[x], to)?);
    }
    let all = lifted(rows.len(), shape);
    let concat = Op::Concat { axis: 0 };
    let stacked = cx.emit(node, concat, &lifted_rows, To::shaped("rows", all.clone()))?;
    let mut per_row = vec![1; shape.rank() + 1];
    per_row[0] = rows.len();
    let kept = |keep: bool| {
        let values = rows
            .iter()
            .map(|&(_, negated)| (negated != keep) as u8 as f32);
        ArrayD::from_shape_vec(IxDyn(&per_row), values.collect()).expect("one value per row")
    };
    let then = cx.public(&format!("{}/then", node.name), kept(true))?;
    let otherwise = cx.public(&format!("{}/otherwise", node.name), kept(false))?;
    let bits = cx.emit(
        node,
        Op::Select,
        &[stacked, then, otherwise],
        To::shaped("bits", all),
    )?;
    cx.mark_integral(bits);
    Ok(bits)
}

/// `[d = 0]` (or, with `equal` false, `[d != 0]`) exactly, by the two signs of d in one gate.
pub(super) fn zero_test(
    cx: &mut Lowering,
    node: &Node,
    d: ValueId,
    equal: bool,
    to: To,
) -> Result<ValueId> {
    let shape = cx.shape_of(d).clone();
    let negated = cx.emit(node, Op::Neg, &[d], To::shaped("negated", shape.clone()))?;
    let bits = signs(cx, node, &[(d, false), (negated, false)], &shape)?;
    equality_of(cx, node, bits, &shape, (equal, "count"), to)
}

/// From the bits `[[d >= 0], [-d >= 0]]` (shape `[2, ..shape]`): their sum (named `tag`) is 2
/// when d = 0 and 1 otherwise, so `[d = 0]` is the sum - 1 and `[d != 0]` is 2 - the sum.
fn equality_of(
    cx: &mut Lowering,
    node: &Node,
    bits: ValueId,
    shape: &Shape,
    (equal, tag): (bool, &str),
    to: To,
) -> Result<ValueId> {
    let sum = Op::ReduceSum {
        axes: vec![0],
        keep_dims: false,
    };
    let count = cx.emit(node, sum, &[bits], To::shaped(tag, shape.clone()))?;
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
