//! LSTM, GRU and RNN, unrolled over the sequence at convert time (the model's shapes fix its
//! length). The input projection of every step is one product up front; each step then has
//! one product with the recurrent weights (two for a GRU without linear_before_reset) and its
//! function evaluations, which `lstm.rs`, `gru.rs` and `rnn.rs` describe, one cell kind each.
//! This file holds what they share: directions and layouts, reading the weights and biases,
//! the unrolled loop with its per-step naming, and the stacked outputs.

mod gru;
mod lstm;
mod rnn;

pub use gru::gru;
pub use lstm::lstm;
pub use rnn::rnn;

use super::args::required_input;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId, Visibility};
use crate::tensor::movement::AxisSlice;
use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::{ArrayD, Axis, IxDyn};

/// Inputs by position (LSTM and GRU alike; P is LSTM's only).
const W: usize = 1;
const R: usize = 2;
const BIAS: usize = 3;
const SEQUENCE_LENS: usize = 4;
const INITIAL_H: usize = 5;
const INITIAL_C: usize = 6;
const PEEPHOLES: usize = 7;

/// What sets LSTM, GRU and RNN apart: their gate blocks, the parameters their steps read,
/// and the step itself. Everything else about unrolling them is shared.
trait CellKind: Copy {
    /// What one direction's steps read besides the projected input and the state.
    type Params;

    /// The ONNX op, for messages.
    const NAME: &'static str;

    /// Gate blocks stacked in W, R and each half of B.
    const BLOCKS: usize;

    /// Whether the state holds a cell c besides h (an LSTM's).
    const HAS_CELL_STATE: bool = false;

    fn default_activations(self) -> &'static [&'static str];

    /// A [1, blocks H, ..] parameter (W, R, or the summed bias) laid out as the steps read
    /// its gates; as it is unless the kind says otherwise.
    fn gate_layout(
        self,
        _cx: &mut Lowering,
        _cell: &Cell<Self>,
        v: ValueId,
        _shape: &[usize],
        _tag: &str,
    ) -> Result<ValueId> {
        Ok(v)
    }

    /// Reads this direction's parameters: the input projection's, then the steps' own.
    fn params(self, cx: &mut Lowering, cell: &Cell<Self>) -> Result<(Projection, Self::Params)>;

    /// Step `t` from the previous state, its gates' input projection being `input`.
    fn step(
        self,
        cx: &mut Lowering,
        cell: &Cell<Self>,
        t: usize,
        input: ValueId,
        params: &Self::Params,
        state: State,
    ) -> Result<State>;
}

/// The input projection x W^T + bias that every step's gates start from. The model's
/// constants become secret weights as they are; the slicing, doubling and sums that make
/// W, R and the bias are steps of the plan (local, no communication), so computed parameters
/// work too.
struct Projection {
    /// [input_size, blocks H].
    w: ValueId,
    /// [1, blocks H].
    bias: Option<ValueId>,
}

/// The recurrent state after a step: h, and an LSTM's cell c.
type State = (Option<ValueId>, Option<ValueId>);

fn recurrence<K: CellKind>(cx: &mut Lowering, node: &Node, kind: K) -> Result<()> {
    let op = K::NAME;
    let hidden = node.int("hidden_size", 0)?;
    ensure!(hidden > 0, "{op} needs a positive hidden_size attribute");
    let hidden = hidden as usize;
    let reversed: &[bool] = match node.string("direction")?.as_deref() {
        None | Some("forward") => &[false],
        Some("reverse") => &[true],
        Some("bidirectional") => &[false, true],
        Some(other) => bail!("{op} direction {other:?} is not forward, reverse or bidirectional"),
    };
    check_variant(node, kind, reversed.len())?;
    let batch_first = match node.int("layout", 0)? {
        0 => false,
        1 => true,
        other => bail!("{op} layout {other} is not 0 or 1"),
    };

    let x_name = required_input(node, 0, "X")?;
    let mut x = cx.value(x_name)?;
    let mut x_shape = cx.shape(x_name)?;
    ensure!(
        x_shape.rank() == 3,
        "{op} input X must have rank 3, it has shape {x_shape}"
    );
    if batch_first {
        x_shape = Shape(vec![x_shape.0[1], x_shape.0[0], x_shape.0[2]]);
        let perm = vec![1, 0, 2];
        let to = To::shaped("X_seq", x_shape.clone());
        x = cx.emit(node, Op::Transpose { perm }, &[x], to)?;
    }
    let [seq, batch, _] = x_shape.0[..] else {
        unreachable!("rank checked above")
    };
    let Dim::Fixed(steps) = seq else {
        bail!("the sequence length of {op} grows with the batch; convert with --fixed-shapes")
    };
    check_sequence_lens(cx, node, op, steps)?;
    let mut outputs = Outputs::default();
    for (d, &reverse) in reversed.iter().enumerate() {
        let cell = Cell {
            node,
            kind,
            d,
            hidden,
            batch,
            steps,
            batch_first,
        };
        let (projection, params) = kind.params(cx, &cell)?;
        let (y, h, c) = cell.run(cx, x, projection, &params, reverse)?;
        outputs.y.push(y);
        outputs.h.push(h);
        outputs.c.extend(c);
    }
    outputs.finish(cx, node, [seq, batch, Dim::Fixed(hidden)], batch_first)
}

