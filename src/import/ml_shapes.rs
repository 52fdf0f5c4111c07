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
//! PROBIT; the transform does not change shapes, so the analysis sees none.
//!
//! tract has no shape rule for TreeEnsembleRegressor and TreeEnsemble: their output is
//! `[N, n_targets]`, filled in after the analysis (the exporters make it a graph output).

use super::{Fact, Model, int64_initializer};
use crate::plan::{Dim, Shape};
use anyhow::Result;
use std::collections::HashMap;
use tract_onnx::pb;

/// Sets the `[N, n_targets]` shape of every tree-ensemble regression output tract left
/// unknown, N being the input's first dimension.
pub fn regressor_outputs(model: &Model, facts: &mut HashMap<String, Fact>) -> Result<()> {
    for node in model.nodes.iter().filter(|n| {
        n.domain == "ai.onnx.ml"
            && matches!(n.op_type.as_str(), "TreeEnsembleRegressor" | "TreeEnsemble")
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
/// TreeEnsembleClassifier post transform, or `None` when there is nothing to change.
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
            node.attribute.retain(|a| a.name != "post_transform");
            changed |= node.attribute.len() != before;
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
