//! The registry of ONNX operators with a secure lowering. Each entry names the rule that lowers
//! the op and documents what it covers; docs/OPERATORS.md is generated from this table (and a
//! test checks that the committed file is current).

use super::{
    Lowering, activation, elementwise, linear, movement, normalization, pool, reduce, resize, shape,
};
use crate::import::Node;
use anyhow::Result;
use std::fmt::Write;

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
}

const fn rule(op_type: &'static str, lower: Lower, since: i64, notes: &'static str) -> OpRule {
    OpRule {
        op_type,
        domain: "",
        lower,
        since,
        notes,
    }
}

const RULES: &[OpRule] = &[
    rule(
        "Add",
        elementwise::add,
        7,
        "numpy broadcasting; either operand may be a constant",
    ),
    rule(
        "AveragePool",
        pool::average_pool,
        7,
        "window sum times public divisors; pads, auto_pad, strides, dilations, ceil_mode, count_include_pad; 1-D to 3-D",
    ),
    rule(
        "BatchNormalization",
        normalization::batch_norm,
        7,
        "inference mode; folded into a preceding Conv or Gemm at convert time, else a per-channel affine map with secret parameters",
    ),
    rule(
        "Cast",
        movement::cast,
        6,
        "to float, float16, bfloat16 or double: the identity (values stay in fixed point, so narrowing to float16/bfloat16 does not round); to integer, bool or 8-bit float types refused",
    ),
    rule(
        "CastLike",
        movement::cast,
        15,
        "as Cast, to the element type of the second input",
    ),
    rule(
        "Concat",
        shape::concat,
        4,
        "any axis, negative axes; constant operands become secret weights",
    ),
    rule(
        "Conv",
        linear::conv,
        1,
        "1-D to 3-D; strides, pads, auto_pad, dilations, group (including depthwise); the kernel may be secret-computed",
    ),
    rule(
        "DepthToSpace",
        movement::depth_to_space,
        1,
        "reshape, transpose, reshape; DCR and CRD modes",
    ),
    rule(
        "Div",
        elementwise::div,
        7,
        "by a constant: a product with its reciprocal, computed at convert time and kept secret; division by a secret tensor is refused (needs a reciprocal approximation)",
    ),
    rule(
        "Dropout",
        shape::identity,
        7,
        "inference only (removed); a mask output or training_mode=true is refused",
    ),
    rule(
        "Expand",
        movement::expand,
        8,
        "to the inferred output shape (numpy broadcasting), so a target shape computed from the input works too",
    ),
    rule("Flatten", shape::reshape, 1, "any axis"),
    rule(
        "Gather",
        movement::gather,
        1,
        "constant indices (scalar or any shape, negative allowed), any axis but the batch axis; secret indices refused",
    ),
    rule(
        "GatherElements",
        movement::gather_elements,
        11,
        "constant indices, any axis, negative indices; the input must not have the batch axis (convert with --fixed-shapes)",
    ),
    rule(
        "Gemm",
        linear::gemm,
        7,
        "transA, transB, alpha, beta; C of any broadcastable shape; a following BatchNormalization is folded in",
    ),
    rule(
        "GlobalAveragePool",
        pool::global_average_pool,
        1,
        "sum times a public 1/count",
    ),
    rule(
        "GlobalMaxPool",
        pool::global_max_pool,
        1,
        "tree of exact comparisons",
    ),
    rule("Identity", shape::identity, 1, "removed"),
    rule(
        "MatMul",
        linear::matmul,
        1,
        "numpy semantics incl. batched and broadcast; both operands may be secret (attention)",
    ),
    rule(
        "MaxPool",
        pool::max_pool,
        1,
        "tree of exact comparisons; pads, auto_pad, strides, dilations, ceil_mode; 1-D to 3-D; the Indices output is refused",
    ),
    rule(
        "Mean",
        elementwise::mean,
        6,
        "variadic with numpy broadcasting: sum times a public 1/n",
    ),
    rule(
        "Mul",
        elementwise::mul,
        7,
        "secret by secret or by constant, numpy broadcasting; rescaled once",
    ),
    rule("Neg", elementwise::neg, 6, "linear"),
    rule(
        "Pad",
        movement::pad,
        2,
        "mode=constant; pads as attribute (< 11) or input, negative pads crop; a nonzero value is added as a public border constant; axes input (18); not along the batch axis; reflect, edge and wrap refused",
    ),
    rule(
        "ReduceL1",
        reduce::reduce_l1,
        1,
        "sum of abs(x) = 2 relu(x) - x (one exact comparison); axes as for ReduceMean, including the batch axis",
    ),
    rule(
        "ReduceMean",
        reduce::reduce_mean,
        1,
        "sum times a public 1/count; axes as attribute (< 18) or input, negative axes, keepdims, noop_with_empty_axes; not along the batch axis",
    ),
    rule(
        "ReduceSum",
        reduce::reduce_sum,
        1,
        "axes as attribute (< 13) or input, negative axes, keepdims, noop_with_empty_axes; any axis including the batch",
    ),
    rule(
        "ReduceSumSquare",
        reduce::reduce_sum_square,
        1,
        "secret product x*x, then a sum; axes as for ReduceMean, including the batch axis",
    ),
    rule("Relu", activation::relu, 6, "exact (secure comparison)"),
    rule(
        "Reshape",
        shape::reshape,
        5,
        "shape from inference, so 0, -1 and allowzero all work",
    ),
    rule(
        "Resize",
        resize::resize,
        10,
        "mode=nearest with constant scales or sizes: a gather per resized axis; every coordinate_transformation_mode but tf_crop_and_resize, every nearest_mode, axes and keep_aspect_ratio_policy (18); not along the batch axis; linear and cubic refused",
    ),
    rule(
        "Slice",
        movement::slice,
        1,
        "starts, ends, axes as attributes (< 10) or constant inputs with steps; negative and out-of-range positions clamped, negative steps; the batch axis only whole",
    ),
    rule(
        "SpaceToDepth",
        movement::space_to_depth,
        1,
        "reshape, transpose, reshape",
    ),
    rule(
        "Split",
        movement::split,
        2,
        "one slice per output; split as attribute (< 13) or input, num_outputs (18), default equal parts; not along the batch axis",
    ),
    rule(
        "Squeeze",
        shape::reshape,
        1,
        "axes as attribute (< 13) or input (>= 13)",
    ),
    rule(
        "Sub",
        elementwise::sub,
        7,
        "numpy broadcasting; either operand may be a constant",
    ),
    rule(
        "Sum",
        elementwise::sum,
        6,
        "variadic with numpy broadcasting; constant operands become secret weights",
    ),
    rule(
        "Tile",
        movement::tile,
        6,
        "constant repeats, any axis including the batch",
    ),
    rule(
        "Transpose",
        shape::transpose,
        1,
        "any permutation; default reverses the axes",
    ),
    rule(
        "Unsqueeze",
        shape::reshape,
        1,
        "axes as attribute (< 13) or input (>= 13)",
    ),
    rule(
        "Where",
        movement::where_,
        9,
        "constant condition: a select with broadcasting, either branch may be a constant; a condition computed from the secret input is refused",
    ),
];

