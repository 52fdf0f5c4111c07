//! LSTM, GRU and RNN, unrolled over the sequence at convert time (the model's shapes fix its
//! length). The input projection of every step is one product up front; each step then has
//! one product with the recurrent weights (two for a GRU without linear_before_reset) and its
//! function evaluations:
//! - LSTM: one sigmoid for all four gates (the cell gate's block of the parameters is doubled,
//!   so that tanh(x) = 2 sigmoid(2x) - 1, the identity the Tanh lowering uses, comes out of
//!   the same evaluation), the cell update, and the tanh of the cell; with peepholes the
//!   output gate, which reads the updated cell, takes a sigmoid of its own;
//! - GRU: one sigmoid for the update and reset gates, then the tanh of the candidate;
//! - RNN: the tanh (or ReLU) of the sum.

use super::args::required_input;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Function, Shape, ValueId, Visibility};
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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lstm,
    /// With linear_before_reset, the reset gate multiplies h R^T + Rb (PyTorch's GRU, and
    /// Keras's with reset_after); without, it multiplies h before the product.
    Gru {
        linear_before_reset: bool,
    },
    /// A plain RNN, with tanh or (PyTorch's nonlinearity='relu') ReLU.
    Rnn {
        relu: bool,
    },
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lstm => "LSTM",
            Kind::Gru { .. } => "GRU",
            Kind::Rnn { .. } => "RNN",
        }
    }

    /// Gate blocks stacked in W, R and each half of B.
    fn blocks(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru { .. } => 3,
            Kind::Rnn { .. } => 1,
        }
    }

    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Kind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Kind::Gru { .. } => &["Sigmoid", "Tanh"],
            Kind::Rnn { relu: false } => &["Tanh"],
            Kind::Rnn { relu: true } => &["Relu"],
        }
    }
}

pub fn lstm(cx: &mut Lowering, node: &Node) -> Result<()> {
    recurrence(cx, node, Kind::Lstm)
}

pub fn rnn(cx: &mut Lowering, node: &Node) -> Result<()> {
    let relu = node
        .strings("activations")?
        .is_some_and(|a| a.first().is_some_and(|f| f == "Relu"));
    recurrence(cx, node, Kind::Rnn { relu })
}

pub fn gru(cx: &mut Lowering, node: &Node) -> Result<()> {
    let linear_before_reset = node.int("linear_before_reset", 0)? != 0;
    recurrence(
        cx,
        node,
        Kind::Gru {
            linear_before_reset,
        },
    )
}

fn recurrence(cx: &mut Lowering, node: &Node, kind: Kind) -> Result<()> {
    let op = kind.name();
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
        x = cx.emit(
            node,
            Op::Transpose { perm },
            &[x],
            To::shaped("X_seq", x_shape.clone()),
        )?;
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
        let params = gate_params(cx, node, kind, d, hidden)?;
        let (y, h, c) = cell.run(cx, x, params, reverse)?;
        outputs.y.push(y);
        outputs.h.push(h);
        outputs.c.extend(c);
    }
    outputs.finish(cx, node, [seq, batch, Dim::Fixed(hidden)], batch_first)
}

