//! Data movement with constant indices (src/lower/movement.rs): Pad, Slice, Split, Gather,
//! GatherElements, GatherND, Expand, Tile, Cast, DepthToSpace and SpaceToDepth.

use super::{END, outputs, str_attr};
use crate::common::Attr;
use crate::common::cases::*;

#[test]
fn pad() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    // x sliced to c along axes 1 and 2
    let cropped = |name: &str, starts: &[i64], ends: &[i64]| {
        case(&format!("{name}-reference"), 13)
            .input("x", x)
            .init_i64("starts", starts)
            .init_i64("ends", ends)
            .init_i64("axes", &[1, 2])
            .node("Slice", &["x", "starts", "ends", "axes"], &["c"], vec![])
    };
    let with_input = |name: &str, opset: i64, pads: &[i64], value: Option<f32>| {
        let c = case(name, opset).input("x", x).init_i64("pads", pads);
        let (c, ins): (Case, &[&str]) = match value {
            Some(v) => (c.scalar("value", v), &["x", "pads", "value"]),
            None => (c, &["x", "pads"]),
        };
        c.node("Pad", ins, &["y"], vec![]).output("y")
    };
    let with_axes = |name: &str, value: Option<f32>| {
        let c = case(name, 18)
            .input("x", x)
            .init_i64("pads", &[1, 0, 2, 1])
            .init_i64("axes", &[-1, 1]);
        let (c, ins): (Case, &[&str]) = match value {
            Some(v) => (c.scalar("value", v), &["x", "pads", "value", "axes"]),
            None => (c, &["x", "pads", "", "axes"]),
        };
        c.node("Pad", ins, &["y"], vec![]).output("y")
    };
    run_all(vec![
        // begins [0, 1, 2], ends [0, 2, 1]
        with_input("pad13-zeros", 13, &[0, 1, 2, 0, 2, 1], None),
        // a fill value the data never takes: ignoring it moves the border by 0.75
        with_input("pad13-value", 13, &[0, 1, 2, 0, 2, 1], Some(0.75)),
        // negative pads crop: a row off the start of axis 1, a column off the end of axis 2
        // (tract cannot run them, so it runs the same slices and pads as two nodes)
        with_input("pad13-crop-and-pad", 13, &[0, -1, 1, 0, 2, -1], Some(-0.5)).reference(
            cropped("pad13-crop-and-pad", &[1, 0], &[END, -1])
                .init_i64("pads", &[0, 0, 1, 0, 2, 0])
                .scalar("value", -0.5)
                .node("Pad", &["c", "pads", "value"], &["y"], vec![])
                .output("y"),
        ),
        with_input("pad13-crop-only", 13, &[0, 0, -1, 0, -1, -2], Some(3.0)).reference(
            cropped("pad13-crop-only", &[0, 1], &[-1, -2])
                .node("Identity", &["c"], &["y"], vec![])
                .output("y"),
        ),
        with_input("pad11-value", 11, &[0, 0, 3, 0, 1, 0], Some(2.0)),
        // pads and value as attributes
        case("pad2-attributes", 10)
            .input("x", x)
            .node(
                "Pad",
                &["x"],
                &["y"],
                vec![ints("pads", &[0, 2, 0, 0, 1, 1]), float("value", -1.5)],
            )
            .output("y"),
        case("pad2-explicit-constant-mode", 10)
            .input("x", x)
            .node(
                "Pad",
                &["x"],
                &["y"],
                vec![
                    ints("pads", &[0, 1, 1, 0, 0, 2]),
                    str_attr("mode", "constant"),
                ],
            )
            .output("y"),
        // opset 18: pads only for the axes given ([-1, 1]: last axis 1 then 1, axis 1 0 then 2)
        with_axes("pad18-axes-value", Some(0.5)),
        with_axes("pad18-axes-zeros", None),
        // a padded image into a convolution: the layout matters downstream
        case("pad-then-conv", 13)
            .input("x", &[N, Some(2), Some(5), Some(5)])
            .init_i64("pads", &[0, 0, 1, 0, 0, 0, 0, 2])
            .scalar("value", 0.25)
            .weight("w", &[3, 2, 3, 3])
            .node("Pad", &["x", "pads", "value"], &["p"], vec![])
            .node("Conv", &["p", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn slice() {
    let x: &[Option<i64>] = &[N, Some(5), Some(6)];
    let with_inputs = |name: &str,
                       opset: i64,
                       starts: &[i64],
                       ends: &[i64],
                       axes: Option<&[i64]>,
                       steps: Option<&[i64]>| {
        let mut c = case(name, opset)
            .input("x", x)
            .init_i64("starts", starts)
            .init_i64("ends", ends);
        let mut ins = vec!["x", "starts", "ends"];
        match axes {
            Some(axes) => {
                c = c.init_i64("axes", axes);
                ins.push("axes");
            }
            None if steps.is_some() => ins.push(""),
            None => {}
        }
        if let Some(steps) = steps {
            c = c.init_i64("steps", steps);
            ins.push("steps");
        }
        c.node("Slice", &ins, &["y"], vec![]).output("y")
    };
    let with_attrs = |name: &str, attrs: Vec<Attr>| {
        case(name, 9)
            .input("x", x)
            .node("Slice", &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        with_inputs(
            "slice13-two-axes",
            13,
            &[1, -4],
            &[4, END],
            Some(&[1, 2]),
            None,
        ),
        // axis 1: 0, 2, 4; axis 2 backwards: 5, 3, 1
        with_inputs(
            "slice13-steps",
            13,
            &[0, 5],
            &[END, 0],
            Some(&[1, 2]),
            Some(&[2, -2]),
        ),
        // a negative step from beyond the end to before the start: the whole axis reversed
        with_inputs(
            "slice13-reverse-clamped",
            13,
            &[100],
            &[-100],
            Some(&[-1]),
            Some(&[-1]),
        ),
        with_inputs(
            "slice13-negative-axis-and-positions",
            13,
            &[-3],
            &[-1],
            Some(&[-2]),
            None,
        ),
        // out-of-range start and end on a forward slice
        with_inputs(
            "slice13-clamped-forward",
            13,
            &[-100, 2],
            &[100, 3],
            Some(&[2, 1]),
            None,
        ),
        // no axes: starts and ends from axis 0, the batch, which is taken whole
        with_inputs(
            "slice13-no-axes-batch-whole",
            13,
            &[0, 1, -2],
            &[END, 3, END],
            None,
            None,
        ),
        with_inputs(
            "slice13-steps-without-axes",
            13,
            &[0, 4],
            &[END, 0],
            None,
            Some(&[1, -1]),
        ),
        with_inputs("slice10", 10, &[1], &[5], Some(&[2]), Some(&[3])),
        with_attrs(
            "slice9-attributes",
            vec![
                ints("starts", &[1, 2]),
                ints("ends", &[-1, 1000]),
                ints("axes", &[2, 1]),
            ],
        ),
        // no axes: from axis 0, which is the batch and is sliced, so shapes must be fixed
        case("slice9-attributes-no-axes", 9)
            .input("x", &[Some(3), Some(5), Some(6)])
            .node(
                "Slice",
                &["x"],
                &["y"],
                vec![ints("starts", &[0, 1, -3]), ints("ends", &[END, 4, END])],
            )
            .output("y")
            .fixed_shapes(),
        // The whole batch axis, up to INT64_MAX: shapes come from concrete batch sizes, so
        // tract's symbolic mis-inference of this slice does not arise.
        with_attrs(
            "slice9-attributes-batch-end",
            vec![
                ints("starts", &[0, 1]),
                ints("ends", &[END, 4]),
                ints("axes", &[0, 1]),
            ],
        ),
    ]);
}

#[test]
fn split() {
    let x: &[Option<i64>] = &[N, Some(6), Some(4)];
    let abc = ["a", "b", "c"];
    run_all(vec![
        outputs(
            case("split11-sizes-attribute", 11).input("x", x).node(
                "Split",
                &["x"],
                &abc,
                vec![int("axis", 1), ints("split", &[1, 3, 2])],
            ),
            &abc,
        ),
        outputs(
            case("split11-equal", 11).input("x", x).node(
                "Split",
                &["x"],
                &abc,
                vec![int("axis", 1)],
            ),
            &abc,
        ),
        outputs(
            case("split13-sizes-input", 13)
                .input("x", x)
                .init_i64("split", &[3, 1])
                .node("Split", &["x", "split"], &["a", "b"], vec![int("axis", -1)]),
            &["a", "b"],
        ),
        outputs(
            case("split13-equal-negative-axis", 13).input("x", x).node(
                "Split",
                &["x"],
                &["a", "b"],
                vec![int("axis", -2)],
            ),
            &["a", "b"],
        ),
        // 7 into 3: 3, 3 and 1
        outputs(
            case("split18-num-outputs", 18)
                .input("x", &[N, Some(7), Some(2)])
                .node(
                    "Split",
                    &["x"],
                    &abc,
                    vec![int("axis", 1), int("num_outputs", 3)],
                ),
            &abc,
        ),
        // the halves are combined, so swapping them shows
        case("split13-halves-subtracted", 13)
            .input("x", x)
            .node("Split", &["x"], &["a", "b"], vec![int("axis", 1)])
            .node("Sub", &["b", "a"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn gather() {
    let x: &[Option<i64>] = &[N, Some(5), Some(3)];
    let on_x = |name: &str, opset: i64, dims: &[i64], indices: &[i64], axis: i64| {
        case(name, opset)
            .input("x", x)
            .init_i64_shaped("i", dims, indices)
            .node("Gather", &["x", "i"], &["y"], vec![int("axis", axis)])
            .output("y")
    };
    run_all(vec![
        on_x("gather-axis1-negative", 13, &[4], &[4, 0, -1, 2], 1),
        on_x("gather-scalar-index", 13, &[], &[-2], 1),
        on_x(
            "gather-2d-indices-last-axis",
            13,
            &[2, 2],
            &[0, 2, 2, -3],
            -1,
        ),
        on_x("gather-opset11-repeats", 11, &[5], &[1, 1, 3, 0, 1], 1),
        // axis 0 (the default) of a batch-free secret, x^T x: [4, 4]
        case("gather-default-axis-batch-free", 13)
            .input("x", &[N, Some(4)])
            .init_i64("i", &[3, 1, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "x"], &["s"], vec![])
            .node("Gather", &["s", "i"], &["y"], vec![])
            .output("y"),
    ]);
}

/// GatherND on a batch-free secret (x transposed to [4, 5, N]), with batch_dims 0 and 1,
/// tuples of one and two indices (negative ones too), and indices of rank 1 to 3.
#[test]
fn gather_nd() {
    let on_xt = |name: &str, opset: i64, dims: &[i64], indices: &[i64], batch_dims: i64| {
        let attrs = if opset >= 12 {
            vec![int("batch_dims", batch_dims)]
        } else {
            vec![]
        };
        case(name, opset)
            .input("x", &[N, Some(4), Some(5)])
            .init_i64_shaped("i", dims, indices)
            .node("Transpose", &["x"], &["xt"], vec![ints("perm", &[1, 2, 0])])
            .node("GatherND", &["xt", "i"], &["g"], attrs)
            .node("Transpose", &["g"], &["y"], vec![])
            .output("y")
    };
    // tract reads negative indices as huge ones: its reference has them resolved
    run_all(vec![
        on_xt("gathernd-pairs", 13, &[3, 2], &[1, 2, 3, 0, -1, 4], 0).reference(on_xt(
            "gathernd-pairs-resolved",
            13,
            &[3, 2],
            &[1, 2, 3, 0, 3, 4],
            0,
        )),
        on_xt("gathernd-rows", 11, &[2, 1], &[3, 0], 0),
        on_xt("gathernd-single-tuple", 13, &[2], &[2, -2], 0).reference(on_xt(
            "gathernd-single-tuple-resolved",
            13,
            &[2],
            &[2, 3],
            0,
        )),
        on_xt(
            "gathernd-rank3-indices",
            13,
            &[2, 2, 2],
            &[0, 0, 1, 1, 2, 2, 3, 4],
            0,
        ),
        // per row of axis 0, its own column indices
        on_xt(
            "gathernd-batch-dims",
            13,
            &[4, 2, 1],
            &[0, 4, 1, 3, 2, 2, 4, 0],
            1,
        ),
    ]);
    refuse_all(vec![(
        case("gathernd-batch-axis", 13)
            .input("x", &[N, Some(4)])
            .init_i64_shaped("i", &[1, 2], &[0, 1])
            .node("GatherND", &["x", "i"], &["y"], vec![])
            .output("y"),
        &["GatherND along the batch axis", "--fixed-shapes"],
    )]);
}

/// Positions that count along the batch, computed from the input's shape, as Hugging Face
/// exports pick each sequence's padding mask: a Gather of the flattened [N*4] secret at
/// n*4 + j, and a GatherND of the [N, 4] secret at tuples (n, j), for j in (0, 2, 3).
#[test]
fn gathers_by_positions_that_count_along_the_batch() {
    let batch_index = |c: Case| {
        c.input("x", &[N, Some(4)])
            .init_i64("zero", &[0])
            .init_i64("one", &[1])
            .node("Shape", &["x"], &["shape"], vec![])
            .node("Gather", &["shape", "zero"], &["n1"], vec![])
            .node("Squeeze", &["n1", "zero"], &["n"], vec![])
            .init_i64_shaped("start", &[], &[0])
            .init_i64_shaped("delta", &[], &[1])
            .node("Range", &["start", "n", "delta"], &["rows"], vec![])
    };
    let flat = batch_index(case("gather-counting-rows", 13))
        .node("Unsqueeze", &["rows", "one"], &["rows1"], vec![])
        .init_i64_shaped("four", &[], &[4])
        .node("Mul", &["rows1", "four"], &["base"], vec![])
        .init_i64_shaped("j", &[1, 3], &[0, 2, 3])
        .node("Add", &["base", "j"], &["at"], vec![])
        .node("Flatten", &["x"], &["flat"], vec![int("axis", 0)])
        .node("Reshape", &["flat", "minus_one"], &["line"], vec![])
        .init_i64("minus_one", &[-1])
        .node("Gather", &["line", "at"], &["y"], vec![])
        .output("y");
    let tuples = batch_index(case("gathernd-counting-rows", 13))
        .init_i64("tail", &[1, 2])
        .node("Unsqueeze", &["rows", "tail"], &["n3"], vec![])
        .init_i64_shaped("j", &[1, 3, 1], &[0, 2, 3])
        .init_i64("wide", &[1, 3, 1])
        .node("Expand", &["n3", "wide"], &["first"], vec![])
        .node("Shape", &["first"], &["first_shape"], vec![])
        .node("Expand", &["j", "first_shape"], &["second"], vec![])
        .node(
            "Concat",
            &["first", "second"],
            &["at"],
            vec![int("axis", -1)],
        )
        .node("GatherND", &["x", "at"], &["y"], vec![])
        .output("y");
    run_all(vec![flat, tuples]);
}

#[test]
fn gather_elements() {
    // s = x^T z: [4, 3], with no batch axis (constant indices fix the output size)
    let s = |name: &str| {
        case(name, 13)
            .input("x", &[N, Some(4)])
            .input("z", &[N, Some(3)])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["s"], vec![])
    };
    let gather = |c: Case, dims: &[i64], indices: &[i64], attrs: Vec<Attr>| {
        c.init_i64_shaped("i", dims, indices)
            .node("GatherElements", &["s", "i"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        gather(
            s("gather-elements-default-axis"),
            &[2, 3],
            &[0, 3, -1, 2, 1, 0],
            vec![],
        ),
        gather(
            s("gather-elements-axis1"),
            &[4, 2],
            &[2, 0, 1, 1, -1, 0, 0, 2],
            vec![int("axis", 1)],
        ),
        gather(
            s("gather-elements-axis-neg1-wide"),
            &[4, 5],
            &[0, 1, 2, 2, 1, 1, 0, 0, -1, -2, 2, 2, 2, 0, 1, 0, 1, 0, 1, 0],
            vec![int("axis", -1)],
        ),
    ]);
}

#[test]
fn expand_and_tile() {
    let x: &[Option<i64>] = &[N, Some(3), Some(1)];
    let expand = |name: &str, shape: &[i64]| {
        case(name, 13)
            .input("x", x)
            .init_i64("shape", shape)
            .node("Expand", &["x", "shape"], &["y"], vec![])
            .output("y")
    };
    let tile = |name: &str, repeats: &[i64]| {
        case(name, 13)
            .input("x", &[N, Some(2), Some(3)])
            .init_i64("repeats", repeats)
            .node("Tile", &["x", "repeats"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        expand("expand-last-axis", &[1, 3, 4]),
        expand("expand-short-target", &[5]),
        // more axes than the input: [2, 1, 1, 5] with [N, 3, 1] gives [2, N, 3, 5]
        expand("expand-more-axes", &[2, 1, 1, 5]),
        expand("expand-same-shape", &[1, 1]),
        // the target is Shape(x), holding the batch size: a batch-free sum expanded back
        case("expand-to-input-shape", 13)
            .input("x", &[N, Some(4)])
            .init_i64("axes", &[0])
            .node("ReduceSum", &["x", "axes"], &["s"], vec![])
            .node("Shape", &["x"], &["shape"], vec![])
            .node("Expand", &["s", "shape"], &["e"], vec![])
            .node("Sub", &["x", "e"], &["y"], vec![])
            .output("y"),
        tile("tile-inner-axes", &[1, 3, 2]),
        tile("tile-no-repeat", &[1, 1, 1]),
        // the batch axis too: the output has 2N rows, whatever N is
        tile("tile-batch-axis", &[2, 1, 2]),
    ]);
}

#[test]
fn cast() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    run_all(vec![
        case("cast-to-float", 13)
            .input("x", x)
            .node("Cast", &["x"], &["y"], vec![int("to", 1)])
            .output("y"),
        case("cast-double-and-back", 13)
            .input("x", x)
            .node("Cast", &["x"], &["d"], vec![int("to", 11)])
            .node("Relu", &["d"], &["r"], vec![])
            .node("Cast", &["r"], &["y"], vec![int("to", 1)])
            .output("y"),
        case("castlike-float", 15)
            .input("x", x)
            .weight("like", &[1])
            .node("CastLike", &["x", "like"], &["y"], vec![])
            .output("y"),
        // a constant cast at convert time, then added
        case("cast-of-constant-folded", 13)
            .input("x", x)
            .init_i64("k", &[1, -2, 3, 0])
            .node("Cast", &["k"], &["kf"], vec![int("to", 1)])
            .node("Add", &["x", "kf"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn depth_to_space_and_back() {
    let d2s = |name: &str, attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", &[N, Some(8), Some(2), Some(3)])
            .node("DepthToSpace", &["x"], &["y"], attrs)
            .output("y")
    };
    let s2d = |name: &str, dims: &[Option<i64>], block: i64| {
        case(name, 13)
            .input("x", dims)
            .node(
                "SpaceToDepth",
                &["x"],
                &["y"],
                vec![int("blocksize", block)],
            )
            .output("y")
    };
    run_all(vec![
        d2s("depth-to-space-default-mode", vec![int("blocksize", 2)]),
        d2s(
            "depth-to-space-crd",
            vec![int("blocksize", 2), str_attr("mode", "CRD")],
        ),
        d2s(
            "depth-to-space-dcr",
            vec![int("blocksize", 2), str_attr("mode", "DCR")],
        ),
        case("depth-to-space-opset1", 1)
            .input("x", &[N, Some(9), Some(2), Some(2)])
            .node("DepthToSpace", &["x"], &["y"], vec![int("blocksize", 3)])
            .output("y"),
        s2d("space-to-depth", &[N, Some(2), Some(4), Some(6)], 2),
        s2d("space-to-depth-block3", &[N, Some(1), Some(3), Some(6)], 3),
    ]);
}
