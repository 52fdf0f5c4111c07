//! TensorFlow frozen graphs: a GraphDef is translated into an equivalent ONNX graph (NHWC
//! convolutions and pools become NCHW ONNX ops between transposes, fused batch norms become
//! the affine map they compute), so that shape inference, lowering and `--check` are the
//! ONNX pipeline's. Inputs default to the Placeholders, outputs to the nodes nobody reads.

use anyhow::{Context, Result, anyhow, bail, ensure};
use prost::Message;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_tensorflow::prelude::DatumType;
use tract_tensorflow::tfpb::tensorflow::{DataType, GraphDef, NodeDef, TensorProto};

/// A constant's values, decoded from TensorFlow's encodings.
#[derive(Clone, Debug)]
enum Values {
    Floats(Vec<f32>),
    Ints(Vec<i64>),
}

#[derive(Clone, Debug)]
struct Constant {
    shape: Vec<usize>,
    values: Values,
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
    fn ints(&self) -> Result<Vec<i64>> {
        match &self.values {
            Values::Ints(v) => Ok(v.clone()),
            Values::Floats(_) => bail!("expected an integer constant"),
        }
    }
}

/// Which tensors are the model's inputs and outputs; empty means "found in the graph".
#[derive(Clone, Debug, Default)]
pub struct GraphNames {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

const OPSET: i64 = 13;
const ONNX_FLOAT: i32 = 1;
const ONNX_INT64: i32 = 7;
const NHWC_TO_NCHW: [i64; 4] = [0, 3, 1, 2];
const NCHW_TO_NHWC: [i64; 4] = [0, 2, 3, 1];

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

/// The TF tensor name `node:0` (or `node`) as an ONNX tensor name.
fn tensor(name: &str) -> String {
    name.strip_suffix(":0").unwrap_or(name).to_string()
}

struct Translator {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    fresh: usize,
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

impl Translator {
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

    fn constant(&mut self, name: &str, c: &Constant) {
        let dims = c.shape.iter().map(|&d| d as i64).collect();
        let proto = match &c.values {
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
        };
        self.initializers.push(proto);
    }

    /// `op` applied in NCHW to an NHWC (or already NCHW) tensor: transposes around it.
    fn in_nchw(
        &mut self,
        node: &NodeDef,
        op: &str,
        x: &str,
        extra: &[&str],
        attributes: Vec<pb::AttributeProto>,
    ) -> Result<()> {
        let nhwc = node
            .get_attr_opt_str("data_format")?
            .is_none_or(|f| f == "NHWC");
        let out = tensor(&node.name);
        if !nhwc {
            let inputs: Vec<&str> = std::iter::once(x).chain(extra.iter().copied()).collect();
            self.emit(op, &node.name, &inputs, &out, attributes);
            return Ok(());
        }
        let nchw = self.temp(&node.name, "nchw");
        self.emit(
            "Transpose",
            &format!("{}/to_nchw", node.name),
            &[x],
            &nchw,
            vec![attr_ints("perm", &NHWC_TO_NCHW)],
        );
        let inner = self.temp(&node.name, "inner");
        let inputs: Vec<&str> = std::iter::once(nchw.as_str())
            .chain(extra.iter().copied())
            .collect();
        self.emit(op, &node.name, &inputs, &inner, attributes);
        self.emit(
            "Transpose",
            &format!("{}/to_nhwc", node.name),
            &[&inner],
            &out,
            vec![attr_ints("perm", &NCHW_TO_NHWC)],
        );
        Ok(())
    }

    /// Spatial entries of an NHWC (or NCHW) 4-vector attribute such as strides.
    fn spatial(node: &NodeDef, name: &str) -> Result<Vec<i64>> {
        let v: Vec<i64> = node
            .get_attr_opt_list_int(name)?
            .unwrap_or_else(|| vec![1; 4]);
        ensure!(
            v.len() == 4,
            "{} of node {} should have 4 entries",
            name,
            node.name
        );
        let nhwc = node
            .get_attr_opt_str("data_format")?
            .is_none_or(|f| f == "NHWC");
        Ok(if nhwc {
            v[1..3].to_vec()
        } else {
            v[2..4].to_vec()
        })
    }

