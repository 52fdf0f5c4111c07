//! Hints for the ops that have no secure lowering: what to do instead (export differently,
//! apply the op after the reveal), shown beside the refusal in `--check`.

/// What to do about an op with no lowering, where a rewrite or export option exists.
const HINTS: &[(&[&str], &str)] = &[
    (
        &["If", "Loop"],
        "control flow that depends on values cannot run on secret data; export with static shapes and constant-folded control flow (a Keras LSTM or GRU that tf2onnx left as a while loop converts when the layer is built with unroll=True)",
    ),
    (
        &["NonMaxSuppression", "Unique", "NonZero"],
        "selecting by value has a data-dependent output size; apply it to the revealed outputs at the client",
    ),
    (
        &["Round", "Floor", "Ceil", "Mod", "Sign"],
        "rounding secret values to integers is not supported; keep the model real-valued",
    ),
    (
        &[
            "QuantizeLinear",
            "DequantizeLinear",
            "QLinearConv",
            "QLinearMatMul",
            "MatMulInteger",
            "ConvInteger",
            "DynamicQuantizeLinear",
        ],
        "export the float model: tfe computes in its own fixed point",
    ),
    (
        &[
            "RandomNormal",
            "RandomUniform",
            "RandomNormalLike",
            "RandomUniformLike",
            "Multinomial",
            "Bernoulli",
        ],
        "randomness has no place in an inference graph; export in eval mode",
    ),
    (
        &["Einsum"],
        "export with an opset or option that lowers einsum to MatMul and Transpose",
    ),
    (
        &["ZipMap"],
        "export the classifier without ZipMap (skl2onnx: options={'zipmap': False})",
    ),
];

pub(super) fn hint_for(op_type: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(ops, _)| ops.contains(&op_type))
        .map(|(_, hint)| *hint)
}
