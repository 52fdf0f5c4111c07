//! Scan against tract, which runs it iteration by iteration: bodies whose states pass
//! through unchanged, as skl2onnx writes k-NN distances (squared Euclidean with
//! ReduceSumSquare, Minkowski with Abs, Pow and ReduceSum), run once over all iterations.
//! The cases cover the attribute forms of opsets 11, 13 and 18 (axes as attribute or input,
//! Unsqueeze's too), scan_input_axes and scan_output_axes (also negative), reversed
//! directions on either side, a scan along the batch axis, two scanned inputs of different
//! ranks, and a body reading an outer tensor. A state that changes across iterations, and a
//! body op that cannot run over the iterations at once, are refused.

use super::*;
use common::OnnxBuilder;

/// Training points of a k-NN model: six rows of four features.
const POINTS: [usize; 2] = [6, 4];

/// A Scan node over `inputs` (states, then `scanned` scanned inputs) with `body` and
/// further attributes.
fn scan_node(
    case: Case,
    inputs: &[&str],
    outputs: &[&str],
    body: &OnnxBuilder,
    scanned: i64,
    mut attrs: Vec<Attr>,
) -> Case {
    attrs.push(Attr::Graph("body", body.to_graph("body")));
    attrs.push(int("num_scan_inputs", scanned));
    case.node("Scan", inputs, outputs, attrs)
}

/// skl2onnx's cdist body: the state (the queries) passes through, each iteration's output
/// is the squared distance of every query to one scanned point. `axes_as_input` follows
/// ReduceSumSquare's opset-18 form.
fn distance_body(opset: i64, features: i64) -> OnnxBuilder {
    let mut body = OnnxBuilder::new(opset);
    body.body_input("next_in", &[N, Some(features)])
        .body_input("next", &[Some(features)])
        .node("Identity", &["next_in"], &["next_out"], vec![])
        .node("Sub", &["next_in", "next"], &["diff"], vec![]);
    if opset >= 18 {
        body.init_i64("axes", &[1]).node(
            "ReduceSumSquare",
            &["diff", "axes"],
            &["reduced"],
            vec![int("keepdims", 0)],
        );
    } else {
        body.node(
            "ReduceSumSquare",
            &["diff"],
            &["reduced"],
            vec![ints("axes", &[-1]), int("keepdims", 0)],
        );
    }
    body.node("Identity", &["reduced"], &["scan_out"], vec![])
        .body_output("next_out", &[N, Some(features)])
        .body_output("scan_out", &[N]);
    body
}

/// The queries' distances to the training points by `body`, [N, 6], as skl2onnx's k-NN
/// computes them: Scan, then Transpose; the final state (the queries) is an output too.
fn distances(name: &str, opset: i64, body: &OnnxBuilder) -> Case {
    let case = case(name, opset)
        .input("x", &[N, Some(4)])
        .weight("points", &POINTS);
    scan_node(
        case,
        &["x", "points"],
        &["x_out", "stacked"],
        body,
        1,
        vec![],
    )
    .node(
        "Transpose",
        &["stacked"],
        &["d"],
        vec![ints("perm", &[1, 0])],
    )
    .output("d")
    .output("x_out")
}

/// skl2onnx's Minkowski body (p = 3): Sub, Abs, Pow by a constant, ReduceSum (axes input,
/// opset 13).
fn minkowski_body() -> OnnxBuilder {
    let mut body = OnnxBuilder::new(13);
    body.body_input("next_in", &[N, Some(4)])
        .body_input("next", &[Some(4)])
        .init("p", &tensor(&[1], &[3.0]))
        .init_i64("axes", &[1])
        .node("Identity", &["next_in"], &["next_out"], vec![])
        .node("Sub", &["next_in", "next"], &["diff"], vec![])
        .node("Abs", &["diff"], &["magnitude"], vec![])
        .node("Pow", &["magnitude", "p"], &["powered"], vec![])
        .node(
            "ReduceSum",
            &["powered", "axes"],
            &["scan_out"],
            vec![int("keepdims", 0)],
        )
        .body_output("next_out", &[N, Some(4)])
        .body_output("scan_out", &[N]);
    body
}

/// The training points stored feature-major ([4, 6]) and scanned along axis `input_axis`,
/// the distances stacked along `output_axis` ([N, 6] with no Transpose after).
fn scan_axes(name: &str, opset: i64, input_axis: i64, output_axis: i64) -> Case {
    let case = case(name, opset)
        .input("x", &[N, Some(4)])
        .weight("points", &[4, 6]);
    let attrs = vec![
        ints("scan_input_axes", &[input_axis]),
        ints("scan_output_axes", &[output_axis]),
    ];
    scan_node(
        case,
        &["x", "points"],
        &["x_out", "d"],
        &distance_body(opset, 4),
        1,
        attrs,
    )
    .output("d")
}

