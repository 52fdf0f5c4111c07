//! What one entry of the operator registry (`registry.rs`) holds: the rule that lowers the
//! op, its documentation, and the facts about the op that the convert-time rewrites and the
//! integer tracking read; built by `rule` and `ml_rule` and the fact setters.

use super::Lowering;
use crate::import::{Graph, Node};
use anyhow::Result;

/// Lowers one node, emitting steps through the [`Lowering`] context.
pub type Lower = fn(&mut Lowering, &Node) -> Result<()>;

pub struct OpRule {
    pub op_type: &'static str,
    /// ONNX domain: "" for the default `ai.onnx`, or e.g. "ai.onnx.ml".
    pub domain: &'static str,
    pub lower: Lower,
    /// First opset version of the op this rule handles (it handles every later one).
    pub since: i64,
    /// How it is computed and what is left out.
    pub notes: &'static str,
    /// Data movement: integers (indices, class labels) stay integers, so a later cast of
    /// them to an integer type rounds nothing.
    pub moves_integers: bool,
    /// Only the shape changes, the elements keep their order: token ids reshaped are still
    /// token ids, looked up by their one-hot rows reshaped alike (`tokens.rs`).
    pub reshapes: bool,
    /// A reduction by max or min that reads one tensor and writes one: a monotone activation
    /// that only it reads may run after it, on fewer values (`reorder.rs`).
    pub reduces_by_max: bool,
    /// For an activation that may be exact and non-decreasing: whether the node is (then it
    /// commutes with a reduction by max or min).
    pub monotone: Option<fn(&Graph, &Node) -> bool>,
    /// A product with constant weights that a BatchNormalization reading it folds into
    /// (`fuse.rs`).
    pub absorbs_batch_norm: bool,
    /// How a node of the op in a Scan body runs over all the iterations at once (`scan.rs`).
    pub over_iterations: OverIterations,
}

/// How a Scan body's node runs over every iteration at once, the scanned axis leading its
/// tensors (`scan.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverIterations {
    /// It cannot: a Scan whose body holds it is refused.
    No,
    /// Element-wise with numpy broadcasting: operands of a lower rank get unit axes after
    /// the leading one, so that their own axes still align from the right.
    ElementWise,
    /// A reduction over its `axes` (attribute or input): the axes move one place right.
    Reduction,
}

/// A rule for scikit-learn's operator domain.
pub(super) const fn ml_rule(
    op_type: &'static str,
    lower: Lower,
    since: i64,
    notes: &'static str,
) -> OpRule {
    OpRule {
        domain: "ai.onnx.ml",
        ..rule(op_type, lower, since, notes)
    }
}

pub(super) const fn rule(
    op_type: &'static str,
    lower: Lower,
    since: i64,
    notes: &'static str,
) -> OpRule {
    OpRule {
        op_type,
        domain: "",
        lower,
        since,
        notes,
        moves_integers: false,
        reshapes: false,
        reduces_by_max: false,
        monotone: None,
        absorbs_batch_norm: false,
        over_iterations: OverIterations::No,
    }
}

/// The facts besides its lowering that the rewrites and the integer tracking read.
impl OpRule {
    pub(super) const fn moves_integers(self) -> OpRule {
        OpRule {
            moves_integers: true,
            ..self
        }
    }

    /// A reshape (see [`OpRule::reshapes`]), which moves integers too.
    pub(super) const fn reshapes(self) -> OpRule {
        OpRule {
            reshapes: true,
            moves_integers: true,
            ..self
        }
    }

    pub(super) const fn reduces_by_max(self) -> OpRule {
        OpRule {
            reduces_by_max: true,
            ..self
        }
    }

    pub(super) const fn monotone_when(self, monotone: fn(&Graph, &Node) -> bool) -> OpRule {
        OpRule {
            monotone: Some(monotone),
            ..self
        }
    }

    pub(super) const fn element_wise(self) -> OpRule {
        OpRule {
            over_iterations: OverIterations::ElementWise,
            ..self
        }
    }

    pub(super) const fn reduction(self) -> OpRule {
        OpRule {
            over_iterations: OverIterations::Reduction,
            ..self
        }
    }

    pub(super) const fn absorbs_batch_norm(self) -> OpRule {
        OpRule {
            absorbs_batch_norm: true,
            ..self
        }
    }
}
