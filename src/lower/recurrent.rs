//! LSTM, unrolled over the sequence at convert time (the model's shapes fix its length). Per
//! time step: one product with the recurrent weights, one sigmoid for all four gates (the
//! cell gate's block of the parameters is doubled, so that tanh(x) = 2 sigmoid(2x) - 1, the
//! identity the Tanh lowering uses, comes out of the same evaluation), the cell update and
//! the tanh of the cell. The input projection of every step is one product up front.

use super::args::required_input;
use super::{Lowering, Op};
use crate::import::Node;
use crate::plan::{Dim, Function, Shape, ValueId, Visibility};
use crate::tensor::movement::AxisSlice;
use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::{ArrayD, Axis, IxDyn};

/// ONNX LSTM inputs by position.
const W: usize = 1;
const R: usize = 2;
const BIAS: usize = 3;
const SEQUENCE_LENS: usize = 4;
const INITIAL_H: usize = 5;
const INITIAL_C: usize = 6;
const PEEPHOLES: usize = 7;

pub fn lstm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let hidden = node.int("hidden_size", 0)?;
    ensure!(hidden > 0, "LSTM needs a positive hidden_size attribute");
    let hidden = hidden as usize;
    let reversed: &[bool] = match node.string("direction")?.as_deref() {
        None | Some("forward") => &[false],
        Some("reverse") => &[true],
        Some("bidirectional") => &[false, true],
        Some(other) => bail!("LSTM direction {other:?} is not forward, reverse or bidirectional"),
    };
    check_variant(cx, node, reversed.len())?;
    let batch_first = match node.int("layout", 0)? {
        0 => false,
        1 => true,
        other => bail!("LSTM layout {other} is not 0 or 1"),
    };

    let x_name = required_input(node, 0, "X")?;
    let mut x = cx.value(x_name)?;
    let mut x_shape = cx.shape(x_name)?;
    ensure!(
        x_shape.rank() == 3,
        "LSTM input X must have rank 3, it has shape {x_shape}"
    );
    if batch_first {
        x_shape = Shape(vec![x_shape.0[1], x_shape.0[0], x_shape.0[2]]);
        let perm = vec![1, 0, 2];
        x = cx.emit_temp(node, Op::Transpose { perm }, &[x], "X_seq", x_shape.clone());
    }
    let [seq, batch, _] = x_shape.0[..] else {
        unreachable!("rank checked above")
    };
    let Dim::Fixed(steps) = seq else {
        bail!("the sequence length of LSTM grows with the batch; convert with --fixed-shapes")
    };
    check_sequence_lens(cx, node, steps)?;
    let mut outputs = Outputs::default();
    for (d, &reverse) in reversed.iter().enumerate() {
        let cell = Cell {
            node,
            d,
            hidden,
            batch,
            steps,
            batch_first,
        };
        let params = gate_params(cx, node, d, hidden)?;
        let (y, h, c) = cell.run(cx, x, params, reverse)?;
        outputs.y.push(y);
        outputs.h.push(h);
        outputs.c.push(c);
    }
    outputs.finish(cx, node, [seq, batch, Dim::Fixed(hidden)], batch_first)
}

/// Refuses the attribute and input variants this lowering does not compute.
fn check_variant(cx: &Lowering, node: &Node, directions: usize) -> Result<()> {
    if let Some(activations) = node.strings("activations")? {
        let default = ["Sigmoid", "Tanh", "Tanh"].repeat(directions);
        ensure!(
            activations == default,
            "LSTM activations {activations:?} are not supported; only the default Sigmoid, Tanh, Tanh"
        );
    }
    ensure!(
        !node.has_attr("clip"),
        "LSTM with a cell clip is not supported; export the model without clip"
    );
    ensure!(
        node.int("input_forget", 0)? == 0,
        "LSTM with input_forget=1 (coupled input and forget gates) is not supported"
    );
    if let Some(name) = node.input(PEEPHOLES) {
        let zero = cx.is_constant(name) && cx.constant(name)?.iter().all(|&v| v == 0.0);
        ensure!(
            zero,
            "LSTM with peephole weights (input P) is not supported"
        );
    }
    Ok(())
}

