//! TensorFlow frozen graphs: a GraphDef is translated into an equivalent ONNX graph (NHWC
//! convolutions and pools become NCHW ONNX ops between transposes, fused batch norms become
//! the affine map they compute), so that shape inference, lowering and `--check` are the
//! ONNX pipeline's. Inputs default to the Placeholders, outputs to the nodes nobody reads.
//!
//! `constant` decodes TensorFlow constants, `translate` turns each node into ONNX nodes (one
//! file per op family), `onnx` builds the ONNX attributes and value infos.

mod constant;
mod onnx;
mod translate;

use anyhow::{Context, Result, anyhow, ensure};
use constant::graph_constants;
use onnx::{tensor, value_info};
use prost::Message;
use std::collections::HashSet;
use tract_onnx::pb;
use tract_tensorflow::prelude::DatumType;
use tract_tensorflow::tfpb::tensorflow::{GraphDef, NodeDef};
use translate::Translator;

/// Which tensors are the model's inputs and outputs; empty means "found in the graph".
#[derive(Clone, Debug, Default)]
pub struct GraphNames {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

const OPSET: i64 = 13;

/// Ops that only forward their first input.
const PASS_THROUGH: &[&str] = &[
    "Identity",
    "StopGradient",
    "Snapshot",
    "PreventGradient",
    "CheckNumerics",
];

pub fn is_graph_def(bytes: &[u8]) -> bool {
    GraphDef::decode(bytes)
        .is_ok_and(|g| !g.node.is_empty() && g.node.iter().all(|n| !n.op.is_empty()))
}

/// The ONNX model equivalent to a frozen GraphDef.
pub fn to_onnx(bytes: &[u8], names: &GraphNames) -> Result<pb::ModelProto> {
    let graph = GraphDef::decode(bytes).context("the file is not a TensorFlow GraphDef")?;
    let consts = graph_constants(&graph)?;
    let mut t = Translator::default();
    for node in &graph.node {
        t.translate(node, &consts)
            .with_context(|| format!("node {} ({})", node.name, node.op))?;
    }
    let placeholders: Vec<&NodeDef> = graph
        .node
        .iter()
        .filter(|n| n.op == "Placeholder")
        .collect();
    let inputs: Vec<String> = if names.inputs.is_empty() {
        placeholders.iter().map(|n| n.name.clone()).collect()
    } else {
        names.inputs.iter().map(|n| tensor(n)).collect()
    };
    let mut input_infos = vec![];
    for name in &inputs {
        let node = placeholders
            .iter()
            .find(|n| n.name == *name)
            .ok_or_else(|| anyhow!("input {name} is not a Placeholder of the graph"))?;
        ensure!(
            node.get_attr_opt_datum_type("dtype")?
                .is_none_or(|d| d == DatumType::F32),
            "input {name} is not float32"
        );
        let dims: Option<Vec<i64>> = node
            .get_attr_opt_shape("shape")?
            .map(|s| s.iter().map(|&d| d as i64).collect());
        input_infos.push(value_info(name, dims.as_deref()));
    }
    let outputs: Vec<String> = if names.outputs.is_empty() {
        let read: HashSet<String> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter().map(|i| tensor(i.trim_start_matches('^'))))
            .collect();
        graph
            .node
            .iter()
            .filter(|n| {
                !matches!(n.op.as_str(), "Const" | "NoOp" | "Placeholder")
                    && !read.contains(&n.name)
            })
            .map(|n| n.name.clone())
            .collect()
    } else {
        names.outputs.iter().map(|n| tensor(n)).collect()
    };
    ensure!(
        !outputs.is_empty(),
        "the graph has no output; name it with --outputs"
    );
    let (nodes, initializers) = t.into_parts();
    Ok(pb::ModelProto {
        ir_version: 8,
        producer_name: "tfe (from a TensorFlow frozen graph)".into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        graph: Some(pb::GraphProto {
            name: "tensorflow".into(),
            node: nodes,
            initializer: initializers,
            input: input_infos,
            output: outputs.iter().map(|o| value_info(o, None)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    })
}