    fn padding(node: &NodeDef) -> Result<pb::AttributeProto> {
        Ok(match node.get_attr_str("padding")?.as_str() {
            "SAME" => attr_str("auto_pad", "SAME_UPPER"),
            "VALID" => attr_str("auto_pad", "VALID"),
            other => bail!("padding {other} of node {} is not supported", node.name),
        })
    }

    fn translate(&mut self, node: &NodeDef, consts: &HashMap<String, Constant>) -> Result<()> {
        let inputs: Vec<String> = node
            .input
            .iter()
            .filter(|i| !i.starts_with('^'))
            .map(|i| tensor(i))
            .collect();
        let out = tensor(&node.name);
        let input = |i: usize| -> Result<&str> {
            inputs
                .get(i)
                .map(String::as_str)
                .ok_or_else(|| anyhow!("node {} lacks input {i}", node.name))
        };
        let const_ints = |i: usize| -> Result<Vec<i64>> {
            consts
                .get(input(i)?)
                .ok_or_else(|| anyhow!("input {i} of node {} must be a constant", node.name))?
                .ints()
        };
        let op = node.op.as_str();
        match op {
            "Const" => self.constant(&out, consts.get(&node.name).expect("decoded up front")),
            "Placeholder" | "NoOp" => {}
            op if PASS_THROUGH.contains(&op) => {
                self.emit("Identity", &node.name, &[input(0)?], &out, vec![])
            }
            "Conv2D" | "DepthwiseConv2dNative" => {
                let filter = input(1)?;
                // HWIO (Conv2D) or HW C multiplier (depthwise) to ONNX's O I/g H W.
                let oihw = self.temp(&node.name, "filter");
                self.emit(
                    "Transpose",
                    &format!("{}/filter", node.name),
                    &[filter],
                    &oihw,
                    vec![attr_ints("perm", &[3, 2, 0, 1])],
                );
                let mut attributes = vec![
                    Self::padding(node)?,
                    attr_ints("strides", &Self::spatial(node, "strides")?),
                    attr_ints("dilations", &Self::spatial(node, "dilations")?),
                ];
                let weight = if op == "DepthwiseConv2dNative" {
                    let shape = consts
                        .get(filter)
                        .ok_or_else(|| anyhow!("the filter of {} must be a constant", node.name))?
                        .shape
                        .clone();
                    let (channels, multiplier) = (shape[2] as i64, shape[3] as i64);
                    // [M, C, H, W] -> [C, M, H, W] -> [C*M, 1, H, W]
                    let cm = self.temp(&node.name, "filter_cm");
                    self.emit(
                        "Transpose",
                        &format!("{}/filter_cm", node.name),
                        &[&oihw],
                        &cm,
                        vec![attr_ints("perm", &[1, 0, 2, 3])],
                    );
                    let target = self.int_constant(
                        &node.name,
                        &[channels * multiplier, 1, shape[0] as i64, shape[1] as i64],
                    );
                    let grouped = self.temp(&node.name, "filter_grouped");
                    self.emit(
                        "Reshape",
                        &format!("{}/filter_grouped", node.name),
                        &[&cm, &target],
                        &grouped,
                        vec![],
                    );
                    attributes.push(attr_int("group", channels));
                    grouped
                } else {
                    oihw
                };
                self.in_nchw(node, "Conv", input(0)?, &[&weight], attributes)?;
            }
            "MaxPool" | "AvgPool" => {
                let mut attributes = vec![
                    Self::padding(node)?,
                    attr_ints("kernel_shape", &Self::spatial(node, "ksize")?),
                    attr_ints("strides", &Self::spatial(node, "strides")?),
                ];
                let onnx_op = if op == "MaxPool" {
                    "MaxPool"
                } else {
                    "AveragePool"
                };
                if op == "AvgPool" {
                    attributes.push(attr_int("count_include_pad", 0));
                }
                self.in_nchw(node, onnx_op, input(0)?, &[], attributes)?;
            }
            "BiasAdd" => {
                let nhwc = node
                    .get_attr_opt_str("data_format")?
                    .is_none_or(|f| f == "NHWC");
                let bias = if nhwc {
                    input(1)?.to_string()
                } else {
                    let target = self.int_constant(&node.name, &[-1, 1, 1]);
                    let reshaped = self.temp(&node.name, "bias");
                    self.emit(
                        "Reshape",
                        &format!("{}/bias", node.name),
                        &[input(1)?, &target],
                        &reshaped,
                        vec![],
                    );
                    reshaped
                };
                self.emit("Add", &node.name, &[input(0)?, &bias], &out, vec![]);
            }
            "FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3" => {
                ensure!(
                    !node.get_attr_opt_bool("is_training")?.unwrap_or(false),
                    "node {} is a batch norm in training mode; freeze the graph for inference",
                    node.name
                );
                let eps = node.get_attr_opt_float::<f32>("epsilon")?.unwrap_or(1e-3);
                self.in_nchw(
                    node,
                    "BatchNormalization",
                    input(0)?,
                    &[input(1)?, input(2)?, input(3)?, input(4)?],
                    vec![attr_float("epsilon", eps)],
                )?;
            }
            "MatMul" => {
                let attributes = vec![
                    attr_int(
                        "transA",
                        node.get_attr_opt_bool("transpose_a")?.unwrap_or(false) as i64,
                    ),
                    attr_int(
                        "transB",
                        node.get_attr_opt_bool("transpose_b")?.unwrap_or(false) as i64,
                    ),
                ];
                self.emit(
                    "Gemm",
                    &node.name,
                    &[input(0)?, input(1)?],
                    &out,
                    attributes,
                );
            }
            "Relu6" => {
                let (lo, hi) = (self.temp(&node.name, "zero"), self.temp(&node.name, "six"));
                self.initializers.push(pb::TensorProto {
                    name: lo.clone(),
                    data_type: ONNX_FLOAT,
                    float_data: vec![0.0],
                    ..Default::default()
                });
                self.initializers.push(pb::TensorProto {
                    name: hi.clone(),
                    data_type: ONNX_FLOAT,
                    float_data: vec![6.0],
                    ..Default::default()
                });
                self.emit("Clip", &node.name, &[input(0)?, &lo, &hi], &out, vec![]);
            }
            "Square" => self.emit("Mul", &node.name, &[input(0)?, input(0)?], &out, vec![]),
            "Rsqrt" => {
                let half = self.temp(&node.name, "exponent");
                self.initializers.push(pb::TensorProto {
                    name: half.clone(),
                    data_type: ONNX_FLOAT,
                    float_data: vec![-0.5],
                    ..Default::default()
                });
                self.emit("Pow", &node.name, &[input(0)?, &half], &out, vec![]);
            }
            "Softmax" | "LogSoftmax" => self.emit(
                op,
                &node.name,
                &[input(0)?],
                &out,
                vec![attr_int("axis", -1)],
            ),
            "Reshape" => self.emit("Reshape", &node.name, &[input(0)?, input(1)?], &out, vec![]),
            "Squeeze" => {
                let dims: Vec<i64> = node
                    .get_attr_opt_list_int("squeeze_dims")?
                    .unwrap_or_default();
                let mut ins = vec![input(0)?.to_string()];
                if !dims.is_empty() {
                    ins.push(self.int_constant(&node.name, &dims));
                }
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.emit("Squeeze", &node.name, &refs, &out, vec![]);
            }
            "ExpandDims" => self.emit(
                "Unsqueeze",
                &node.name,
                &[input(0)?, input(1)?],
                &out,
                vec![],
            ),
            "ConcatV2" => {
                let axis = *const_ints(inputs.len() - 1)?
                    .first()
                    .ok_or_else(|| anyhow!("empty axis"))?;
                let refs: Vec<&str> = inputs[..inputs.len() - 1]
                    .iter()
                    .map(String::as_str)
                    .collect();
                self.emit(
                    "Concat",
                    &node.name,
                    &refs,
                    &out,
                    vec![attr_int("axis", axis)],
                );
            }
            "Transpose" => {
                let perm = const_ints(1)?;
                self.emit(
                    "Transpose",
                    &node.name,
                    &[input(0)?],
                    &out,
                    vec![attr_ints("perm", &perm)],
                );
            }
            "Pad" | "PadV2" => {
                let paddings = const_ints(1)?;
                let rank = paddings.len() / 2;
                let pads: Vec<i64> = (0..rank)
                    .map(|d| paddings[2 * d])
                    .chain((0..rank).map(|d| paddings[2 * d + 1]))
                    .collect();
                let pads = self.int_constant(&node.name, &pads);
                let mut ins = vec![input(0)?.to_string(), pads];
                if op == "PadV2" {
                    ins.push(input(2)?.to_string());
                }
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.emit("Pad", &node.name, &refs, &out, vec![]);
            }
            "Mean" | "Sum" | "Max" | "Min" => {
                let axes = self.int_constant(&node.name, &const_ints(1)?);
                let keep = node.get_attr_opt_bool("keep_dims")?.unwrap_or(false) as i64;
                let onnx_op = match op {
                    "Mean" => "ReduceMean",
                    "Sum" => "ReduceSum",
                    "Max" => "ReduceMax",
                    _ => "ReduceMin",
                };
                // ReduceSum takes its axes as an input from opset 13; the others as an attribute.
                if onnx_op == "ReduceSum" {
                    self.emit(
                        onnx_op,
                        &node.name,
                        &[input(0)?, &axes],
                        &out,
                        vec![attr_int("keepdims", keep)],
                    );
                } else {
                    self.emit(
                        onnx_op,
                        &node.name,
                        &[input(0)?],
                        &out,
                        vec![
                            attr_ints("axes", &const_ints(1)?),
                            attr_int("keepdims", keep),
                        ],
                    );
                }
            }
            "Shape" => self.emit("Shape", &node.name, &[input(0)?], &out, vec![]),
            "StridedSlice" => {
                for mask in ["ellipsis_mask", "new_axis_mask"] {
                    ensure!(
                        node.get_attr_opt_int::<i64>(mask)?.unwrap_or(0) == 0,
                        "StridedSlice {mask} is not supported"
                    );
                }
                let (begin, end, strides) = (const_ints(1)?, const_ints(2)?, const_ints(3)?);
                let bit = |mask: &str, i: usize| -> Result<bool> {
                    Ok(node.get_attr_opt_int::<i64>(mask)?.unwrap_or(0) >> i & 1 == 1)
                };
                let mut starts = vec![];
                let mut ends = vec![];
                let mut shrink = vec![];
                for i in 0..begin.len() {
                    let backwards = strides[i] < 0;
                    starts.push(if bit("begin_mask", i)? {
                        if backwards { i64::MAX } else { 0 }
                    } else {
                        begin[i]
                    });
                    ends.push(if bit("end_mask", i)? {
                        if backwards { i64::MIN } else { i64::MAX }
                    } else if bit("shrink_axis_mask", i)? {
                        begin[i] + 1
                    } else {
                        end[i]
                    });
                    if bit("shrink_axis_mask", i)? {
                        shrink.push(i as i64);
                    }
                }
                let axes: Vec<i64> = (0..begin.len() as i64).collect();
                let args = [
                    self.int_constant(&node.name, &starts),
                    self.int_constant(&node.name, &ends),
                    self.int_constant(&node.name, &axes),
                    self.int_constant(&node.name, &strides),
                ];
                let sliced = if shrink.is_empty() {
                    out.clone()
                } else {
                    self.temp(&node.name, "sliced")
                };
                self.emit(
                    "Slice",
                    &node.name,
                    &[input(0)?, &args[0], &args[1], &args[2], &args[3]],
                    &sliced,
                    vec![],
                );
                if !shrink.is_empty() {
                    let axes = self.int_constant(&node.name, &shrink);
                    self.emit(
                        "Squeeze",
                        &format!("{}/shrink", node.name),
                        &[&sliced, &axes],
                        &out,
                        vec![],
                    );
                }
            }
            "Pack" => {
                let axis = node.get_attr_opt_int::<i64>("axis")?.unwrap_or(0);
                let axes = self.int_constant(&node.name, &[axis]);
                let mut expanded = vec![];
                for (i, part) in inputs.iter().enumerate() {
                    let name = self.temp(&node.name, "expanded");
                    self.emit(
                        "Unsqueeze",
                        &format!("{}/expand{i}", node.name),
                        &[part, &axes],
                        &name,
                        vec![],
                    );
                    expanded.push(name);
                }
                let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
                self.emit(
                    "Concat",
                    &node.name,
                    &refs,
                    &out,
                    vec![attr_int("axis", axis)],
                );
            }
            "Cast" => {
                let to = match node.get_attr_opt_datum_type("DstT")? {
                    Some(DatumType::F32) | Some(DatumType::F64) | Some(DatumType::F16) => {
                        ONNX_FLOAT
                    }
                    _ => ONNX_INT64,
                };
                self.emit(
                    "Cast",
                    &node.name,
                    &[input(0)?],
                    &out,
                    vec![attr_int("to", to as i64)],
                );
            }
            "ArgMax" | "ArgMin" => {
                let axis = *const_ints(1)?
                    .first()
                    .ok_or_else(|| anyhow!("empty axis"))?;
                self.emit(
                    op,
                    &node.name,
                    &[input(0)?],
                    &out,
                    vec![attr_int("axis", axis), attr_int("keepdims", 0)],
                );
            }
            _ => {
                let onnx_op = match op {
                    "Add" | "AddV2" => "Add",
                    "Sub" => "Sub",
                    "Mul" => "Mul",
                    "RealDiv" | "Div" => "Div",
                    "Maximum" => "Max",
                    "Minimum" => "Min",
                    "Relu" | "Sigmoid" | "Tanh" | "Elu" | "Softplus" | "Exp" | "Log" | "Sqrt"
                    | "Neg" | "Abs" | "Selu" => op,
                    // Keep the TF name so that --check reports it.
                    other => other,
                };
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let domain_marker = if onnx_op == op && !KNOWN_SAME_NAME.contains(&op) {
                    "ai.tensorflow"
                } else {
                    ""
                };
                self.nodes.push(pb::NodeProto {
                    name: node.name.clone(),
                    op_type: onnx_op.to_string(),
                    domain: domain_marker.to_string(),
                    input: refs.iter().map(|s| s.to_string()).collect(),
                    output: vec![out],
                    ..Default::default()
                });
            }
        }
        Ok(())
    }
}

/// TF ops whose ONNX counterpart has the same name and semantics.
const KNOWN_SAME_NAME: &[&str] = &[
    "Add", "Sub", "Mul", "Relu", "Sigmoid", "Tanh", "Elu", "Softplus", "Exp", "Log", "Sqrt", "Neg",
    "Abs", "Selu",
];

fn value_info(name: &str, dims: Option<&[i64]>) -> pb::ValueInfoProto {
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

/// The ONNX model equivalent to a frozen GraphDef.
pub fn to_onnx(bytes: &[u8], names: &GraphNames) -> Result<pb::ModelProto> {
    let graph = GraphDef::decode(bytes).context("the file is not a TensorFlow GraphDef")?;
    let mut consts = HashMap::new();
    for node in graph.node.iter().filter(|n| n.op == "Const") {
        let value = match node.attr.get("value").and_then(|v| v.value.as_ref()) {
            Some(tract_tensorflow::tfpb::tensorflow::attr_value::Value::Tensor(t)) => {
                constant_of(t).with_context(|| format!("constant {}", node.name))?
            }
            _ => bail!("constant {} has no tensor value", node.name),
        };
        consts.insert(node.name.clone(), value);
    }
    let mut t = Translator {
        nodes: vec![],
        initializers: vec![],
        fresh: 0,
    };
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
    Ok(pb::ModelProto {
        ir_version: 8,
        producer_name: "tfe (from a TensorFlow frozen graph)".into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        graph: Some(pb::GraphProto {
            name: "tensorflow".into(),
            node: t.nodes,
            initializer: t.initializers,
            input: input_infos,
            output: outputs.iter().map(|o| value_info(o, None)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    })
}