/// Refuses the attribute and input variants this lowering does not compute.
fn check_variant(node: &Node, kind: Kind, directions: usize) -> Result<()> {
    let op = kind.name();
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

/// Direction `d`'s parameters, for products x W^T and h R^T. The model's constants become
/// secret weights as they are; the slicing, doubling and sums are steps of the plan (local,
/// no communication), so computed parameters work too.
struct Params {
    /// [input_size, blocks H].
    w: ValueId,
    /// [H, blocks H].
    r: ValueId,
    /// [blocks H], added to the input projection: Wb + Rb, but for a GRU with
    /// linear_before_reset the candidate's block is Wb's alone.
    bias: Option<ValueId>,
    /// That GRU's candidate block of Rb, [H], which the reset gate multiplies.
    reset_bias: Option<ValueId>,
    /// A GRU without linear_before_reset: the candidate's block of R^T, [H, H], for the
    /// product after the reset gate (`r` then holds the update and reset gates' blocks).
    candidate_r: Option<ValueId>,
    /// An LSTM's peephole weights for i, o and f, [1, H] each, unless absent or zero.
    peepholes: Option<[ValueId; 3]>,
    /// The public 1 of an LSTM's 2 sigmoid - 1.
    one: Option<ValueId>,
}

/// Reads and checks direction `d`'s parameters; for an LSTM the cell gate's block (the last
/// of i, o, f, c) is doubled.
fn gate_params(
    cx: &mut Lowering,
    node: &Node,
    kind: Kind,
    d: usize,
    hidden: usize,
) -> Result<Params> {
    let op = kind.name();
    let width = kind.blocks() * hidden;
    let directions = cx.shape(required_input(node, W, "W")?)?.0[0];
    let doubled = |cx: &mut Lowering, v: ValueId, shape: &[usize], tag: &str| match kind {
        Kind::Lstm => cell_doubled(cx, node, v, shape, 1, tag),
        Kind::Gru { .. } | Kind::Rnn { .. } => Ok(v),
    };
    let mut weights = vec![];
    for (i, what, columns) in [(W, "W", None), (R, "R", Some(hidden))] {
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
        let one = direction(cx, node, all, d, &[1, width, k], what)?;
        let tag = format!("{what}{d}");
        let one = doubled(cx, one, &[1, width, k], &tag)?;
        let matrix = Shape::fixed_dims(&[width, k]);
        let reshape = Op::Reshape {
            shape: matrix.clone(),
        };
        let matrix = cx.emit(
            node,
            reshape,
            &[one],
            To::shaped(format!("{tag}_2d"), matrix),
        )?;
        let perm = vec![1, 0];
        let transposed = Shape::fixed_dims(&[k, width]);
        let tag = format!("{tag}_t");
        weights.push(cx.emit(
            node,
            Op::Transpose { perm },
            &[matrix],
            To::shaped(tag, transposed),
        )?);
    }
    let (w, mut r) = (weights[0], weights[1]);
    let mut candidate_r = None;
    if kind
        == (Kind::Gru {
            linear_before_reset: false,
        })
    {
        let columns = |cx: &mut Lowering, start: usize, len: usize, tag: &str| {
            let shape = Shape::fixed_dims(&[hidden, len]);
            cx.emit(
                node,
                range(1, start, len),
                &[r],
                To::shaped(format!("R{d}_{tag}"), shape),
            )
        };
        candidate_r = Some(columns(cx, 2 * hidden, hidden, "h")?);
        r = columns(cx, 0, 2 * hidden, "zr")?;
    }
    let (bias, reset_bias) = match node.input(BIAS) {
        Some(name) => biases(cx, node, kind, name, (d, directions), hidden)?,
        None => (None, None),
    };
    Ok(Params {
        w,
        r,
        bias,
        reset_bias,
        candidate_r,
        peepholes: peepholes(cx, node, kind, d, hidden)?,
        one: match kind {
            Kind::Lstm => Some(cx.scalar(node, &format!("one{d}"), 1.0)?),
            Kind::Gru { .. } | Kind::Rnn { .. } => None,
        },
    })
}

/// Direction `d`'s biases from B [directions, 2 blocks H]: the input projection's, and a
/// GRU-with-linear_before_reset's candidate block of Rb (see [`Params`]).
fn biases(
    cx: &mut Lowering,
    node: &Node,
    kind: Kind,
    name: &str,
    (d, directions): (usize, Dim),
    hidden: usize,
) -> Result<(Option<ValueId>, Option<ValueId>)> {
    let (op, width) = (kind.name(), kind.blocks() * hidden);
    let shape = fixed_shape(cx, name, op, "B")?;
    ensure!(
        shape.len() == 2 && Dim::Fixed(shape[0]) == directions && shape[1] == 2 * width,
        "{op} B has shape {shape:?}, expected [directions, {}]",
        2 * width
    );
    let all = cx.value(name)?;
    let one = direction(cx, node, all, d, &[1, 2 * width], "B")?;
    let part = |cx: &mut Lowering, start: usize, len: usize, tag: &str| {
        let shape = Shape::fixed_dims(&[1, len]);
        let tag = format!("B{d}_{tag}");
        cx.emit(node, range(1, start, len), &[one], To::shaped(tag, shape))
    };
    let row = |len: usize| Shape::fixed_dims(&[1, len]);
    Ok(match kind {
        Kind::Gru {
            linear_before_reset: true,
        } => {
            let gates = 2 * hidden;
            let (wb, rb) = (part(cx, 0, gates, "wzr")?, part(cx, width, gates, "rzr")?);
            let sum = cx.emit(
                node,
                Op::Add,
                &[wb, rb],
                To::shaped(format!("B{d}_zr"), row(gates)),
            )?;
            let candidate = part(cx, gates, hidden, "wh")?;
            let concat = Op::Concat { axis: 1 };
            let tag = format!("B{d}_sum");
            let bias = cx.emit(node, concat, &[sum, candidate], To::shaped(tag, row(width)))?;
            (Some(bias), Some(part(cx, width + gates, hidden, "rh")?))
        }
        _ => {
            let (wb, rb) = (part(cx, 0, width, "w")?, part(cx, width, width, "r")?);
            let sum = cx.emit(
                node,
                Op::Add,
                &[wb, rb],
                To::shaped(format!("B{d}_sum"), row(width)),
            )?;
            let bias = match kind {
                Kind::Lstm => cell_doubled(cx, node, sum, &[1, width], 1, &format!("B{d}"))?,
                Kind::Gru { .. } | Kind::Rnn { .. } => sum,
            };
            (Some(bias), None)
        }
    })
}

/// Direction `d`'s peephole weights for i, o and f from an LSTM's P [directions, 3H], unless
/// absent or all zero.
fn peepholes(
    cx: &mut Lowering,
    node: &Node,
    kind: Kind,
    d: usize,
    hidden: usize,
) -> Result<Option<[ValueId; 3]>> {
    let Some(name) = node.input(PEEPHOLES).filter(|_| kind == Kind::Lstm) else {
        return Ok(None);
    };
    if cx.is_constant(name) && cx.constant(name)?.iter().all(|&v| v == 0.0) {
        return Ok(None);
    }
    let shape = fixed_shape(cx, name, "LSTM", "P")?;
    ensure!(
        shape.len() == 2 && shape[1] == 3 * hidden,
        "LSTM P has shape {shape:?}, expected [directions, {}]",
        3 * hidden
    );
    let all = cx.value(name)?;
    let one = direction(cx, node, all, d, &[1, 3 * hidden], "P")?;
    let row = Shape::fixed_dims(&[1, hidden]);
    let mut block = |k: usize| {
        let to = To::shaped(format!("P{d}_{k}"), row.clone());
        cx.emit(node, range(1, k * hidden, hidden), &[one], to)
    };
    Ok(Some([block(0)?, block(1)?, block(2)?]))
}

/// A parameter's shape, which must not depend on the batch.
fn fixed_shape(cx: &Lowering, name: &str, op: &str, what: &str) -> Result<Vec<usize>> {
    cx.shape(name)?
        .fixed()
        .ok_or_else(|| anyhow!("{op} {what} must not depend on the batch size"))
}

/// Entry `d` of axis 0 of `all`, as a value of `shape`.
fn direction(
    cx: &mut Lowering,
    node: &Node,
    all: ValueId,
    d: usize,
    shape: &[usize],
    what: &str,
) -> Result<ValueId> {
    let shape = Shape::fixed_dims(shape);
    cx.emit(
        node,
        range(0, d, 1),
        &[all],
        To::shaped(format!("{what}{d}"), shape),
    )
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
) -> Result<ValueId> {
    let hidden = shape[axis] / 4;
    let part = |len: usize| {
        let mut dims = shape.to_vec();
        dims[axis] = len;
        Shape::fixed_dims(&dims)
    };
    let (gates_shape, cell_shape) = (part(3 * hidden), part(hidden));
    let gates = range(axis, 0, 3 * hidden);
    let gates = cx.emit(
        node,
        gates,
        &[v],
        To::shaped(format!("{what}_iof"), gates_shape),
    )?;
    let cell = range(axis, 3 * hidden, hidden);
    let cell = cx.emit(
        node,
        cell,
        &[v],
        To::shaped(format!("{what}_c"), cell_shape.clone()),
    )?;
    let cell = cx.emit(
        node,
        Op::Add,
        &[cell, cell],
        To::shaped(format!("{what}_2c"), cell_shape),
    )?;
    let doubled = To::shaped(format!("{what}_doubled"), Shape::fixed_dims(shape));
    cx.emit(node, Op::Concat { axis }, &[gates, cell], doubled)
}

/// One direction's recurrence.
struct Cell<'n> {
    node: &'n Node,
    kind: Kind,
    d: usize,
    hidden: usize,
    batch: Dim,
    steps: usize,
    batch_first: bool,
}

