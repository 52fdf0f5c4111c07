//! A monotone activation moved after the max-pooling that alone reads it
//! (src/lower/reorder.rs).

use crate::common::Attr;
use crate::common::cases::*;

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
        let run = tfe::serve::predict(
            &plan_of(c),
            &inputs,
            tfe::serve::Mode::Mpc(tfe::mpc::Protocol::Aby3),
        )
        .unwrap();
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
