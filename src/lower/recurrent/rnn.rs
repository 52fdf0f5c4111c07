//! The plain RNN cell: the tanh (or, PyTorch's nonlinearity='relu', the ReLU) of the sum of
//! the projected input and h R^T.

use super::{Cell, CellKind, Projection, State, recurrence, tanh};
use crate::import::Node;
use crate::lower::{Lowering, Op};
use crate::plan::ValueId;
use anyhow::Result;

pub fn rnn(cx: &mut Lowering, node: &Node) -> Result<()> {
    let relu = node
        .strings("activations")?
        .is_some_and(|a| a.first().is_some_and(|f| f == "Relu"));
    recurrence(cx, node, Rnn { relu })
}

#[derive(Clone, Copy)]
struct Rnn {
    relu: bool,
}

impl CellKind for Rnn {
    /// R, [H, H].
    type Params = ValueId;
    const NAME: &'static str = "RNN";
    const BLOCKS: usize = 1;

    fn default_activations(self) -> &'static [&'static str] {
        if self.relu { &["Relu"] } else { &["Tanh"] }
    }

    fn params(self, cx: &mut Lowering, cell: &Cell<Self>) -> Result<(Projection, ValueId)> {
        cell.projection_and_r(cx)
    }

    /// h = tanh(x W + h_prev R + b), or relu of it.
    fn step(
        self,
        cx: &mut Lowering,
        cell: &Cell<Self>,
        t: usize,
        input: ValueId,
        r: &ValueId,
        (hidden, _): State,
    ) -> Result<State> {
        let h = cell.hidden;
        let pre = cell.plus_recurrent(cx, t, input, (hidden, *r), h)?;
        let activation = if self.relu { Op::Relu } else { tanh(cx) };
        let out = cx.emit(cell.node, activation, &[pre], cell.at(t, "h", h))?;
        Ok((Some(out), None))
    }
}
