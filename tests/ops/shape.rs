//! Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Identity and Dropout
//! (src/lower/shape.rs): ops that only reshape or reorder the elements.

use crate::common::Attr;
use crate::common::cases::*;

#[test]
fn flatten() {
    let flat = |name: &str, attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", &[N, Some(3), Some(2), Some(2)])
            .node("Flatten", &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        flat("flatten-default", vec![]),
        flat("flatten-axis1", vec![int("axis", 1)]),
        flat("flatten-axis2", vec![int("axis", 2)]),
        flat("flatten-axis-neg1", vec![int("axis", -1)]),
        flat("flatten-axis0", vec![int("axis", 0)]),
        // the layout matters downstream: a Gemm over the flattened features
        case("flatten-then-gemm", 13)
            .input("x", &[N, Some(2), Some(3), Some(2)])
            .weight("b", &[12, 3])
            .node(
                "Transpose",
                &["x"],
                &["t"],
                vec![ints("perm", &[0, 2, 3, 1])],
            )
            .node("Flatten", &["t"], &["f"], vec![])
            .node("Gemm", &["f", "b"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn reshape() {
    let rs = |name: &str, opset: i64, shape: &[i64], attrs: Vec<Attr>| {
        case(name, opset)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", shape)
            .node("Reshape", &["x", "shape"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        rs("reshape-0-minus1", 13, &[0, -1], vec![]),
        rs("reshape-0-2-minus1", 13, &[0, 2, -1], vec![]),
        rs("reshape-0-4-3", 13, &[0, 4, 3], vec![]),
        rs("reshape-minus1-4", 13, &[-1, 4], vec![]),
        rs("reshape-minus1-2", 13, &[-1, 2], vec![]),
        rs("reshape-flat", 13, &[-1], vec![]),
        rs(
            "reshape-opset18-allowzero0",
            18,
            &[0, 6, -1],
            vec![int("allowzero", 0)],
        ),
        // the reshaped layout feeds a product, so an element-order mistake shows
        case("reshape-then-matmul", 13)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", &[0, 2, 6])
            .weight("w", &[6, 2])
            .node("Reshape", &["x", "shape"], &["r"], vec![])
            .node("MatMul", &["r", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn transpose() {
    let tr = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", dims)
            .node("Transpose", &["x"], &["y"], attrs)
            .output("y")
    };
    let x4: &[Option<i64>] = &[N, Some(2), Some(3), Some(4)];
    run_all(vec![
        tr(
            "transpose-nhwc-to-nchw",
            x4,
            vec![ints("perm", &[0, 3, 1, 2])],
        ),
        tr(
            "transpose-nchw-to-nhwc",
            x4,
            vec![ints("perm", &[0, 2, 3, 1])],
        ),
        tr(
            "transpose-batch-moves",
            x4,
            vec![ints("perm", &[2, 0, 3, 1])],
        ),
        tr("transpose-default-3d", &[N, Some(2), Some(3)], vec![]),
        tr("transpose-default-4d", x4, vec![]),
        tr(
            "transpose-identity-perm",
            x4,
            vec![ints("perm", &[0, 1, 2, 3])],
        ),
    ]);
}

#[test]
fn squeeze_unsqueeze() {
    let x: &[Option<i64>] = &[N, Some(1), Some(3), Some(1)];
    let v11 = |name: &str, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, 11)
            .input("x", dims)
            .node(op, &["x"], &["y"], vec![ints("axes", axes)])
            .output("y")
    };
    let v13 = |name: &str, opset: i64, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, opset)
            .input("x", dims)
            .init_i64("axes", axes)
            .node(op, &["x", "axes"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        v11("squeeze11-two-axes", "Squeeze", x, &[1, 3]),
        v11("squeeze11-negative-axis", "Squeeze", x, &[-1]),
        v11(
            "unsqueeze11-two-axes",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v11(
            "unsqueeze11-negative-axis",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1],
        ),
        v13("squeeze13-two-axes", 13, "Squeeze", x, &[1, 3]),
        v13("squeeze13-negative-axis", 13, "Squeeze", x, &[-3]),
        v13(
            "unsqueeze13-two-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v13(
            "unsqueeze13-negative-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1, 1],
        ),
        v13("squeeze18", 18, "Squeeze", x, &[3]),
        v13(
            "unsqueeze13-before-batch",
            13,
            "Unsqueeze",
            &[N, Some(3)],
            &[0],
        ),
        // round trip through a product so that the layout matters
        case("unsqueeze-squeeze-chain", 13)
            .input("x", &[N, Some(4)])
            .init_i64("axes", &[1])
            .weight("w", &[4, 3])
            .node("Unsqueeze", &["x", "axes"], &["u"], vec![])
            .node("MatMul", &["u", "w"], &["m"], vec![])
            .node("Squeeze", &["m", "axes"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn concat() {
    run_all(vec![
        case("concat-two-inputs", 13)
            .input("x", &[N, Some(3), Some(4)])
            .input("z", &[N, Some(2), Some(4)])
            .node("Concat", &["x", "z"], &["y"], vec![int("axis", 1)])
            .output("y"),
        case("concat-negative-axis", 13)
            .input("x", &[N, Some(3), Some(4)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["x", "r", "x"], &["y"], vec![int("axis", -1)])
            .output("y"),
        case("concat-batch-axis", 13)
            .input("x", &[N, Some(3)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["r", "x"], &["y"], vec![int("axis", 0)])
            .output("y"),
        // A constant has no batch axis, so it can only be concatenated with a batch-free
        // secret: here s = z^T a ([3, 4]), whose concatenation then multiplies x.
        case("concat-secret-then-constant", 13)
            .input("x", &[N, Some(5)])
            .input("a", &[N, Some(4)])
            .input("z", &[N, Some(3)])
            .weight("c", &[2, 4])
            .node("Transpose", &["z"], &["zt"], vec![])
            .node("MatMul", &["zt", "a"], &["s"], vec![])
            .node("Concat", &["s", "c"], &["sc"], vec![int("axis", 0)])
            .node("MatMul", &["x", "sc"], &["y"], vec![])
            .output("y"),
        // s = x^T z ([4, 2]) after a constant [4, 3] along axis -1
        case("concat-constant-first-negative-axis", 13)
            .input("x", &[N, Some(4)])
            .input("z", &[N, Some(2)])
            .weight("c", &[4, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["s"], vec![])
            .node("Concat", &["c", "s"], &["cs"], vec![int("axis", -1)])
            .node("MatMul", &["x", "cs"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn identity_and_dropout() {
    let x = |name: &str, opset: i64| case(name, opset).input("x", &[N, Some(3), Some(4)]);
    let then_relu = |c: Case| c.node("Relu", &["d"], &["y"], vec![]).output("y");
    run_all(vec![
        // the graph output is the input itself
        x("identity-only", 13)
            .node("Identity", &["x"], &["y"], vec![])
            .output("y"),
        then_relu(x("identity-then-relu", 13).node("Identity", &["x"], &["d"], vec![])),
        x("identity-of-result", 13)
            .node("Relu", &["x"], &["r"], vec![])
            .node("Identity", &["r"], &["y"], vec![])
            .output("y"),
        then_relu(x("dropout13-ratio-input", 13).scalar("ratio", 0.3).node(
            "Dropout",
            &["x", "ratio"],
            &["d"],
            vec![],
        )),
        then_relu(
            x("dropout13-training-false", 13)
                .scalar("ratio", 0.5)
                .with_onnx(|o| {
                    o.init_bool_scalar("training_mode", false);
                })
                .node("Dropout", &["x", "ratio", "training_mode"], &["d"], vec![]),
        ),
        then_relu(x("dropout13-no-ratio", 13).node("Dropout", &["x"], &["d"], vec![])),
        then_relu(x("dropout11-ratio-attr", 11).node(
            "Dropout",
            &["x"],
            &["d"],
            vec![float("ratio", 0.25)],
        )),
        // the graph output is the Dropout's output, aliasing the input
        x("dropout-only", 13)
            .scalar("ratio", 0.3)
            .node("Dropout", &["x", "ratio"], &["y"], vec![])
            .output("y"),
        // at inference the mask is all true: as an output, and read by a Where
        x("dropout-mask", 13)
            .scalar("zero", 0.0)
            .node("Dropout", &["x"], &["d", "mask"], vec![])
            .node("Where", &["mask", "d", "zero"], &["y"], vec![])
            .node("Cast", &["mask"], &["m"], vec![int("to", 1)])
            .output("y")
            .output("m"),
    ]);
}
