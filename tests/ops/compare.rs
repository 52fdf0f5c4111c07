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

/// One unit of the fixed point at 16 fractional bits. Inputs are multiples of 2^-23 in
/// [-1, 1], so x + k units is exact in f32 too, and tract compares the same numbers.
const UNIT: f32 = 1.0 / 65536.0;

/// Each comparison of x with itself, with x + 1 unit (both ways) and with x - 3 units: a
/// strict form that confused > with >= (or an Equal that tested |a - b| < 1 unit) fails.
#[test]
fn comparisons_are_exact_one_unit_apart() {
    let cases = ["Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal"].map(|op| {
        let pairs = [("x", "x"), ("x", "up"), ("up", "x"), ("x", "down")];
        let mut c = case(&format!("{op}-units"), 13)
            .input("x", &[N, Some(3), Some(4)])
            .scalar("unit", UNIT)
            .scalar("three_units", 3.0 * UNIT)
            .node("Add", &["x", "unit"], &["up"], vec![])
            .node("Sub", &["x", "three_units"], &["down"], vec![]);
        for (i, (a, b)) in pairs.iter().enumerate() {
            let (bit, out) = (format!("b{i}"), format!("y{i}"));
            c = c
                .node(op, &[a, b], &[&bit], vec![])
                .node("Cast", &[&bit], &[&out], vec![int("to", 1)])
                .output(&out);
        }
        c
    });
    run_all(cases.into());
}

/// Numpy broadcasting with a constant on either side, and the opset-12 forms.
#[test]
fn comparisons_broadcast() {
    let compare = |op: &str, opset: i64, constant_first: bool| {
        let c = case(&format!("{op}-{opset}-{constant_first}"), opset)
            .input("x", &[N, Some(3), Some(4)])
            .weight("w", &[3, 1]);
        let inputs = if constant_first {
            ["w", "x"]
        } else {
            ["x", "w"]
        };
        c.node(op, &inputs, &["b"], vec![])
            .node("Cast", &["b"], &["y"], vec![int("to", 1)])
            .output("y")
    };
    run_all(vec![
        compare("Greater", 13, false),
        compare("Greater", 9, true),
        compare("Less", 13, true),
        compare("GreaterOrEqual", 12, false),
        compare("LessOrEqual", 16, true),
        compare("Equal", 13, false),
    ]);
}

/// Equal on integer-valued tensors: ArgMax indices against each other and against
/// constants one apart, and Equal of booleans.
#[test]
fn equal_of_integers_and_booleans() {
    let argmaxes = |name: &str| {
        case(name, 13)
            .input("x", &[N, Some(6), Some(5)])
            .input("z", &[N, Some(6), Some(5)])
            .node(
                "ArgMax",
                &["x"],
                &["a"],
                vec![int("axis", 1), int("keepdims", 0)],
            )
            .node(
                "ArgMax",
                &["z"],
                &["b"],
                vec![int("axis", 1), int("keepdims", 0)],
            )
    };
    let cast_out = |c: Case, bit: &str, out: &str| {
        c.node("Cast", &[bit], &[out], vec![int("to", 1)])
            .output(out)
    };
    let indices = argmaxes("equal-indices")
        .init_i64("k", &[0, 1, 2, 3, 4])
        .node("Equal", &["a", "b"], &["ab"], vec![])
        .node("Equal", &["a", "k"], &["ak"], vec![])
        .node("Greater", &["a", "k"], &["gt"], vec![]);
    let indices = cast_out(
        cast_out(cast_out(indices, "ab", "y0"), "ak", "y1"),
        "gt",
        "y2",
    );
    let bits = |name: &str| {
        case(name, 13)
            .input("x", &[N, Some(3), Some(4)])
            .input("z", &[N, Some(3), Some(4)])
            .scalar("zero", 0.0)
            .node("Greater", &["x", "zero"], &["a"], vec![])
            .node("Greater", &["z", "zero"], &["b"], vec![])
    };
    // tract has no Equal on booleans: it runs not(a xor b) instead
    let reference = bits("equal-booleans-reference")
        .node("Xor", &["a", "b"], &["d"], vec![])
        .node("Not", &["d"], &["e"], vec![]);
    let booleans = bits("equal-booleans").node("Equal", &["a", "b"], &["e"], vec![]);
    run_all(vec![
        indices,
        cast_out(booleans, "e", "y").reference(cast_out(reference, "e", "y")),
    ]);
}

