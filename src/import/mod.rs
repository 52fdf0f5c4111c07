//! Reading an ONNX model: the node list, which tensors carry secret data, and tract's shape
//! inference with a symbolic batch size, so that one plan serves every batch.

mod batch;
mod graph;
mod ml_shapes;
mod pads;
mod tensorflow;
mod tensors;
mod windows;

pub use graph::{Node, initializer_ints};
pub use tensorflow::GraphNames;

use crate::plan::Shape;
use anyhow::{Context, Result, anyhow, bail};
use ndarray::ArrayD;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// An ONNX model as read from disk, before shape inference.
pub struct Model {
    pub path: PathBuf,
    pub sha256: String,
    pub proto: pb::ModelProto,
    pub opset: i64,
    pub nodes: Vec<Node>,
    /// Graph inputs that are not initializers, in order.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub initializers: HashSet<String>,
}

/// The ONNX element types a graph input may have, with their tract types: the client gives
/// every input as numbers (integers are token ids, labels or masks).
fn input_datum_type(elem_type: i32) -> Option<DatumType> {
    Some(match elem_type {
        1 => f32::datum_type(),
        6 => i32::datum_type(),
        7 => i64::datum_type(),
        9 => bool::datum_type(),
        11 => f64::datum_type(),
        _ => return None,
    })
}

/// Reads an ONNX model, or a TensorFlow frozen graph (a `.pb` GraphDef) translated into one.
pub fn read_model(path: &Path, names: &GraphNames) -> Result<Model> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    let frozen_graph =
        path.extension().is_some_and(|e| e == "pb") && tensorflow::is_graph_def(&bytes);
    let proto = if frozen_graph {
        tensorflow::to_onnx(&bytes, names)
            .with_context(|| format!("{}: translating the TensorFlow graph", path.display()))?
    } else {
        pb::ModelProto::decode(bytes.as_slice()).map_err(|e| {
            anyhow!("{} is not an ONNX model: protobuf decoding failed ({e}); give the .onnx file written by your exporter (or a TensorFlow frozen graph named .pb)", path.display())
        })?
    };
    if proto.graph.is_none() {
        bail!("{} holds no graph; is it an ONNX model?", path.display());
    }
    Ok(Model::from_proto(
        path.to_path_buf(),
        format!("{:x}", Sha256::digest(&bytes)),
        proto,
    ))
}