/// sequence_lens may only say that every sequence has the full length.
fn check_sequence_lens(cx: &Lowering, node: &Node, steps: usize) -> Result<()> {
    let Some(name) = node.input(SEQUENCE_LENS) else {
        return Ok(());
    };
    let full = match cx.graph.uniform(name) {
        Some(v) => v as usize == steps,
        None => cx
            .constant_ints(name)
            .is_ok_and(|lens| lens.iter().all(|&l| l as usize == steps)),
    };
    ensure!(
        full,
        "LSTM sequence_lens {name} must be a constant equal to the sequence length {steps} for every row; shorter sequences are not supported"
    );
    Ok(())
}

/// Direction `d`'s gate parameters for the products x W^T and h R^T, and the summed biases:
/// [input_size, 4H], [H, 4H] and [4H], with the cell gate's block (the last of i, o, f, c)
/// doubled. The model's constants become secret weights as they are; the slicing, doubling
/// and sums are steps of the plan (local, no communication), so computed parameters work too.
fn gate_params(
    cx: &mut Lowering,
    node: &Node,
    d: usize,
    hidden: usize,
) -> Result<([ValueId; 2], Option<ValueId>)> {
    let directions = cx.shape(required_input(node, W, "W")?)?.0[0];
    let mut params = vec![];
    for (i, what, width) in [(W, "W", None), (R, "R", Some(hidden))] {
        let name = required_input(node, i, what)?;
        let shape = fixed_shape(cx, name, what)?;
        let k = shape.get(2).copied().unwrap_or(0);
        ensure!(
            shape.len() == 3
                && Dim::Fixed(shape[0]) == directions
                && shape[1] == 4 * hidden
                && width.is_none_or(|w| w == k),
            "LSTM {what} has shape {shape:?}, expected [directions, {}, {}]",
            4 * hidden,
            width.map_or("input_size".to_string(), |w| w.to_string())
        );
        let all = cx.value(name)?;
        let one = direction(cx, node, all, d, &[1, 4 * hidden, k], what);
        let tag = format!("{what}{d}");
        let doubled = cell_doubled(cx, node, one, &[1, 4 * hidden, k], 1, &tag);
        let matrix = Shape::fixed_dims(&[4 * hidden, k]);
        let matrix = cx.emit_temp(
            node,
            Op::Reshape {
                shape: matrix.clone(),
            },
            &[doubled],
            &format!("{what}{d}_2d"),
            matrix,
        );
        let perm = vec![1, 0];
        params.push(cx.emit_temp(
            node,
            Op::Transpose { perm },
            &[matrix],
            &format!("{what}{d}_t"),
            Shape::fixed_dims(&[k, 4 * hidden]),
        ));
    }
    let weights = [params[0], params[1]];
    let Some(name) = node.input(BIAS) else {
        return Ok((weights, None));
    };
    let shape = fixed_shape(cx, name, "B")?;
    ensure!(
        shape.len() == 2 && Dim::Fixed(shape[0]) == directions && shape[1] == 8 * hidden,
        "LSTM B has shape {shape:?}, expected [directions, {}]",
        8 * hidden
    );
    let all = cx.value(name)?;
    let one = direction(cx, node, all, d, &[1, 8 * hidden], "B");
    let row = Shape::fixed_dims(&[1, 4 * hidden]);
    let half = |cx: &mut Lowering, k: usize| {
        let op = range(1, k * 4 * hidden, 4 * hidden);
        cx.emit_temp(node, op, &[one], &format!("B{d}_{k}"), row.clone())
    };
    let (wb, rb) = (half(cx, 0), half(cx, 1));
    let sum = cx.emit_temp(node, Op::Add, &[wb, rb], &format!("B{d}_sum"), row);
    let doubled = cell_doubled(cx, node, sum, &[1, 4 * hidden], 1, &format!("B{d}"));
    let four = Shape::fixed_dims(&[4 * hidden]);
    let reshape = Op::Reshape {
        shape: four.clone(),
    };
    let bias = cx.emit_temp(node, reshape, &[doubled], &format!("B{d}_1d"), four);
    Ok((weights, Some(bias)))
}

