//! The GRU cell: one sigmoid for the update and reset gates, then the tanh of the candidate.
//! With linear_before_reset (PyTorch's GRU, and Keras's with reset_after) the reset gate
//! multiplies h R^T + Rb; without, it multiplies h before the product.

use super::{Cell, CellKind, Projection, State, range, recurrence, tanh};
use crate::import::Node;
use crate::lower::{Lowering, Op, To};
use crate::plan::{Shape, ValueId};
use anyhow::Result;

pub fn gru(cx: &mut Lowering, node: &Node) -> Result<()> {
    let linear_before_reset = node.int("linear_before_reset", 0)? != 0;
    recurrence(
        cx,
        node,
        Gru {
            linear_before_reset,
        },
    )
}

#[derive(Clone, Copy)]
struct Gru {
    linear_before_reset: bool,
}

/// What a GRU's steps read besides the projected input.
struct Params {
    /// [H, 3H], gates z, r, h; without linear_before_reset only z and r's blocks, [H, 2H].
    r: ValueId,
    /// Without linear_before_reset: the candidate's block of R^T, [H, H], for the product
    /// after the reset gate.
    candidate_r: Option<ValueId>,
    /// With linear_before_reset: the candidate's block of Rb, [1, H], which the reset gate
    /// multiplies (the projection's bias then holds Wb's alone for that block).
    reset_bias: Option<ValueId>,
}

impl CellKind for Gru {
    type Params = Params;
    const NAME: &'static str = "GRU";
    const BLOCKS: usize = 3;

    fn default_activations(self) -> &'static [&'static str] {
        &["Sigmoid", "Tanh"]
    }

    fn params(self, cx: &mut Lowering, cell: &Cell<Self>) -> Result<(Projection, Params)> {
        let (node, d, h) = (cell.node, cell.d, cell.hidden);
        let (w, mut r) = cell.weights(cx)?;
        let mut candidate_r = None;
        if !self.linear_before_reset {
            let mut columns = |start: usize, len: usize, tag: &str| {
                let to = To::shaped(format!("R{d}_{tag}"), Shape::fixed_dims(&[h, len]));
                cx.emit(node, range(1, start, len), &[r], to)
            };
            candidate_r = Some(columns(2 * h, h, "h")?);
            r = columns(0, 2 * h, "zr")?;
        }
        let (bias, reset_bias) = match cell.bias_row(cx)? {
            None => (None, None),
            Some(row) if self.linear_before_reset => {
                let (bias, reset_bias) = split_bias(cx, cell, row)?;
                (Some(bias), Some(reset_bias))
            }
            Some(row) => (Some(cell.summed_bias(cx, row)?), None),
        };
        let params = Params {
            r,
            candidate_r,
            reset_bias,
        };
        Ok((Projection { w, bias }, params))
    }

    /// z, r = sigmoid; h' = tanh(x Wh + r (h_prev Rh + Rbh)) with linear_before_reset, else
    /// tanh(x Wh + (r h_prev) Rh + Rbh); h = h' + z (h_prev - h').
    fn step(
        self,
        cx: &mut Lowering,
        cell: &Cell<Self>,
        t: usize,
        input: ValueId,
        params: &Params,
        (hidden, _): State,
    ) -> Result<State> {
        let (node, h) = (cell.node, cell.hidden);
        let at = |tag: &str, width: usize| cell.at(t, tag, width);
        let zr_in = cx.emit(node, range(2, 0, 2 * h), &[input], at("xzr", 2 * h))?;
        let x_candidate = cell.block(cx, input, 2, t, "xh")?;
        let (zr_in, reset_product) = match hidden {
            Some(prev) if self.linear_before_reset => {
                let recurrent = cx.emit(node, Op::MatMul, &[prev, params.r], at("hr", 3 * h))?;
                let h_zr = cx.emit(node, range(2, 0, 2 * h), &[recurrent], at("hzr", 2 * h))?;
                let zr_in = cx.emit(node, Op::Add, &[zr_in, h_zr], at("zr_in", 2 * h))?;
                (zr_in, Some(cell.block(cx, recurrent, 2, t, "hh")?))
            }
            _ => {
                let zr_in = cell.plus_recurrent(cx, t, zr_in, (hidden, params.r), 2 * h)?;
                (zr_in, None)
            }
        };
        let sigmoid = Op::Function {
            function: cx.sigmoid_function(),
        };
        let zr = cx.emit(node, sigmoid, &[zr_in], at("zr", 2 * h))?;
        let [z, r] = cell.blocks(cx, zr, t, ["z", "r"])?;
        // What the reset gate multiplies, and the term it gives.
        let reset_term = if self.linear_before_reset {
            let linear = match (reset_product, params.reset_bias) {
                (Some(p), Some(b)) => Some(cx.emit(node, Op::Add, &[p, b], at("hh_b", h))?),
                (p, b) => p.or(b),
            };
            match linear {
                Some(l) => Some(cx.emit(node, Op::Mul, &[r, l], at("reset", h))?),
                None => None,
            }
        } else {
            match (hidden, params.candidate_r) {
                (Some(prev), Some(rh)) => {
                    let reset = cx.emit(node, Op::Mul, &[r, prev], at("reset", h))?;
                    Some(cx.emit(node, Op::MatMul, &[reset, rh], at("reset_rh", h))?)
                }
                _ => None,
            }
        };
        let candidate_in = match reset_term {
            Some(term) => cx.emit(node, Op::Add, &[x_candidate, term], at("h_in", h))?,
            None => x_candidate,
        };
        let candidate = cx.emit(node, tanh(cx), &[candidate_in], at("candidate", h))?;
        // h = h' + z (h_prev - h'), or (1 - z) h' = h' - z h' from a zero state.
        let out = match hidden {
            Some(prev) => {
                let diff = cx.emit(node, Op::Sub, &[prev, candidate], at("diff", h))?;
                let kept = cx.emit(node, Op::Mul, &[z, diff], at("kept", h))?;
                cx.emit(node, Op::Add, &[candidate, kept], at("h", h))?
            }
            None => {
                let kept = cx.emit(node, Op::Mul, &[z, candidate], at("kept", h))?;
                cx.emit(node, Op::Sub, &[candidate, kept], at("h", h))?
            }
        };
        Ok((Some(out), None))
    }
}

/// With linear_before_reset, from this direction's bias `row` (Wb then Rb): the projection's
/// bias, Wb + Rb for z and r but Wb alone for the candidate, and the candidate's Rb.
fn split_bias(cx: &mut Lowering, cell: &Cell<Gru>, row: ValueId) -> Result<(ValueId, ValueId)> {
    let (node, d, h) = (cell.node, cell.d, cell.hidden);
    let (gates, width) = (2 * h, 3 * h);
    let wb = cell.bias_part(cx, row, (0, gates), "wzr")?;
    let rb = cell.bias_part(cx, row, (width, gates), "rzr")?;
    let to = To::shaped(format!("B{d}_zr"), Shape::fixed_dims(&[1, gates]));
    let sum = cx.emit(node, Op::Add, &[wb, rb], to)?;
    let candidate = cell.bias_part(cx, row, (gates, h), "wh")?;
    let to = To::shaped(format!("B{d}_sum"), Shape::fixed_dims(&[1, width]));
    let bias = cx.emit(node, Op::Concat { axis: 1 }, &[sum, candidate], to)?;
    let reset_bias = cell.bias_part(cx, row, (width + gates, h), "rh")?;
    Ok((bias, reset_bias))
}