/// Two scan outputs, the distances and the dot products, with the points scanned in
/// reverse: one output stacked forward (so in reverse point order), one in reverse (back
/// in point order).
fn reversed(name: &str) -> Case {
    let mut body = distance_body(13, 4);
    body.init_i64("last", &[-1])
        .node("Mul", &["next_in", "next"], &["products"], vec![])
        .node(
            "ReduceSum",
            &["products", "last"],
            &["dot"],
            vec![int("keepdims", 0)],
        )
        .body_output("dot", &[N]);
    let case = case(name, 13)
        .input("x", &[N, Some(4)])
        .weight("points", &POINTS);
    let attrs = vec![
        ints("scan_input_directions", &[1]),
        ints("scan_output_directions", &[0, 1]),
        ints("scan_output_axes", &[1, -1]),
    ];
    scan_node(
        case,
        &["x", "points"],
        &["x_out", "d", "dot"],
        &body,
        1,
        attrs,
    )
    .output("d")
    .output("dot")
}

/// Each query row scanned (the batch axis is the scan axis) against a constant state
/// `w`: relu(sum(x_t w)), every body axis reduced (ReduceSum with no axes, keepdims).
fn over_the_batch(name: &str) -> Case {
    let mut body = OnnxBuilder::new(13);
    body.body_input("w_in", &[Some(4)])
        .body_input("row", &[Some(4)])
        .node("Mul", &["row", "w_in"], &["products"], vec![])
        .node(
            "ReduceSum",
            &["products"],
            &["total"],
            vec![int("keepdims", 1)],
        )
        .node("Relu", &["total"], &["scan_out"], vec![])
        .node("Identity", &["w_in"], &["w_out"], vec![])
        .body_output("w_out", &[Some(4)])
        .body_output("scan_out", &[Some(1)]);
    let case = case(name, 13).input("x", &[N, Some(4)]).weight("w", &[4]);
    scan_node(case, &["w", "x"], &["w_final", "y"], &body, 1, vec![]).output("y")
}

/// Two scanned inputs of different ranks, x [N, 5, 3] along axis 1 and w [5, 3] along
/// axis 0, and an outer tensor `b` the body reads directly: sum(x_t w_t) + b per step,
/// stacked along axis 1.
fn two_scanned(name: &str) -> Case {
    let mut body = OnnxBuilder::new(13);
    body.body_input("x_t", &[N, Some(3)])
        .body_input("w_t", &[Some(3)])
        .init_i64("last", &[-1])
        .node("Mul", &["x_t", "w_t"], &["products"], vec![])
        .node(
            "ReduceSum",
            &["products", "last"],
            &["total"],
            vec![int("keepdims", 1)],
        )
        .node("Add", &["total", "b"], &["scan_out"], vec![])
        .body_output("scan_out", &[N, Some(1)]);
    let case = case(name, 13)
        .input("x", &[N, Some(5), Some(3)])
        .weight("w", &[5, 3])
        .weight("b", &[1]);
    let attrs = vec![
        ints("scan_input_axes", &[1, 0]),
        ints("scan_output_axes", &[1]),
    ];
    scan_node(case, &["x", "w"], &["y"], &body, 2, attrs).output("y")
}

#[test]
fn scan_bodies_run_over_all_iterations_at_once() {
    run_all(vec![
        distances("scan-distances-opset18", 18, &distance_body(18, 4)),
        distances("scan-distances-opset11", 11, &distance_body(11, 4)),
        distances("scan-minkowski", 13, &minkowski_body()),
        scan_axes("scan-axes", 11, 1, 1),
        scan_axes("scan-negative-axes", 18, -1, -1),
        reversed("scan-reversed"),
        over_the_batch("scan-over-the-batch"),
        two_scanned("scan-two-scanned-inputs"),
    ]);
}

#[test]
fn scans_that_loop_or_hold_other_ops_are_refused() {
    let mut running_sum = OnnxBuilder::new(13);
    running_sum
        .body_input("sum_in", &[N, Some(4)])
        .body_input("next", &[Some(4)])
        .node("Add", &["sum_in", "next"], &["sum_out"], vec![])
        .node("Identity", &["sum_out"], &["scan_out"], vec![])
        .body_output("sum_out", &[N, Some(4)])
        .body_output("scan_out", &[N, Some(4)]);
    let mut matmul = OnnxBuilder::new(13);
    matmul
        .body_input("next_in", &[N, Some(4)])
        .body_input("next", &[Some(4), Some(1)])
        .node("Identity", &["next_in"], &["next_out"], vec![])
        .node("MatMul", &["next_in", "next"], &["scan_out"], vec![])
        .body_output("next_out", &[N, Some(4)])
        .body_output("scan_out", &[N, Some(1)]);
    let with_body = |name: &str, body: &OnnxBuilder, points: &[usize]| {
        let case = case(name, 13)
            .input("x", &[N, Some(4)])
            .weight("points", points);
        scan_node(case, &["x", "points"], &["total", "steps"], body, 1, vec![])
            .output("total")
            .output("steps")
    };
    refuse_all(vec![
        (
            with_body("scan-running-sum", &running_sum, &POINTS),
            &[
                "Scan",
                "state 0 (sum_in) changes from one iteration to the next",
            ],
        ),
        (
            with_body("scan-matmul-body", &matmul, &[6, 4, 1]),
            &["Scan", "(MatMul) cannot run over all iterations at once"],
        ),
    ]);
}