/// Refuses the attribute and input variants this lowering does not compute.
fn check_variant<K: CellKind>(node: &Node, kind: K, directions: usize) -> Result<()> {
    let op = K::NAME;
    if let Some(activations) = node.strings("activations")? {
        let default = kind.default_activations().repeat(directions);
        ensure!(
            activations == default,
            "{op} activations {activations:?} are not supported; only the default {}",
            kind.default_activations().join(", ")
        );
    }
    ensure!(
        !node.has_attr("clip"),
        "{op} with a cell clip is not supported; export the model without clip"
    );
    ensure!(
        node.int("input_forget", 0)? == 0,
        "LSTM with input_forget=1 (coupled input and forget gates) is not supported"
    );
    Ok(())
}

/// sequence_lens may only say that every sequence has the full length.
fn check_sequence_lens(cx: &Lowering, node: &Node, op: &str, steps: usize) -> Result<()> {
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
        "{op} sequence_lens {name} must be a constant equal to the sequence length {steps} for every row; shorter sequences are not supported"
    );
    Ok(())
}

/// A parameter's shape, which must not depend on the batch.
fn fixed_shape(cx: &Lowering, name: &str, op: &str, what: &str) -> Result<Vec<usize>> {
    cx.shape(name)?
        .fixed()
        .ok_or_else(|| anyhow!("{op} {what} must not depend on the batch size"))
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

fn tanh(cx: &Lowering) -> Op {
    Op::Function {
        function: cx.tanh_function(),
    }
}

/// One direction's recurrence.
struct Cell<'n, K> {
    node: &'n Node,
    kind: K,
    d: usize,
    hidden: usize,
    batch: Dim,
    steps: usize,
    batch_first: bool,
}

