//! Secret booleans and selections. A boolean is an ordinary secret fixed-point 0/1 value
//! (what the comparisons of `compare.rs` produce), so logic is arithmetic on it: Not is
//! 1 - x, And x y, Or x + y - x y, Xor x + y - 2 x y (one product each, exact on 0/1), and
//! `Where(c, a, b)` is b + c (a - b). An operand known at convert time (a constant, or a
//! tensor known to hold one value, like IsNaN of fixed-point data) makes each of them a
//! select by a public mask instead: no communication. IsNaN and IsInf of a fixed-point value
//! are always false.

use super::args::required_input;
use super::movement::moved;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::ValueId;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

/// The values of a tensor known at convert time, as an array that broadcasts to it: a
/// constant, or `[1, ..., 1]` holding the one value of a uniform tensor.
fn known(cx: &Lowering, tensor: &str) -> Result<Option<ArrayD<f32>>> {
    if cx.is_constant(tensor) {
        return cx.constant(tensor).map(Some);
    }
    let Some(v) = cx.uniform(tensor) else {
        return Ok(None);
    };
    let rank = cx.shape(tensor)?.rank();
    Ok(Some(ArrayD::from_elem(IxDyn(&vec![1; rank]), v)))
}

/// IsNaN and IsInf: false for every fixed-point value. A public zero of the output's shape,
/// made only if a rule reads it as a value (the IsNaN guard exporters put after Softmax,
/// `Where(IsNaN(p), 0, p)`, becomes `p` itself).
pub fn never(cx: &mut Lowering, node: &Node) -> Result<()> {
    cx.fill(node.output(), 0.0);
    cx.note("always false for fixed-point values: a public zero, no communication");
    Ok(())
}

pub fn not(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = required_input(node, 0, "X")?;
    if let Some(v) = cx.uniform(x_name) {
        cx.fill(node.output(), 1.0 - v);
        return Ok(());
    }
    let x = cx.value(x_name)?;
    let one = cx.scalar(node, "one", 1.0)?;
    let out = cx.emit(node, Op::Sub, &[one, x], To::Output)?;
    cx.mark_integral(out);
    Ok(())
}

/// And, Or and Xor.
pub fn binary(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (a, b) = (required_input(node, 0, "A")?, required_input(node, 1, "B")?);
    let op = node.op_type.as_str();
    for (mask, other) in [(a, b), (b, a)] {
        if let Some(mask) = known(cx, mask)? {
            return with_known_operand(cx, node, op, mask, other);
        }
    }
    let (a, b) = (cx.value(a)?, cx.value(b)?);
    let out = combine(cx, node, op, a, b, To::Output)?;
    cx.mark_integral(out);
    Ok(())
}

/// `a op b` for secret bits: the product, and for Or and Xor the sum around it.
fn combine(
    cx: &mut Lowering,
    node: &Node,
    op: &str,
    a: ValueId,
    b: ValueId,
    to: To,
) -> Result<ValueId> {
    if op == "And" {
        return cx.emit(node, Op::Mul, &[a, b], to);
    }
    let product = cx.emit(node, Op::Mul, &[a, b], To::temp("both"))?;
    let sum = cx.emit(node, Op::Add, &[a, b], To::temp("sum"))?;
    let overlap = if op == "Xor" {
        cx.emit(node, Op::Add, &[product, product], To::temp("twice_both"))?
    } else {
        product
    };
    cx.emit(node, Op::Sub, &[sum, overlap], to)
}

/// Equal of two booleans: 1 - a xor b.
pub(super) fn xnor(cx: &mut Lowering, node: &Node, a: &str, b: &str) -> Result<()> {
    let (a, b) = (cx.value(a)?, cx.value(b)?);
    let differ = combine(cx, node, "Xor", a, b, To::temp("xor"))?;
    let one = cx.scalar(node, "one", 1.0)?;
    let out = cx.emit(node, Op::Sub, &[one, differ], To::Output)?;
    cx.mark_integral(out);
    Ok(())
}

/// `mask op x` with `mask` known: And is `mask ? x : 0`, Or `mask ? 1 : x`, Xor
/// `mask ? 1 - x : x`.
fn with_known_operand(
    cx: &mut Lowering,
    node: &Node,
    op: &str,
    mask: ArrayD<f32>,
    x_name: &str,
) -> Result<()> {
    let x = cx.value(x_name)?;
    let one = cx.scalar(node, "one", 1.0)?;
    let (then, otherwise) = match op {
        "And" => (x, cx.scalar(node, "zero", 0.0)?),
        "Or" => (one, x),
        _ => (cx.emit(node, Op::Sub, &[one, x], To::temp("not"))?, x),
    };
    let out = select_by_mask(cx, node, &mask, then, otherwise)?;
    cx.mark_integral(out);
    Ok(())
}

/// The node's output `mask ? then : otherwise` for a mask known at convert time: one branch
/// (broadcast to the output) when the mask is uniform, else a select by the public mask.
fn select_by_mask(
    cx: &mut Lowering,
    node: &Node,
    mask: &ArrayD<f32>,
    then: ValueId,
    otherwise: ValueId,
) -> Result<ValueId> {
    let first = mask.iter().next().copied().unwrap_or(0.0);
    if mask.iter().all(|&v| (v != 0.0) == (first != 0.0)) {
        let branch = if first != 0.0 { then } else { otherwise };
        let out = cx.shape(node.output())?;
        let steps = if *cx.shape_of(branch) == out {
            vec![]
        } else {
            vec![(Op::Expand { shape: out.clone() }, out)]
        };
        return moved(cx, node, branch, steps, true);
    }
    let op = Op::Where {
        condition: mask.iter().map(|&v| v != 0.0).collect(),
        shape: mask.shape().to_vec(),
    };
    cx.emit(node, op, &[then, otherwise], To::Output)
}

/// Where: by a mask known at convert time, a public select; by a secret condition c,
/// b + c (a - b), one product. Either branch may be a constant (a secret weight).
pub fn where_(cx: &mut Lowering, node: &Node) -> Result<()> {
    let condition = required_input(node, 0, "condition")?;
    let a = cx.value(required_input(node, 1, "X")?)?;
    let b = cx.value(required_input(node, 2, "Y")?)?;
    if let Some(mask) = known(cx, condition)? {
        select_by_mask(cx, node, &mask, a, b)?;
        return Ok(());
    }
    let c = cx.value(condition)?;
    let branches = cx
        .shape_of(a)
        .broadcast(cx.shape_of(b))
        .ok_or_else(|| anyhow::anyhow!("the branches of {} do not broadcast", node.name))?;
    let diff = cx.emit(node, Op::Sub, &[a, b], To::shaped("diff", branches))?;
    let gained = cx.emit(node, Op::Mul, &[c, diff], To::temp("gained"))?;
    cx.emit(node, Op::Add, &[b, gained], To::Output)?;
    Ok(())
}
