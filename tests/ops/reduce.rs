//! ReduceSum, ReduceMean and ReduceSumSquare (src/lower/reduce.rs), with axes as an attribute
//! or an input; ReduceSumSquare over trailing axes (a row times itself) and others.

use crate::common::Attr;
use crate::common::cases::*;

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
            "reducesumsquare18-trailing-axes",
            "ReduceSumSquare",
            18,
            &[-2, -1],
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
