//! Gemm, MatMul, Conv and ConvTranspose (src/lower/linear.rs), with constant and secret
//! operands: a secret times a secret as in attention, grouped, strided, dilated and padded
//! windows.

use crate::common::Attr;
use crate::common::cases::*;

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

/// Scaled dot-product attention on one head: softmax(Q K^T / sqrt d) V, with secret Q, K, V.
#[test]
fn attention() {
    run_all(vec![
        case("attention", 13)
            .input("x", &[N, Some(5), Some(8)])
            .weight("wq", &[8, 8])
            .weight("wk", &[8, 8])
            .weight("wv", &[8, 8])
            .scalar("scale", 1.0 / 8f32.sqrt())
            .node("MatMul", &["x", "wq"], &["q"], vec![])
            .node("MatMul", &["x", "wk"], &["k"], vec![])
            .node("MatMul", &["x", "wv"], &["v"], vec![])
            .node("Transpose", &["k"], &["kt"], vec![ints("perm", &[0, 2, 1])])
            .node("MatMul", &["q", "kt"], &["s"], vec![])
            .node("Mul", &["s", "scale"], &["ss"], vec![])
            .node("Softmax", &["ss"], &["p"], vec![int("axis", -1)])
            .node("MatMul", &["p", "v"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn conv_transpose() {
    let ct = |name: &str,
              c: i64,
              m: i64,
              group: i64,
              spatial: &[i64],
              kernel: &[i64],
              attrs: Vec<Attr>,
              bias: bool| {
        let mut dims = vec![N, Some(c)];
        dims.extend(spatial.iter().map(|&s| Some(s)));
        let mut w_shape = vec![c as usize, (m / group) as usize];
        w_shape.extend(kernel.iter().map(|&k| k as usize));
        let mut inputs = vec!["x", "w"];
        let mut attrs = attrs;
        attrs.push(int("group", group));
        let mut case = case(&format!("convtranspose-{name}"), 13)
            .input("x", &dims)
            .weight("w", &w_shape);
        if bias {
            case = case.weight("b", &[m as usize]);
            inputs.push("b");
        }
        case.node("ConvTranspose", &inputs, &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        ct("basic", 2, 3, 1, &[4, 4], &[3, 3], vec![], true),
        ct(
            "stride2",
            2,
            3,
            1,
            &[3, 4],
            &[3, 3],
            vec![ints("strides", &[2, 2])],
            false,
        ),
        ct(
            "pads",
            2,
            2,
            1,
            &[4, 4],
            &[3, 3],
            vec![ints("strides", &[2, 2]), ints("pads", &[1, 0, 1, 2])],
            true,
        ),
        ct(
            "output-padding",
            2,
            2,
            1,
            &[3, 3],
            &[3, 3],
            vec![ints("strides", &[2, 2]), ints("output_padding", &[1, 0])],
            false,
        ),
        ct(
            "dilation",
            2,
            2,
            1,
            &[4, 4],
            &[2, 2],
            vec![ints("dilations", &[2, 2])],
            false,
        ),
        ct(
            "groups",
            4,
            4,
            2,
            &[3, 3],
            &[2, 2],
            vec![ints("strides", &[2, 1])],
            true,
        ),
        // output_shape and auto_pad variants: tract cannot run them, see tests/ort_cases.rs.
        ct(
            "1d",
            3,
            2,
            1,
            &[5],
            &[3],
            vec![ints("strides", &[2]), ints("pads", &[1, 1])],
            true,
        ),
    ]);
}