/// A parameter's shape, which must not depend on the batch.
fn fixed_shape(cx: &Lowering, name: &str, what: &str) -> Result<Vec<usize>> {
    cx.shape(name)?
        .fixed()
        .ok_or_else(|| anyhow!("LSTM {what} must not depend on the batch size"))
}

/// Entry `d` of axis 0 of `all`, as a value of `shape`.
fn direction(
    cx: &mut Lowering,
    node: &Node,
    all: ValueId,
    d: usize,
    shape: &[usize],
    what: &str,
) -> ValueId {
    let shape = Shape::fixed_dims(shape);
    cx.emit_temp(node, range(0, d, 1), &[all], &format!("{what}{d}"), shape)
}

/// Entries `start..start + len` of `axis`.
fn range(axis: usize, start: usize, len: usize) -> Op {
    let slices = vec![AxisSlice {
        axis,
        start,
        len,
        step: 1,
    }];
    Op::Slice { slices }
}

/// `v` with the last quarter of `axis` (the cell gate) doubled: two slices, a sum and a
/// concatenation.
fn cell_doubled(
    cx: &mut Lowering,
    node: &Node,
    v: ValueId,
    shape: &[usize],
    axis: usize,
    what: &str,
) -> ValueId {
    let hidden = shape[axis] / 4;
    let part = |len: usize| {
        let mut dims = shape.to_vec();
        dims[axis] = len;
        Shape::fixed_dims(&dims)
    };
    let (gates_shape, cell_shape) = (part(3 * hidden), part(hidden));
    let gates = range(axis, 0, 3 * hidden);
    let gates = cx.emit_temp(node, gates, &[v], &format!("{what}_iof"), gates_shape);
    let cell = range(axis, 3 * hidden, hidden);
    let cell = cx.emit_temp(node, cell, &[v], &format!("{what}_c"), cell_shape.clone());
    let cell = cx.emit_temp(
        node,
        Op::Add,
        &[cell, cell],
        &format!("{what}_2c"),
        cell_shape,
    );
    cx.emit_temp(
        node,
        Op::Concat { axis },
        &[gates, cell],
        &format!("{what}_doubled"),
        Shape::fixed_dims(shape),
    )
}

/// One direction's recurrence.
struct Cell<'n> {
    node: &'n Node,
    d: usize,
    hidden: usize,
    batch: Dim,
    steps: usize,
    batch_first: bool,
}

