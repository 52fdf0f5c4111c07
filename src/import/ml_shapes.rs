//! The shapes of ai.onnx.ml ops as ONNX defines them, where tract's shape inference differs
//! or has none.
//!
//! tract treats ArrayFeatureExtractor as a numpy gather on the last axis, so its output has
//! the indices' shape in place of that axis: a scalar index (skl2onnx's binary
//! `LinearClassifier`, the one-vs-one votes of `SVMClassifier`) drops the axis. ONNX, and
//! onnxruntime, flatten the indices instead (`[..., number of indices]`), and a rank-1 input
//! gives `[1, number of indices]`. For analysis only, each node reads its indices flattened,
//! and the output of a rank-1 constant table is reshaped to `[1, k]`; the lowering reads the
//! original node and produces the same shapes.
//!
//! tract refuses to build a TreeEnsembleClassifier whose post_transform is SOFTMAX_ZERO or
//! PROBIT, or one of two classes with a single base value (XGBoost's binary export); neither
//! changes shapes, so the analysis sees no post transform and no base values.
//!
//! tract cannot analyse SVMClassifier (it takes it for a one-output op): for analysis it is
//! a product of the input with zeros of the width of each output (the label `[N]`, the
//! scores `[N, pairs]`, `[N, 2]` or `[N, classes]` as onnxruntime writes them).
//!
//! tract has no shape rule for TreeEnsembleRegressor, TreeEnsemble and SVMRegressor: their
//! output is `[N, n_targets]`, filled in after the analysis (the exporters make it a graph
//! output).

use super::{Fact, Model, Node, int64_initializer};
use crate::plan::{Dim, Shape};
use anyhow::Result;
use std::collections::HashMap;
use tract_onnx::pb;

/// Sets the `[N, n_targets]` shape of every tree or SVM regression output tract left
/// unknown, N being the input's first dimension.
pub fn regressor_outputs(model: &Model, facts: &mut HashMap<String, Fact>) -> Result<()> {
    for node in model.nodes.iter().filter(|n| {
        n.domain == "ai.onnx.ml"
            && matches!(
                n.op_type.as_str(),
                "TreeEnsembleRegressor" | "TreeEnsemble" | "SVMRegressor"
            )
    }) {
        let (Some(input), Some(output)) = (node.input(0), node.outputs.first()) else {
            continue;
        };
        if facts.get(output).is_some_and(|f| f.shape.is_some()) {
            continue;
        }
        let rows = facts
            .get(input)
            .and_then(|f| f.shape.as_ref())
            .and_then(|s| s.0.first().copied());
        let (Some(Dim::Fixed(rows)), Ok(targets)) =
            (rows, usize::try_from(node.int("n_targets", 1)?))
        else {
            continue;
        };
        let fact = facts.entry(output.clone()).or_default();
        fact.shape = Some(Shape(vec![Dim::Fixed(rows), Dim::Fixed(targets)]));
        fact.datum_type
            .get_or_insert(tract_onnx::prelude::DatumType::F32);
    }
    Ok(())
}

