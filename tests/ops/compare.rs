//! Max, Min, ReduceMax, ReduceMin, ArgMax and ArgMin by exact comparisons
//! (src/lower/compare.rs).

use crate::common::cases::*;

#[test]
fn max_min_and_reductions() {
    let reduce = |op: &str, opset: i64, axes: Option<&[i64]>, keep: i64| {
        let name = format!("{op}-{opset}-{axes:?}-{keep}");
        let c = case(&name, opset).input("x", &[N, Some(3), Some(4), Some(5)]);
        let c = match (axes, opset >= 18) {
            (Some(a), true) => {
                c.init_i64("axes", a)
                    .node(op, &["x", "axes"], &["y"], vec![int("keepdims", keep)])
            }
            (Some(a), false) => c.node(
                op,
                &["x"],
                &["y"],
                vec![ints("axes", a), int("keepdims", keep)],
            ),
            (None, _) => c.node(op, &["x"], &["y"], vec![int("keepdims", keep)]),
        };
        c.output("y")
    };
    run_all(vec![
        case("max3", 13)
            .input("a", &[N, Some(3), Some(4)])
            .input("b", &[N, Some(3), Some(4)])
            .weight("c", &[4])
            .node("Max", &["a", "b", "c"], &["y"], vec![])
            .output("y"),
        case("min2", 13)
            .input("a", &[N, Some(3), Some(4)])
            .weight("c", &[3, 1])
            .node("Min", &["a", "c"], &["y"], vec![])
            .output("y"),
        reduce("ReduceMax", 13, Some(&[-1]), 1),
        reduce("ReduceMax", 13, Some(&[1, 3]), 0),
        reduce("ReduceMin", 13, Some(&[2]), 0),
        reduce("ReduceMax", 13, None, 1),
        reduce("ReduceMax", 18, Some(&[1, -1]), 1),
        reduce("ReduceMin", 18, Some(&[0]), 0),
    ]);
}

#[test]
fn arg_max_and_arg_min() {
    let arg = |op: &str, axis: i64, keep: i64, last: i64| {
        // Relu makes ties (zeros), so select_last_index matters.
        case(&format!("{op}-{axis}-{keep}-{last}"), 13)
            .input("x", &[N, Some(6), Some(5)])
            .node("Relu", &["x"], &["r"], vec![])
            .node(
                op,
                &["r"],
                &["y"],
                vec![
                    int("axis", axis),
                    int("keepdims", keep),
                    int("select_last_index", last),
                ],
            )
            .output("y")
    };
    run_all(vec![
        arg("ArgMax", 1, 1, 0),
        arg("ArgMax", -1, 0, 0),
        arg("ArgMax", 1, 1, 1),
        arg("ArgMin", 2, 0, 0),
        arg("ArgMin", 1, 1, 1),
        arg("ArgMax", 0, 1, 0),
    ]);
}
