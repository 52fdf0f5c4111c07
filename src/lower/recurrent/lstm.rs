//! The LSTM cell: one sigmoid for all four gates (the cell gate's block of the parameters is
//! doubled, so that tanh(x) = 2 sigmoid(2x) - 1, the identity the Tanh lowering uses, comes
//! out of the same evaluation), the cell update, and the tanh of the cell; with peepholes the
//! output gate, which reads the updated cell, takes a sigmoid of its own.

use super::{Cell, CellKind, PEEPHOLES, Projection, State, fixed_shape, range, recurrence, tanh};
use crate::import::Node;
use crate::lower::{Lowering, Op, To};
use crate::plan::{Shape, ValueId};
use anyhow::{Result, ensure};

pub fn lstm(cx: &mut Lowering, node: &Node) -> Result<()> {
    recurrence(cx, node, Lstm)
}

#[derive(Clone, Copy)]
struct Lstm;

/// What an LSTM's steps read besides the projected input.
struct Params {
    /// [H, 4H], gates i, o, f, c.
    r: ValueId,
    /// The peephole weights for i, o and f, [1, H] each, unless absent or zero.
    peepholes: Option<[ValueId; 3]>,
    /// The public 1 of 2 sigmoid - 1.
    one: ValueId,
}

impl CellKind for Lstm {
    type Params = Params;
    const NAME: &'static str = "LSTM";
    const BLOCKS: usize = 4;
    const HAS_CELL_STATE: bool = true;

    fn default_activations(self) -> &'static [&'static str] {
        &["Sigmoid", "Tanh", "Tanh"]
    }

    /// `v` with the last quarter of axis 1 (the cell gate) doubled: two slices, a sum and a
    /// concatenation.
    fn gate_layout(
        self,
        cx: &mut Lowering,
        cell: &Cell<Self>,
        v: ValueId,
        shape: &[usize],
        tag: &str,
    ) -> Result<ValueId> {
        let (node, h) = (cell.node, cell.hidden);
        let part = |len: usize| {
            let mut dims = shape.to_vec();
            dims[1] = len;
            Shape::fixed_dims(&dims)
        };
        let to = To::shaped(format!("{tag}_iof"), part(3 * h));
        let gates = cx.emit(node, range(1, 0, 3 * h), &[v], to)?;
        let to = To::shaped(format!("{tag}_c"), part(h));
        let gate = cx.emit(node, range(1, 3 * h, h), &[v], to)?;
        let to = To::shaped(format!("{tag}_2c"), part(h));
        let gate = cx.emit(node, Op::Add, &[gate, gate], to)?;
        let to = To::shaped(format!("{tag}_doubled"), Shape::fixed_dims(shape));
        cx.emit(node, Op::Concat { axis: 1 }, &[gates, gate], to)
    }

    fn params(self, cx: &mut Lowering, cell: &Cell<Self>) -> Result<(Projection, Params)> {
        let (projection, r) = cell.projection_and_r(cx)?;
        let peepholes = peepholes(cx, cell)?;
        let one = cx.scalar(cell.node, &format!("one{}", cell.d), 1.0)?;
        Ok((projection, Params { r, peepholes, one }))
    }

    /// i, o, f = sigmoid, c' = tanh (from the same sigmoid of the doubled block);
    /// c = f c_prev + i c'; h = o tanh(c).
    fn step(
        self,
        cx: &mut Lowering,
        cell: &Cell<Self>,
        t: usize,
        input: ValueId,
        params: &Params,
        (hidden, c_prev): State,
    ) -> Result<State> {
        let (node, h) = (cell.node, cell.hidden);
        let at = |tag: &str, width: usize| cell.at(t, tag, width);
        let gates = cell.plus_recurrent(cx, t, input, (hidden, params.r), 4 * h)?;
        let sigmoid = Op::Function {
            function: cx.sigmoid_function(),
        };
        // Peepholes add p * c_prev to i and f and p * c to o, so o takes its own sigmoid
        // after the cell update; without them one sigmoid covers all four gates.
        let peeped = |cx: &mut Lowering, k: usize, p: ValueId, c: Option<ValueId>, tag: &str| {
            let pre = cell.block(cx, gates, k, t, &format!("{tag}_in"))?;
            let Some(c) = c else {
                return Ok(pre);
            };
            let peep = cx.emit(node, Op::Mul, &[p, c], at(&format!("{tag}_peep"), h))?;
            cx.emit(node, Op::Add, &[pre, peep], at(&format!("{tag}_pre"), h))
        };
        let (i, f, c, o) = match params.peepholes {
            None => {
                let all = cx.emit(node, sigmoid.clone(), &[gates], at("sigmoid", 4 * h))?;
                let [i, o, f, c] = cell.blocks(cx, all, t, ["i", "o", "f", "c"])?;
                (i, f, c, Some(o))
            }
            Some([p_i, _, p_f]) => {
                let i = peeped(cx, 0, p_i, c_prev, "i")?;
                let f = peeped(cx, 2, p_f, c_prev, "f")?;
                let c = cell.block(cx, gates, 3, t, "c_in")?;
                let ifc = cx.emit(node, Op::Concat { axis: 2 }, &[i, f, c], at("ifc", 3 * h))?;
                let ifc = cx.emit(node, sigmoid.clone(), &[ifc], at("sigmoid", 3 * h))?;
                let [i, f, c] = cell.blocks(cx, ifc, t, ["i", "f", "c"])?;
                (i, f, c, None)
            }
        };
        // tanh of the (doubled) cell input: 2 sigmoid - 1.
        let c = cx.emit(node, Op::Add, &[c, c], at("c2_", h))?;
        let candidate = cx.emit(node, Op::Sub, &[c, params.one], at("candidate", h))?;
        let mut next = cx.emit(node, Op::Mul, &[i, candidate], at("ic", h))?;
        if let Some(prev) = c_prev {
            let kept = cx.emit(node, Op::Mul, &[f, prev], at("fc", h))?;
            next = cx.emit(node, Op::Add, &[kept, next], at("cell", h))?;
        }
        let o = match (o, params.peepholes) {
            (Some(o), _) => o,
            (None, Some([_, p_o, _])) => {
                let pre = peeped(cx, 1, p_o, Some(next), "o")?;
                cx.emit(node, sigmoid, &[pre], at("o", h))?
            }
            (None, None) => unreachable!("o comes from the one sigmoid without peepholes"),
        };
        let squashed = cx.emit(node, tanh(cx), &[next], at("tanh", h))?;
        let out = cx.emit(node, Op::Mul, &[o, squashed], at("h", h))?;
        Ok((Some(out), Some(next)))
    }
}

/// This direction's peephole weights for i, o and f from P [directions, 3H], unless absent or
/// all zero.
fn peepholes(cx: &mut Lowering, cell: &Cell<Lstm>) -> Result<Option<[ValueId; 3]>> {
    let (node, d, hidden) = (cell.node, cell.d, cell.hidden);
    let Some(name) = node.input(PEEPHOLES) else {
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
    let one = cell.direction(cx, all, &[1, 3 * hidden], "P")?;
    let row = Shape::fixed_dims(&[1, hidden]);
    let mut block = |k: usize| {
        let to = To::shaped(format!("P{d}_{k}"), row.clone());
        cx.emit(node, range(1, k * hidden, hidden), &[one], to)
    };
    Ok(Some([block(0)?, block(1)?, block(2)?]))
}
