//! The registry of ONNX operators with a secure lowering. Each entry names the rule that lowers
//! the op and documents what it covers; docs/OPERATORS.md is generated from this table (and a
//! test checks that the committed file is current).

pub use super::op_rule::{Lower, OpRule, OverIterations};

use super::op_rule::{ml_rule, rule};
use super::{
    activation, compare, elementwise, linear, logic, ml, movement, normalization, pool, power,
    recurrent, reduce, resize, scan, shape, softmax, svm, topk, tree,
};
use crate::import::Node;
use std::fmt::Write;

const RULES: &[OpRule] = &[
    rule("Abs", activation::abs, 6, "exact (secure comparison)").element_wise(),
    rule(
        "Add",
        elementwise::add,
        7,
        "numpy broadcasting; either operand may be a constant",
    ).element_wise(),
    rule(
        "And",
        logic::binary,
        7,
        "on secret 0/1 values: x y (one product); by a constant or known mask: a public select, no communication; numpy broadcasting",
    ).element_wise(),
    rule(
        "ArgMax",
        compare::arg_max,
        11,
        "tree of exact comparisons tracking indices; keepdims, select_last_index; the index is output as a real number",
    ),
    rule("ArgMin", compare::arg_max, 11, "as ArgMax"),
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
        "to float, float16, bfloat16 or double: the identity (values stay in fixed point, so narrowing to float16/bfloat16 does not round); of booleans, and of integer-valued tensors (labels, indices) to integer types: the identity; to bool: x != 0 by one exact comparison (the identity on booleans); other casts to integer and to 8-bit float types refused",
    ).element_wise().moves_integers(),
    rule(
        "CastLike",
        movement::cast,
        15,
        "as Cast, to the element type of the second input",
    ),
    rule(
        "Clip",
        activation::clip,
        6,
        "exact; bounds as attributes (< 11) or constant inputs (>= 11), either may be absent (ReLU6 and the like)",
    ).monotone_when(activation::clip_is_monotone),
    rule(
        "Concat",
        shape::concat,
        4,
        "any axis, negative axes; constant operands become secret weights",
    ).moves_integers(),
    rule(
        "Conv",
        linear::conv,
        1,
        "1-D to 3-D; strides, pads, auto_pad, dilations, group (including depthwise); the kernel may be secret-computed",
    ).absorbs_batch_norm(),
    rule(
        "ConvTranspose",
        linear::conv_transpose,
        1,
        "1-D to 3-D; strides, pads, auto_pad, dilations, group, output_padding, output_shape",
    ),
    rule(
        "DepthToSpace",
        movement::depth_to_space,
        1,
        "reshape, transpose, reshape; DCR and CRD modes",
    ),
    rule(
        "Div",
        power::div,
        7,
        "by a constant: times its reciprocal, computed at convert time; by a secret value: times the reciprocal approximation",
    ).element_wise(),
    rule(
        "Dropout",
        shape::identity,
        7,
        "inference only (removed; the mask output is all true, a public constant); training_mode=true is refused",
    ),
    rule(
        "Elu",
        activation::function,
        6,
        "exact for x >= 0; exp approximation below",
    ).element_wise(),
    rule(
        "Equal",
        compare::comparison,
        7,
        "exact equality of the fixed-point encodings (what integer-valued tensors need; reals computed two ways may differ in the last unit): [a-b >= 0] + [b-a >= 0] - 1, both comparisons in one gate (4 rounds); on booleans 1 - a xor b (one product); numpy broadcasting; batched as Greater",
    ).element_wise(),
    rule(
        "Erf",
        activation::function,
        9,
        "approximation (Abramowitz-Stegun 7.1.26)",
    ).element_wise(),
    rule(
        "Exp",
        activation::function,
        6,
        "approximation; inputs clamped to [-24, 20]",
    ).element_wise(),
    rule(
        "Expand",
        movement::expand,
        8,
        "to the inferred output shape (numpy broadcasting), so a target shape computed from the input works too",
    ).moves_integers(),
    rule("Flatten", shape::reshape, 1, "any axis").reshapes(),
    rule(
        "Gather",
        movement::gather,
        1,
        "constant indices (scalar or any shape, negative allowed), any axis but the batch axis; secret indices refused",
    ).moves_integers(),
    rule(
        "GatherElements",
        movement::gather_elements,
        11,
        "constant indices, any axis, negative indices; the input must not have the batch axis (convert with --fixed-shapes)",
    ),
    rule(
        "GatherND",
        movement::gather_nd,
        11,
        "constant indices (negative allowed), batch_dims 0 and more: a gather on the flattened leading axes; the gathered axes must not include the batch axis (convert with --fixed-shapes)",
    ),
    rule(
        "Gelu",
        activation::gelu,
        20,
        "0.5 x (1 + erf(x/sqrt 2)), or the tanh form for approximate=tanh",
    ).element_wise(),
    rule(
        "Gemm",
        linear::gemm,
        7,
        "transA, transB, alpha, beta; C of any broadcastable shape; a following BatchNormalization is folded in",
    ).absorbs_batch_norm(),
    rule(
        "Greater",
        compare::comparison,
        7,
        "one exact comparison: a > b is not [b - a >= 0] on fixed-point encodings (exact one unit apart); the result is a secret 0/1; numpy broadcasting, either operand may be a constant; the comparisons of one secret tensor with constants (of one output shape) share one gate (4 rounds for all)",
    ).element_wise(),
    rule("GreaterOrEqual", compare::comparison, 12, "[a - b >= 0], as Greater").element_wise(),
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
    ).reduces_by_max(),
    rule(
        "GRU",
        recurrent::gru,
        7,
        "unrolled over the (fixed) sequence length; linear_before_reset 0 and 1; forward, reverse, bidirectional; layout 0 and 1; initial state (zero, constant or computed); one sigmoid approximation for the update and reset gates per step, the tanh approximation for the candidate; custom activations, clip and shorter sequence_lens refused",
    ),
    rule(
        "HardSigmoid",
        activation::hard_sigmoid,
        6,
        "exact: clip(alpha x + beta, 0, 1)",
    ).element_wise(),
    rule(
        "HardSwish",
        activation::hard_swish,
        14,
        "exact: x hardsigmoid(x)",
    ).element_wise(),
    rule("Identity", shape::identity, 1, "removed").element_wise().reshapes(),
    rule(
        "InstanceNormalization",
        normalization::instance_norm,
        6,
        "mean and variance over the spatial axes, rsqrt approximation, secret per-channel scale and bias",
    ),
    rule(
        "IsInf",
        logic::never,
        10,
        "always false for fixed-point values (they are finite): a public zero, no communication",
    ).element_wise(),
    rule(
        "IsNaN",
        logic::never,
        9,
        "always false for fixed-point values: a public zero, no communication; the Where(IsNaN(p), 0, p) guard after a Softmax becomes p",
    ).element_wise(),
    rule(
        "LayerNormalization",
        normalization::layer_norm,
        17,
        "mean and variance over axis.., rsqrt approximation (see docs/ARCHITECTURE.md, Normalisations), secret scale and bias; the Mean and InvStdDev outputs are the statistics",
    ),
    rule(
        "LeakyRelu",
        activation::leaky_relu,
        6,
        "exact (secure comparison)",
    ).element_wise().monotone_when(activation::leaky_relu_is_monotone),
    rule("Less", compare::comparison, 7, "not [a - b >= 0], as Greater").element_wise(),
    rule("LessOrEqual", compare::comparison, 12, "[b - a >= 0], as Greater").element_wise(),
    rule(
        "Log",
        activation::function,
        6,
        "approximation by top-bit normalisation; inputs must be positive",
    ).element_wise(),
    rule(
        "LogSoftmax",
        softmax::softmax,
        1,
        "x - max - ln(sum exp(x - max)); any axis, both opset semantics",
    ),
    rule(
        "LSTM",
        recurrent::lstm,
        7,
        "unrolled over the (fixed) sequence length; forward, reverse, bidirectional; layout 0 and 1; initial states (zero, constant or computed); peepholes; one sigmoid approximation for all four gates per step (two with peepholes: o then follows the cell update), the tanh approximation for the cell; custom activations, clip, input_forget and shorter sequence_lens refused",
    ),
    rule(
        "MatMul",
        linear::matmul,
        1,
        "numpy semantics incl. batched and broadcast; both operands may be secret (attention)",
    ),
    rule(
        "Max",
        compare::max_min,
        6,
        "variadic with broadcasting; exact comparisons",
    ).element_wise(),
    rule(
        "MaxPool",
        pool::max_pool,
        1,
        "tree of exact comparisons; pads, auto_pad, strides, dilations, ceil_mode; 1-D to 3-D; the Indices output is refused",
    ).reduces_by_max(),
    rule(
        "Mean",
        elementwise::mean,
        6,
        "variadic with numpy broadcasting: sum times a public 1/n",
    ).element_wise(),
    rule(
        "Min",
        compare::max_min,
        6,
        "variadic with broadcasting; exact comparisons",
    ).element_wise(),
    rule(
        "Mul",
        elementwise::mul,
        7,
        "secret by secret or by constant, numpy broadcasting; rescaled once",
    ).element_wise(),
    rule("Neg", elementwise::neg, 6, "linear").element_wise(),
    rule(
        "Not",
        logic::not,
        1,
        "1 - x on a secret 0/1 value: linear, no communication",
    ).element_wise(),
    rule(
        "Or",
        logic::binary,
        7,
        "x + y - x y (one product); by a constant or known mask: a public select; as And",
    ).element_wise(),
    rule(
        "PRelu",
        activation::prelu,
        7,
        "exact comparison; secret slope, broadcast as ONNX specifies",
    ),
    rule(
        "Pad",
        movement::pad,
        2,
        "mode=constant; pads as attribute (< 11) or input, negative pads crop; a nonzero value is added as a public border constant; axes input (18); not along the batch axis; reflect, edge and wrap refused",
    ),
    rule(
        "Pow",
        power::pow,
        7,
        "constant exponent: integers by products (negative through the reciprocal), 0.5 and -0.5 by sqrt and rsqrt, others as exp(p ln x) for x > 0",
    ).element_wise(),
    rule(
        "RMSNormalization",
        normalization::rms_norm,
        23,
        "x / sqrt(mean(x^2 over axis..) + eps) * scale with one rsqrt approximation (the core LayerNormalization shares); stash_type is moot (fixed point throughout); the decomposed form exporters write (Pow, ReduceMean, Add, Sqrt, Reciprocal or Div, Mul) is recognised and lowered the same way",
    ),
    rule(
        "RNN",
        recurrent::rnn,
        7,
        "unrolled over the (fixed) sequence length; activation Tanh or Relu; forward, reverse, bidirectional; layout 0 and 1; initial state (zero, constant or computed); other activations, clip and shorter sequence_lens refused",
    ),
    rule(
        "Reciprocal",
        activation::function,
        6,
        "approximation by top-bit normalisation and Newton steps",
    ).element_wise(),
    rule(
        "ReduceL1",
        reduce::reduce_l1,
        1,
        "sum of abs(x) = 2 relu(x) - x (one exact comparison); axes as for ReduceMean, including the batch axis",
    ).reduction(),
    rule(
        "ReduceMax",
        compare::reduce_max,
        1,
        "tree of exact comparisons; axes as attribute or input (>= 18), keepdims, noop_with_empty_axes",
    ).reduction().reduces_by_max(),
    rule(
        "ReduceMean",
        reduce::reduce_mean,
        1,
        "sum times a public 1/count; axes as attribute (< 18) or input, negative axes, keepdims, noop_with_empty_axes; not along the batch axis",
    ).reduction(),
    rule("ReduceMin", compare::reduce_max, 1, "as ReduceMax").reduction().reduces_by_max(),
    rule(
        "ReduceSum",
        reduce::reduce_sum,
        1,
        "axes as attribute (< 13) or input, negative axes, keepdims, noop_with_empty_axes; any axis including the batch",
    ).reduction(),
    rule(
        "ReduceSumSquare",
        reduce::reduce_sum_square,
        1,
        "secret product x*x, then a sum; axes as for ReduceMean, including the batch axis",
    ).reduction(),
    rule("Relu", activation::relu, 6, "exact (secure comparison)").element_wise().monotone_when(activation::relu_is_monotone),
    rule(
        "Reshape",
        shape::reshape,
        5,
        "shape from inference, so 0, -1 and allowzero all work",
    ).reshapes(),
    rule(
        "Resize",
        resize::resize,
        10,
        "mode=nearest with constant scales or sizes: a gather per resized axis; every coordinate_transformation_mode but tf_crop_and_resize, every nearest_mode, axes and keep_aspect_ratio_policy (18); not along the batch axis; linear and cubic refused",
    ),
    rule(
        "Scan",
        scan::scan,
        9,
        "when its iterations are independent (every state leaves the body as it entered, as in skl2onnx's k-NN distances): the body runs once over all iterations, the scanned axis leading its tensors, its element-wise ops and reductions lowered by their own rules; scan_input_axes, scan_output_axes and both directions; a state that changes across iterations (a loop) and other body ops refused",
    ),
    rule("Selu", activation::selu, 6, "gamma elu_alpha(x)").element_wise(),
    rule(
        "Sigmoid",
        activation::function,
        6,
        "approximation: 1/(1 + exp(-|x|)) reflected; saturates beyond |x| = 16",
    ).element_wise(),
    rule(
        "Slice",
        movement::slice,
        1,
        "starts, ends, axes as attributes (< 10) or constant inputs with steps; negative and out-of-range positions clamped, negative steps; the batch axis only whole",
    ).moves_integers(),
    rule(
        "Softmax",
        softmax::softmax,
        1,
        "exp(x - max) / sum; any axis, both opset semantics; exp and reciprocal approximations",
    ),
    rule(
        "Softplus",
        activation::function,
        1,
        "approximation: relu(x) + ln(1 + exp(-|x|))",
    ).element_wise(),
    rule(
        "Softsign",
        activation::softsign,
        1,
        "x / (1 + |x|) with the reciprocal approximation",
    ).element_wise(),
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
        "Sqrt",
        activation::function,
        6,
        "approximation by top-bit normalisation; inputs must be non-negative",
    ).element_wise(),
    rule(
        "Squeeze",
        shape::reshape,
        1,
        "axes as attribute (< 13) or input (>= 13)",
    ).reshapes(),
    rule(
        "Sub",
        elementwise::sub,
        7,
        "numpy broadcasting; either operand may be a constant",
    ).element_wise(),
    rule(
        "Sum",
        elementwise::sum,
        6,
        "variadic with numpy broadcasting; constant operands become secret weights",
    ).element_wise(),
    rule(
        "Tanh",
        activation::function,
        6,
        "approximation: 2 sigmoid(2x) - 1",
    ).element_wise(),
    rule(
        "Tile",
        movement::tile,
        6,
        "constant repeats, any axis including the batch",
    ).moves_integers(),
    rule(
        "TopK",
        topk::top_k,
        10,
        "constant k: k rounds of an exact arg max (arg min for largest = 0) along the axis, each winner read out and masked by a one-hot from one gate; values and indices, sorted (also for sorted = 0), ties to the lower index; inputs within ±2^23; not along the batch axis",
    ),
    rule(
        "Transpose",
        shape::transpose,
        1,
        "any permutation; default reverses the axes",
    ).moves_integers(),
    rule(
        "Unsqueeze",
        shape::reshape,
        1,
        "axes as attribute (< 13) or input (>= 13)",
    ).reshapes(),
    rule(
        "Where",
        logic::where_,
        9,
        "condition known at convert time: a public select (a uniform one picks a branch); secret condition c: b + c (a - b), one product; numpy broadcasting, either branch may be a constant (a mask constant beyond the fixed-point range that only shifts a Softmax's input saturates, see docs/ARCHITECTURE.md)",
    ).element_wise(),
    rule(
        "Xor",
        logic::binary,
        7,
        "x + y - 2 x y (one product); by a constant or known mask: a public select; as And",
    ).element_wise(),
    ml_rule(
        "ArrayFeatureExtractor",
        ml::array_feature_extractor,
        1,
        "constant indices: a gather; a constant table indexed by a secret index (class labels): one comparison round",
    ),
    ml_rule(
        "LinearClassifier",
        ml::linear_classifier,
        1,
        "secret coefficients; post_transform NONE, SOFTMAX, LOGISTIC; labels by argmax and a secret lookup into the label table (string labels are output as class indices); the binary single-row form is refused",
    ),
    ml_rule(
        "LinearRegressor",
        ml::linear_regressor,
        1,
        "secret coefficients; post_transform NONE",
    ),
    ml_rule(
        "Normalizer",
        ml::normalizer,
        1,
        "MAX, L1, L2 by the reciprocal (and square root) approximations",
    ),
    ml_rule(
        "Scaler",
        ml::scaler,
        1,
        "(x - offset) * scale with secret offset and scale",
    ),
    ml_rule(
        "SVMClassifier",
        svm::svm_classifier,
        1,
        "kernel of the input with the secret support vectors (one product, then LINEAR, POLY by repeated products, RBF by the exp approximation of -gamma |x - v|^2, SIGMOID by tanh; kernel parameters public), one-vs-one decisions with secret coefficients and rho, votes from one gate, label by arg max of the votes; the liblinear form with at least three classes; prob_a/prob_b (probability=True) refused; post_transform as the trees",
    ),
    ml_rule(
        "SVMRegressor",
        svm::svm_regressor,
        1,
        "as SVMClassifier's kernels, or linear without support vectors; one_class by one comparison",
    ),
    ml_rule(
        "TreeEnsemble",
        tree::tree_ensemble,
        5,
        "as TreeEnsembleRegressor, from ai.onnx.ml 5's attribute layout; BRANCH_MEMBER as a sum of equality tests (two comparisons per set value, in the same gate)",
    ),
    ml_rule(
        "TreeEnsembleClassifier",
        tree::tree_ensemble_classifier,
        1,
        "every node's comparison with its secret threshold in one gate, each leaf's indicator as the product of the outcomes on its path (ceil(log2 depth) product rounds), scores as indicators times secret leaf weights plus secret base values; all node modes but BRANCH_MEMBER; post_transform NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO (PROBIT refused); label by arg max and a lookup into the integer labels (string labels refused); at least three classes (the binary form is refused)",
    ),
    ml_rule(
        "TreeEnsembleRegressor",
        tree::tree_ensemble_regressor,
        1,
        "as TreeEnsembleClassifier; aggregate_function SUM, AVERAGE, MIN, MAX (a max or min over the trees' outputs by exact comparisons); post_transform applied as onnxruntime does (not to a single target)",
    ),
    ml_rule(
        "ZipMap",
        ml::zip_map,
        1,
        "the probability matrix is output as is (columns in class-label order) instead of a list of maps",
    ),
];

