//! Per-operator tests: for every ONNX op family that `tfe` lowers, small models built in Rust
//! exercise the attribute variants the ONNX spec defines. Each case is converted once and the
//! one plan is run in every mode at batch 1 and 3, against tract as the plaintext reference.
//!
//! Inputs and weights are drawn from [-1, 1] unless a case says otherwise. Cases are chosen so
//! that ignoring an attribute changes the result by far more than the tolerance (asymmetric
//! pads, sizes where ceil_mode adds an output, SAME_UPPER vs SAME_LOWER with odd total padding,
//! a constant as the first operand of Sub, ...).

mod common;

use common::Attr;
use common::cases::*;
use ndarray::{ArrayD, IxDyn};

// ---------------------------------------------------------------------------------------------
// Gemm and MatMul

#[test]
fn gemm() {
    let plain = |name: &str| case(name, 13).input("x", &[N, Some(4)]).output("y");
    run_all(vec![
        // C of shape [N]
        plain("gemm-c-vector")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![]),
        // transB, C of shape [1, N]
        plain("gemm-transb-c-row")
            .weight("b", &[3, 4])
            .weight("c", &[1, 3])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![int("transB", 1)]),
        // alpha and beta with constant B and C
        plain("gemm-alpha-beta")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node(
                "Gemm",
                &["x", "b", "c"],
                &["y"],
                vec![float("alpha", 0.5), float("beta", 2.0)],
            ),
        // scalar C
        plain("gemm-c-scalar")
            .weight("b", &[4, 3])
            .scalar("c", 0.75)
            .node("Gemm", &["x", "b", "c"], &["y"], vec![float("beta", -1.5)]),
        // C absent
        plain("gemm-no-c").weight("b", &[4, 3]).node(
            "Gemm",
            &["x", "b"],
            &["y"],
            vec![float("alpha", -1.5)],
        ),
        // C of shape [M, N]: M is the batch, so C is secret (computed from x), scaled by beta
        plain("gemm-c-matrix-secret")
            .weight("b", &[4, 3])
            .weight("w2", &[4, 3])
            .node("MatMul", &["x", "w2"], &["c"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![float("beta", 2.0)]),
        // C of shape [M, N] constant: M must not be the batch, so A is the batch-free secret
        // x^T x ([4, 4]; axis 0 of every graph input is the batch, by design)
        plain("gemm-c-matrix-const")
            .weight("b", &[4, 3])
            .weight("c", &[4, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "x"], &["a"], vec![])
            .node("Gemm", &["a", "b", "c"], &["y"], vec![float("beta", 0.5)]),
        // transA on a secret A (x transposed, so A is [K, M])
        plain("gemm-transa")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node("Transpose", &["x"], &["xt"], vec![ints("perm", &[1, 0])])
            .node("Gemm", &["xt", "b", "c"], &["y"], vec![int("transA", 1)]),
        plain("gemm-transa-transb-alpha")
            .weight("b", &[3, 4])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node(
                "Gemm",
                &["xt", "b"],
                &["y"],
                vec![int("transA", 1), int("transB", 1), float("alpha", 2.0)],
            ),
        // constant A, secret B: the weight on the left, C of shape [M, 1]
        plain("gemm-const-a-secret-b")
            .weight("a", &[2, 4])
            .weight("c", &[2, 1])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("Gemm", &["a", "xt", "c"], &["y"], vec![float("beta", 0.5)]),
        // secret, batch-free B computed from two inputs (x^T z: [4, 3]), alpha on the secret path
        plain("gemm-secret-b")
            .input("z", &[N, Some(3)])
            .weight("c", &[3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["b"], vec![])
            .node(
                "Gemm",
                &["x", "b", "c"],
                &["y"],
                vec![float("alpha", 0.5), float("beta", 2.0)],
            ),
        // secret B with transB (z^T x: [3, 4])
        plain("gemm-secret-b-transb")
            .input("z", &[N, Some(3)])
            .weight("c", &[1, 3])
            .node("Transpose", &["z"], &["zt"], vec![])
            .node("MatMul", &["zt", "x"], &["b"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![int("transB", 1)]),
        // B = the input itself: x x^T, [N, N], with alpha and a scalar C
        plain("gemm-x-xt").scalar("c", 0.25).node(
            "Gemm",
            &["x", "x", "c"],
            &["y"],
            vec![int("transB", 1), float("alpha", 0.5)],
        ),
        // secret C with beta == 1 (no scaling step)
        plain("gemm-secret-c-beta1")
            .weight("b", &[4, 4])
            .node("Relu", &["x"], &["c"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![]),
    ]);
}

#[test]
fn matmul() {
    run_all(vec![
        case("matmul-2d-weight", 13)
            .input("x", &[N, Some(5)])
            .weight("w", &[5, 3])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
        case("matmul-3d-input-2d-weight", 13)
            .input("x", &[N, Some(2), Some(4)])
            .weight("w", &[4, 3])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
        case("matmul-weight-left", 13)
            .input("x", &[N, Some(4), Some(5)])
            .weight("w", &[3, 4])
            .node("MatMul", &["w", "x"], &["y"], vec![])
            .output("y"),
        case("matmul-weight-left-2d", 13)
            .input("x", &[N, Some(4)])
            .weight("w", &[3, 4])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["w", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-x-xt", 13)
            .input("x", &[N, Some(4)])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["x", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-batched-secret-secret", 13)
            .input("x", &[N, Some(2), Some(4)])
            .node("Transpose", &["x"], &["xt"], vec![ints("perm", &[0, 2, 1])])
            .node("MatMul", &["x", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-two-inputs-batched", 13)
            .input("x", &[N, Some(2), Some(4)])
            .input("w", &[N, Some(4), Some(3)])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Element-wise arithmetic

/// Every broadcasting variant of a binary element-wise op on x: [N, 3, 2, 4].
fn elementwise(op: &str) {
    let lower = op.to_lowercase();
    let x = |variant: &str| {
        case(&format!("{lower}-{variant}"), 13).input("x", &[N, Some(3), Some(2), Some(4)])
    };
    let with_const = |variant: &str, shape: &[usize], const_first: bool| {
        let ins: &[&str] = if const_first {
            &["c", "x"]
        } else {
            &["x", "c"]
        };
        x(variant)
            .weight("c", shape)
            .node(op, ins, &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        x("secret-secret")
            .input("z", &[N, Some(3), Some(2), Some(4)])
            .node(op, &["x", "z"], &["y"], vec![])
            .output("y"),
        x("same-tensor")
            .node(op, &["x", "x"], &["y"], vec![])
            .output("y"),
        // secret operands of different shapes: [N, 3, 2, 4] with [N, 3, 1, 1]
        x("secret-broadcast")
            .node("GlobalMaxPool", &["x"], &["g"], vec![])
            .node(op, &["g", "x"], &["y"], vec![])
            .output("y"),
        with_const("const-channel", &[3, 1, 1], false),
        with_const("const-one", &[1], false),
        with_const("const-scalar", &[], false),
        with_const("const-full", &[3, 2, 4], false),
        with_const("const-first-channel", &[3, 1, 1], true),
        with_const("const-first-trailing", &[2, 4], true),
        with_const("const-first-scalar", &[], true),
    ]);
}

#[test]
fn add() {
    elementwise("Add");
}

#[test]
fn sub() {
    elementwise("Sub");
}

#[test]
fn mul() {
    elementwise("Mul");
}

#[test]
fn relu() {
    run_all(vec![
        case("relu", 13)
            .input("x", &[N, Some(3), Some(5)])
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        case("relu-large", 13)
            .input("x", &[N, Some(8)])
            .input_scale(50.0)
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        // values near zero and exact zeros after a shift
        case("relu-after-sub", 13)
            .input("x", &[N, Some(4), Some(3)])
            .scalar("c", 0.5)
            .node("Sub", &["x", "c"], &["s"], vec![])
            .node("Relu", &["s"], &["r"], vec![])
            .node("Relu", &["r"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Convolution

#[test]
fn conv() {
    // x: [N, 4, 7, 7] for odd sizes, [N, 4, 8, 8] where SAME padding must be asymmetric.
    let conv2d = |name: &str, size: i64, w: &[usize], bias: bool, attrs: Vec<Attr>| {
        let c = case(name, 13)
            .input("x", &[N, Some(4), Some(size), Some(size)])
            .weight("w", w);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("b", &[w[0]]), &["x", "w", "b"])
        } else {
            (c, &["x", "w"])
        };
        c.node("Conv", ins, &["y"], attrs).output("y")
    };
    let conv1d = |name: &str, w: &[usize], bias: bool, attrs: Vec<Attr>| {
        let c = case(name, 13)
            .input("x", &[N, Some(3), Some(10)])
            .weight("w", w);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("b", &[w[0]]), &["x", "w", "b"])
        } else {
            (c, &["x", "w"])
        };
        c.node("Conv", ins, &["y"], attrs).output("y")
    };
    run_all(vec![
        conv2d("conv-3x3-bias", 7, &[5, 4, 3, 3], true, vec![]),
        conv2d(
            "conv-3x3-no-bias",
            7,
            &[5, 4, 3, 3],
            false,
            vec![ints("kernel_shape", &[3, 3])],
        ),
        conv2d("conv-rect-kernel", 7, &[3, 4, 3, 2], true, vec![]),
        conv2d(
            "conv-stride2",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-stride-2x1",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("strides", &[2, 1])],
        ),
        // pads [h_begin, w_begin, h_end, w_end], all different
        conv2d(
            "conv-asym-pads",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("pads", &[1, 0, 0, 2])],
        ),
        conv2d(
            "conv-asym-pads-stride",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("pads", &[2, 1, 0, 1]), ints("strides", &[2, 2])],
        ),
        // 8 / stride 2 with kernel 3: one pad in total, at the end (UPPER) or the start (LOWER)
        conv2d(
            "conv-same-upper",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("SAME_UPPER"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-same-lower",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("SAME_LOWER"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-same-upper-stride1-even-kernel",
            7,
            &[3, 4, 2, 2],
            false,
            vec![auto_pad("SAME_UPPER")],
        ),
        conv2d(
            "conv-same-lower-stride1-even-kernel",
            7,
            &[3, 4, 2, 2],
            false,
            vec![auto_pad("SAME_LOWER")],
        ),
        conv2d(
            "conv-valid",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("VALID"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-dilation2",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("dilations", &[2, 2])],
        ),
        conv2d(
            "conv-dilation-pads",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("dilations", &[2, 1]), ints("pads", &[2, 1, 1, 0])],
        ),
        conv2d(
            "conv-groups2",
            7,
            &[6, 2, 3, 3],
            true,
            vec![int("group", 2)],
        ),
        conv2d(
            "conv-depthwise",
            7,
            &[4, 1, 3, 3],
            true,
            vec![int("group", 4), ints("pads", &[1, 1, 1, 1])],
        ),
        conv2d(
            "conv-depthwise-multiplier2",
            7,
            &[8, 1, 3, 3],
            false,
            vec![int("group", 4), ints("strides", &[2, 2])],
        ),
        conv2d("conv-1x1", 7, &[6, 4, 1, 1], true, vec![]),
        conv2d(
            "conv-1x1-stride2",
            7,
            &[3, 4, 1, 1],
            false,
            vec![ints("strides", &[2, 2])],
        ),
        conv1d("conv1d", &[4, 3, 3], true, vec![]),
        conv1d(
            "conv1d-stride-pads",
            &[4, 3, 3],
            false,
            vec![ints("strides", &[2]), ints("pads", &[1, 2])],
        ),
        conv1d(
            "conv1d-dilation",
            &[4, 3, 3],
            true,
            vec![ints("dilations", &[2])],
        ),
        conv1d(
            "conv1d-same-lower",
            &[4, 3, 4],
            true,
            vec![auto_pad("SAME_LOWER"), ints("strides", &[3])],
        ),
        conv1d(
            "conv1d-same-upper",
            &[4, 3, 4],
            true,
            vec![auto_pad("SAME_UPPER"), ints("strides", &[3])],
        ),
        conv1d("conv1d-groups", &[6, 1, 3], true, vec![int("group", 3)]),
        case("conv3d", 13)
            .input("x", &[N, Some(2), Some(5), Some(4), Some(4)])
            .weight("w", &[3, 2, 2, 3, 2])
            .weight("b", &[3])
            .node(
                "Conv",
                &["x", "w", "b"],
                &["y"],
                vec![
                    ints("strides", &[2, 1, 1]),
                    ints("pads", &[0, 1, 0, 1, 0, 1]),
                ],
            )
            .output("y"),
        // a secret weight: a^T b over the batch ([12, 9]) reshaped to [3, 4, 3, 3]
        case("conv-secret-weight", 13)
            .input("x", &[N, Some(4), Some(6), Some(6)])
            .input("a", &[N, Some(12)])
            .input("b", &[N, Some(9)])
            .input_scale(0.5)
            .weight("bias", &[3])
            .init_i64("shape", &[3, 4, 3, 3])
            .node("Transpose", &["a"], &["at"], vec![])
            .node("MatMul", &["at", "b"], &["m"], vec![])
            .node("Reshape", &["m", "shape"], &["w"], vec![])
            .node(
                "Conv",
                &["x", "w", "bias"],
                &["y"],
                vec![ints("pads", &[1, 0, 0, 1])],
            )
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Pooling

fn pool(op: &str, name: &str, opset: i64, dims: &[Option<i64>], attrs: Vec<Attr>) -> Case {
    case(name, opset)
        .input("x", dims)
        .node(op, &["x"], &["y"], attrs)
        .output("y")
}

const IMAGE: &[Option<i64>] = &[N, Some(3), Some(7), Some(7)];
const SIGNAL: &[Option<i64>] = &[N, Some(3), Some(9)];

#[test]
fn max_pool() {
    let mp =
        |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| pool("MaxPool", name, 13, dims, attrs);
    run_all(vec![
        mp("maxpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        mp("maxpool-k3", IMAGE, vec![ints("kernel_shape", &[3, 3])]),
        mp(
            "maxpool-k2-s2",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-rect",
            IMAGE,
            vec![ints("kernel_shape", &[3, 2]), ints("strides", &[1, 2])],
        ),
        // padding must never win the max: the inputs are negative half of the time
        mp(
            "maxpool-pads",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        ),
        mp(
            "maxpool-asym-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[0, 1, 2, 0]),
            ],
        ),
        // 7 with kernel 2 stride 2: floor gives 3, ceil gives 4
        mp(
            "maxpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // 6 + 2 pads, kernel 3 stride 2: floor gives 3, ceil gives 4
        case("maxpool-ceil-pads", 13)
            .input("x", &[N, Some(2), Some(6), Some(6)])
            .node(
                "MaxPool",
                &["x"],
                &["y"],
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    ints("pads", &[1, 1, 1, 1]),
                    int("ceil_mode", 1),
                ],
            )
            .output("y"),
        mp(
            "maxpool-dilation",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])],
        ),
        mp(
            "maxpool-dilation-stride",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 1]),
                ints("strides", &[2, 2]),
            ],
        ),
        mp(
            "maxpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        mp(
            "maxpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        mp("maxpool1d", SIGNAL, vec![ints("kernel_shape", &[3])]),
        // 9 + 1 pad, kernel 3 stride 2: floor gives 4, ceil gives 5
        mp(
            "maxpool1d-ceil-pads",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("strides", &[2]),
                ints("pads", &[1, 0]),
                int("ceil_mode", 1),
            ],
        ),
        mp(
            "maxpool3d",
            &[N, Some(2), Some(4), Some(5), Some(4)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("strides", &[2, 1, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // opset 18 (MaxPool unchanged since 12)
        pool(
            "MaxPool",
            "maxpool-opset18",
            18,
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

#[test]
fn average_pool() {
    let ap = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        pool("AveragePool", name, 13, dims, attrs)
    };
    let k3s2p1 = || {
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ]
    };
    let with = |mut attrs: Vec<Attr>, extra: Attr| {
        attrs.push(extra);
        attrs
    };
    run_all(vec![
        ap("avgpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        ap(
            "avgpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        // border windows hold 4 or 6 real values out of 9: the divisor differs per position
        ap("avgpool-pads-exclude", IMAGE, k3s2p1()),
        ap(
            "avgpool-pads-exclude-explicit",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 0)),
        ),
        ap(
            "avgpool-pads-include",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 1)),
        ),
        ap(
            "avgpool-asym-pads-exclude",
            IMAGE,
            vec![ints("kernel_shape", &[2, 3]), ints("pads", &[0, 2, 1, 0])],
        ),
        ap(
            "avgpool-asym-pads-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 3]),
                ints("pads", &[0, 2, 1, 0]),
                int("count_include_pad", 1),
            ],
        ),
        // 7 with kernel 2 stride 2: ceil adds a last window holding one column of the input
        ap(
            "avgpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-ceil-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool-ceil-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        ap(
            "avgpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        ap(
            "avgpool1d",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("strides", &[2])],
        ),
        ap(
            "avgpool1d-pads-exclude",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("pads", &[2, 1])],
        ),
        ap(
            "avgpool1d-pads-include",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("pads", &[2, 1]),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool1d-ceil",
            SIGNAL,
            vec![
                ints("kernel_shape", &[2]),
                ints("strides", &[2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool3d-pads",
            &[N, Some(2), Some(4), Some(4), Some(3)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("pads", &[1, 0, 0, 0, 1, 1]),
            ],
        ),
        // dilations exist from opset 19
        pool(
            "AveragePool",
            "avgpool-opset19-dilations",
            19,
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

#[test]
fn global_pools() {
    let mut cases = vec![];
    for op in ["GlobalAveragePool", "GlobalMaxPool"] {
        let lower = op.to_lowercase();
        cases.push(pool(
            op,
            &format!("{lower}-2d"),
            13,
            &[N, Some(3), Some(5), Some(4)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-1d"),
            13,
            &[N, Some(4), Some(6)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-3d"),
            13,
            &[N, Some(2), Some(3), Some(3), Some(2)],
            vec![],
        ));
    }
    run_all(cases);
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

const BN_ARGS: &[&str] = &["bn_scale", "bn_bias", "bn_mean", "bn_var"];

fn bn_inputs(x: &str) -> Vec<&str> {
    std::iter::once(x).chain(BN_ARGS.iter().copied()).collect()
}

/// BatchNormalization variances: ordinary, and far below epsilon (where ignoring epsilon
/// would multiply outputs by up to ~7).
const VAR: (f32, f32) = (0.1, 1.0);
const SMALL_VAR: (f32, f32) = (0.001, 0.01);

fn epsilon() -> Vec<Attr> {
    vec![float("epsilon", 0.05)]
}

/// x: [N, 3, 6, 6] -> Conv (4 outputs, `w_shape` per group, asymmetric pads) -> BatchNorm.
fn conv_then_bn(
    name: &str,
    opset: i64,
    w_shape: &[usize],
    group: i64,
    bias: bool,
    var: (f32, f32),
    attrs: Vec<Attr>,
) -> Case {
    let c = case(name, opset)
        .input("x", &[N, Some(4), Some(6), Some(6)])
        .weight("w", w_shape)
        .bn_params("bn", w_shape[0], var);
    let (c, ins): (Case, &[&str]) = if bias {
        (c.weight("b", &[w_shape[0]]), &["x", "w", "b"])
    } else {
        (c, &["x", "w"])
    };
    c.node(
        "Conv",
        ins,
        &["c"],
        vec![ints("pads", &[1, 0, 0, 1]), int("group", group)],
    )
    .node("BatchNormalization", &bn_inputs("c"), &["y"], attrs)
    .output("y")
}

#[test]
fn batch_norm() {
    let standalone = |name: &str, dims: &[Option<i64>], c: usize, var, attrs| {
        case(name, 13)
            .input("x", dims)
            .bn_params("bn", c, var)
            .node("Relu", &["x"], &["r"], vec![])
            .node("BatchNormalization", &bn_inputs("r"), &["y"], attrs)
            .output("y")
    };
    let after_gemm = |name: &str, trans_b: i64, bias: bool, var, attrs| {
        let b_shape: &[usize] = if trans_b == 1 { &[5, 6] } else { &[6, 5] };
        let c = case(name, 13)
            .input("x", &[N, Some(6)])
            .weight("b", b_shape)
            .bn_params("bn", 5, var);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("c", &[5]), &["x", "b", "c"])
        } else {
            (c, &["x", "b"])
        };
        c.node(
            "Gemm",
            ins,
            &["g"],
            vec![int("transB", trans_b), float("alpha", 0.5)],
        )
        .node("BatchNormalization", &bn_inputs("g"), &["y"], attrs)
        .output("y")
    };
    run_all(vec![
        standalone(
            "bn-standalone",
            &[N, Some(3), Some(4), Some(4)],
            3,
            VAR,
            vec![],
        ),
        standalone(
            "bn-standalone-epsilon",
            &[N, Some(3), Some(4), Some(4)],
            3,
            SMALL_VAR,
            epsilon(),
        ),
        standalone("bn-standalone-2d", &[N, Some(4)], 4, VAR, vec![]),
        standalone(
            "bn-standalone-1d-signal",
            &[N, Some(4), Some(5)],
            4,
            VAR,
            vec![],
        ),
        after_gemm("bn-gemm", 0, true, VAR, vec![]),
        after_gemm("bn-gemm-transb-no-c", 1, false, VAR, vec![]),
        after_gemm("bn-gemm-epsilon", 1, true, SMALL_VAR, epsilon()),
        // the Conv output is read twice, so the BatchNormalization cannot fold into it
        case("bn-conv-shared-output", 13)
            .input("x", &[N, Some(3), Some(5), Some(5)])
            .weight("w", &[3, 3, 3, 3])
            .bn_params("bn", 3, VAR)
            .node(
                "Conv",
                &["x", "w"],
                &["c"],
                vec![ints("pads", &[1, 1, 1, 1])],
            )
            .node("BatchNormalization", &bn_inputs("c"), &["n"], vec![])
            .node("Add", &["n", "c"], &["y"], vec![])
            .output("y"),
        // folded into the Conv before it (weights scaled per output channel, new bias)
        conv_then_bn("bn-conv-bias", 13, &[5, 4, 3, 3], 1, true, VAR, vec![]),
        conv_then_bn("bn-conv-no-bias", 13, &[5, 4, 3, 3], 1, false, VAR, vec![]),
        conv_then_bn(
            "bn-conv-epsilon",
            13,
            &[5, 4, 3, 3],
            1,
            true,
            SMALL_VAR,
            epsilon(),
        ),
        conv_then_bn("bn-conv-depthwise", 13, &[4, 1, 3, 3], 4, true, VAR, vec![]),
        conv_then_bn("bn-conv-opset15", 15, &[5, 4, 3, 3], 1, false, VAR, vec![]),
        // as many inputs as outputs with a 1x1 kernel: a per-channel scale applied along the
        // wrong weight axis still broadcasts, so only the values show it
        conv_then_bn(
            "bn-conv-1x1-square",
            13,
            &[4, 4, 1, 1],
            1,
            true,
            VAR,
            vec![],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Shape and data movement

#[test]
fn flatten() {
    let flat = |name: &str, attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", &[N, Some(3), Some(2), Some(2)])
            .node("Flatten", &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        flat("flatten-default", vec![]),
        flat("flatten-axis1", vec![int("axis", 1)]),
        flat("flatten-axis2", vec![int("axis", 2)]),
        flat("flatten-axis-neg1", vec![int("axis", -1)]),
        flat("flatten-axis0", vec![int("axis", 0)]),
        // the layout matters downstream: a Gemm over the flattened features
        case("flatten-then-gemm", 13)
            .input("x", &[N, Some(2), Some(3), Some(2)])
            .weight("b", &[12, 3])
            .node(
                "Transpose",
                &["x"],
                &["t"],
                vec![ints("perm", &[0, 2, 3, 1])],
            )
            .node("Flatten", &["t"], &["f"], vec![])
            .node("Gemm", &["f", "b"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn reshape() {
    let rs = |name: &str, opset: i64, shape: &[i64], attrs: Vec<Attr>| {
        case(name, opset)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", shape)
            .node("Reshape", &["x", "shape"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        rs("reshape-0-minus1", 13, &[0, -1], vec![]),
        rs("reshape-0-2-minus1", 13, &[0, 2, -1], vec![]),
        rs("reshape-0-4-3", 13, &[0, 4, 3], vec![]),
        rs("reshape-minus1-4", 13, &[-1, 4], vec![]),
        rs("reshape-minus1-2", 13, &[-1, 2], vec![]),
        rs("reshape-flat", 13, &[-1], vec![]),
        rs(
            "reshape-opset18-allowzero0",
            18,
            &[0, 6, -1],
            vec![int("allowzero", 0)],
        ),
        // the reshaped layout feeds a product, so an element-order mistake shows
        case("reshape-then-matmul", 13)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", &[0, 2, 6])
            .weight("w", &[6, 2])
            .node("Reshape", &["x", "shape"], &["r"], vec![])
            .node("MatMul", &["r", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn transpose() {
    let tr = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", dims)
            .node("Transpose", &["x"], &["y"], attrs)
            .output("y")
    };
    let x4: &[Option<i64>] = &[N, Some(2), Some(3), Some(4)];
    run_all(vec![
        tr(
            "transpose-nhwc-to-nchw",
            x4,
            vec![ints("perm", &[0, 3, 1, 2])],
        ),
        tr(
            "transpose-nchw-to-nhwc",
            x4,
            vec![ints("perm", &[0, 2, 3, 1])],
        ),
        tr(
            "transpose-batch-moves",
            x4,
            vec![ints("perm", &[2, 0, 3, 1])],
        ),
        tr("transpose-default-3d", &[N, Some(2), Some(3)], vec![]),
        tr("transpose-default-4d", x4, vec![]),
        tr(
            "transpose-identity-perm",
            x4,
            vec![ints("perm", &[0, 1, 2, 3])],
        ),
    ]);
}

#[test]
fn squeeze_unsqueeze() {
    let x: &[Option<i64>] = &[N, Some(1), Some(3), Some(1)];
    let v11 = |name: &str, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, 11)
            .input("x", dims)
            .node(op, &["x"], &["y"], vec![ints("axes", axes)])
            .output("y")
    };
    let v13 = |name: &str, opset: i64, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, opset)
            .input("x", dims)
            .init_i64("axes", axes)
            .node(op, &["x", "axes"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        v11("squeeze11-two-axes", "Squeeze", x, &[1, 3]),
        v11("squeeze11-negative-axis", "Squeeze", x, &[-1]),
        v11(
            "unsqueeze11-two-axes",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v11(
            "unsqueeze11-negative-axis",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1],
        ),
        v13("squeeze13-two-axes", 13, "Squeeze", x, &[1, 3]),
        v13("squeeze13-negative-axis", 13, "Squeeze", x, &[-3]),
        v13(
            "unsqueeze13-two-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v13(
            "unsqueeze13-negative-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1, 1],
        ),
        v13("squeeze18", 18, "Squeeze", x, &[3]),
        v13(
            "unsqueeze13-before-batch",
            13,
            "Unsqueeze",
            &[N, Some(3)],
            &[0],
        ),
        // round trip through a product so that the layout matters
        case("unsqueeze-squeeze-chain", 13)
            .input("x", &[N, Some(4)])
            .init_i64("axes", &[1])
            .weight("w", &[4, 3])
            .node("Unsqueeze", &["x", "axes"], &["u"], vec![])
            .node("MatMul", &["u", "w"], &["m"], vec![])
            .node("Squeeze", &["m", "axes"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn concat() {
    run_all(vec![
        case("concat-two-inputs", 13)
            .input("x", &[N, Some(3), Some(4)])
            .input("z", &[N, Some(2), Some(4)])
            .node("Concat", &["x", "z"], &["y"], vec![int("axis", 1)])
            .output("y"),
        case("concat-negative-axis", 13)
            .input("x", &[N, Some(3), Some(4)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["x", "r", "x"], &["y"], vec![int("axis", -1)])
            .output("y"),
        case("concat-batch-axis", 13)
            .input("x", &[N, Some(3)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["r", "x"], &["y"], vec![int("axis", 0)])
            .output("y"),
        // A constant has no batch axis, so it can only be concatenated with a batch-free
        // secret: here s = z^T a ([3, 4]), whose concatenation then multiplies x.
        case("concat-secret-then-constant", 13)
            .input("x", &[N, Some(5)])
            .input("a", &[N, Some(4)])
            .input("z", &[N, Some(3)])
            .weight("c", &[2, 4])
            .node("Transpose", &["z"], &["zt"], vec![])
            .node("MatMul", &["zt", "a"], &["s"], vec![])
            .node("Concat", &["s", "c"], &["sc"], vec![int("axis", 0)])
            .node("MatMul", &["x", "sc"], &["y"], vec![])
            .output("y"),
        // s = x^T z ([4, 2]) after a constant [4, 3] along axis -1
        case("concat-constant-first-negative-axis", 13)
            .input("x", &[N, Some(4)])
            .input("z", &[N, Some(2)])
            .weight("c", &[4, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["s"], vec![])
            .node("Concat", &["c", "s"], &["cs"], vec![int("axis", -1)])
            .node("MatMul", &["x", "cs"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn identity_and_dropout() {
    let x = |name: &str, opset: i64| case(name, opset).input("x", &[N, Some(3), Some(4)]);
    let then_relu = |c: Case| c.node("Relu", &["d"], &["y"], vec![]).output("y");
    run_all(vec![
        // the graph output is the input itself
        x("identity-only", 13)
            .node("Identity", &["x"], &["y"], vec![])
            .output("y"),
        then_relu(x("identity-then-relu", 13).node("Identity", &["x"], &["d"], vec![])),
        x("identity-of-result", 13)
            .node("Relu", &["x"], &["r"], vec![])
            .node("Identity", &["r"], &["y"], vec![])
            .output("y"),
        then_relu(x("dropout13-ratio-input", 13).scalar("ratio", 0.3).node(
            "Dropout",
            &["x", "ratio"],
            &["d"],
            vec![],
        )),
        then_relu(
            x("dropout13-training-false", 13)
                .scalar("ratio", 0.5)
                .with_onnx(|o| {
                    o.init_bool_scalar("training_mode", false);
                })
                .node("Dropout", &["x", "ratio", "training_mode"], &["d"], vec![]),
        ),
        then_relu(x("dropout13-no-ratio", 13).node("Dropout", &["x"], &["d"], vec![])),
        then_relu(x("dropout11-ratio-attr", 11).node(
            "Dropout",
            &["x"],
            &["d"],
            vec![float("ratio", 0.25)],
        )),
        // the graph output is the Dropout's output, aliasing the input
        x("dropout-only", 13)
            .scalar("ratio", 0.3)
            .node("Dropout", &["x", "ratio"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// A small network mixing the families

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

// ---------------------------------------------------------------------------------------------
// A monotone activation moved after the max-pooling that alone reads it (src/lower/reorder.rs)

/// x: [N, 3, 8, 8] -> Conv `conv_0` (4 x 3x3, pad 1) -> `c`, for an activation to read.
fn conv_features(name: &str, opset: i64) -> Case {
    case(name, opset)
        .input("x", &[N, Some(3), Some(8), Some(8)])
        .weight("w", &[4, 3, 3, 3])
        .weight("b", &[4])
        .node(
            "Conv",
            &["x", "w", "b"],
            &["c"],
            vec![ints("pads", &[1, 1, 1, 1])],
        )
}

/// Conv -> `activation` (node 1) -> `pool` (node 2) -> y.
fn activation_then(name: &str, activation: (&str, Vec<Attr>), pool: (&str, Vec<Attr>)) -> Case {
    conv_features(name, 13)
        .node(activation.0, &["c"], &["a"], activation.1)
        .node(pool.0, &["a"], &["y"], pool.1)
        .output("y")
}

fn relu_op() -> (&'static str, Vec<Attr>) {
    ("Relu", vec![])
}

fn max_pool_op(attrs: Vec<Attr>) -> (&'static str, Vec<Attr>) {
    ("MaxPool", attrs)
}

fn k2s2() -> Vec<Attr> {
    vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])]
}

fn plan_of(c: &Case) -> tfe::plan::Plan {
    tfe::lower::convert(&c.onnx.save(&c.name), c.options())
        .unwrap_or_else(|e| panic!("{}: {e:#}", c.name))
        .plan
}

/// Whether the first step lowered from node `later` follows the first from node `earlier`.
fn runs_after(c: &Case, later: &str, earlier: &str) -> bool {
    let plan = plan_of(c);
    let first = |node: &str| {
        plan.steps
            .iter()
            .position(|s| s.node == node)
            .unwrap_or_else(|| panic!("{}: no step from {node}", c.name))
    };
    first(later) > first(earlier)
}

/// The `--check` line of one node.
fn coverage_line(c: &Case, node: &str) -> String {
    let (coverage, _) = tfe::lower::check(&c.onnx.save(&c.name), c.options()).unwrap();
    let text = coverage.text();
    let line = text.lines().find(|l| l.starts_with(&format!("{node} ")));
    line.unwrap_or_else(|| panic!("{}: no line for {node}", c.name))
        .to_string()
}

/// The activation and pooling node of the one pair most cases hold.
const RELU_MAXPOOL: &[[&str; 2]] = &[["relu_1", "maxpool_2"]];

/// Checks that each pooling's steps run before its activation's exactly when `moved`, then
/// runs the cases against tract.
fn check_order_and_run(cases: Vec<(Case, &[[&str; 2]])>, moved: bool) {
    for (c, pairs) in &cases {
        for [activation, pool] in *pairs {
            assert_eq!(runs_after(c, activation, pool), moved, "{}", c.name);
        }
    }
    run_all(cases.into_iter().map(|(c, _)| c).collect());
}

/// Every window variant, and each activation and pooling the rewrite covers, against tract.
#[test]
fn activation_moved_after_max_pooling() {
    let relu_max_pool = |name: &str, attrs: Vec<Attr>| {
        (
            activation_then(name, relu_op(), max_pool_op(attrs)),
            RELU_MAXPOOL,
        )
    };
    let k3s2 = || vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])];
    let with = |mut attrs: Vec<Attr>, more: Vec<Attr>| {
        attrs.extend(more);
        attrs
    };
    check_order_and_run(
        vec![
            relu_max_pool("reorder-k2-s2", k2s2()),
            // padding must not win the max although the pooled values are not rectified yet
            relu_max_pool(
                "reorder-pads",
                with(k3s2(), vec![ints("pads", &[1, 1, 1, 1])]),
            ),
            // 8 with kernel 3 stride 2: floor gives 3, ceil gives 4 (the last window reaches
            // into the padding)
            relu_max_pool("reorder-ceil", with(k3s2(), vec![int("ceil_mode", 1)])),
            relu_max_pool(
                "reorder-asym-pads-ceil",
                with(
                    k3s2(),
                    vec![ints("pads", &[0, 1, 2, 0]), int("ceil_mode", 1)],
                ),
            ),
            relu_max_pool(
                "reorder-dilations",
                vec![
                    ints("kernel_shape", &[2, 2]),
                    ints("dilations", &[2, 2]),
                    ints("strides", &[2, 1]),
                ],
            ),
            relu_max_pool(
                "reorder-same-upper",
                with(k3s2(), vec![auto_pad("SAME_UPPER")]),
            ),
            (
                activation_then(
                    "reorder-leakyrelu",
                    ("LeakyRelu", vec![float("alpha", 0.1)]),
                    max_pool_op(k2s2()),
                ),
                &[["leakyrelu_1", "maxpool_2"]],
            ),
            (
                conv_features("reorder-clip", 13)
                    .scalar("lo", -0.5)
                    .scalar("hi", 1.0)
                    .node("Clip", &["c", "lo", "hi"], &["a"], vec![])
                    .node("MaxPool", &["a"], &["y"], k2s2())
                    .output("y"),
                &[["clip_1", "maxpool_2"]],
            ),
            (
                activation_then("reorder-global", relu_op(), ("GlobalMaxPool", vec![])),
                &[["relu_1", "globalmaxpool_2"]],
            ),
            (
                activation_then(
                    "reorder-reducemax",
                    relu_op(),
                    ("ReduceMax", vec![ints("axes", &[2, 3]), int("keepdims", 0)]),
                ),
                &[["relu_1", "reducemax_2"]],
            ),
            (
                conv_features("reorder-reducemin-opset18", 18)
                    .init_i64("axes", &[1])
                    .node("Relu", &["c"], &["a"], vec![])
                    .node("ReduceMin", &["a", "axes"], &["y"], vec![])
                    .output("y"),
                &[["relu_1", "reducemin_2"]],
            ),
            // both pairs move; the second Relu reads what the first pair computes
            (
                conv_features("reorder-twice", 13)
                    .node("Relu", &["c"], &["a"], vec![])
                    .node("MaxPool", &["a"], &["p"], k2s2())
                    .node("Relu", &["p"], &["r"], vec![])
                    .node("MaxPool", &["r"], &["y"], k2s2())
                    .output("y"),
                &[["relu_1", "maxpool_2"], ["relu_3", "maxpool_4"]],
            ),
        ],
        true,
    );
}

/// The moved Relu gates the pooled tensor: the plan is the one MaxPool -> Relu gives, and
/// sends less than the same computation where the rewrite does not apply.
#[test]
fn moved_relu_gates_the_pooled_tensor() {
    let moved = activation_then("gates-moved", relu_op(), max_pool_op(k2s2()));
    let plan = plan_of(&moved);
    let steps: Vec<(&str, &str, Vec<usize>)> = plan
        .steps
        .iter()
        .filter(|s| s.node != "conv_0")
        .map(|s| {
            let input = &plan.value(s.inputs[0]).shape;
            (s.node.as_str(), s.op.name(), input.resolve(1))
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("maxpool_2", "MaxPool", vec![1, 4, 8, 8]),
            ("relu_1", "Relu", vec![1, 4, 4, 4]),
        ]
    );
    let line = coverage_line(&moved, "relu_1");
    assert!(
        line.ends_with("lowered (after maxpool_2, on its pooled values)"),
        "{line}"
    );

    let written_in_that_order = conv_features("gates-written", 13)
        .node("MaxPool", &["c"], &["p"], k2s2())
        .node("Relu", &["p"], &["y"], vec![])
        .output("y");
    let hidden_behind_identity = conv_features("gates-hidden", 13)
        .node("Relu", &["c"], &["a"], vec![])
        .node("Identity", &["a"], &["i"], vec![])
        .node("MaxPool", &["i"], &["y"], k2s2())
        .output("y");
    let sent = |c: &Case| {
        let inputs = c.inputs_for(2);
        let run = tfe::serve::predict(&plan_of(c), &inputs, tfe::serve::Mode::Mpc).unwrap();
        run.online.bytes_sent
    };
    let (moved, hidden) = (sent(&moved), sent(&hidden_behind_identity));
    assert_eq!(moved, sent(&written_in_that_order));
    assert!(moved < hidden, "{moved} >= {hidden}");
}

/// Every window the rewrite pools holds a real element, or the plan refuses to run in either
/// order: here the first window of each axis lies wholly in the begin padding, where a
/// rectified max would be 0 but the max of padding alone is -inf.
#[test]
fn window_wholly_in_padding_is_refused_in_either_order() {
    let padded = || vec![ints("kernel_shape", &[2, 2]), ints("pads", &[2, 2, 0, 0])];
    let moved = activation_then("padding-moved", relu_op(), max_pool_op(padded()));
    let kept = activation_then("padding-kept", relu_op(), max_pool_op(padded())).output("a");
    for (c, moved) in [(&moved, true), (&kept, false)] {
        assert_eq!(runs_after(c, "relu_1", "maxpool_2"), moved, "{}", c.name);
        let run = tfe::serve::predict(&plan_of(c), &c.inputs_for(1), tfe::serve::Mode::Float);
        let error = format!("{:#}", run.err().expect("a window wholly in padding"));
        assert!(
            error.contains("entirely in the padding"),
            "{}: {error}",
            c.name
        );
    }
}

/// Where more than the pooling sees the activation's result, or the activation is not
/// monotone, the order stays and the results are still right.
#[test]
fn activation_stays_before_pooling_when_it_cannot_move() {
    check_order_and_run(
        vec![
            (
                conv_features("stays-read-twice", 13)
                    .node("Relu", &["c"], &["a"], vec![])
                    .node("MaxPool", &["a"], &["y"], k2s2())
                    .node("AveragePool", &["a"], &["z"], k2s2())
                    .output("y")
                    .output("z"),
                RELU_MAXPOOL,
            ),
            (
                conv_features("stays-two-pools", 13)
                    .node("Relu", &["c"], &["a"], vec![])
                    .node("MaxPool", &["a"], &["y"], k2s2())
                    .node(
                        "MaxPool",
                        &["a"],
                        &["z"],
                        vec![ints("kernel_shape", &[3, 3])],
                    )
                    .output("y")
                    .output("z"),
                RELU_MAXPOOL,
            ),
            (
                activation_then("stays-graph-output", relu_op(), max_pool_op(k2s2())).output("a"),
                RELU_MAXPOOL,
            ),
            (
                activation_then(
                    "stays-negative-slope",
                    ("LeakyRelu", vec![float("alpha", -0.5)]),
                    max_pool_op(k2s2()),
                ),
                &[["leakyrelu_1", "maxpool_2"]],
            ),
        ],
        false,
    );

    // MaxPool's Indices output is refused either way; the Relu stays where it was
    let indices = conv_features("stays-indices", 13)
        .node("Relu", &["c"], &["a"], vec![])
        .node("MaxPool", &["a"], &["y", "i"], k2s2())
        .output("y");
    indices.refused(&["Indices output"]).unwrap();
    let line = coverage_line(&indices, "relu_1");
    assert!(line.ends_with("lowered"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Data movement with constant indices

/// "To the end of the axis", as exporters write it.
const END: i64 = i64::MAX;

fn str_attr(name: &'static str, v: &'static str) -> Attr {
    Attr::Str(name, v)
}

fn tensor(shape: &[usize], data: &[f32]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap()
}

/// Adds a graph output for each name.
fn outputs(c: Case, names: &[&str]) -> Case {
    names.iter().fold(c, |c, name| c.output(name))
}

#[test]
fn pad() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    // x sliced to c along axes 1 and 2
    let cropped = |name: &str, starts: &[i64], ends: &[i64]| {
        case(&format!("{name}-reference"), 13)
            .input("x", x)
            .init_i64("starts", starts)
            .init_i64("ends", ends)
            .init_i64("axes", &[1, 2])
            .node("Slice", &["x", "starts", "ends", "axes"], &["c"], vec![])
    };
    let with_input = |name: &str, opset: i64, pads: &[i64], value: Option<f32>| {
        let c = case(name, opset).input("x", x).init_i64("pads", pads);
        let (c, ins): (Case, &[&str]) = match value {
            Some(v) => (c.scalar("value", v), &["x", "pads", "value"]),
            None => (c, &["x", "pads"]),
        };
        c.node("Pad", ins, &["y"], vec![]).output("y")
    };
    let with_axes = |name: &str, value: Option<f32>| {
        let c = case(name, 18)
            .input("x", x)
            .init_i64("pads", &[1, 0, 2, 1])
            .init_i64("axes", &[-1, 1]);
        let (c, ins): (Case, &[&str]) = match value {
            Some(v) => (c.scalar("value", v), &["x", "pads", "value", "axes"]),
            None => (c, &["x", "pads", "", "axes"]),
        };
        c.node("Pad", ins, &["y"], vec![]).output("y")
    };
    run_all(vec![
        // begins [0, 1, 2], ends [0, 2, 1]
        with_input("pad13-zeros", 13, &[0, 1, 2, 0, 2, 1], None),
        // a fill value the data never takes: ignoring it moves the border by 0.75
        with_input("pad13-value", 13, &[0, 1, 2, 0, 2, 1], Some(0.75)),
        // negative pads crop: a row off the start of axis 1, a column off the end of axis 2
        // (tract cannot run them, so it runs the same slices and pads as two nodes)
        with_input("pad13-crop-and-pad", 13, &[0, -1, 1, 0, 2, -1], Some(-0.5)).reference(
            cropped("pad13-crop-and-pad", &[1, 0], &[END, -1])
                .init_i64("pads", &[0, 0, 1, 0, 2, 0])
                .scalar("value", -0.5)
                .node("Pad", &["c", "pads", "value"], &["y"], vec![])
                .output("y"),
        ),
        with_input("pad13-crop-only", 13, &[0, 0, -1, 0, -1, -2], Some(3.0)).reference(
            cropped("pad13-crop-only", &[0, 1], &[-1, -2])
                .node("Identity", &["c"], &["y"], vec![])
                .output("y"),
        ),
        with_input("pad11-value", 11, &[0, 0, 3, 0, 1, 0], Some(2.0)),
        // pads and value as attributes
        case("pad2-attributes", 10)
            .input("x", x)
            .node(
                "Pad",
                &["x"],
                &["y"],
                vec![ints("pads", &[0, 2, 0, 0, 1, 1]), float("value", -1.5)],
            )
            .output("y"),
        case("pad2-explicit-constant-mode", 10)
            .input("x", x)
            .node(
                "Pad",
                &["x"],
                &["y"],
                vec![
                    ints("pads", &[0, 1, 1, 0, 0, 2]),
                    str_attr("mode", "constant"),
                ],
            )
            .output("y"),
        // opset 18: pads only for the axes given ([-1, 1]: last axis 1 then 1, axis 1 0 then 2)
        with_axes("pad18-axes-value", Some(0.5)),
        with_axes("pad18-axes-zeros", None),
        // a padded image into a convolution: the layout matters downstream
        case("pad-then-conv", 13)
            .input("x", &[N, Some(2), Some(5), Some(5)])
            .init_i64("pads", &[0, 0, 1, 0, 0, 0, 0, 2])
            .scalar("value", 0.25)
            .weight("w", &[3, 2, 3, 3])
            .node("Pad", &["x", "pads", "value"], &["p"], vec![])
            .node("Conv", &["p", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn slice() {
    let x: &[Option<i64>] = &[N, Some(5), Some(6)];
    let with_inputs = |name: &str,
                       opset: i64,
                       starts: &[i64],
                       ends: &[i64],
                       axes: Option<&[i64]>,
                       steps: Option<&[i64]>| {
        let mut c = case(name, opset)
            .input("x", x)
            .init_i64("starts", starts)
            .init_i64("ends", ends);
        let mut ins = vec!["x", "starts", "ends"];
        match axes {
            Some(axes) => {
                c = c.init_i64("axes", axes);
                ins.push("axes");
            }
            None if steps.is_some() => ins.push(""),
            None => {}
        }
        if let Some(steps) = steps {
            c = c.init_i64("steps", steps);
            ins.push("steps");
        }
        c.node("Slice", &ins, &["y"], vec![]).output("y")
    };
    let with_attrs = |name: &str, attrs: Vec<Attr>| {
        case(name, 9)
            .input("x", x)
            .node("Slice", &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        with_inputs(
            "slice13-two-axes",
            13,
            &[1, -4],
            &[4, END],
            Some(&[1, 2]),
            None,
        ),
        // axis 1: 0, 2, 4; axis 2 backwards: 5, 3, 1
        with_inputs(
            "slice13-steps",
            13,
            &[0, 5],
            &[END, 0],
            Some(&[1, 2]),
            Some(&[2, -2]),
        ),
        // a negative step from beyond the end to before the start: the whole axis reversed
        with_inputs(
            "slice13-reverse-clamped",
            13,
            &[100],
            &[-100],
            Some(&[-1]),
            Some(&[-1]),
        ),
        with_inputs(
            "slice13-negative-axis-and-positions",
            13,
            &[-3],
            &[-1],
            Some(&[-2]),
            None,
        ),
        // out-of-range start and end on a forward slice
        with_inputs(
            "slice13-clamped-forward",
            13,
            &[-100, 2],
            &[100, 3],
            Some(&[2, 1]),
            None,
        ),
        // no axes: starts and ends from axis 0, the batch, which is taken whole
        with_inputs(
            "slice13-no-axes-batch-whole",
            13,
            &[0, 1, -2],
            &[END, 3, END],
            None,
            None,
        ),
        with_inputs(
            "slice13-steps-without-axes",
            13,
            &[0, 4],
            &[END, 0],
            None,
            Some(&[1, -1]),
        ),
        with_inputs("slice10", 10, &[1], &[5], Some(&[2]), Some(&[3])),
        with_attrs(
            "slice9-attributes",
            vec![
                ints("starts", &[1, 2]),
                ints("ends", &[-1, 1000]),
                ints("axes", &[2, 1]),
            ],
        ),
        // no axes: from axis 0, which is the batch and is sliced, so shapes must be fixed
        case("slice9-attributes-no-axes", 9)
            .input("x", &[Some(3), Some(5), Some(6)])
            .node(
                "Slice",
                &["x"],
                &["y"],
                vec![ints("starts", &[0, 1, -3]), ints("ends", &[END, 4, END])],
            )
            .output("y")
            .fixed_shapes(),
        // The whole batch axis, up to INT64_MAX: shapes come from concrete batch sizes, so
        // tract's symbolic mis-inference of this slice does not arise.
        with_attrs(
            "slice9-attributes-batch-end",
            vec![
                ints("starts", &[0, 1]),
                ints("ends", &[END, 4]),
                ints("axes", &[0, 1]),
            ],
        ),
    ]);
}

#[test]
fn split() {
    let x: &[Option<i64>] = &[N, Some(6), Some(4)];
    let abc = ["a", "b", "c"];
    run_all(vec![
        outputs(
            case("split11-sizes-attribute", 11).input("x", x).node(
                "Split",
                &["x"],
                &abc,
                vec![int("axis", 1), ints("split", &[1, 3, 2])],
            ),
            &abc,
        ),
        outputs(
            case("split11-equal", 11).input("x", x).node(
                "Split",
                &["x"],
                &abc,
                vec![int("axis", 1)],
            ),
            &abc,
        ),
        outputs(
            case("split13-sizes-input", 13)
                .input("x", x)
                .init_i64("split", &[3, 1])
                .node("Split", &["x", "split"], &["a", "b"], vec![int("axis", -1)]),
            &["a", "b"],
        ),
        outputs(
            case("split13-equal-negative-axis", 13).input("x", x).node(
                "Split",
                &["x"],
                &["a", "b"],
                vec![int("axis", -2)],
            ),
            &["a", "b"],
        ),
        // 7 into 3: 3, 3 and 1
        outputs(
            case("split18-num-outputs", 18)
                .input("x", &[N, Some(7), Some(2)])
                .node(
                    "Split",
                    &["x"],
                    &abc,
                    vec![int("axis", 1), int("num_outputs", 3)],
                ),
            &abc,
        ),
        // the halves are combined, so swapping them shows
        case("split13-halves-subtracted", 13)
            .input("x", x)
            .node("Split", &["x"], &["a", "b"], vec![int("axis", 1)])
            .node("Sub", &["b", "a"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn gather() {
    let x: &[Option<i64>] = &[N, Some(5), Some(3)];
    let on_x = |name: &str, opset: i64, dims: &[i64], indices: &[i64], axis: i64| {
        case(name, opset)
            .input("x", x)
            .init_i64_shaped("i", dims, indices)
            .node("Gather", &["x", "i"], &["y"], vec![int("axis", axis)])
            .output("y")
    };
    run_all(vec![
        on_x("gather-axis1-negative", 13, &[4], &[4, 0, -1, 2], 1),
        on_x("gather-scalar-index", 13, &[], &[-2], 1),
        on_x(
            "gather-2d-indices-last-axis",
            13,
            &[2, 2],
            &[0, 2, 2, -3],
            -1,
        ),
        on_x("gather-opset11-repeats", 11, &[5], &[1, 1, 3, 0, 1], 1),
        // axis 0 (the default) of a batch-free secret, x^T x: [4, 4]
        case("gather-default-axis-batch-free", 13)
            .input("x", &[N, Some(4)])
            .init_i64("i", &[3, 1, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "x"], &["s"], vec![])
            .node("Gather", &["s", "i"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn gather_elements() {
    // s = x^T z: [4, 3], with no batch axis (constant indices fix the output size)
    let s = |name: &str| {
        case(name, 13)
            .input("x", &[N, Some(4)])
            .input("z", &[N, Some(3)])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["s"], vec![])
    };
    let gather = |c: Case, dims: &[i64], indices: &[i64], attrs: Vec<Attr>| {
        c.init_i64_shaped("i", dims, indices)
            .node("GatherElements", &["s", "i"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        gather(
            s("gather-elements-default-axis"),
            &[2, 3],
            &[0, 3, -1, 2, 1, 0],
            vec![],
        ),
        gather(
            s("gather-elements-axis1"),
            &[4, 2],
            &[2, 0, 1, 1, -1, 0, 0, 2],
            vec![int("axis", 1)],
        ),
        gather(
            s("gather-elements-axis-neg1-wide"),
            &[4, 5],
            &[0, 1, 2, 2, 1, 1, 0, 0, -1, -2, 2, 2, 2, 0, 1, 0, 1, 0, 1, 0],
            vec![int("axis", -1)],
        ),
    ]);
}

#[test]
fn expand_and_tile() {
    let x: &[Option<i64>] = &[N, Some(3), Some(1)];
    let expand = |name: &str, shape: &[i64]| {
        case(name, 13)
            .input("x", x)
            .init_i64("shape", shape)
            .node("Expand", &["x", "shape"], &["y"], vec![])
            .output("y")
    };
    let tile = |name: &str, repeats: &[i64]| {
        case(name, 13)
            .input("x", &[N, Some(2), Some(3)])
            .init_i64("repeats", repeats)
            .node("Tile", &["x", "repeats"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        expand("expand-last-axis", &[1, 3, 4]),
        expand("expand-short-target", &[5]),
        // more axes than the input: [2, 1, 1, 5] with [N, 3, 1] gives [2, N, 3, 5]
        expand("expand-more-axes", &[2, 1, 1, 5]),
        expand("expand-same-shape", &[1, 1]),
        // the target is Shape(x), holding the batch size: a batch-free sum expanded back
        case("expand-to-input-shape", 13)
            .input("x", &[N, Some(4)])
            .init_i64("axes", &[0])
            .node("ReduceSum", &["x", "axes"], &["s"], vec![])
            .node("Shape", &["x"], &["shape"], vec![])
            .node("Expand", &["s", "shape"], &["e"], vec![])
            .node("Sub", &["x", "e"], &["y"], vec![])
            .output("y"),
        tile("tile-inner-axes", &[1, 3, 2]),
        tile("tile-no-repeat", &[1, 1, 1]),
        // the batch axis too: the output has 2N rows, whatever N is
        tile("tile-batch-axis", &[2, 1, 2]),
    ]);
}

#[test]
fn where_constant_condition() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let mask = [
        true, false, false, true, true, true, false, false, true, false, true, false,
    ];
    run_all(vec![
        // a [3, 1] condition broadcast over two secret branches
        case("where-secret-branches", 13)
            .input("x", x)
            .init_bool("c", &[3, 1], &[true, false, true])
            .node("Neg", &["x"], &["n"], vec![])
            .node("Where", &["c", "x", "n"], &["y"], vec![])
            .output("y"),
        case("where-constant-y", 13)
            .input("x", x)
            .init_bool("c", &[4], &[true, false, false, true])
            .weight("k", &[3, 4])
            .node("Where", &["c", "x", "k"], &["y"], vec![])
            .output("y"),
        case("where-constant-x-scalar", 13)
            .input("x", x)
            .init_bool("c", &[3, 4], &mask)
            .scalar("k", 0.5)
            .node("Where", &["c", "k", "x"], &["y"], vec![])
            .output("y"),
        // the condition is computed at convert time from constants
        case("where-folded-condition", 13)
            .input("x", x)
            .weight("a", &[4])
            .scalar("zero", 0.0)
            .node("Greater", &["a", "zero"], &["c"], vec![])
            .node("Where", &["c", "x", "a"], &["y"], vec![])
            .output("y"),
        case("where-opset9", 9)
            .input("x", x)
            .input("z", x)
            .init_bool("c", &[3, 4], &mask)
            .node("Where", &["c", "z", "x"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn cast() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    run_all(vec![
        case("cast-to-float", 13)
            .input("x", x)
            .node("Cast", &["x"], &["y"], vec![int("to", 1)])
            .output("y"),
        case("cast-double-and-back", 13)
            .input("x", x)
            .node("Cast", &["x"], &["d"], vec![int("to", 11)])
            .node("Relu", &["d"], &["r"], vec![])
            .node("Cast", &["r"], &["y"], vec![int("to", 1)])
            .output("y"),
        case("castlike-float", 15)
            .input("x", x)
            .weight("like", &[1])
            .node("CastLike", &["x", "like"], &["y"], vec![])
            .output("y"),
        // a constant cast at convert time, then added
        case("cast-of-constant-folded", 13)
            .input("x", x)
            .init_i64("k", &[1, -2, 3, 0])
            .node("Cast", &["k"], &["kf"], vec![int("to", 1)])
            .node("Add", &["x", "kf"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn depth_to_space_and_back() {
    let d2s = |name: &str, attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", &[N, Some(8), Some(2), Some(3)])
            .node("DepthToSpace", &["x"], &["y"], attrs)
            .output("y")
    };
    let s2d = |name: &str, dims: &[Option<i64>], block: i64| {
        case(name, 13)
            .input("x", dims)
            .node(
                "SpaceToDepth",
                &["x"],
                &["y"],
                vec![int("blocksize", block)],
            )
            .output("y")
    };
    run_all(vec![
        d2s("depth-to-space-default-mode", vec![int("blocksize", 2)]),
        d2s(
            "depth-to-space-crd",
            vec![int("blocksize", 2), str_attr("mode", "CRD")],
        ),
        d2s(
            "depth-to-space-dcr",
            vec![int("blocksize", 2), str_attr("mode", "DCR")],
        ),
        case("depth-to-space-opset1", 1)
            .input("x", &[N, Some(9), Some(2), Some(2)])
            .node("DepthToSpace", &["x"], &["y"], vec![int("blocksize", 3)])
            .output("y"),
        s2d("space-to-depth", &[N, Some(2), Some(4), Some(6)], 2),
        s2d("space-to-depth-block3", &[N, Some(1), Some(3), Some(6)], 3),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic: Neg, Div by constants, Sum, Mean, reductions

#[test]
fn neg_div_sum_mean() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let z: &[Option<i64>] = &[N, Some(3), Some(1)];
    let variadic = |name: &str, op: &str, ins: &[&str]| {
        case(name, 13)
            .input("x", x)
            .input("z", z)
            .weight("a", &[3, 1])
            .weight("b", &[4])
            .node(op, ins, &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        case("neg", 13)
            .input("x", x)
            .node("Neg", &["x"], &["y"], vec![])
            .output("y"),
        case("div-by-constant-vector", 13)
            .input("x", x)
            .init("d", &tensor(&[4], &[0.5, -2.0, 1.25, 4.0]))
            .node("Div", &["x", "d"], &["y"], vec![])
            .output("y"),
        case("div-by-constant-scalar", 13)
            .input("x", x)
            .scalar("d", -0.4)
            .node("Div", &["x", "d"], &["y"], vec![])
            .output("y"),
        variadic("sum-three-broadcast", "Sum", &["x", "z", "b"]),
        // the first two operands broadcast to [3, 4], smaller than the output
        variadic("sum-constants-first", "Sum", &["a", "b", "x"]),
        variadic("sum-single", "Sum", &["x"]),
        variadic("mean-three-broadcast", "Mean", &["x", "z", "a"]),
        variadic("mean-two", "Mean", &["z", "x"]),
        variadic("mean-single", "Mean", &["x"]),
    ]);
}

#[test]
fn reduce() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let by_attr = |name: &str, op: &str, opset: i64, attrs: Vec<Attr>| {
        case(name, opset)
            .input("x", x)
            .node(op, &["x"], &["y"], attrs)
            .output("y")
    };
    let by_input = |name: &str, op: &str, opset: i64, axes: &[i64], attrs: Vec<Attr>| {
        case(name, opset)
            .input("x", x)
            .init_i64("axes", axes)
            .node(op, &["x", "axes"], &["y"], attrs)
            .output("y")
    };
    let keep = |v: i64| int("keepdims", v);
    let noop = || int("noop_with_empty_axes", 1);
    run_all(vec![
        by_attr(
            "reducesum11-axes-attr",
            "ReduceSum",
            11,
            vec![ints("axes", &[-1])],
        ),
        by_attr(
            "reducesum11-keepdims0",
            "ReduceSum",
            11,
            vec![ints("axes", &[1]), keep(0)],
        ),
        by_input(
            "reducesum13-axes-input",
            "ReduceSum",
            13,
            &[2, 1],
            vec![keep(0)],
        ),
        // along the batch: a linear map for any batch size
        by_input("reducesum13-batch-axis", "ReduceSum", 13, &[0], vec![]),
        // no axes: every axis, the batch included
        by_attr("reducesum13-all-axes", "ReduceSum", 13, vec![keep(0)]),
        by_input("reducesum13-noop", "ReduceSum", 13, &[], vec![noop()]),
        by_attr(
            "reducemean13-two-axes",
            "ReduceMean",
            13,
            vec![ints("axes", &[1, -1]), keep(0)],
        ),
        by_attr(
            "reducemean11-one-axis",
            "ReduceMean",
            11,
            vec![ints("axes", &[2])],
        ),
        by_input("reducemean18-axes-input", "ReduceMean", 18, &[-2], vec![]),
        by_attr("reducemean18-noop", "ReduceMean", 18, vec![noop()]),
        by_attr(
            "reducesumsquare13",
            "ReduceSumSquare",
            13,
            vec![ints("axes", &[2]), keep(0)],
        ),
        by_input(
            "reducesumsquare18-with-batch-axis",
            "ReduceSumSquare",
            18,
            &[0, 2],
            vec![],
        ),
        by_input(
            "reducesumsquare18-noop",
            "ReduceSumSquare",
            18,
            &[],
            vec![noop()],
        ),
        by_attr("reducel1-13", "ReduceL1", 13, vec![ints("axes", &[1])]),
        by_input("reducel1-18", "ReduceL1", 18, &[-1], vec![keep(0)]),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Resize

#[test]
fn resize() {
    let x: &[Option<i64>] = &[N, Some(2), Some(3), Some(4)];
    let scaled = |name: &str, opset: i64, scales: &[f32], attrs: Vec<Attr>| {
        // tract reads Resize-11 inputs by position, so the unused roi is given
        let ins: &[&str] = match opset {
            ..11 => &["x", "scales"],
            11 => &["x", "roi", "scales"],
            _ => &["x", "", "scales"],
        };
        case(name, opset)
            .input("x", x)
            .init(
                "roi",
                &tensor(&[8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]),
            )
            .init("scales", &tensor(&[4], scales))
            .node("Resize", ins, &["y"], attrs)
            .output("y")
    };
    let sized = |name: &str, sizes: &[i64], mut attrs: Vec<Attr>| {
        attrs.push(ints("axes", &[2, 3]));
        case(name, 18)
            .input("x", x)
            .init_i64("sizes", sizes)
            .node("Resize", &["x", "", "", "sizes"], &["y"], attrs)
            .output("y")
    };
    let coord = |mode: &'static str| str_attr("coordinate_transformation_mode", mode);
    let nearest = |mode: &'static str| str_attr("nearest_mode", mode);
    run_all(vec![
        scaled("resize10-upsample", 10, &[1.0, 1.0, 2.0, 3.0], vec![]),
        scaled("resize13-half-pixel", 13, &[1.0, 1.0, 2.0, 2.0], vec![]),
        scaled(
            "resize13-half-pixel-down",
            13,
            &[1.0, 1.0, 0.5, 0.75],
            vec![str_attr("mode", "nearest")],
        ),
        scaled(
            "resize13-align-corners",
            13,
            &[1.0, 1.0, 1.5, 1.75],
            vec![coord("align_corners")],
        ),
        // ties at .5: round_prefer_floor (the default) and round_prefer_ceil differ
        scaled(
            "resize13-asymmetric",
            13,
            &[1.0, 1.0, 2.0, 2.0],
            vec![coord("asymmetric")],
        ),
        scaled(
            "resize13-asymmetric-prefer-ceil",
            13,
            &[1.0, 1.0, 2.0, 2.0],
            vec![coord("asymmetric"), nearest("round_prefer_ceil")],
        ),
        scaled(
            "resize13-asymmetric-floor",
            13,
            &[1.0, 1.0, 2.5, 1.5],
            vec![coord("asymmetric"), nearest("floor")],
        ),
        // an output of length 1 (3 * 0.34) reads index 0 here, 1 with half_pixel
        scaled(
            "resize13-pytorch-half-pixel-ceil",
            13,
            &[1.0, 1.0, 0.34, 0.5],
            vec![coord("pytorch_half_pixel"), nearest("ceil")],
        ),
        scaled(
            "resize11-tf-half-pixel",
            11,
            &[1.0, 1.0, 2.0, 1.5],
            vec![coord("tf_half_pixel_for_nn")],
        ),
        // 3 * 0.6 rounds down to 1 output, which the symmetric offset moves to index 1
        scaled(
            "resize19-half-pixel-symmetric",
            19,
            &[1.0, 1.0, 0.6, 1.3],
            vec![coord("half_pixel_symmetric")],
        ),
        sized("resize18-sizes-axes", &[5, 7], vec![]),
        sized(
            "resize18-not-larger",
            &[5, 5],
            vec![str_attr("keep_aspect_ratio_policy", "not_larger")],
        ),
        sized(
            "resize18-not-smaller",
            &[5, 5],
            vec![str_attr("keep_aspect_ratio_policy", "not_smaller")],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Convert-time folding, the batch axis, and refusals

/// Shape arithmetic on x's shape (Shape, Gather, Slice, Concat, Sub, Range, ConstantOfShape,
/// Cast of constants) is computed at convert time and feeds Reshape, Slice, Gather, Mul and
/// Expand on the secret input.
#[test]
fn shape_arithmetic_is_folded() {
    let c = case("folded-shape-arithmetic", 13)
        .input("x", &[N, Some(3), Some(4)])
        .init_i64("minus1", &[-1])
        .init_i64("one", &[1])
        .init_i64("two", &[2])
        .init_i64_shaped("scalar0", &[], &[0])
        .init_i64_shaped("scalar2", &[], &[2])
        .init_i64("axis0", &[0])
        .init_i64("axis1", &[1])
        .init_i64("axis2", &[2])
        .init_i64("three", &[3])
        .init_i64("start0", &[0])
        .init("end_as_float", &tensor(&[1], &[2.0]))
        .scalar("half", 0.5)
        // Reshape x to [-1, width] = [N*3, 4]
        .node("Shape", &["x"], &["shape"], vec![])
        .node("Gather", &["shape", "two"], &["width"], vec![])
        .node(
            "Concat",
            &["minus1", "width"],
            &["target"],
            vec![int("axis", 0)],
        )
        .node("Reshape", &["x", "target"], &["flat"], vec![])
        // Slice x's last axis from 1 to width - 1
        .node("Sub", &["width", "one"], &["end"], vec![])
        .node("Slice", &["x", "one", "end", "axis2"], &["inner"], vec![])
        // a [3, 4] constant of halves from the shape, times x
        .node("Slice", &["shape", "one", "three"], &["dims"], vec![])
        .node(
            "ConstantOfShape",
            &["dims"],
            &["ones"],
            vec![Attr::FloatTensor("value", 1.0)],
        )
        .node("Mul", &["ones", "half"], &["halves"], vec![])
        .node("Mul", &["x", "halves"], &["scaled"], vec![])
        // Gather x's last axis at Range(0, width, 2) = [0, 2]
        .node("Gather", &["shape", "scalar2"], &["width_scalar"], vec![])
        .node(
            "Range",
            &["scalar0", "width_scalar", "scalar2"],
            &["even"],
            vec![],
        )
        .node("Gather", &["x", "even"], &["evens"], vec![int("axis", 2)])
        // a batch-free sum expanded back to x's shape
        .node("ReduceSum", &["x", "axis0"], &["total"], vec![])
        .node("Expand", &["total", "shape"], &["spread"], vec![])
        // Slice axis 1 up to a float constant cast to int64
        .node("Cast", &["end_as_float"], &["end2"], vec![int("to", 7)])
        .node(
            "Slice",
            &["x", "start0", "end2", "axis1"],
            &["head"],
            vec![],
        );
    let c = outputs(c, &["flat", "inner", "scaled", "evens", "spread", "head"]);
    let expected = [
        ("Shape", "folded"),
        ("Gather", "folded"),
        ("Concat", "folded"),
        ("Reshape", "lowered"),
        ("Sub", "folded"),
        ("Slice", "lowered"),
        ("Slice", "folded"),
        ("ConstantOfShape", "folded"),
        ("Mul", "folded"),
        ("Mul", "lowered"),
        ("Gather", "folded"),
        ("Range", "folded"),
        ("Gather", "lowered"),
        ("ReduceSum", "lowered"),
        ("Expand", "lowered"),
        ("Cast", "folded"),
        ("Slice", "lowered"),
    ];
    let got = c.statuses();
    let got: Vec<(&str, &str)> = got.iter().map(|(op, s)| (op.as_str(), *s)).collect();
    assert_eq!(got, expected);
    run_all(vec![c]);
}

/// A tensor of x's whole shape (batch included) filled with one value, as an unrolled Keras RNN
/// builds its zero state, used by Add and Mul: lowered as the value expanded to that shape,
/// for every batch size.
#[test]
fn batch_sized_fill_from_the_input_shape() {
    let c = case("batch-sized-fill", 13)
        .input("x", &[N, Some(3)])
        .node("Shape", &["x"], &["shape"], vec![])
        .node(
            "ConstantOfShape",
            &["shape"],
            &["fill"],
            vec![Attr::FloatTensor("value", 0.75)],
        )
        .node("Add", &["x", "fill"], &["shifted"], vec![])
        .node("Mul", &["fill", "shifted"], &["y"], vec![])
        .output("y");
    run_all(vec![c]);
}

/// Models that move data along the batch axis: refused with the symbolic batch, converted
/// with --fixed-shapes (every dimension as declared, the batch being 3).
fn along_batch_axis(batch: Option<i64>) -> Vec<Case> {
    let x: &[Option<i64>] = &[batch, Some(3), Some(4)];
    let fixed = if batch.is_some() { "-fixed" } else { "" };
    let name = |base: &str| format!("{base}{fixed}");
    vec![
        case(&name("batch-slice"), 13)
            .input("x", x)
            .init_i64("starts", &[1])
            .init_i64("ends", &[END])
            .init_i64("axes", &[0])
            .node("Slice", &["x", "starts", "ends", "axes"], &["y"], vec![])
            .output("y"),
        case(&name("batch-gather"), 13)
            .input("x", x)
            .init_i64("i", &[0, -1])
            .node("Gather", &["x", "i"], &["y"], vec![])
            .output("y"),
        case(&name("batch-pad"), 13)
            .input("x", x)
            .init_i64("pads", &[1, 0, 0, 0, 0, 0])
            .node("Pad", &["x", "pads"], &["y"], vec![])
            .output("y"),
        outputs(
            case(&name("batch-split"), 13)
                .input("x", x)
                .init_i64("split", &[1, 2])
                .node("Split", &["x", "split"], &["a", "b"], vec![]),
            &["a", "b"],
        ),
        case(&name("batch-reducemean"), 13)
            .input("x", x)
            .node("ReduceMean", &["x"], &["y"], vec![ints("axes", &[0, 2])])
            .output("y"),
        case(&name("batch-resize"), 13)
            .input("x", x)
            .init("scales", &tensor(&[3], &[2.0, 1.0, 1.0]))
            .node("Resize", &["x", "", "scales"], &["y"], vec![])
            .output("y"),
        case(&name("batch-gather-elements"), 13)
            .input("x", x)
            .init_i64_shaped("i", &[1, 3, 2], &[0, 3, 1, 1, 2, 0])
            .node("GatherElements", &["x", "i"], &["y"], vec![int("axis", 2)])
            .output("y"),
    ]
}

#[test]
fn batch_axis_needs_fixed_shapes() {
    let fragments: &[&str] = &["along the batch axis", "--fixed-shapes"];
    refuse_all(
        along_batch_axis(None)
            .into_iter()
            .map(|c| (c, fragments))
            .collect(),
    );
    run_all(
        along_batch_axis(Some(3))
            .into_iter()
            .map(Case::fixed_shapes)
            .collect(),
    );
}

#[test]
fn refusals_say_why() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let on_x = |name: &str| case(name, 13).input("x", x);
    let pad = |name: &str, mode: &'static str| {
        on_x(name)
            .init_i64("pads", &[0, 1, 1, 0, 1, 1])
            .node("Pad", &["x", "pads"], &["y"], vec![str_attr("mode", mode)])
            .output("y")
    };
    let resize = |name: &str, attrs: Vec<Attr>| {
        on_x(name)
            .init("scales", &tensor(&[3], &[1.0, 2.0, 2.0]))
            .node("Resize", &["x", "", "scales"], &["y"], attrs)
            .output("y")
    };
    refuse_all(vec![
        (
            pad("refuse-pad-reflect", "reflect"),
            &["Pad mode reflect", "mode=constant"],
        ),
        (
            pad("refuse-pad-edge", "edge"),
            &["Pad mode edge", "mode=constant"],
        ),
        (
            resize("refuse-resize-linear", vec![str_attr("mode", "linear")]),
            &["Resize mode linear", "mode=nearest"],
        ),
        (
            resize(
                "refuse-resize-crop",
                vec![str_attr(
                    "coordinate_transformation_mode",
                    "tf_crop_and_resize",
                )],
            ),
            &["tf_crop_and_resize"],
        ),
        (
            on_x("refuse-where-secret-condition")
                .scalar("zero", 0.0)
                .node("Cast", &["x"], &["c"], vec![int("to", 9)])
                .node("Where", &["c", "x", "zero"], &["y"], vec![])
                .output("y"),
            &["Where with a condition computed from the secret input"],
        ),
        (
            on_x("refuse-cast-to-int")
                .node("Cast", &["x"], &["i"], vec![int("to", 7)])
                .node("Cast", &["i"], &["y"], vec![int("to", 1)])
                .output("y"),
            &["Cast of a tensor computed from the secret input to ONNX type 7 would round it"],
        ),
        (
            on_x("refuse-gather-secret-indices")
                .weight("table", &[10, 2])
                .node("Cast", &["x"], &["i"], vec![int("to", 7)])
                .node("Gather", &["table", "i"], &["y"], vec![])
                .output("y"),
            &["Gather with indices computed from the secret input"],
        ),
    ]);
}
