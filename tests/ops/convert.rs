//! What the whole conversion (src/lower/convert.rs) decides beyond one op's rule:
//! convert-time folding of shape arithmetic, the batch axis, and refusals that say why.

use super::{END, outputs, str_attr, tensor};
use crate::common::Attr;
use crate::common::cases::*;

/// Shape arithmetic on x's shape (Shape, Gather, Slice, Concat, Sub, Range, ConstantOfShape,
/// Cast of constants) is computed at convert time and feeds Reshape, Slice, Gather, Mul and
/// Expand on the secret input.
#[test]
fn shape_arithmetic_is_folded() {
    let c = case("folded-shape-arithmetic", 13)
        .input("x", &[N, Some(3), Some(4)])
        .init_i64("minus1", &[-1])
        .init_i64("one", &[1])
        .init_i64("two", &[2])
        .init_i64_shaped("scalar0", &[], &[0])
        .init_i64_shaped("scalar2", &[], &[2])
        .init_i64("axis0", &[0])
        .init_i64("axis1", &[1])
        .init_i64("axis2", &[2])
        .init_i64("three", &[3])
        .init_i64("start0", &[0])
        .init("end_as_float", &tensor(&[1], &[2.0]))
        .scalar("half", 0.5)
        // Reshape x to [-1, width] = [N*3, 4]
        .node("Shape", &["x"], &["shape"], vec![])
        .node("Gather", &["shape", "two"], &["width"], vec![])
        .node(
            "Concat",
            &["minus1", "width"],
            &["target"],
            vec![int("axis", 0)],
        )
        .node("Reshape", &["x", "target"], &["flat"], vec![])
        // Slice x's last axis from 1 to width - 1
        .node("Sub", &["width", "one"], &["end"], vec![])
        .node("Slice", &["x", "one", "end", "axis2"], &["inner"], vec![])
        // a [3, 4] constant of halves from the shape, times x
        .node("Slice", &["shape", "one", "three"], &["dims"], vec![])
        .node(
            "ConstantOfShape",
            &["dims"],
            &["ones"],
            vec![Attr::FloatTensor("value", 1.0)],
        )
        .node("Mul", &["ones", "half"], &["halves"], vec![])
        .node("Mul", &["x", "halves"], &["scaled"], vec![])
        // Gather x's last axis at Range(0, width, 2) = [0, 2]
        .node("Gather", &["shape", "scalar2"], &["width_scalar"], vec![])
        .node(
            "Range",
            &["scalar0", "width_scalar", "scalar2"],
            &["even"],
            vec![],
        )
        .node("Gather", &["x", "even"], &["evens"], vec![int("axis", 2)])
        // a batch-free sum expanded back to x's shape
        .node("ReduceSum", &["x", "axis0"], &["total"], vec![])
        .node("Expand", &["total", "shape"], &["spread"], vec![])
        // Slice axis 1 up to a float constant cast to int64
        .node("Cast", &["end_as_float"], &["end2"], vec![int("to", 7)])
        .node(
            "Slice",
            &["x", "start0", "end2", "axis1"],
            &["head"],
            vec![],
        );
    let c = outputs(c, &["flat", "inner", "scaled", "evens", "spread", "head"]);
    let expected = [
        ("Shape", "folded"),
        ("Gather", "folded"),
        ("Concat", "folded"),
        ("Reshape", "lowered"),
        ("Sub", "folded"),
        ("Slice", "lowered"),
        ("Slice", "folded"),
        ("ConstantOfShape", "folded"),
        ("Mul", "folded"),
        ("Mul", "lowered"),
        ("Gather", "folded"),
        ("Range", "folded"),
        ("Gather", "lowered"),
        ("ReduceSum", "lowered"),
        ("Expand", "lowered"),
        ("Cast", "folded"),
        ("Slice", "lowered"),
    ];
    let got = c.statuses();
    let got: Vec<(&str, &str)> = got.iter().map(|(op, s)| (op.as_str(), *s)).collect();
    assert_eq!(got, expected);
    run_all(vec![c]);
}

/// A tensor of x's whole shape (batch included) filled with one value, as an unrolled Keras RNN
/// builds its zero state, used by Add and Mul: lowered as the value expanded to that shape,
/// for every batch size.
#[test]
fn batch_sized_fill_from_the_input_shape() {
    let c = case("batch-sized-fill", 13)
        .input("x", &[N, Some(3)])
        .node("Shape", &["x"], &["shape"], vec![])
        .node(
            "ConstantOfShape",
            &["shape"],
            &["fill"],
            vec![Attr::FloatTensor("value", 0.75)],
        )
        .node("Add", &["x", "fill"], &["shifted"], vec![])
        .node("Mul", &["fill", "shifted"], &["y"], vec![])
        .output("y");
    run_all(vec![c]);
}