/// Reading this direction's parameters.
impl<K: CellKind> Cell<'_, K> {
    /// Entry `d` of axis 0 of `all`, as a value of `shape`.
    fn direction(
        &self,
        cx: &mut Lowering,
        all: ValueId,
        shape: &[usize],
        what: &str,
    ) -> Result<ValueId> {
        let (d, shape) = (self.d, Shape::fixed_dims(shape));
        let to = To::shaped(format!("{what}{d}"), shape);
        cx.emit(self.node, range(0, d, 1), &[all], to)
    }

    /// The number of directions the parameters hold, from W.
    fn direction_count(&self, cx: &Lowering) -> Result<Dim> {
        Ok(cx.shape(required_input(self.node, W, "W")?)?.0[0])
    }

    /// W and R as [input_size, blocks H] and [H, blocks H], for products x W^T and h R^T.
    fn weights(&self, cx: &mut Lowering) -> Result<(ValueId, ValueId)> {
        let (node, d, op) = (self.node, self.d, K::NAME);
        let width = K::BLOCKS * self.hidden;
        let directions = self.direction_count(cx)?;
        let mut weights = vec![];
        for (i, what, columns) in [(W, "W", None), (R, "R", Some(self.hidden))] {
            let name = required_input(node, i, what)?;
            let shape = fixed_shape(cx, name, op, what)?;
            let k = shape.get(2).copied().unwrap_or(0);
            ensure!(
                shape.len() == 3
                    && Dim::Fixed(shape[0]) == directions
                    && shape[1] == width
                    && columns.is_none_or(|c| c == k),
                "{op} {what} has shape {shape:?}, expected [directions, {width}, {}]",
                columns.map_or("input_size".to_string(), |c| c.to_string())
            );
            let all = cx.value(name)?;
            let one = self.direction(cx, all, &[1, width, k], what)?;
            let tag = format!("{what}{d}");
            let one = self.kind.gate_layout(cx, self, one, &[1, width, k], &tag)?;
            let matrix = Shape::fixed_dims(&[width, k]);
            let reshape = Op::Reshape {
                shape: matrix.clone(),
            };
            let to = To::shaped(format!("{tag}_2d"), matrix);
            let matrix = cx.emit(node, reshape, &[one], to)?;
            let transposed = To::shaped(format!("{tag}_t"), Shape::fixed_dims(&[k, width]));
            let perm = vec![1, 0];
            weights.push(cx.emit(node, Op::Transpose { perm }, &[matrix], transposed)?);
        }
        Ok((weights[0], weights[1]))
    }

    /// This direction's row of B [directions, 2 blocks H] (Wb then Rb), when there is B.
    fn bias_row(&self, cx: &mut Lowering) -> Result<Option<ValueId>> {
        let Some(name) = self.node.input(BIAS) else {
            return Ok(None);
        };
        let (op, width) = (K::NAME, K::BLOCKS * self.hidden);
        let directions = self.direction_count(cx)?;
        let shape = fixed_shape(cx, name, op, "B")?;
        ensure!(
            shape.len() == 2 && Dim::Fixed(shape[0]) == directions && shape[1] == 2 * width,
            "{op} B has shape {shape:?}, expected [directions, {}]",
            2 * width
        );
        let all = cx.value(name)?;
        self.direction(cx, all, &[1, 2 * width], "B").map(Some)
    }

    /// Columns `start..start + len` of this direction's bias `row`, tagged `B{d}_{tag}`.
    fn bias_part(
        &self,
        cx: &mut Lowering,
        row: ValueId,
        (start, len): (usize, usize),
        tag: &str,
    ) -> Result<ValueId> {
        let to = To::shaped(format!("B{}_{tag}", self.d), Shape::fixed_dims(&[1, len]));
        cx.emit(self.node, range(1, start, len), &[row], to)
    }

    /// Wb + Rb from this direction's bias `row`, laid out by gate like W and R.
    fn summed_bias(&self, cx: &mut Lowering, row: ValueId) -> Result<ValueId> {
        let (d, width) = (self.d, K::BLOCKS * self.hidden);
        let wb = self.bias_part(cx, row, (0, width), "w")?;
        let rb = self.bias_part(cx, row, (width, width), "r")?;
        let to = To::shaped(format!("B{d}_sum"), Shape::fixed_dims(&[1, width]));
        let sum = cx.emit(self.node, Op::Add, &[wb, rb], to)?;
        (self.kind).gate_layout(cx, self, sum, &[1, width], &format!("B{d}"))
    }

    /// The projection's weights and summed bias, and R: what every kind but a GRU with
    /// linear_before_reset reads.
    fn projection_and_r(&self, cx: &mut Lowering) -> Result<(Projection, ValueId)> {
        let (w, r) = self.weights(cx)?;
        let bias = match self.bias_row(cx)? {
            Some(row) => Some(self.summed_bias(cx, row)?),
            None => None,
        };
        Ok((Projection { w, bias }, r))
    }
}