impl Model {
    /// The model of `proto`, read from `path` whose digest is `sha256`.
    fn from_proto(path: PathBuf, sha256: String, proto: pb::ModelProto) -> Model {
        let graph = proto.graph.as_ref().expect("checked by the caller");
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version);
        let initializers: HashSet<String> =
            graph.initializer.iter().map(|t| t.name.clone()).collect();
        let inputs = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !initializers.contains(n))
            .collect();
        Model {
            path,
            sha256,
            opset,
            nodes: graph
                .node
                .iter()
                .enumerate()
                .map(|(i, n)| Node::from_proto(n, i))
                .collect(),
            inputs,
            outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            initializers,
            proto,
        }
    }

    /// The same model file with its graph rewritten at convert time (Scans batched over
    /// their iterations); the path and digest stay the file's.
    pub fn with_graph(self, graph: pb::GraphProto) -> Model {
        let proto = pb::ModelProto {
            graph: Some(graph),
            ..self.proto
        };
        Model::from_proto(self.path, self.sha256, proto)
    }

    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Tensors whose values depend on a graph input's values (not just its shape). Everything
    /// else is computable at convert time and is folded away.
    pub fn secret_tensors(&self) -> HashSet<String> {
        let mut secret: HashSet<String> = self.inputs.iter().cloned().collect();
        for node in &self.nodes {
            let reads_values = !matches!(node.op_type.as_str(), "Shape" | "Size");
            let reads_secret = node
                .inputs
                .iter()
                .chain(&node.captured())
                .any(|i| secret.contains(i));
            if reads_values && reads_secret {
                secret.extend(node.outputs.iter().filter(|o| !o.is_empty()).cloned());
            }
        }
        secret
    }

    /// Whether a graph input holds integers (token ids, labels, masks) rather than reals.
    pub fn is_integer_input(&self, name: &str) -> bool {
        self.declared_input(name)
            .is_ok_and(|(elem_type, _)| matches!(elem_type, 6 | 7 | 9))
    }

    /// Every node reads only tensors defined before it (ONNX requires topological order).
    fn check_wiring(&self) -> Result<()> {
        let mut defined: HashSet<&str> = self.initializers.iter().map(String::as_str).collect();
        defined.extend(self.inputs.iter().map(String::as_str));
        for node in &self.nodes {
            if let Some(missing) = node
                .inputs
                .iter()
                .find(|i| !i.is_empty() && !defined.contains(i.as_str()))
            {
                let later = self.nodes.iter().any(|n| n.outputs.contains(missing));
                bail!(
                    "node {} ({}) reads tensor {missing}, which {}; the model file is malformed, export it again",
                    node.name,
                    node.op_type,
                    if later {
                        "is only computed by a later node (the graph is not in topological order)"
                    } else {
                        "no graph input, initializer or node defines"
                    }
                );
            }
            defined.extend(
                node.outputs
                    .iter()
                    .filter(|o| !o.is_empty())
                    .map(String::as_str),
            );
        }
        if self.outputs.is_empty() {
            bail!("the model declares no graph outputs; there is nothing to predict");
        }
        if let Some(missing) = self.outputs.iter().find(|o| !defined.contains(o.as_str())) {
            bail!(
                "graph output '{missing}' is not computed by any node, nor is it a graph input or initializer; the model file is malformed, export it again"
            );
        }
        Ok(())
    }

    /// The declared shape of a graph input: `Some(n)` for a fixed dimension.
    fn declared_input(&self, name: &str) -> Result<(i32, Vec<Option<usize>>)> {
        let graph = self.proto.graph.as_ref().expect("checked on read");
        let input = graph
            .input
            .iter()
            .find(|i| i.name == name)
            .expect("input names come from the graph");
        let Some(pb::type_proto::Value::TensorType(t)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            bail!("graph input {name} is not a tensor");
        };
        let dims = t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                            Some(*v as usize)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .ok_or_else(|| {
                anyhow!(
                    "graph input {name} declares no shape; re-export the model with input shapes"
                )
            })?;
        Ok((t.elem_type, dims))
    }
}

/// How the plan's batch dimension came out of shape inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// Axis 0 of every input is the batch, any size.
    Symbolic,
    /// The model only works at this batch size (it hard-codes it somewhere).
    Fixed(usize),
    /// Every input dimension as declared, on request.
    AsDeclared,
}

/// What shape inference knows about one tensor.
#[derive(Clone, Debug, Default)]
pub struct Fact {
    pub shape: Option<Shape>,
    pub konst: Option<Arc<Tensor>>,
    /// A tensor whose value depends on the batch size only by repeating a block along the
    /// batch axis (see [`Tiled`]).
    pub tiled: Option<Tiled>,
    pub datum_type: Option<DatumType>,
}

/// A tensor computed at convert time from constants and shapes alone whose value depends on
/// the batch size only by repetition: at batch N it is `block` repeated N times along `axis`
/// (the batch axis). Exporters build such tensors from `Shape` of the input: a zero initial
/// state, a class token expanded to the batch, the embedding of all-zero token types.
///
/// Index tensors may also count along the batch: row n of the batch holds `block + n step`
/// (the positions `n S + s` of a flattened [N, S] tensor, as Hugging Face exports gather
/// their padding mask by).
#[derive(Clone, Debug)]
pub struct Tiled {
    pub block: ArrayD<f32>,
    pub axis: usize,
    pub step: Option<ArrayD<f32>>,
}

/// A model after shape inference.
pub struct Graph {
    pub model: Model,
    pub batch: BatchMode,
    facts: HashMap<String, Fact>,
    secret: HashSet<String>,
}

impl Graph {
    pub fn fact(&self, tensor: &str) -> Option<&Fact> {
        self.facts.get(tensor)
    }

    /// The model, to rewrite and analyse again (see [`Model::with_graph`]).
    pub fn into_model(self) -> Model {
        self.model
    }

    pub fn shape(&self, tensor: &str) -> Result<&Shape> {
        self.facts
            .get(tensor)
            .and_then(|f| f.shape.as_ref())
            .ok_or_else(|| {
                anyhow!("shape inference could not determine the shape of tensor {tensor}")
            })
    }