pub fn rules() -> &'static [OpRule] {
    RULES
}

pub(super) fn rule_for(node: &Node) -> Option<&'static OpRule> {
    let domain = if node.domain == "ai.onnx" {
        ""
    } else {
        node.domain.as_str()
    };
    RULES
        .iter()
        .find(|r| r.op_type == node.op_type && r.domain == domain)
}

/// The operator table of docs/OPERATORS.md.
pub fn operators_markdown() -> String {
    let mut out = String::from(
        "# Supported operators\n\nGenerated from `src/lower/registry.rs` by `TFE_BLESS=1 cargo test --test docs`; do not edit by hand.\n\n\
         Nodes whose outputs do not depend on the secret input (shape subgraphs, Constant, \
         Shape, Gather on constants, Range, ConstantOfShape, Cast of constants...) are folded at \
         convert time whatever their type.\n\n\
         A Relu, a LeakyRelu with a non-negative slope or a Clip with public bounds whose \
         output only a MaxPool (without Indices), GlobalMaxPool, ReduceMax or ReduceMin reads, \
         and which is not a graph output, runs after that pooling, on its fewer values: \
         monotone functions commute with max and min (`src/lower/reorder.rs`).\n\n| op | domain | opsets | how, and what is left out |\n|---|---|---|---|\n",
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
