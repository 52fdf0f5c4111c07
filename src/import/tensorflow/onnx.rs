//! Pieces of the ONNX graph a translation builds: tensor names, element types, attributes
//! and the value infos of the graph's inputs and outputs.

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

pub(super) const ONNX_FLOAT: i32 = 1;
pub(super) const ONNX_INT64: i32 = 7;

/// The TF tensor name `node:0` (or `node`) as an ONNX tensor name.
pub(super) fn tensor(name: &str) -> String {
    name.strip_suffix(":0").unwrap_or(name).to_string()
}

pub(super) use crate::import::ints_attribute as attr_ints;

pub(super) fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub(super) fn attr_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

pub(super) fn attr_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A float tensor of the graph's interface; a negative dimension is the symbolic batch `N`.
pub(super) fn value_info(name: &str, dims: Option<&[i64]>) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(if d >= 0 {
                    Value::DimValue(d)
                } else {
                    Value::DimParam("N".into())
                }),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: ONNX_FLOAT,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