/// Unrolling.
impl<K: CellKind> Cell<'_, K> {
    /// Where an intermediate [1, B, width] value of step `t` goes: `{node}/t{t}/{tag}{d}`.
    fn at(&self, t: usize, tag: &str, width: usize) -> To<'static> {
        let shape = Shape(vec![Dim::Fixed(1), self.batch, Dim::Fixed(width)]);
        To::shaped(format!("t{t}/{tag}{}", self.d), shape)
    }

    /// This direction's initial hidden or cell state as [1, B or 1, H] (the input is [dirs, B, H],
    /// or [B, dirs, H] batch first); `None` when it is zero.
    fn initial_state(&self, cx: &mut Lowering, i: usize) -> Result<Option<ValueId>> {
        let (node, d, batch_first) = (self.node, self.d, self.batch_first);
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
            let to = To::shaped(&tag, shape.clone());
            let mut state = cx.emit(node, range(axis, d, 1), &[all], to)?;
            if batch_first {
                shape.0.swap(0, 1);
                let perm = vec![1, 0, 2];
                let to = To::shaped(format!("{tag}_t"), shape);
                state = cx.emit(node, Op::Transpose { perm }, &[state], to)?;
            }
            return Ok(Some(state));
        }
        let state = match cx.graph.uniform(name) {
            Some(v) => ArrayD::from_elem(IxDyn(&[1, 1, self.hidden]), v),
            None => {
                let all = cx
                    .constant(name)
                    .with_context(|| format!("{} {what}", node.op_type))?;
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

    /// `input` + h_prev `r` (of `width` columns) at step `t`, or `input` itself from a zero
    /// state.
    fn plus_recurrent(
        &self,
        cx: &mut Lowering,
        t: usize,
        input: ValueId,
        (hidden, r): (Option<ValueId>, ValueId),
        width: usize,
    ) -> Result<ValueId> {
        let Some(prev) = hidden else {
            return Ok(input);
        };
        let recurrent = cx.emit(self.node, Op::MatMul, &[prev, r], self.at(t, "hr", width))?;
        let to = self.at(t, "pre", width);
        cx.emit(self.node, Op::Add, &[input, recurrent], to)
    }

    /// Block `k` (of hidden width) of step `t`'s gates.
    fn block(
        &self,
        cx: &mut Lowering,
        gates: ValueId,
        k: usize,
        t: usize,
        tag: &str,
    ) -> Result<ValueId> {
        let op = range(2, k * self.hidden, self.hidden);
        cx.emit(self.node, op, &[gates], self.at(t, tag, self.hidden))
    }

    /// Blocks `0..N` of step `t`'s gates, tagged in order.
    fn blocks<const N: usize>(
        &self,
        cx: &mut Lowering,
        gates: ValueId,
        t: usize,
        tags: [&str; N],
    ) -> Result<[ValueId; N]> {
        let blocks = (tags.iter().enumerate())
            .map(|(k, tag)| self.block(cx, gates, k, t, tag))
            .collect::<Result<Vec<_>>>()?;
        Ok(blocks.try_into().expect("one block per tag"))
    }

    /// Runs the steps in time order (or reversed) and returns Y [S, B, H] in time order, the
    /// last hidden state and an LSTM's last cell state, [1, B, H].
    fn run(
        &self,
        cx: &mut Lowering,
        x: ValueId,
        projection: Projection,
        params: &K::Params,
        reverse: bool,
    ) -> Result<(ValueId, ValueId, Option<ValueId>)> {
        let (node, d, width) = (self.node, self.d, K::BLOCKS * self.hidden);
        let projected_shape = Shape(vec![Dim::Fixed(self.steps), self.batch, Dim::Fixed(width)]);
        let to = To::shaped(format!("XW{d}"), projected_shape.clone());
        let mut projected = cx.emit(node, Op::MatMul, &[x, projection.w], to)?;
        if let Some(bias) = projection.bias {
            let to = To::shaped(format!("XWB{d}"), projected_shape);
            projected = cx.emit(node, Op::Add, &[projected, bias], to)?;
        }
        let initial_hidden = self.initial_state(cx, INITIAL_H)?;
        let initial_cell = if K::HAS_CELL_STATE {
            self.initial_state(cx, INITIAL_C)?
        } else {
            None
        };
        let mut state: State = (initial_hidden, initial_cell);
        let mut ys = vec![None; self.steps];
        let order: Vec<usize> = if reverse {
            (0..self.steps).rev().collect()
        } else {
            (0..self.steps).collect()
        };
        for t in order {
            let to = self.at(t, "xw", width);
            let input = cx.emit(node, range(0, t, 1), &[projected], to)?;
            state = self.kind.step(cx, self, t, input, params, state)?;
            ys[t] = state.0;
        }
        let ys: Vec<ValueId> = ys.into_iter().map(|y| y.expect("every step ran")).collect();
        let y_shape = Shape(vec![
            Dim::Fixed(self.steps),
            self.batch,
            Dim::Fixed(self.hidden),
        ]);
        let to = To::shaped(format!("Y{d}"), y_shape);
        let y = cx.emit(node, Op::Concat { axis: 0 }, &ys, to)?;
        let op = K::NAME;
        let last = state
            .0
            .ok_or_else(|| anyhow!("{op} over an empty sequence"))?;
        Ok((y, last, state.1))
    }
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
                cx.emit(
                    node,
                    op,
                    &[y],
                    To::shaped(format!("Y{d}_4d"), per_direction.clone()),
                )
            })
            .collect::<Result<_>>()?;
        let y = stack(cx, node, &ys, 1, Shape(vec![seq, dirs, batch, hidden]), "Y")?;
        let states = Shape(vec![dirs, batch, hidden]);
        let h = stack(cx, node, &self.h, 0, states.clone(), "Y_h")?;
        let mut outputs = vec![(y, vec![2, 0, 1, 3]), (h, vec![1, 0, 2])];
        if !self.c.is_empty() {
            let c = stack(cx, node, &self.c, 0, states, "Y_c")?;
            outputs.push((c, vec![1, 0, 2]));
        }
        for (i, (value, perm)) in outputs.into_iter().enumerate() {
            let Some(name) = node.outputs.get(i).filter(|n| !n.is_empty()) else {
                continue;
            };
            if batch_first {
                cx.emit(node, Op::Transpose { perm }, &[value], To::Tensor(name))?;
            } else {
                ensure!(
                    cx.shape(name)? == *cx.shape_of(value),
                    "{} output {name}: shape inference says {}, the unrolled steps give {}",
                    node.op_type,
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
) -> Result<ValueId> {
    match values {
        [one] => Ok(*one),
        _ => cx.emit(node, Op::Concat { axis }, values, To::shaped(tag, shape)),
    }
}
