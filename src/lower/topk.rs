//! TopK on secret data for a small constant k: k rounds of an exact arg max (or arg min)
//! along the axis, each followed by a one-hot of the winner that reads out its value and
//! masks it away for the next round. Ties go to the lower index, as onnxruntime sorts them.
//!
//! A taken element is replaced by a sentinel that cannot win again: the row's min minus 1
//! (max plus 1 for the smallest), found once by a tree of comparisons. A large constant
//! offset would do in fixed point, but limits the inputs' range and, in the f32 reference
//! interpreter, swamps the differences the arg max compares.
//!
//! Per round, for an axis of length D: the arg-max tree (ceil(log2 D) gates), one gate for
//! the one-hot (D + 1 comparisons of the index with j - 1/2 per row), and two exact
//! products (the value, and the replacement; the last round needs no replacement); once,
//! ceil(log2 D) gates for the sentinel. The outputs come sorted, also for `sorted = 0`
//! (which leaves the order to the runtime).

use super::args::normalize_axis;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId};
use anyhow::{Result, anyhow, bail, ensure};
use ndarray::{ArrayD, IxDyn};

pub fn top_k(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("TopK {} has no input", node.name))?;
    let k_name = node.input(1).ok_or_else(|| {
        anyhow!(
            "TopK {} needs k as its second input (opset 10 or later)",
            node.name
        )
    })?;
    let k = match cx.constant_ints(k_name)?.as_slice() {
        [k] if *k >= 1 => *k as usize,
        other => bail!(
            "TopK {}: k must be one positive constant, got {other:?}",
            node.name
        ),
    };
    let shape = cx.shape(x_name)?;
    let axis = normalize_axis(node, node.int("axis", -1)?, shape.rank())?;
    let length = match shape.0[axis] {
        Dim::Fixed(d) => d,
        Dim::Batch(_) => bail!("TopK {}: the axis must not be the batch axis", node.name),
    };
    ensure!(
        k <= length,
        "TopK {}: k = {k} exceeds the axis length {length}",
        node.name
    );
    let largest = node.int("largest", 1)? != 0;
    let x = cx.value(x_name)?;
    let along = |width: usize| {
        let mut dims = shape.0.clone();
        dims[axis] = Dim::Fixed(width);
        Shape(dims)
    };
    // j - 1/2 for j = 0..=D along the axis: [index >= j - 1/2] - [index >= j + 1/2] is 1 at j.
    let mut dims = vec![1; shape.rank()];
    dims[axis] = length + 1;
    let steps = ArrayD::from_shape_fn(IxDyn(&dims), |ix| ix[axis] as f32 - 0.5);
    let steps = cx.public(&format!("{}/steps", node.name), steps)?;
    let one = cx.scalar(node, "one", 1.0)?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    let sentinel = sentinel(cx, node, x, axis, largest, along(1))?;
    let (mut values, mut indices) = (vec![], vec![]);
    let mut remaining = x;
    for round in 0..k {
        let tag = |what: &str| format!("round{round}_{what}");
        let arg_max = Op::ArgMax {
            axis,
            keep_dims: true,
            min: !largest,
            last_index: false,
        };
        let index = cx.emit(
            node,
            arg_max,
            &[remaining],
            To::shaped(tag("index"), along(1)),
        )?;
        cx.mark_integral(index);
        indices.push(index);
        let last = round + 1 == k;
        if last && node.outputs.first().is_none_or(|o| o.is_empty()) {
            break;
        }
        let above = cx.emit(
            node,
            Op::Sub,
            &[index, steps],
            To::shaped(tag("above"), along(length + 1)),
        )?;
        let bits = cx.emit(
            node,
            Op::Select,
            &[above, one, zero],
            To::shaped(tag("bits"), along(length + 1)),
        )?;
        let pick = |cx: &mut Lowering, from: usize, what: &str| {
            let gather = Op::Gather {
                axis,
                indices: (from..from + length).collect(),
            };
            cx.emit(node, gather, &[bits], To::shaped(tag(what), along(length)))
        };
        let (at_or_after, after) = (pick(cx, 0, "at_or_after")?, pick(cx, 1, "after")?);
        let one_hot = cx.emit(
            node,
            Op::Sub,
            &[at_or_after, after],
            To::shaped(tag("one_hot"), along(length)),
        )?;
        let picked = cx.emit(
            node,
            Op::Mul,
            &[one_hot, x],
            To::shaped(tag("picked"), along(length)),
        )?;
        let sum = Op::ReduceSum {
            axes: vec![axis],
            keep_dims: true,
        };
        values.push(cx.emit(node, sum, &[picked], To::shaped(tag("value"), along(1)))?);
        if !last {
            let gap = To::shaped(tag("gap"), along(length));
            let gap = cx.emit(node, Op::Sub, &[sentinel, remaining], gap)?;
            let moved = cx.emit(
                node,
                Op::Mul,
                &[one_hot, gap],
                To::shaped(tag("moved"), along(length)),
            )?;
            remaining = cx.emit(
                node,
                Op::Add,
                &[remaining, moved],
                To::shaped(tag("remaining"), along(length)),
            )?;
        }
    }
    let outputs = [(0, values), (1, indices)];
    for (i, parts) in outputs {
        let Some(output) = node.outputs.get(i).filter(|o| !o.is_empty()) else {
            continue;
        };
        let result = concat(cx, node, axis, &parts, output)?;
        if i == 1 {
            cx.mark_integral(result);
        }
    }
    Ok(())
}

/// A value below every element of each row (above, for the smallest): min - 1 or max + 1.
fn sentinel(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    axis: usize,
    largest: bool,
    shape: Shape,
) -> Result<ValueId> {
    let extreme = Op::ReduceMax {
        axes: vec![axis],
        keep_dims: true,
        min: largest,
    };
    let extreme = cx.emit(node, extreme, &[x], To::shaped("extreme", shape.clone()))?;
    let step = cx.scalar(node, "sentinel_step", if largest { -1.0 } else { 1.0 })?;
    cx.emit(
        node,
        Op::Add,
        &[extreme, step],
        To::shaped("sentinel", shape),
    )
}

fn concat(
    cx: &mut Lowering,
    node: &Node,
    axis: usize,
    parts: &[ValueId],
    output: &str,
) -> Result<ValueId> {
    if let [single] = parts {
        let shape = cx.shape(output)?;
        return cx.emit(node, Op::Reshape { shape }, &[*single], To::Tensor(output));
    }
    cx.emit(node, Op::Concat { axis }, parts, To::Tensor(output))
}