/// Rounds of one gate at the default width ([`tfe::mpc::cost::Cost::gate`]).
const GATE: u64 = 4;

/// Every comparison is one gate: the 4 rounds of one comparison at the default width,
/// Equal's two comparisons included; `Not` is local.
#[test]
fn a_comparison_costs_one_gate() {
    let rounds = |op: &str, then_not: bool| {
        let mut c = case(&format!("{op}-rounds"), 13)
            .input("x", &[N, Some(3), Some(4)])
            .weight("w", &[4])
            .node(op, &["x", "w"], &["b"], vec![]);
        let bit = if then_not {
            c = c.node("Not", &["b"], &["nb"], vec![]);
            "nb"
        } else {
            "b"
        };
        let c = c
            .node("Cast", &[bit], &["y"], vec![int("to", 1)])
            .output("y");
        let plan = tfe::lower::convert(&c.onnx.save(&c.name), c.options())
            .unwrap()
            .plan;
        tfe::exec::estimate(&plan, 3, tfe::mpc::Protocol::Aby3)
            .unwrap()
            .total()
            .rounds
    };
    for op in ["Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal"] {
        assert_eq!(rounds(op, false), GATE, "{op}");
        assert_eq!(rounds(op, true), GATE, "Not({op})");
    }
}

/// Comparisons of one tensor with constants share one gate: a k-NN's class votes (Equal of
/// integer labels with each class), thresholds on either side, and a constant row that
/// broadcasts.
#[test]
fn comparisons_of_one_tensor_share_a_gate() {
    let votes = |name: &str| {
        let mut c = case(name, 13)
            .input("x", &[N, Some(6), Some(3)])
            .node(
                "ArgMax",
                &["x"],
                &["labels"],
                vec![int("axis", 1), int("keepdims", 0)],
            )
            .init_i64_shaped("row", &[1, 3], &[0, 4, 5])
            .init_i64_shaped("cut", &[], &[2]);
        for k in 0..4 {
            let (class, vote, out) = (format!("k{k}"), format!("v{k}"), format!("y{k}"));
            c = c
                .init_i64_shaped(&class, &[], &[k])
                .node("Equal", &["labels", &class], &[&vote], vec![])
                .node("Cast", &[&vote], &[&out], vec![int("to", 1)])
                .output(&out);
        }
        c.node("Greater", &["labels", "cut"], &["g"], vec![])
            .node("LessOrEqual", &["cut", "labels"], &["le"], vec![])
            .node("Equal", &["row", "labels"], &["same"], vec![])
            .node("Cast", &["g"], &["y4"], vec![int("to", 1)])
            .node("Cast", &["le"], &["y5"], vec![int("to", 1)])
            .node("Cast", &["same"], &["y6"], vec![int("to", 1)])
    };
    let c = ["y4", "y5", "y6"]
        .iter()
        .fold(votes("grouped-comparisons"), |c, y| c.output(y));
    let plan = tfe::lower::convert(&c.onnx.save(&c.name), c.options())
        .unwrap()
        .plan;
    // ArgMax's tree (3 levels of 6 -> 3 -> 2 -> 1) and then one gate for all seven
    let argmax = tfe::exec::estimate(&plan, 3, tfe::mpc::Protocol::Aby3)
        .unwrap()
        .total()
        .rounds
        - GATE;
    assert_eq!(argmax, 3 * GATE, "rounds beyond the comparisons' one gate");
    assert_eq!(
        c.statuses().iter().filter(|(_, s)| *s == "folded").count(),
        6,
        "six comparisons lowered with the first"
    );
    run_all(vec![c]);
}
