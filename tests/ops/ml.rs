//! scikit-learn's operators lowered in src/lower/ml.rs, against references computed here
//! (tract's ArrayFeatureExtractor drops the axis of a scalar index, unlike ONNX).

use super::*;

/// A scalar column index keeps the last axis (`[N, 1]`), as onnxruntime does: skl2onnx's
/// binary LinearClassifier picks its positive column so. Before, tract's `[N]` shape left
/// the plan inconsistent with the `[N, 1]` the gather produced.
#[test]
fn array_feature_extractor_with_a_scalar_index_keeps_the_axis() {
    let c = case("afe-scalar-index", 17)
        .input("x", &[N, Some(4)])
        .init_i64_shaped("column", &[], &[2])
        .ml_node(1, "ArrayFeatureExtractor", &["x", "column"], &["y"], vec![])
        .output("y")
        .expect(|inputs| row_by_row(inputs, |row| vec![vec![row[2]]]));
    let several = case("afe-index-list", 17)
        .input("x", &[N, Some(4)])
        .init_i64_shaped("columns", &[2, 1], &[3, 0])
        .ml_node(
            1,
            "ArrayFeatureExtractor",
            &["x", "columns"],
            &["y"],
            vec![],
        )
        .output("y")
        .expect(|inputs| row_by_row(inputs, |row| vec![vec![row[3], row[0]]]));
    run_all(vec![c, several]);
}