    pub fn is_secret(&self, tensor: &str) -> bool {
        self.secret.contains(tensor)
    }

    /// The value of a tensor known at convert time (initializer, Constant or folded subgraph).
    pub fn constant(&self, tensor: &str) -> Option<&Arc<Tensor>> {
        self.facts.get(tensor).and_then(|f| f.konst.as_ref())
    }

    /// A batch-sized tensor known at convert time but for the batch size (see [`Tiled`]).
    pub fn tiled(&self, tensor: &str) -> Option<&Tiled> {
        self.facts.get(tensor).and_then(|f| f.tiled.as_ref())
    }

    /// The one value of a batch-sized tensor filled with it (the zero initial state
    /// exporters build from `Shape`).
    pub fn uniform(&self, tensor: &str) -> Option<f32> {
        let tiled = self.tiled(tensor).filter(|t| t.step.is_none())?;
        let block = &tiled.block;
        let first = *block.first()?;
        block.iter().all(|&v| v == first).then_some(first)
    }
}

/// Which input dimensions a plan leaves free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchPolicy {
    /// Axis 0 of every input is the batch, so one plan serves every batch size.
    #[default]
    Symbolic,
    /// Every dimension stays as the model declares it.
    AsDeclared,
}

/// Runs shape inference, with a symbolic batch unless `policy` says otherwise; see [`batch`].
pub fn analyse(model: Model, policy: BatchPolicy) -> Result<Graph> {
    model.check_wiring()?;
    windows::check(&model.nodes)?;
    tensors::check(model.proto.graph.as_ref().expect("checked on read"))?;
    for name in &model.inputs {
        if let Some(axis) = model
            .declared_input(name)?
            .1
            .iter()
            .position(|d| *d == Some(0))
        {
            bail!(
                "graph input {name} declares size 0 on axis {axis}; tfe computes on non-empty tensors"
            );
        }
    }
    if policy == BatchPolicy::AsDeclared {
        for name in &model.inputs {
            let (elem_type, dims) = model.declared_input(name)?;
            check_elem_type(name, elem_type)?;
            if let Some(axis) = dims.iter().position(Option::is_none) {
                bail!(
                    "graph input {name} has a symbolic size on axis {axis}; with --fixed-shapes every dimension must be declared"
                );
            }
        }
        let facts = tract_facts(&model, &model.proto, None).context("shape inference failed")?;
        let secret = model.secret_tensors();
        return Ok(Graph {
            model,
            batch: BatchMode::AsDeclared,
            facts,
            secret,
        });
    }
    for name in &model.inputs {
        let (elem_type, dims) = model.declared_input(name)?;
        check_elem_type(name, elem_type)?;
        if dims.is_empty() {
            bail!("graph input {name} is a scalar; tfe needs a batch axis first");
        }
        if let Some(axis) = dims.iter().skip(1).position(Option::is_none) {
            bail!(
                "graph input {name} has a symbolic size on axis {}; only axis 0 (the batch) may vary, so re-export with fixed sizes for the other axes",
                axis + 1
            );
        }
    }
    let (batch, facts) = batch::infer(&model)?;
    let secret = model.secret_tensors();
    Ok(Graph {
        model,
        batch,
        facts,
        secret,
    })
}

fn check_elem_type(name: &str, elem_type: i32) -> Result<()> {
    if input_datum_type(elem_type).is_none() {
        bail!(
            "graph input {name} has ONNX element type {elem_type}; tfe takes float, double, int32, int64 or bool inputs, so export the model with one of those"
        );
    }
    Ok(())
}

/// What tract infers for every tensor of `proto`, with axis 0 of every graph input set to
/// `batch` (or every dimension as declared), shapes concrete; the ai.onnx.ml ops tract shapes
/// otherwise, or not at all, shaped as ONNX does ([`ml_shapes`]); see [`pads`] for the nodes
/// analysed a second time.
fn tract_facts(
    model: &Model,
    proto: &pb::ModelProto,
    batch: Option<usize>,
) -> Result<HashMap<String, Fact>> {
    let reshaped = ml_shapes::onnx_shaped(proto);
    let proto = reshaped.as_ref().unwrap_or(proto);
    let facts = analyse_proto(model, proto, batch)?;
    let mut facts = match pads::with_full_rank_pads(proto, &facts) {
        Some(rewritten) => analyse_proto(model, &rewritten, batch)?,
        None => facts,
    };
    ml_shapes::regressor_outputs(model, &mut facts)?;
    Ok(facts)
}

