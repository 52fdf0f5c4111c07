//! ONNX nodes as the lowering rules see them: names, inputs, outputs and typed attributes.

use anyhow::{Result, bail};
use std::collections::HashSet;
use tract_onnx::pb::{self, attribute_proto::AttributeType};

#[derive(Clone, Debug)]
pub struct Node {
    /// The node's name, or its first output's name when the exporter left it empty.
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Input tensor names; an omitted optional input is an empty string, as in ONNX.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    attributes: Vec<pb::AttributeProto>,
}

impl Node {
    pub fn from_proto(proto: &pb::NodeProto, index: usize) -> Node {
        let name = if !proto.name.is_empty() {
            proto.name.clone()
        } else if let Some(out) = proto.output.iter().find(|o| !o.is_empty()) {
            out.clone()
        } else {
            format!("{}#{index}", proto.op_type)
        };
        Node {
            name,
            op_type: proto.op_type.clone(),
            domain: proto.domain.clone(),
            inputs: proto.input.clone(),
            outputs: proto.output.clone(),
            attributes: proto.attribute.clone(),
        }
    }

    /// Outer-scope tensors that the node's subgraphs (Loop, If and Scan bodies) read: inputs
    /// of the node as much as the listed ones, though ONNX does not list them.
    pub fn captured(&self) -> Vec<String> {
        let mut names = vec![];
        for a in &self.attributes {
            for graph in a.g.iter().chain(&a.graphs) {
                captured_by(graph, &mut names);
            }
        }
        names
    }

    /// The graph attribute `name` (a Scan's, Loop's or If's body).
    pub fn graph(&self, name: &str) -> Result<Option<&pb::GraphProto>> {
        Ok(self
            .attr(name, AttributeType::Graph)?
            .and_then(|a| a.g.as_ref()))
    }

    /// The `i`th input's name, or `None` when it is absent or omitted.
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn output(&self) -> &str {
        &self.outputs[0]
    }

    fn attr(&self, name: &str, kind: AttributeType) -> Result<Option<&pb::AttributeProto>> {
        let Some(a) = self.attributes.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        // Some exporters leave the type unset for well-formed attributes; trust the field then.
        if a.r#type != AttributeType::Undefined as i32 && a.r#type != kind as i32 {
            bail!(
                "attribute {name} of node {} should be {kind:?}, found type {}",
                self.name,
                a.r#type
            );
        }
        Ok(Some(a))
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self
            .attr(name, AttributeType::Int)?
            .map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self
            .attr(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .attr(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .attr(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        Ok(self.attr(name, AttributeType::Strings)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .attr(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    /// A tensor attribute's elements as f64 (ai.onnx.ml 5's `nodes_splits`, `leaf_weights`,
    /// `nodes_modes`, and the `*_as_tensor` attributes): float, double and integer types, in
    /// their typed fields or as raw little-endian bytes.
    pub fn tensor_numbers(&self, name: &str) -> Result<Option<Vec<f64>>> {
        let Some(a) = self.attr(name, AttributeType::Tensor)? else {
            return Ok(None);
        };
        let Some(t) = &a.t else {
            bail!("attribute {name} of node {} holds no tensor", self.name);
        };
        numbers(t)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("attribute {name} of node {}: {e}", self.name))
    }

    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.attributes.iter().map(|a| a.name.as_str())
    }
}

/// An initializer's elements as integers (axes a rewrite reads), whatever its number type.
pub fn initializer_ints(t: &pb::TensorProto) -> Result<Vec<i64>> {
    Ok(numbers(t)?.into_iter().map(|v| v as i64).collect())
}

/// A tensor's elements as f64, from its typed field or its raw bytes.
fn numbers(t: &pb::TensorProto) -> Result<Vec<f64>> {
    use pb::tensor_proto::DataType as T;
    let raw = |width: usize, decode: fn(&[u8]) -> f64| -> Vec<f64> {
        t.raw_data.chunks_exact(width).map(decode).collect()
    };
    let from_raw = !t.raw_data.is_empty();
    Ok(match T::try_from(t.data_type) {
        Ok(T::Float) if from_raw => raw(4, |b| f32::from_le_bytes(b.try_into().unwrap()) as f64),
        Ok(T::Float) => t.float_data.iter().map(|&v| v as f64).collect(),
        Ok(T::Double) if from_raw => raw(8, |b| f64::from_le_bytes(b.try_into().unwrap())),
        Ok(T::Double) => t.double_data.clone(),
        Ok(T::Int64) if from_raw => raw(8, |b| i64::from_le_bytes(b.try_into().unwrap()) as f64),
        Ok(T::Int64) => t.int64_data.iter().map(|&v| v as f64).collect(),
        Ok(T::Int32) if from_raw => raw(4, |b| i32::from_le_bytes(b.try_into().unwrap()) as f64),
        Ok(T::Uint8) if from_raw => raw(1, |b| b[0] as f64),
        // ONNX keeps small integer types in int32_data.
        Ok(T::Int32 | T::Uint8) => t.int32_data.iter().map(|&v| v as f64).collect(),
        _ => bail!(
            "tensor element type {} is not a number type tfe reads",
            t.data_type
        ),
    })
}

/// Appends the tensors `graph` reads without defining them (its inputs, initializers and node
/// outputs), nested subgraphs included.
fn captured_by(graph: &pb::GraphProto, names: &mut Vec<String>) {
    let mut defined: HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(graph.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    for node in &graph.node {
        let mut read: Vec<String> = node.input.clone();
        for a in &node.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                captured_by(sub, &mut read);
            }
        }
        names.extend(
            read.into_iter()
                .filter(|n| !n.is_empty() && !defined.contains(n.as_str())),
        );
        defined.extend(node.output.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op_type: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op_type.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn body(nodes: Vec<pb::NodeProto>, inputs: &[&str]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: "body".into(),
            r#type: AttributeType::Graph as i32,
            g: Some(pb::GraphProto {
                node: nodes,
                input: inputs
                    .iter()
                    .map(|n| pb::ValueInfoProto {
                        name: n.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_loop_body_reading_outer_tensors_captures_them_through_nested_bodies() {
        let inner = node("If", &["cond"], &["picked"]);
        let mut inner_if = inner.clone();
        inner_if
            .attribute
            .push(body(vec![node("Neg", &["outer_b"], &["nb"])], &[]));
        let mut proto = node("Loop", &["trip", "cond"], &["out"]);
        proto.attribute.push(body(
            vec![
                node("Add", &["state", "outer_a"], &["sum"]),
                node("Mul", &["sum", "sum"], &["square"]),
                inner_if,
            ],
            &["i", "cond", "state"],
        ));
        let captured = Node::from_proto(&proto, 0).captured();
        assert_eq!(captured, ["outer_a", "outer_b"]);
        assert!(Node::from_proto(&inner, 0).captured().is_empty());
    }
}
