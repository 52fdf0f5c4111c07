//! Node-by-node translation of a GraphDef into ONNX nodes and initializers: the translator,
//! its emitting helpers and the dispatch on the TensorFlow op. The ops of each family are
//! translated in their own file.

mod math;
mod shape;
mod spatial;

use super::PASS_THROUGH;
use super::constant::Constant;
use super::onnx::{ONNX_INT64, tensor};
use anyhow::{Result, anyhow};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_tensorflow::tfpb::tensorflow::NodeDef;

/// The ONNX nodes and initializers translated so far.
#[derive(Default)]
pub(super) struct Translator {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    fresh: usize,
}

/// The node being translated: its definition, its data inputs and its output as ONNX tensor
/// names, and the graph's constants.
struct Node<'a> {
    def: &'a NodeDef,
    inputs: Vec<String>,
    out: String,
    consts: &'a HashMap<String, Constant>,
}

impl Node<'_> {
    fn input(&self, i: usize) -> Result<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("node {} lacks input {i}", self.def.name))
    }

    /// Input `i`, which must be an integer constant.
    fn const_ints(&self, i: usize) -> Result<Vec<i64>> {
        self.consts
            .get(self.input(i)?)
            .ok_or_else(|| anyhow!("input {i} of node {} must be a constant", self.def.name))?
            .ints()
    }
}

impl Translator {
    /// The translated graph's nodes and initializers.
    pub(super) fn into_parts(self) -> (Vec<pb::NodeProto>, Vec<pb::TensorProto>) {
        (self.nodes, self.initializers)
    }

    fn emit(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attributes: Vec<pb::AttributeProto>,
    ) {
        self.nodes.push(pb::NodeProto {
            name: name.to_string(),
            op_type: op.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute: attributes,
            ..Default::default()
        });
    }

    /// A fresh tensor name derived from a node's.
    fn temp(&mut self, base: &str, what: &str) -> String {
        self.fresh += 1;
        format!("{base}/tfe_{what}_{}", self.fresh)
    }

    fn int_constant(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.temp(base, "const");
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: ONNX_INT64,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    pub(super) fn translate(
        &mut self,
        node: &NodeDef,
        consts: &HashMap<String, Constant>,
    ) -> Result<()> {
        let n = Node {
            def: node,
            inputs: node
                .input
                .iter()
                .filter(|i| !i.starts_with('^'))
                .map(|i| tensor(i))
                .collect(),
            out: tensor(&node.name),
            consts,
        };
        match node.op.as_str() {
            "Const" => self.initializers.push(
                consts
                    .get(&node.name)
                    .expect("decoded up front")
                    .initializer(&n.out),
            ),
            "Placeholder" | "NoOp" => {}
            op if PASS_THROUGH.contains(&op) => {
                self.emit("Identity", &node.name, &[n.input(0)?], &n.out, vec![])
            }
            "Conv2D" | "DepthwiseConv2dNative" => self.conv(&n)?,
            "MaxPool" | "AvgPool" => self.pool(&n)?,
            "BiasAdd" => self.bias_add(&n)?,
            "FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3" => {
                self.fused_batch_norm(&n)?
            }
            "MatMul" => self.mat_mul(&n)?,
            "Relu6" => self.relu6(&n)?,
            "Square" => self.square(&n)?,
            "Rsqrt" => self.rsqrt(&n)?,
            "Softmax" | "LogSoftmax" => self.softmax(&n)?,
            "Mean" | "Sum" | "Max" | "Min" => self.reduce(&n)?,
            "ArgMax" | "ArgMin" => self.arg_max(&n)?,
            "Reshape" => self.reshape(&n)?,
            "Squeeze" => self.squeeze(&n)?,
            "ExpandDims" => self.expand_dims(&n)?,
            "ConcatV2" => self.concat(&n)?,
            "Transpose" => self.transpose(&n)?,
            "Pad" | "PadV2" => self.pad(&n)?,
            "Shape" => self.shape(&n)?,
            "StridedSlice" => self.strided_slice(&n)?,
            "Pack" => self.pack(&n)?,
            "Cast" => self.cast(&n)?,
            _ => self.element_wise(&n),
        }
        Ok(())
    }
}
