//! Between the ONNX file and the forward plan's weights: which initializer each weight came
//! from (kept as it is, or Gemm's B transposed and scaled by alpha, C scaled by beta), so
//! that it can train and be written back by the inverse transform; which weights
//! `--freeze` fixes; and the trained model written as MODEL.onnx with those initializers
//! replaced.

use super::derive::Trainable;
use crate::import::Model;
use crate::plan::{Plan, Visibility};
use anyhow::{Context, Result, bail};
use ndarray::{ArrayD, Ix2, IxDyn};
use prost::Message;
use std::path::Path;
use tract_onnx::pb;

/// The ONNX initializer a plan weight is, up to a transpose and a factor.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub initializer: String,
    /// The node that reads it.
    pub node: String,
    /// The plan holds the initializer transposed (Gemm's `transB`).
    pub transposed: bool,
    /// The plan holds the initializer times this (Gemm's alpha or beta).
    pub factor: f32,
}

const FLOAT: i32 = pb::tensor_proto::DataType::Float as i32;

/// A float initializer's data, when it is stored in the file (not external).
fn initializer_data(t: &pb::TensorProto) -> Option<ArrayD<f32>> {
    if t.data_type != FLOAT {
        return None;
    }
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("four bytes")))
            .collect()
    } else {
        t.float_data.clone()
    };
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    ArrayD::from_shape_vec(IxDyn(&dims), values).ok()
}

fn initializer<'m>(model: &'m Model, name: &str) -> Option<&'m pb::TensorProto> {
    let graph = model.proto.graph.as_ref()?;
    graph.initializer.iter().find(|t| t.name == name)
}

/// What the lowering makes of an initializer's data under `origin`.
fn transformed(data: &ArrayD<f32>, origin: &Origin) -> Option<ArrayD<f32>> {
    let mut data = data.clone();
    if origin.transposed {
        let matrix = data.into_dimensionality::<Ix2>().ok()?;
        data = matrix
            .reversed_axes()
            .as_standard_layout()
            .into_owned()
            .into_dyn();
    }
    Some(data * origin.factor)
}

/// The origin of each of `plan`'s weights in `model`, where it can be written back.
pub fn origins(model: &Model, plan: &Plan) -> Vec<Option<Origin>> {
    plan.weights
        .iter()
        .map(|w| {
            let name = &plan.value(w.value).name;
            let candidate = match name.rsplit_once('/') {
                Some((node, part @ ("B" | "C"))) => model
                    .nodes
                    .iter()
                    .find(|n| n.name == node && n.op_type == "Gemm")
                    .and_then(|n| {
                        let input = n.input(if part == "B" { 1 } else { 2 })?;
                        let factor = n.float(if part == "B" { "alpha" } else { "beta" }, 1.0);
                        Some(Origin {
                            initializer: input.to_string(),
                            node: n.name.clone(),
                            transposed: part == "B" && n.int("transB", 0).ok()? != 0,
                            factor: factor.ok()?,
                        })
                    }),
                _ => None,
            };
            let origin = candidate.or_else(|| {
                let reader = model.nodes.iter().find(|n| n.inputs.contains(name))?;
                Some(Origin {
                    initializer: name.clone(),
                    node: reader.name.clone(),
                    transposed: false,
                    factor: 1.0,
                })
            })?;
            let data = initializer_data(initializer(model, &origin.initializer)?)?;
            (transformed(&data, &origin)? == w.data).then_some(origin)
        })
        .collect()
}

/// Whether each weight trains: secret weights with an origin train unless a `freeze` prefix
/// matches their initializer's or their node's name. A prefix that matches nothing is
/// refused (a typo would otherwise train what was meant to stay fixed).
pub fn trainability(
    plan: &Plan,
    origins: &[Option<Origin>],
    freeze: &[String],
) -> Result<Vec<Trainable>> {
    let mut used = vec![false; freeze.len()];
    let result = plan
        .weights
        .iter()
        .zip(origins)
        .map(|(w, origin)| {
            let name = &plan.value(w.value).name;
            let names = [
                Some(name.as_str()),
                origin.as_ref().map(|o| o.initializer.as_str()),
                origin.as_ref().map(|o| o.node.as_str()),
            ];
            let mut frozen = false;
            for (prefix, used) in freeze.iter().zip(&mut used) {
                if names
                    .iter()
                    .flatten()
                    .any(|n| n.starts_with(prefix.as_str()))
                {
                    *used = true;
                    frozen = true;
                }
            }
            match (w.visibility, origin) {
                (Visibility::Public, _) => Trainable::Frozen,
                _ if frozen => Trainable::Frozen,
                (_, None) => Trainable::Untraceable(
                    "made at conversion: not an initializer of a MatMul or Gemm, so it stays as it is"
                        .to_string(),
                ),
                (_, Some(_)) => Trainable::Yes,
            }
        })
        .collect();
    if let Some(i) = used.iter().position(|u| !u) {
        bail!(
            "--freeze {} matches no weight (give a prefix of an initializer's or a node's name)",
            freeze[i]
        );
    }
    Ok(result)
}

/// Writes `model` with the initializers of the weights `trained` (indices into `plan`'s
/// weights, whose data holds the trained values) replaced, to `out`.
pub fn write_trained(
    model: &Model,
    plan: &Plan,
    origins: &[Option<Origin>],
    trained: &[usize],
    out: &Path,
) -> Result<()> {
    let mut proto = model.proto.clone();
    let graph = proto.graph.as_mut().context("the model holds no graph")?;
    for &i in trained {
        let origin = origins[i]
            .as_ref()
            .context("a trained weight has an origin")?;
        let mut data = plan.weights[i].data.clone() / origin.factor;
        if origin.transposed {
            let matrix = data.into_dimensionality::<Ix2>()?;
            data = matrix
                .reversed_axes()
                .as_standard_layout()
                .into_owned()
                .into_dyn();
        }
        let Some(t) = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == origin.initializer)
        else {
            bail!("initializer {} is missing", origin.initializer);
        };
        t.float_data.clear();
        t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    std::fs::write(out, proto.encode_to_vec())
        .with_context(|| format!("cannot write the trained model to {}", out.display()))
}