impl Cell<'_> {
    fn shape(&self, width: usize) -> Shape {
        Shape(vec![Dim::Fixed(1), self.batch, Dim::Fixed(width)])
    }

    fn temp(
        &self,
        cx: &mut Lowering,
        op: Op,
        inputs: &[ValueId],
        tag: &str,
        width: usize,
    ) -> ValueId {
        let suffix = format!("{tag}{}", self.d);
        cx.emit_temp(self.node, op, inputs, &suffix, self.shape(width))
    }

    /// Gate `k` of i, o, f, c from the gates' sigmoid at one step.
    fn gate(&self, cx: &mut Lowering, gates: ValueId, k: usize, t: usize) -> ValueId {
        let op = range(2, k * self.hidden, self.hidden);
        let tag = format!("t{t}/{}_", ["i", "o", "f", "c"][k]);
        self.temp(cx, op, &[gates], &tag, self.hidden)
    }

    /// Runs the steps in time order (or reversed) and returns Y [S, B, H] in time order and
    /// the last hidden and cell states [1, B, H].
    fn run(
        &self,
        cx: &mut Lowering,
        x: ValueId,
        ([w, r], bias): ([ValueId; 2], Option<ValueId>),
        reverse: bool,
    ) -> Result<(ValueId, ValueId, ValueId)> {
        let (h, four) = (self.hidden, 4 * self.hidden);
        let node = self.node;
        let projected_shape = Shape(vec![Dim::Fixed(self.steps), self.batch, Dim::Fixed(four)]);
        let mut projected = cx.emit_temp(
            node,
            Op::MatMul,
            &[x, w],
            &format!("XW{}", self.d),
            projected_shape.clone(),
        );
        if let Some(bias) = bias {
            let tag = format!("XWB{}", self.d);
            projected = cx.emit_temp(node, Op::Add, &[projected, bias], &tag, projected_shape);
        }
        let mut hidden = initial_state(cx, node, INITIAL_H, self.d, self.batch_first)?;
        let mut cell = initial_state(cx, node, INITIAL_C, self.d, self.batch_first)?;
        let sigmoid = cx.sigmoid_function();
        let one = cx.scalar(node, "one", 1.0)?;
        let mut ys = vec![None; self.steps];
        let order: Vec<usize> = if reverse {
            (0..self.steps).rev().collect()
        } else {
            (0..self.steps).collect()
        };
        for t in order {
            let mut gates = self.temp(cx, range(0, t, 1), &[projected], &format!("t{t}/xw"), four);
            if let Some(prev) = hidden {
                let recurrent = self.temp(cx, Op::MatMul, &[prev, r], &format!("t{t}/hr"), four);
                gates = self.temp(
                    cx,
                    Op::Add,
                    &[gates, recurrent],
                    &format!("t{t}/gates"),
                    four,
                );
            }
            let function = Op::Function { function: sigmoid };
            let gates = self.temp(cx, function, &[gates], &format!("t{t}/sigmoid"), four);
            let [i, o, f, c] = [0, 1, 2, 3].map(|k| self.gate(cx, gates, k, t));
            // tanh of the (doubled) cell input: 2 sigmoid - 1.
            let c = self.temp(cx, Op::Add, &[c, c], &format!("t{t}/c2_"), h);
            let candidate = self.temp(cx, Op::Sub, &[c, one], &format!("t{t}/candidate"), h);
            let mut next = self.temp(cx, Op::Mul, &[i, candidate], &format!("t{t}/ic"), h);
            if let Some(prev) = cell {
                let kept = self.temp(cx, Op::Mul, &[f, prev], &format!("t{t}/fc"), h);
                next = self.temp(cx, Op::Add, &[kept, next], &format!("t{t}/cell"), h);
            }
            let tanh = Op::Function {
                function: Function::Tanh,
            };
            let squashed = self.temp(cx, tanh, &[next], &format!("t{t}/tanh"), h);
            let out = self.temp(cx, Op::Mul, &[o, squashed], &format!("t{t}/h"), h);
            ys[t] = Some(out);
            (hidden, cell) = (Some(out), Some(next));
        }
        let ys: Vec<ValueId> = ys.into_iter().map(|y| y.expect("every step ran")).collect();
        let y_shape = Shape(vec![Dim::Fixed(self.steps), self.batch, Dim::Fixed(h)]);
        let y = cx.emit_temp(
            node,
            Op::Concat { axis: 0 },
            &ys,
            &format!("Y{}", self.d),
            y_shape,
        );
        let last = |v: Option<ValueId>| v.ok_or_else(|| anyhow!("LSTM over an empty sequence"));
        Ok((y, last(hidden)?, last(cell)?))
    }
}