/// The recurrent state after a step: h, and an LSTM's cell c.
type State = (Option<ValueId>, Option<ValueId>);

impl Cell<'_> {
    fn shape(&self, width: usize) -> Shape {
        Shape(vec![Dim::Fixed(1), self.batch, Dim::Fixed(width)])
    }

    /// An intermediate [1, B, width] value of step `t`.
    fn at(&self, t: usize, tag: &str, width: usize) -> To<'static> {
        To::shaped(format!("t{t}/{tag}{}", self.d), self.shape(width))
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
            let mut state = cx.emit(
                node,
                range(axis, d, 1),
                &[all],
                To::shaped(&tag, shape.clone()),
            )?;
            if batch_first {
                shape.0.swap(0, 1);
                let perm = vec![1, 0, 2];
                state = cx.emit(
                    node,
                    Op::Transpose { perm },
                    &[state],
                    To::shaped(format!("{tag}_t"), shape),
                )?;
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

    /// `input` + h_prev `r` (of `width` columns), or `input` itself from a zero state.
    fn plus_recurrent(
        &self,
        cx: &mut Lowering,
        t: usize,
        input: ValueId,
        (hidden, r): (Option<ValueId>, ValueId),
        width: usize,
    ) -> Result<ValueId> {
        match hidden {
            Some(prev) => {
                let recurrent =
                    cx.emit(self.node, Op::MatMul, &[prev, r], self.at(t, "hr", width))?;
                cx.emit(
                    self.node,
                    Op::Add,
                    &[input, recurrent],
                    self.at(t, "pre", width),
                )
            }
            None => Ok(input),
        }
    }

    /// Block `k` (of hidden width) of a step's gates.
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

    /// Blocks `0..N` of a step's gates, tagged in order.
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
        params: Params,
        reverse: bool,
    ) -> Result<(ValueId, ValueId, Option<ValueId>)> {
        let (node, d, width) = (self.node, self.d, self.kind.blocks() * self.hidden);
        let projected_shape = Shape(vec![Dim::Fixed(self.steps), self.batch, Dim::Fixed(width)]);
        let xw = format!("XW{d}");
        let mut projected = cx.emit(
            node,
            Op::MatMul,
            &[x, params.w],
            To::shaped(xw, projected_shape.clone()),
        )?;
        if let Some(bias) = params.bias {
            let tag = format!("XWB{d}");
            projected = cx.emit(
                node,
                Op::Add,
                &[projected, bias],
                To::shaped(tag, projected_shape),
            )?;
        }
        let mut state: State = (
            self.initial_state(cx, INITIAL_H)?,
            match self.kind {
                Kind::Lstm => self.initial_state(cx, INITIAL_C)?,
                Kind::Gru { .. } | Kind::Rnn { .. } => None,
            },
        );
        let mut ys = vec![None; self.steps];
        let order: Vec<usize> = if reverse {
            (0..self.steps).rev().collect()
        } else {
            (0..self.steps).collect()
        };
        for t in order {
            let input = cx.emit(
                self.node,
                range(0, t, 1),
                &[projected],
                self.at(t, "xw", width),
            )?;
            state = match self.kind {
                Kind::Lstm => self.lstm_step(cx, t, input, &params, state)?,
                Kind::Gru { .. } => self.gru_step(cx, t, input, &params, state.0)?,
                Kind::Rnn { relu } => self.rnn_step(cx, t, input, &params, state.0, relu)?,
            };
            ys[t] = state.0;
        }
        let ys: Vec<ValueId> = ys.into_iter().map(|y| y.expect("every step ran")).collect();
        let y_shape = Shape(vec![
            Dim::Fixed(self.steps),
            self.batch,
            Dim::Fixed(self.hidden),
        ]);
        let y = cx.emit(
            node,
            Op::Concat { axis: 0 },
            &ys,
            To::shaped(format!("Y{d}"), y_shape),
        )?;
        let op = self.kind.name();
        let last = state
            .0
            .ok_or_else(|| anyhow!("{op} over an empty sequence"))?;
        Ok((y, last, state.1))
    }

    /// i, o, f = sigmoid, c' = tanh (from the same sigmoid of the doubled block);
    /// c = f c_prev + i c'; h = o tanh(c).
    fn lstm_step(
        &self,
        cx: &mut Lowering,
        t: usize,
        input: ValueId,
        params: &Params,
        (hidden, cell): State,
    ) -> Result<State> {
        let (h, three, four) = (self.hidden, 3 * self.hidden, 4 * self.hidden);
        let gates = self.plus_recurrent(cx, t, input, (hidden, params.r), four)?;
        let sigmoid = Op::Function {
            function: cx.sigmoid_function(),
        };
        // Peepholes add p * c_prev to i and f and p * c to o, so o takes its own sigmoid
        // after the cell update; without them one sigmoid covers all four gates.
        let peeped = |cx: &mut Lowering, k: usize, p: ValueId, c: Option<ValueId>, tag: &str| {
            let pre = self.block(cx, gates, k, t, &format!("{tag}_in"))?;
            match c {
                Some(c) => {
                    let peep = cx.emit(
                        self.node,
                        Op::Mul,
                        &[p, c],
                        self.at(t, &format!("{tag}_peep"), h),
                    )?;
                    cx.emit(
                        self.node,
                        Op::Add,
                        &[pre, peep],
                        self.at(t, &format!("{tag}_pre"), h),
                    )
                }
                None => Ok(pre),
            }
        };
        let (i, f, c, o) = match params.peepholes {
            None => {
                let all = cx.emit(
                    self.node,
                    sigmoid.clone(),
                    &[gates],
                    self.at(t, "sigmoid", four),
                )?;
                let [i, o, f, c] = self.blocks(cx, all, t, ["i", "o", "f", "c"])?;
                (i, f, c, Some(o))
            }
            Some([p_i, _, p_f]) => {
                let i = peeped(cx, 0, p_i, cell, "i")?;
                let f = peeped(cx, 2, p_f, cell, "f")?;
                let c = self.block(cx, gates, 3, t, "c_in")?;
                let ifc = cx.emit(
                    self.node,
                    Op::Concat { axis: 2 },
                    &[i, f, c],
                    self.at(t, "ifc", three),
                )?;
                let ifc = cx.emit(
                    self.node,
                    sigmoid.clone(),
                    &[ifc],
                    self.at(t, "sigmoid", three),
                )?;
                let [i, f, c] = self.blocks(cx, ifc, t, ["i", "f", "c"])?;
                (i, f, c, None)
            }
        };
        // tanh of the (doubled) cell input: 2 sigmoid - 1.
        let c = cx.emit(self.node, Op::Add, &[c, c], self.at(t, "c2_", h))?;
        let one = params.one.context("an LSTM's parameters hold the 1")?;
        let candidate = cx.emit(self.node, Op::Sub, &[c, one], self.at(t, "candidate", h))?;
        let mut next = cx.emit(self.node, Op::Mul, &[i, candidate], self.at(t, "ic", h))?;
        if let Some(prev) = cell {
            let kept = cx.emit(self.node, Op::Mul, &[f, prev], self.at(t, "fc", h))?;
            next = cx.emit(self.node, Op::Add, &[kept, next], self.at(t, "cell", h))?;
        }
        let o = match (o, params.peepholes) {
            (Some(o), _) => o,
            (None, Some([_, p_o, _])) => {
                let pre = peeped(cx, 1, p_o, Some(next), "o")?;
                cx.emit(self.node, sigmoid, &[pre], self.at(t, "o", h))?
            }
            (None, None) => unreachable!("o comes from the one sigmoid without peepholes"),
        };
        let squashed = cx.emit(self.node, tanh(), &[next], self.at(t, "tanh", h))?;
        let out = cx.emit(self.node, Op::Mul, &[o, squashed], self.at(t, "h", h))?;
        Ok((Some(out), Some(next)))
    }

    /// z, r = sigmoid; h' = tanh(x Wh + r (h_prev Rh + Rbh)) with linear_before_reset, else
    /// tanh(x Wh + (r h_prev) Rh + Rbh); h = h' + z (h_prev - h').
    fn gru_step(
        &self,
        cx: &mut Lowering,
        t: usize,
        input: ValueId,
        params: &Params,
        hidden: Option<ValueId>,
    ) -> Result<State> {
        let Kind::Gru {
            linear_before_reset,
        } = self.kind
        else {
            unreachable!("a GRU step of a GRU")
        };
        let (h, two, three) = (self.hidden, 2 * self.hidden, 3 * self.hidden);
        let zr_in = cx.emit(
            self.node,
            range(2, 0, two),
            &[input],
            self.at(t, "xzr", two),
        )?;
        let x_candidate = self.block(cx, input, 2, t, "xh")?;
        let (zr_in, reset_product) = match hidden {
            Some(prev) if linear_before_reset => {
                let recurrent = cx.emit(
                    self.node,
                    Op::MatMul,
                    &[prev, params.r],
                    self.at(t, "hr", three),
                )?;
                let h_zr = cx.emit(
                    self.node,
                    range(2, 0, two),
                    &[recurrent],
                    self.at(t, "hzr", two),
                )?;
                let zr_in =
                    cx.emit(self.node, Op::Add, &[zr_in, h_zr], self.at(t, "zr_in", two))?;
                (zr_in, Some(self.block(cx, recurrent, 2, t, "hh")?))
            }
            _ => (
                self.plus_recurrent(cx, t, zr_in, (hidden, params.r), two)?,
                None,
            ),
        };
        let sigmoid = Op::Function {
            function: cx.sigmoid_function(),
        };
        let zr = cx.emit(self.node, sigmoid, &[zr_in], self.at(t, "zr", two))?;
        let [z, r] = self.blocks(cx, zr, t, ["z", "r"])?;
        // What the reset gate multiplies, and the term it gives.
        let reset_term = if linear_before_reset {
            let linear = match (reset_product, params.reset_bias) {
                (Some(p), Some(b)) => {
                    Some(cx.emit(self.node, Op::Add, &[p, b], self.at(t, "hh_b", h))?)
                }
                (p, b) => p.or(b),
            };
            match linear {
                Some(l) => Some(cx.emit(self.node, Op::Mul, &[r, l], self.at(t, "reset", h))?),
                None => None,
            }
        } else {
            match (hidden, params.candidate_r) {
                (Some(prev), Some(rh)) => {
                    let reset = cx.emit(self.node, Op::Mul, &[r, prev], self.at(t, "reset", h))?;
                    Some(cx.emit(
                        self.node,
                        Op::MatMul,
                        &[reset, rh],
                        self.at(t, "reset_rh", h),
                    )?)
                }
                _ => None,
            }
        };
        let candidate_in = match reset_term {
            Some(term) => cx.emit(
                self.node,
                Op::Add,
                &[x_candidate, term],
                self.at(t, "h_in", h),
            )?,
            None => x_candidate,
        };
        let candidate = cx.emit(
            self.node,
            tanh(),
            &[candidate_in],
            self.at(t, "candidate", h),
        )?;
        // h = h' + z (h_prev - h'), or (1 - z) h' = h' - z h' from a zero state.
        let out = match hidden {
            Some(prev) => {
                let diff = cx.emit(
                    self.node,
                    Op::Sub,
                    &[prev, candidate],
                    self.at(t, "diff", h),
                )?;
                let kept = cx.emit(self.node, Op::Mul, &[z, diff], self.at(t, "kept", h))?;
                cx.emit(self.node, Op::Add, &[candidate, kept], self.at(t, "h", h))?
            }
            None => {
                let kept = cx.emit(self.node, Op::Mul, &[z, candidate], self.at(t, "kept", h))?;
                cx.emit(self.node, Op::Sub, &[candidate, kept], self.at(t, "h", h))?
            }
        };
        Ok((Some(out), None))
    }

    /// h = tanh(x W + h_prev R + b), or relu of it.
    fn rnn_step(
        &self,
        cx: &mut Lowering,
        t: usize,
        input: ValueId,
        params: &Params,
        hidden: Option<ValueId>,
        relu: bool,
    ) -> Result<State> {
        let h = self.hidden;
        let pre = self.plus_recurrent(cx, t, input, (hidden, params.r), h)?;
        let activation = if relu { Op::Relu } else { tanh() };
        Ok((
            Some(cx.emit(self.node, activation, &[pre], self.at(t, "h", h))?),
            None,
        ))
    }
}

fn tanh() -> Op {
    Op::Function {
        function: Function::Tanh,
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