/// `work` inside tract, with a panic (a malformed model tripping an assertion tfe's own
/// checks do not cover) turned into an error naming the model, as a user error should be.
fn without_panics<T>(model: &Model, work: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|_| {
        anyhow!(
            "tract's shape inference stopped on an internal error (above) reading {}; check the file with onnx.checker.check_model(model, full_check=True), export it again, and report it to tfe if it passes",
            model.path.display()
        )
    })
}

fn analyse_proto(
    model: &Model,
    proto: &pb::ModelProto,
    batch: Option<usize>,
) -> Result<HashMap<String, Fact>> {
    let dir = model
        .path
        .parent()
        .map(|p| p.to_string_lossy().into_owned());
    // Shapes the exporter declared for intermediate and output tensors may name the batch
    // symbolically; inference at a concrete batch must not be held to them.
    let mut proto = proto.clone();
    if let Some(graph) = proto.graph.as_mut() {
        // scikit-learn ops tract does not know keep their input's shape: stand-ins for it.
        for node in graph.node.iter_mut().filter(|n| {
            n.domain == "ai.onnx.ml" && matches!(n.op_type.as_str(), "Scaler" | "ZipMap")
        }) {
            node.op_type = "Identity".into();
            node.domain.clear();
            node.attribute.clear();
        }
        graph.value_info.clear();
        for output in &mut graph.output {
            if let Some(pb::type_proto::Value::TensorType(t)) =
                output.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.shape = None;
            }
        }
    }
    let parsed = without_panics(model, || tract_onnx::onnx().parse(&proto, dir.as_deref()))?
        .map_err(|e| anyhow!("tract cannot parse {}: {e:#}", model.path.display()))?;
    let mut tract_model = parsed.model;
    let input_outlets = tract_model.input_outlets()?.to_vec();
    for (ix, outlet) in input_outlets.iter().enumerate() {
        let name = &tract_model.node(outlet.node).name;
        let (elem_type, dims) = model.declared_input(name)?;
        let mut shape: TVec<usize> = dims.iter().map(|d| d.unwrap_or(1)).collect();
        if let (Some(b), Some(first)) = (batch, shape.first_mut()) {
            *first = b;
        }
        let datum_type = input_datum_type(elem_type).unwrap_or(f32::datum_type());
        tract_model.set_input_fact(ix, InferenceFact::dt_shape(datum_type, shape))?;
    }
    without_panics(model, || tract_model.analyse(false))?.map_err(|e| anyhow!("{e:#}"))?;
    let mut facts = HashMap::new();
    for (name, outlet) in &parsed.outlets_by_name {
        let fact = tract_model.outlet_fact(*outlet)?;
        let shape = fact
            .shape
            .as_concrete_finite()
            .ok()
            .flatten()
            .map(|s| Shape::fixed_dims(&s));
        facts.insert(
            name.clone(),
            Fact {
                shape,
                konst: fact.value.concretize(),
                tiled: None,
                datum_type: fact.datum_type.concretize(),
            },
        );
    }
    Ok(facts)
}

/// A one-dimensional int64 initializer, for the rewrites made before shape inference.
pub fn int64_initializer(name: String, values: Vec<i64>) -> pb::TensorProto {
    const ONNX_INT64: i32 = 7;
    pb::TensorProto {
        name,
        dims: vec![values.len() as i64],
        data_type: ONNX_INT64,
        int64_data: values,
        ..Default::default()
    }
}

/// An integer-list attribute, for the rewrites made before shape inference.
pub fn ints_attribute(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A convert-time tensor as integers (shapes, axes, indices).
pub fn ints(t: &Tensor) -> Result<Vec<i64>> {
    let t = t.cast_to::<i64>()?;
    Ok(t.to_plain_array_view::<i64>()?.iter().copied().collect())
}

/// A convert-time tensor as reals (weights and other data).
pub fn floats(t: &Tensor) -> Result<ArrayD<f32>> {
    let t = t.cast_to::<f32>()?;
    Ok(t.to_plain_array_view::<f32>()?.to_owned())
}
