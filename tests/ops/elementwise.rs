//! Add, Sub, Mul, Neg, Sum and Mean (src/lower/elementwise.rs), in every broadcasting
//! variant, secret or constant operands either side; Div by constants alongside.

use super::tensor;
use crate::common::cases::*;

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