/// A copy of `proto` with every ArrayFeatureExtractor shaped the ONNX way and no
/// TreeEnsembleClassifier post transform or base values, or `None` when there is nothing to
/// change.
pub fn onnx_shaped(proto: &pb::ModelProto) -> Option<pb::ModelProto> {
    let mut proto = proto.clone();
    let graph = proto.graph.as_mut()?;
    let rank_one_tables: Vec<String> = graph
        .initializer
        .iter()
        .filter(|t| t.dims.len() == 1)
        .map(|t| t.name.clone())
        .collect();
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut added = vec![];
    let mut changed = false;
    for (index, mut node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.op_type == "TreeEnsembleClassifier" {
            let before = node.attribute.len();
            node.attribute.retain(|a| {
                !matches!(
                    a.name.as_str(),
                    "post_transform" | "base_values" | "base_values_as_tensor"
                )
            });
            changed |= node.attribute.len() != before;
        }
        if node.op_type == "SVMClassifier"
            && let Some(widths) = svm_widths(&Node::from_proto(&node, index))
        {
            let mut stand_in = svm_stand_in(&node, index, widths);
            nodes.append(&mut stand_in.0);
            added.append(&mut stand_in.1);
            continue;
        }
        if node.op_type != "ArrayFeatureExtractor" || node.input.len() != 2 {
            nodes.push(node);
            continue;
        }
        let reshape = |input: String, shape: String, output: String| pb::NodeProto {
            name: format!("{output}/reshape"),
            op_type: "Reshape".into(),
            input: vec![input, shape],
            output: vec![output],
            ..Default::default()
        };
        let flat = format!("tfe_flat_indices_{index}");
        let flat_shape = format!("tfe_flat_shape_{index}");
        added.push(int64_initializer(flat_shape.clone(), vec![-1]));
        nodes.push(reshape(node.input[1].clone(), flat_shape, flat.clone()));
        node.input[1] = flat;
        if rank_one_tables.contains(&node.input[0]) {
            let output = node.output[0].clone();
            let gathered = format!("tfe_gathered_{index}");
            let row_shape = format!("tfe_row_shape_{index}");
            added.push(int64_initializer(row_shape.clone(), vec![1, -1]));
            node.output[0] = gathered.clone();
            nodes.push(node);
            nodes.push(reshape(gathered, row_shape, output));
        } else {
            nodes.push(node);
        }
    }
    graph.node = nodes;
    if added.is_empty() && !changed {
        return None;
    }
    graph.initializer.extend(added);
    Some(proto)
}

/// An SVMClassifier's number of features and of score columns.
fn svm_widths(node: &Node) -> Option<(usize, usize)> {
    let labels = node
        .ints("classlabels_ints")
        .ok()
        .flatten()
        .map(|l| l.len());
    let strings = node
        .strings("classlabels_strings")
        .ok()
        .flatten()
        .map(|l| l.len());
    let classes = labels.or(strings).filter(|&c| c > 0)?;
    let floats = |name: &str| node.floats(name).ok().flatten().unwrap_or_default();
    let per_class = node
        .ints("vectors_per_class")
        .ok()
        .flatten()
        .unwrap_or_default();
    let vectors: usize = per_class.iter().map(|&c| c.max(0) as usize).sum();
    if vectors == 0 {
        return Some((floats("coefficients").len() / classes, classes));
    }
    let features = floats("support_vectors").len() / vectors;
    let scores = match classes {
        _ if !floats("prob_a").is_empty() => classes,
        2 => 2,
        _ => classes * (classes - 1) / 2,
    };
    Some((features, scores))
}

/// Products of the input with zeros: `[N]` for the label, `[N, scores]` for the scores.
fn svm_stand_in(
    node: &pb::NodeProto,
    index: usize,
    (features, scores): (usize, usize),
) -> (Vec<pb::NodeProto>, Vec<pb::TensorProto>) {
    let zeros = |name: String, columns: usize| pb::TensorProto {
        name,
        dims: vec![features as i64, columns as i64],
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: vec![0.0; features * columns],
        ..Default::default()
    };
    let op = |op_type: &str, input: Vec<String>, output: String| pb::NodeProto {
        name: format!("{output}/stand_in"),
        op_type: op_type.into(),
        input,
        output: vec![output],
        ..Default::default()
    };
    let x = node.input[0].clone();
    let (mut nodes, mut added) = (vec![], vec![]);
    if let Some(label) = node.output.first().filter(|o| !o.is_empty()) {
        let (column, row, flat) = (
            format!("tfe_svm_label_zeros_{index}"),
            format!("tfe_svm_label_column_{index}"),
            format!("tfe_svm_label_shape_{index}"),
        );
        added.push(zeros(column.clone(), 1));
        added.push(int64_initializer(flat.clone(), vec![-1]));
        nodes.push(op("MatMul", vec![x.clone(), column], row.clone()));
        nodes.push(op("Reshape", vec![row, flat], label.clone()));
    }
    if let Some(output) = node.output.get(1).filter(|o| !o.is_empty()) {
        let name = format!("tfe_svm_score_zeros_{index}");
        added.push(zeros(name.clone(), scores));
        nodes.push(op("MatMul", vec![x, name], output.clone()));
    }
    (nodes, added)
}