pub fn rules() -> &'static [OpRule] {
    RULES
}

pub(super) fn rule_for(node: &Node) -> Option<Lower> {
    let domain = if node.domain == "ai.onnx" {
        ""
    } else {
        node.domain.as_str()
    };
    RULES
        .iter()
        .find(|r| r.op_type == node.op_type && r.domain == domain)
        .map(|r| r.lower)
}

/// The operator table of docs/OPERATORS.md.
pub fn operators_markdown() -> String {
    let mut out = String::from(
        "# Supported operators\n\nGenerated from `src/lower/registry.rs` by `TFE_BLESS=1 cargo test --test docs`; do not edit by hand.\n\n\
         Nodes whose outputs do not depend on the secret input (shape subgraphs, Constant, \
         Shape, Gather on constants, Range, ConstantOfShape, Cast of constants...) are folded at \
         convert time whatever their type.\n\n| op | domain | opsets | how, and what is left out |\n|---|---|---|---|\n",
    );
    for r in RULES {
        let domain = if r.domain.is_empty() {
            "ai.onnx"
        } else {
            r.domain
        };
        writeln!(
            out,
            "| {} | {domain} | {}+ | {} |",
            r.op_type, r.since, r.notes
        )
        .unwrap();
    }
    writeln!(out, "\n{} operators.", RULES.len()).unwrap();
    out
}
