//! Secret booleans and selections (src/lower/logic.rs): Not, And, Or, Xor on comparison
//! results, Where by a constant or a secret condition, IsNaN and IsInf.

use crate::common::cases::*;

/// x and z [N, 3, 4], with the bits a = [x > 0] and b = [z < 0.25] computed from them.
fn with_bits(name: &str) -> Case {
    case(name, 13)
        .input("x", &[N, Some(3), Some(4)])
        .input("z", &[N, Some(3), Some(4)])
        .scalar("zero", 0.0)
        .scalar("quarter", 0.25)
        .node("Greater", &["x", "zero"], &["a"], vec![])
        .node("Less", &["z", "quarter"], &["b"], vec![])
}

/// `bit` cast to float as the graph output `out`.
fn float_output(c: Case, bit: &str, out: &str) -> Case {
    c.node("Cast", &[bit], &[out], vec![int("to", 1)])
        .output(out)
}

#[test]
fn logic_on_secret_bits() {
    let logic = |op: &str| {
        let c = with_bits(&format!("{op}-secret")).node(op, &["a", "b"], &["r"], vec![]);
        float_output(c, "r", "y")
    };
    // a constant operand on either side is a public mask
    let with_constant = |op: &str| {
        let c = with_bits(&format!("{op}-constant"))
            .init_bool("m", &[4], &[true, false, true, false])
            .init_bool("n", &[3, 1], &[false, true, true])
            .node(op, &["a", "m"], &["r"], vec![])
            .node(op, &["n", "b"], &["s"], vec![]);
        float_output(float_output(c, "r", "y"), "s", "y2")
    };
    let not = with_bits("not").node("Not", &["a"], &["r"], vec![]);
    // bits of different shapes broadcast
    let broadcast = case("and-broadcast", 13)
        .input("x", &[N, Some(3), Some(4)])
        .input("z", &[N, Some(1), Some(4)])
        .scalar("zero", 0.0)
        .node("Greater", &["x", "zero"], &["a"], vec![])
        .node("LessOrEqual", &["z", "zero"], &["b"], vec![])
        .node("Xor", &["a", "b"], &["r"], vec![]);
    run_all(vec![
        logic("And"),
        logic("Or"),
        logic("Xor"),
        with_constant("And"),
        with_constant("Or"),
        with_constant("Xor"),
        float_output(not, "r", "y"),
        float_output(broadcast, "r", "y"),
    ]);
}

#[test]
fn cast_to_and_from_bool() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    run_all(vec![
        // x != 0, with exact zeros from the Relu
        float_output(
            case("cast-to-bool", 13)
                .input("x", x)
                .node("Relu", &["x"], &["r"], vec![])
                .node("Cast", &["r"], &["b"], vec![int("to", 9)]),
            "b",
            "y",
        ),
        // bool -> int64 -> float, and bool -> bool
        case("cast-bool-to-int", 13)
            .input("x", x)
            .scalar("zero", 0.0)
            .node("Greater", &["x", "zero"], &["b"], vec![])
            .node("Cast", &["b"], &["same"], vec![int("to", 9)])
            .node("Cast", &["same"], &["i"], vec![int("to", 7)])
            .node("Cast", &["i"], &["y"], vec![int("to", 1)])
            .output("y"),
        float_output(
            case("castlike-bool", 15)
                .input("x", x)
                .init_bool("like", &[1], &[true])
                .node("Relu", &["x"], &["r"], vec![])
                .node("CastLike", &["r", "like"], &["b"], vec![]),
            "b",
            "y",
        ),
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
fn where_secret_condition() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    run_all(vec![
        // max(x, z) by a comparison and a selection
        case("where-max", 13)
            .input("x", x)
            .input("z", x)
            .node("Greater", &["x", "z"], &["c"], vec![])
            .node("Where", &["c", "x", "z"], &["y"], vec![])
            .output("y"),
        // x where x != 0, else a constant
        case("where-cast-condition", 13)
            .input("x", x)
            .scalar("k", 0.75)
            .node("Relu", &["x"], &["r"], vec![])
            .node("Cast", &["r"], &["c"], vec![int("to", 9)])
            .node("Where", &["c", "x", "k"], &["y"], vec![])
            .output("y"),
        // a secret [S] condition over [N, H, S, S] branches, either one a constant
        case("where-broadcast-mask", 13)
            .input("m", &[N, Some(5)])
            .input("x", &[N, Some(2), Some(5), Some(5)])
            .init_i64("batch_axis", &[0])
            .scalar("zero", 0.0)
            .scalar("k", -0.5)
            .weight("w", &[5])
            .node(
                "ReduceSum",
                &["m", "batch_axis"],
                &["s"],
                vec![int("keepdims", 0)],
            )
            .node("Greater", &["s", "zero"], &["c"], vec![])
            .node("Where", &["c", "x", "k"], &["y"], vec![])
            .node("Where", &["c", "w", "x"], &["y2"], vec![])
            .output("y")
            .output("y2"),
    ]);
}

/// IsNaN and IsInf are false for fixed-point values: the guard exporters put after Softmax
/// costs nothing, and as outputs they are zeros.
#[test]
fn isnan_and_isinf_are_false() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let guard = case("isnan-guard", 13)
        .input("x", x)
        .scalar("zero", 0.0)
        .node("Softmax", &["x"], &["p"], vec![])
        .node("IsNaN", &["p"], &["nan"], vec![])
        .node("Where", &["nan", "zero", "p"], &["y"], vec![])
        .output("y");
    let plan = tfe::lower::convert(&guard.onnx.save(&guard.name), guard.options())
        .unwrap()
        .plan;
    let guard_steps: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.node.starts_with("isnan") || s.node.starts_with("where"))
        .collect();
    assert!(
        guard_steps.is_empty(),
        "the guard took steps: {guard_steps:?}"
    );
    let values = case("isnan-isinf-values", 20)
        .input("x", x)
        .node("IsNaN", &["x"], &["nan"], vec![])
        .node("IsInf", &["x"], &["inf"], vec![])
        .node("Not", &["nan"], &["finite"], vec![])
        .node("And", &["finite", "inf"], &["never"], vec![])
        .node("Or", &["finite", "inf"], &["always"], vec![]);
    let values = ["nan", "inf", "finite", "never", "always"]
        .iter()
        .enumerate()
        .fold(values, |c, (i, bit)| float_output(c, bit, &format!("y{i}")));
    run_all(vec![guard, values]);
}
