//! A BatchNormalization folded into the Conv before it (src/lower/fuse.rs), and left as a
//! step where a Relu between them forbids it, in a small network mixing the op families.

use super::normalization::bn_inputs;
use crate::common::cases::*;

/// x: [N, 3, 8, 8] -> Conv (4 x 3x3, pad 1) -> `middle` -> MaxPool 2/2 -> Flatten -> Gemm (5).
fn chain(name: &str, middle: &[&str]) -> Case {
    let mut c = case(name, 17)
        .input("x", &[N, Some(3), Some(8), Some(8)])
        .weight("w", &[4, 3, 3, 3])
        .weight("b", &[4])
        .bn_params("bn", 4, (0.2, 1.0))
        .weight_scaled("fc", &[5, 64], 0.3)
        .weight("fc_b", &[5])
        .node(
            "Conv",
            &["x", "w", "b"],
            &["t0"],
            vec![ints("pads", &[1, 1, 1, 1])],
        );
    for (i, op) in middle.iter().enumerate() {
        let (from, to) = (format!("t{i}"), format!("t{}", i + 1));
        let ins = if *op == "BatchNormalization" {
            bn_inputs(&from)
        } else {
            vec![from.as_str()]
        };
        c = c.node(op, &ins, &[&to], vec![]);
    }
    let last = format!("t{}", middle.len());
    c.node(
        "MaxPool",
        &[&last],
        &["p"],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    )
    .node("Flatten", &["p"], &["f"], vec![])
    .node("Gemm", &["f", "fc", "fc_b"], &["y"], vec![int("transB", 1)])
    .output("y")
}

/// The BatchNormalization folds into the Conv; after the Relu it cannot, and stays a step.
#[test]
fn conv_bn_relu_pool_flatten_gemm_chain() {
    run_all(vec![
        chain("chain-conv-bn-relu", &["BatchNormalization", "Relu"]),
        chain("chain-conv-relu-bn", &["Relu", "BatchNormalization"]),
    ]);
}