/// Models that move data along the batch axis: refused with the symbolic batch, converted
/// with --fixed-shapes (every dimension as declared, the batch being 3).
fn along_batch_axis(batch: Option<i64>) -> Vec<Case> {
    let x: &[Option<i64>] = &[batch, Some(3), Some(4)];
    let fixed = if batch.is_some() { "-fixed" } else { "" };
    let name = |base: &str| format!("{base}{fixed}");
    vec![
        case(&name("batch-slice"), 13)
            .input("x", x)
            .init_i64("starts", &[1])
            .init_i64("ends", &[END])
            .init_i64("axes", &[0])
            .node("Slice", &["x", "starts", "ends", "axes"], &["y"], vec![])
            .output("y"),
        case(&name("batch-gather"), 13)
            .input("x", x)
            .init_i64("i", &[0, -1])
            .node("Gather", &["x", "i"], &["y"], vec![])
            .output("y"),
        case(&name("batch-pad"), 13)
            .input("x", x)
            .init_i64("pads", &[1, 0, 0, 0, 0, 0])
            .node("Pad", &["x", "pads"], &["y"], vec![])
            .output("y"),
        outputs(
            case(&name("batch-split"), 13)
                .input("x", x)
                .init_i64("split", &[1, 2])
                .node("Split", &["x", "split"], &["a", "b"], vec![]),
            &["a", "b"],
        ),
        case(&name("batch-reducemean"), 13)
            .input("x", x)
            .node("ReduceMean", &["x"], &["y"], vec![ints("axes", &[0, 2])])
            .output("y"),
        case(&name("batch-resize"), 13)
            .input("x", x)
            .init("scales", &tensor(&[3], &[2.0, 1.0, 1.0]))
            .node("Resize", &["x", "", "scales"], &["y"], vec![])
            .output("y"),
        case(&name("batch-gather-elements"), 13)
            .input("x", x)
            .init_i64_shaped("i", &[1, 3, 2], &[0, 3, 1, 1, 2, 0])
            .node("GatherElements", &["x", "i"], &["y"], vec![int("axis", 2)])
            .output("y"),
    ]
}

#[test]
fn batch_axis_needs_fixed_shapes() {
    let fragments: &[&str] = &["along the batch axis", "--fixed-shapes"];
    refuse_all(
        along_batch_axis(None)
            .into_iter()
            .map(|c| (c, fragments))
            .collect(),
    );
    run_all(
        along_batch_axis(Some(3))
            .into_iter()
            .map(Case::fixed_shapes)
            .collect(),
    );
}

/// A constant whose leading size equals the exported batch (a Gemm bias of shape [3, 4], a
/// PRelu slope of shape [3, 6], for inputs declared [3, 6]) passes for batch-sized in shape
/// inference at batches 2 and 3; broadcasting it against the batch shows it is not. Such a
/// model converts at its declared shapes; with a free batch declared it is refused, saying why.
#[test]
fn constants_tied_to_the_exported_batch() {
    let tied = |name: &str, batch: Option<i64>| {
        let gemm = case(&format!("{name}-gemm"), 13)
            .input("x", &[batch, Some(6)])
            .weight("b", &[6, 4])
            .weight("c", &[3, 4])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![])
            .output("y");
        let prelu = case(&format!("{name}-prelu"), 13)
            .input("x", &[batch, Some(6)])
            .weight("slope", &[3, 6])
            .node("PRelu", &["x", "slope"], &["y"], vec![])
            .output("y");
        vec![gemm, prelu]
    };
    let declared = tied("tied", Some(3));
    for c in &declared {
        let converted = tfe::lower::convert(&c.onnx.save(&c.name), c.options()).unwrap();
        assert_eq!(
            converted.batch,
            tfe::import::BatchMode::AsDeclared,
            "{}",
            c.name
        );
    }
    run_all(declared);
    let fragments: &[&str] = &["do not broadcast", "and [3, ", "exported with"];
    refuse_all(
        tied("tied-free", N)
            .into_iter()
            .map(|c| (c, fragments))
            .collect(),
    );
}

#[test]
fn refusals_say_why() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let on_x = |name: &str| case(name, 13).input("x", x);
    let pad = |name: &str, mode: &'static str| {
        on_x(name)
            .init_i64("pads", &[0, 1, 1, 0, 1, 1])
            .node("Pad", &["x", "pads"], &["y"], vec![str_attr("mode", mode)])
            .output("y")
    };
    let resize = |name: &str, attrs: Vec<Attr>| {
        on_x(name)
            .init("scales", &tensor(&[3], &[1.0, 2.0, 2.0]))
            .node("Resize", &["x", "", "scales"], &["y"], attrs)
            .output("y")
    };
    refuse_all(vec![
        (
            pad("refuse-pad-reflect", "reflect"),
            &["Pad mode reflect", "mode=constant"],
        ),
        (
            pad("refuse-pad-edge", "edge"),
            &["Pad mode edge", "mode=constant"],
        ),
        (
            resize("refuse-resize-linear", vec![str_attr("mode", "linear")]),
            &["Resize mode linear", "mode=nearest"],
        ),
        (
            resize(
                "refuse-resize-crop",
                vec![str_attr(
                    "coordinate_transformation_mode",
                    "tf_crop_and_resize",
                )],
            ),
            &["tf_crop_and_resize"],
        ),
        (
            on_x("refuse-cast-to-int")
                .node("Cast", &["x"], &["i"], vec![int("to", 7)])
                .node("Cast", &["i"], &["y"], vec![int("to", 1)])
                .output("y"),
            &["Cast of a tensor computed from the secret input to ONNX type 7 would round it"],
        ),
        (
            on_x("refuse-gather-secret-indices")
                .weight("table", &[10, 2])
                .node("Cast", &["x"], &["i"], vec![int("to", 7)])
                .node("Gather", &["table", "i"], &["y"], vec![])
                .output("y"),
            &["Gather with indices computed from the secret input"],
        ),
    ]);
}
