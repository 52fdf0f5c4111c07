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
