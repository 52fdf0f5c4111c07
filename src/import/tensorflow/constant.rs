//! TensorFlow constants: the values of a GraphDef's `Const` nodes decoded from TensorFlow's
//! encodings, and written out as ONNX initializers.

use super::PASS_THROUGH;
use super::onnx::{ONNX_FLOAT, ONNX_INT64, tensor};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_tensorflow::tfpb::tensorflow::attr_value::Value;
use tract_tensorflow::tfpb::tensorflow::{DataType, GraphDef, TensorProto};

/// A constant's values, decoded from TensorFlow's encodings.
#[derive(Clone, Debug)]
enum Values {
    Floats(Vec<f32>),
    Ints(Vec<i64>),
}

#[derive(Clone, Debug)]
pub(super) struct Constant {
    pub(super) shape: Vec<usize>,
    values: Values,
}

/// The constants of `graph`, by node name: the `Const` nodes, and the pass-through nodes
/// (`Identity` and its kin) that forward one. Freezing leaves every variable as a `Const`
/// read through an `Identity` (what was its `ReadVariableOp`), so a translation that needs
/// a constant operand (a depthwise filter's shape, axes, paddings) sees through them.
pub(super) fn graph_constants(graph: &GraphDef) -> Result<HashMap<String, Constant>> {
    let mut consts = HashMap::new();
    for node in graph.node.iter().filter(|n| n.op == "Const") {
        let value = match node.attr.get("value").and_then(|v| v.value.as_ref()) {
            Some(Value::Tensor(t)) => {
                constant_of(t).with_context(|| format!("constant {}", node.name))?
            }
            _ => bail!("constant {} has no tensor value", node.name),
        };
        consts.insert(node.name.clone(), value);
    }
    let forwards: Vec<(&str, String)> = graph
        .node
        .iter()
        .filter(|n| PASS_THROUGH.contains(&n.op.as_str()))
        .filter_map(|n| {
            let source = n.input.iter().find(|i| !i.starts_with('^'))?;
            Some((n.name.as_str(), tensor(source)))
        })
        .collect();
    // Chains of pass-throughs in any node order: each sweep resolves at least one more link.
    loop {
        let resolved: Vec<(&str, Constant)> = forwards
            .iter()
            .filter(|(name, _)| !consts.contains_key(*name))
            .filter_map(|(name, source)| Some((*name, consts.get(source)?.clone())))
            .collect();
        if resolved.is_empty() {
            return Ok(consts);
        }
        for (name, value) in resolved {
            consts.insert(name.to_string(), value);
        }
    }
}

/// `n` values from raw little-endian bytes, or from the typed list where TensorFlow writes a
/// repeated value once (the last one stands for the rest).
fn decode<T: Copy + Default>(
    raw: &[u8],
    width: usize,
    from_bytes: fn(&[u8]) -> T,
    typed: &[T],
    n: usize,
) -> Vec<T> {
    if !raw.is_empty() {
        return raw.chunks_exact(width).map(from_bytes).collect();
    }
    let last = typed.last().copied().unwrap_or_default();
    (0..n)
        .map(|i| typed.get(i).copied().unwrap_or(last))
        .collect()
}

fn constant_of(t: &TensorProto) -> Result<Constant> {
    let shape: Vec<usize> = t
        .tensor_shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.size.max(0) as usize).collect())
        .unwrap_or_default();
    let n: usize = shape.iter().product();
    let raw = t.tensor_content.as_slice();
    let values = match DataType::try_from(t.dtype) {
        Ok(DataType::DtFloat) => Values::Floats(decode(
            raw,
            4,
            |b| f32::from_le_bytes(b.try_into().unwrap()),
            &t.float_val,
            n,
        )),
        Ok(DataType::DtDouble) => Values::Floats(
            decode(
                raw,
                8,
                |b| f64::from_le_bytes(b.try_into().unwrap()),
                &t.double_val,
                n,
            )
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        ),
        Ok(DataType::DtInt32) => Values::Ints(
            decode(
                raw,
                4,
                |b| i32::from_le_bytes(b.try_into().unwrap()),
                &t.int_val,
                n,
            )
            .into_iter()
            .map(i64::from)
            .collect(),
        ),
        Ok(DataType::DtInt64) => Values::Ints(decode(
            raw,
            8,
            |b| i64::from_le_bytes(b.try_into().unwrap()),
            &t.int64_val,
            n,
        )),
        Ok(DataType::DtBool) => Values::Ints(decode(
            raw,
            1,
            |b| i64::from(b[0] != 0),
            &t.bool_val.iter().map(|&b| i64::from(b)).collect::<Vec<_>>(),
            n,
        )),
        other => bail!("constants of type {other:?} are not used by tfe"),
    };
    Ok(Constant { shape, values })
}

impl Constant {
    pub(super) fn ints(&self) -> Result<Vec<i64>> {
        match &self.values {
            Values::Ints(v) => Ok(v.clone()),
            Values::Floats(_) => bail!("expected an integer constant"),
        }
    }

    /// The constant as the ONNX initializer `name`.
    pub(super) fn initializer(&self, name: &str) -> pb::TensorProto {
        let dims = self.shape.iter().map(|&d| d as i64).collect();
        match &self.values {
            Values::Floats(v) => pb::TensorProto {
                name: name.into(),
                dims,
                data_type: ONNX_FLOAT,
                float_data: v.clone(),
                ..Default::default()
            },
            Values::Ints(v) => pb::TensorProto {
                name: name.into(),
                dims,
                data_type: ONNX_INT64,
                int64_data: v.clone(),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_tensorflow::tfpb::tensorflow::{AttrValue, NodeDef, TensorShapeProto};

    fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
        NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|i| i.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn constants_are_seen_through_identity_chains_in_any_order() {
        let mut filter = node("filter", "Const", &[]);
        let value = TensorProto {
            dtype: DataType::DtInt32 as i32,
            tensor_shape: Some(TensorShapeProto::default()),
            int_val: vec![7],
            ..Default::default()
        };
        filter.attr.insert(
            "value".into(),
            AttrValue {
                value: Some(Value::Tensor(value)),
            },
        );
        let graph = GraphDef {
            node: vec![
                node("outer", "Identity", &["inner:0", "^NoOp"]),
                node("inner", "Identity", &["^control", "filter"]),
                filter,
                node("computed", "Identity", &["input"]),
            ],
            ..Default::default()
        };
        let consts = graph_constants(&graph).unwrap();
        assert_eq!(consts["outer"].ints().unwrap(), vec![7]);
        assert_eq!(consts["inner"].ints().unwrap(), vec![7]);
        assert!(!consts.contains_key("computed"));
    }
}
