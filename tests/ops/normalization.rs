//! BatchNormalization (folded into the Conv before it, or left as a step),
//! LayerNormalization and InstanceNormalization (src/lower/normalization.rs).

use crate::common::Attr;
use crate::common::cases::*;

const BN_ARGS: &[&str] = &["bn_scale", "bn_bias", "bn_mean", "bn_var"];

pub(super) fn bn_inputs(x: &str) -> Vec<&str> {
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

#[test]
fn normalizations() {
    run_all(vec![
        case("layernorm-last", 17)
            .input("x", &[N, Some(4), Some(8)])
            .weight("g", &[8])
            .weight("b", &[8])
            .node("LayerNormalization", &["x", "g", "b"], &["y"], vec![])
            .output("y"),
        case("layernorm-two-axes-no-bias", 17)
            .input("x", &[N, Some(4), Some(8)])
            .input_scale(3.0)
            .weight("g", &[4, 8])
            .node(
                "LayerNormalization",
                &["x", "g"],
                &["y"],
                vec![int("axis", -2), float("epsilon", 1e-3)],
            )
            .output("y"),
        case("instancenorm", 13)
            .input("x", &[N, Some(3), Some(4), Some(4)])
            .weight("s", &[3])
            .weight("b", &[3])
            .node("InstanceNormalization", &["x", "s", "b"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn rms_normalization() {
    let rms = |name: &str, attrs: Vec<Attr>, scale: &[usize]| {
        case(name, 23)
            .input("x", &[N, Some(4), Some(8)])
            .input_scale(3.0)
            .weight("g", scale)
            .node("RMSNormalization", &["x", "g"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        rms("rmsnorm-last", vec![], &[8]),
        // over two axes, with an epsilon large enough to matter
        rms(
            "rmsnorm-two-axes",
            vec![int("axis", -2), float("epsilon", 0.5)],
            &[4, 8],
        ),
        rms(
            "rmsnorm-axis-1-stash",
            vec![int("axis", 1), int("stash_type", 1)],
            &[4, 8],
        ),
    ]);
}

/// LLaMA's RMSNorm as torch.onnx writes it, x * 1/sqrt(mean(x^2) + eps) * weight, in its
/// variants (Pow or Mul for the square, Div(1, .) or Reciprocal, or Div(x, sqrt)), with x
/// also read elsewhere (the residual connection).
fn decomposed_rms(name: &str, square: &str, inverse: &str) -> Case {
    let c = case(name, 18)
        .input("x", &[N, Some(4), Some(8)])
        .input_scale(3.0)
        .scalar("two", 2.0)
        .scalar("one", 1.0)
        .scalar("eps", 1e-2)
        .init_i64("axes", &[-1])
        .weight("g", &[8]);
    let c = match square {
        "Pow" => c.node("Pow", &["x", "two"], &["sq"], vec![]),
        _ => c.node("Mul", &["x", "x"], &["sq"], vec![]),
    };
    let c = c
        .node(
            "ReduceMean",
            &["sq", "axes"],
            &["ms"],
            vec![int("keepdims", 1)],
        )
        .node("Add", &["ms", "eps"], &["shifted"], vec![])
        .node("Sqrt", &["shifted"], &["root"], vec![]);
    let c = match inverse {
        "Div" => c.node("Div", &["one", "root"], &["inv"], vec![]).node(
            "Mul",
            &["x", "inv"],
            &["normed"],
            vec![],
        ),
        "Reciprocal" => c.node("Reciprocal", &["root"], &["inv"], vec![]).node(
            "Mul",
            &["inv", "x"],
            &["normed"],
            vec![],
        ),
        _ => c.node("Div", &["x", "root"], &["normed"], vec![]),
    };
    c.node("Mul", &["g", "normed"], &["scaled"], vec![])
        .node("Add", &["scaled", "x"], &["y"], vec![])
        .output("y")
}

#[test]
fn decomposed_rms_normalization_folds_into_one_rsqrt() {
    let variants = [("Pow", "Div"), ("Mul", "Reciprocal"), ("Pow", "DivByRoot")];
    let cases: Vec<Case> = variants
        .iter()
        .map(|(square, inverse)| {
            decomposed_rms(&format!("rms-{square}-{inverse}"), square, inverse)
        })
        .collect();
    for c in &cases {
        let statuses = c.statuses();
        let folded = statuses.iter().filter(|(_, s)| *s == "folded").count();
        let expected = if c.name.ends_with("DivByRoot") { 4 } else { 5 };
        assert_eq!(folded, expected, "{}: {statuses:?}", c.name);
    }
    run_all(cases);
}

/// An intermediate read by another node (here the mean square, also an output) keeps the
/// op-by-op lowering, which must still be right.
#[test]
fn decomposed_rms_with_a_shared_intermediate_is_lowered_op_by_op() {
    let c = decomposed_rms("rms-shared", "Pow", "Div").output("ms");
    assert!(c.statuses().iter().all(|(_, s)| *s != "folded"));
    run_all(vec![c.relative_tolerance(1e-3)]);
}