/// Direction `d`'s initial hidden or cell state as [1, B or 1, H] (the input is [dirs, B, H],
/// or [B, dirs, H] batch first); `None` when it is zero.
fn initial_state(
    cx: &mut Lowering,
    node: &Node,
    i: usize,
    d: usize,
    batch_first: bool,
) -> Result<Option<ValueId>> {
    let Some(name) = node.input(i) else {
        return Ok(None);
    };
    let what = if i == INITIAL_H {
        "initial_h"
    } else {
        "initial_c"
    };
    let axis = usize::from(batch_first);
    if cx.graph.is_secret(name) {
        let all = cx.value(name)?;
        let mut shape = cx.shape(name)?;
        shape.0[axis] = Dim::Fixed(1);
        let tag = format!("{what}{d}");
        let mut state = cx.emit_temp(node, range(axis, d, 1), &[all], &tag, shape.clone());
        if batch_first {
            shape.0.swap(0, 1);
            let perm = vec![1, 0, 2];
            state = cx.emit_temp(
                node,
                Op::Transpose { perm },
                &[state],
                &format!("{tag}_t"),
                shape,
            );
        }
        return Ok(Some(state));
    }
    let state = match cx.graph.uniform(name) {
        Some(v) => {
            let hidden = node.int("hidden_size", 0)? as usize;
            ArrayD::from_elem(IxDyn(&[1, 1, hidden]), v)
        }
        None => {
            let all = cx.constant(name).with_context(|| format!("LSTM {what}"))?;
            let mut state = all.slice_axis(Axis(axis), (d..d + 1).into()).to_owned();
            if batch_first {
                state.swap_axes(0, 1);
            }
            state.as_standard_layout().to_owned()
        }
    };
    if state.iter().all(|&v| v == 0.0) {
        return Ok(None);
    }
    let id = cx.weight(
        &format!("{}/{what}{d}", node.name),
        state,
        Visibility::Secret,
    )?;
    Ok(Some(id))
}

/// Each direction's Y [S, B, H] and last states [1, B, H], stacked into the node's outputs.
#[derive(Default)]
struct Outputs {
    y: Vec<ValueId>,
    h: Vec<ValueId>,
    c: Vec<ValueId>,
}

impl Outputs {
    fn finish(
        self,
        cx: &mut Lowering,
        node: &Node,
        [seq, batch, hidden]: [Dim; 3],
        batch_first: bool,
    ) -> Result<()> {
        let dirs = Dim::Fixed(self.y.len());
        // Y: [S, dirs, B, H], or [B, S, dirs, H] batch first.
        let per_direction = Shape(vec![seq, Dim::Fixed(1), batch, hidden]);
        let ys: Vec<ValueId> = self
            .y
            .iter()
            .enumerate()
            .map(|(d, &y)| {
                let op = Op::Reshape {
                    shape: per_direction.clone(),
                };
                cx.emit_temp(node, op, &[y], &format!("Y{d}_4d"), per_direction.clone())
            })
            .collect();
        let y = stack(cx, node, &ys, 1, Shape(vec![seq, dirs, batch, hidden]), "Y");
        let states = Shape(vec![dirs, batch, hidden]);
        let h = stack(cx, node, &self.h, 0, states.clone(), "Y_h");
        let c = stack(cx, node, &self.c, 0, states, "Y_c");
        let outputs = [
            (y, vec![2, 0, 1, 3]),
            (h, vec![1, 0, 2]),
            (c, vec![1, 0, 2]),
        ];
        for (i, (value, perm)) in outputs.into_iter().enumerate() {
            let Some(name) = node.outputs.get(i).filter(|n| !n.is_empty()) else {
                continue;
            };
            if batch_first {
                cx.emit(node, Op::Transpose { perm }, &[value], name)?;
            } else {
                ensure!(
                    cx.shape(name)? == *cx.shape_of(value),
                    "LSTM output {name}: shape inference says {}, the unrolled steps give {}",
                    cx.shape(name)?,
                    cx.shape_of(value)
                );
                cx.alias(name, value);
            }
        }
        Ok(())
    }
}

/// The directions' values concatenated along `axis` (the value itself for one direction).
fn stack(
    cx: &mut Lowering,
    node: &Node,
    values: &[ValueId],
    axis: usize,
    shape: Shape,
    tag: &str,
) -> ValueId {
    match values {
        [one] => *one,
        _ => cx.emit_temp(node, Op::Concat { axis }, values, tag, shape),
    }
}
