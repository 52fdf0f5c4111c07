//! Test helpers: ONNX models built in Rust (so per-op tests need no Python), the tract
//! plaintext reference, and comparisons.
#![allow(dead_code)]

pub mod cases;
pub mod children;
pub mod deploy;
pub mod tool;

use ndarray::{ArrayD, IxDyn};
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Str(&'static str, &'static str),
    Strs(&'static str, Vec<&'static str>),
    /// A one-element float32 tensor (ConstantOfShape's `value`).
    FloatTensor(&'static str, f32),
    Floats(&'static str, Vec<f32>),
    /// A 1-D float32 tensor (ai.onnx.ml 5's `nodes_splits`, `leaf_weights`).
    FloatsTensor(&'static str, Vec<f32>),
    /// A 1-D uint8 tensor, kept in int32_data as ONNX does (`nodes_modes`).
    BytesTensor(&'static str, Vec<u8>),
    /// A subgraph (a Scan's body), built with [`OnnxBuilder::to_graph`].
    Graph(&'static str, pb::GraphProto),
}

pub struct OnnxBuilder {
    opset: i64,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    /// Operator sets imported besides the default domain's (`ai.onnx.ml`).
    extra_opsets: Vec<(String, i64)>,
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn value_info(name: &str, elem_type: i32, dims: Option<&[Option<i64>]>) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Some(n) => Value::DimValue(*n),
                    None => Value::DimParam("N".into()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A float32 value info whose `None` dims are unknown rather than the batch.
fn body_value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    let mut info = value_info(name, FLOAT, Some(dims));
    if let Some(pb::type_proto::Value::TensorType(t)) =
        info.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        for (dim, declared) in t.shape.iter_mut().flat_map(|s| &mut s.dim).zip(dims) {
            if declared.is_none() {
                dim.value = None;
            }
        }
    }
    info
}

impl OnnxBuilder {
    pub fn new(opset: i64) -> Self {
        OnnxBuilder {
            opset,
            nodes: vec![],
            initializers: vec![],
            inputs: vec![],
            outputs: vec![],
            extra_opsets: vec![],
        }
    }

    /// Imports another operator set (`ai.onnx.ml`) for the nodes put in its domain.
    pub fn import_opset(&mut self, domain: &str, version: i64) -> &mut Self {
        match self.extra_opsets.iter_mut().find(|(d, _)| d == domain) {
            Some((_, v)) => *v = (*v).max(version),
            None => self.extra_opsets.push((domain.into(), version)),
        }
        self
    }

    /// A float32 graph input; `None` dims are symbolic (the batch).
    pub fn input(&mut self, name: &str, dims: &[Option<i64>]) -> &mut Self {
        self.inputs.push(value_info(name, FLOAT, Some(dims)));
        self
    }

    /// A graph input of any element type (for error tests).
    pub fn input_typed(&mut self, name: &str, elem_type: i32, dims: &[Option<i64>]) -> &mut Self {
        self.inputs.push(value_info(name, elem_type, Some(dims)));
        self
    }

    pub fn output(&mut self, name: &str) -> &mut Self {
        self.outputs.push(value_info(name, FLOAT, None));
        self
    }

    pub fn init(&mut self, name: &str, data: &ArrayD<f32>) -> &mut Self {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: data.shape().iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            float_data: data.iter().copied().collect(),
            ..Default::default()
        });
        self
    }

    pub fn init_i64(&mut self, name: &str, data: &[i64]) -> &mut Self {
        self.init_i64_shaped(name, &[data.len() as i64], data)
    }

    /// An int64 initializer of any shape (`&[]` for a scalar).
    pub fn init_i64_shaped(&mut self, name: &str, dims: &[i64], data: &[i64]) -> &mut Self {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: INT64,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        self
    }

    /// A boolean initializer, stored in int32_data as ONNX does.
    pub fn init_bool(&mut self, name: &str, dims: &[i64], data: &[bool]) -> &mut Self {
        const BOOL: i32 = 9;
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: BOOL,
            int32_data: data.iter().map(|&b| b as i32).collect(),
            ..Default::default()
        });
        self
    }

    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<Attr>,
    ) -> &mut Self {
        use pb::attribute_proto::AttributeType as T;
        let attribute = attrs
            .into_iter()
            .map(|a| {
                let mut p = pb::AttributeProto::default();
                match a {
                    Attr::Int(n, v) => (p.name, p.r#type, p.i) = (n.into(), T::Int as i32, v),
                    Attr::Ints(n, v) => (p.name, p.r#type, p.ints) = (n.into(), T::Ints as i32, v),
                    Attr::Float(n, v) => (p.name, p.r#type, p.f) = (n.into(), T::Float as i32, v),
                    Attr::FloatTensor(n, v) => {
                        (p.name, p.r#type) = (n.into(), T::Tensor as i32);
                        p.t = Some(pb::TensorProto {
                            dims: vec![1],
                            data_type: FLOAT,
                            float_data: vec![v],
                            ..Default::default()
                        });
                    }
                    Attr::Floats(n, v) => {
                        (p.name, p.r#type, p.floats) = (n.into(), T::Floats as i32, v)
                    }
                    Attr::FloatsTensor(n, v) => {
                        (p.name, p.r#type) = (n.into(), T::Tensor as i32);
                        p.t = Some(pb::TensorProto {
                            dims: vec![v.len() as i64],
                            data_type: FLOAT,
                            float_data: v,
                            ..Default::default()
                        });
                    }
                    Attr::BytesTensor(n, v) => {
                        const UINT8: i32 = 2;
                        (p.name, p.r#type) = (n.into(), T::Tensor as i32);
                        p.t = Some(pb::TensorProto {
                            dims: vec![v.len() as i64],
                            data_type: UINT8,
                            int32_data: v.into_iter().map(i32::from).collect(),
                            ..Default::default()
                        });
                    }
                    Attr::Str(n, v) => {
                        (p.name, p.r#type, p.s) =
                            (n.into(), T::String as i32, v.as_bytes().to_vec())
                    }
                    Attr::Strs(n, v) => {
                        let strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
                        (p.name, p.r#type, p.strings) = (n.into(), T::Strings as i32, strings)
                    }
                    Attr::Graph(n, g) => {
                        (p.name, p.r#type, p.g) = (n.into(), T::Graph as i32, Some(g))
                    }
                }
                p
            })
            .collect();
        let name = format!("{}_{}", op_type.to_lowercase(), self.nodes.len());
        self.nodes.push(pb::NodeProto {
            name,
            op_type: op_type.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
        self
    }

    /// The graph alone (also the body of a Scan, built with [`OnnxBuilder::body_input`] and
    /// [`OnnxBuilder::body_output`]).
    pub fn to_graph(&self, name: &str) -> pb::GraphProto {
        pb::GraphProto {
            name: name.into(),
            node: self.nodes.clone(),
            initializer: self.initializers.clone(),
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            ..Default::default()
        }
    }

    /// A float32 input of a subgraph: `None` dims are left unknown (the outer graph decides
    /// them), as exporters declare a Scan body's.
    pub fn body_input(&mut self, name: &str, dims: &[Option<i64>]) -> &mut Self {
        self.inputs.push(body_value_info(name, dims));
        self
    }

    /// A float32 output of a subgraph, declaring its shape as [`OnnxBuilder::body_input`].
    pub fn body_output(&mut self, name: &str, dims: &[Option<i64>]) -> &mut Self {
        self.outputs.push(body_value_info(name, dims));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let model = pb::ModelProto {
            ir_version: 8,
            producer_name: "tfe-tests".into(),
            opset_import: std::iter::once((String::new(), self.opset))
                .chain(self.extra_opsets.iter().cloned())
                .map(|(domain, version)| pb::OperatorSetIdProto { domain, version })
                .collect(),
            graph: Some(self.to_graph("test")),
            ..Default::default()
        };
        model.encode_to_vec()
    }

    /// Writes the model to a fresh temporary directory and returns its path.
    pub fn save(&self, name: &str) -> PathBuf {
        let dir = temp_dir(name);
        let path = dir.join("model.onnx");
        std::fs::write(&path, self.to_bytes()).unwrap();
        path
    }
}

/// A fresh, empty directory under the target dir for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The model's outputs computed by tract, the plaintext reference.
pub fn tract_reference(model: &Path, inputs: &[ArrayD<f32>]) -> Vec<ArrayD<f32>> {
    let mut m = tract_onnx::onnx().model_for_path(model).unwrap();
    // Each input as the type the model declares (token ids as int64).
    let mut types = vec![];
    for (i, x) in inputs.iter().enumerate() {
        let declared = m.input_fact(i).unwrap().datum_type.concretize();
        let datum_type = declared.unwrap_or(f32::datum_type());
        m.set_input_fact(i, InferenceFact::dt_shape(datum_type, x.shape()))
            .unwrap();
        types.push(datum_type);
    }
    let runnable = m.into_optimized().unwrap().into_runnable().unwrap();
    let tvalues: TVec<TValue> = inputs
        .iter()
        .zip(types)
        .map(|(x, t)| {
            Tensor::from(x.clone())
                .cast_to_dt(t)
                .unwrap()
                .into_owned()
                .into()
        })
        .collect();
    runnable
        .run(tvalues)
        .unwrap()
        .iter()
        .map(|t| {
            t.cast_to::<f32>()
                .unwrap()
                .to_plain_array_view::<f32>()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Deterministic pseudo-random values in [-scale, scale].
pub fn random(shape: &[usize], seed: u64, scale: f32) -> ArrayD<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    })
}

pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn read_npy(path: &Path) -> ArrayD<f32> {
    use ndarray_npy::ReadNpyExt;
    ArrayD::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

impl OnnxBuilder {
    /// A scalar boolean initializer (Dropout's `training_mode`), stored in int32_data as ONNX does.
    pub fn init_bool_scalar(&mut self, name: &str, value: bool) -> &mut Self {
        const BOOL: i32 = 9;
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: vec![],
            data_type: BOOL,
            int32_data: vec![value as i32],
            ..Default::default()
        });
        self
    }
}

// ---------------------------------------------------------------------------------------
// Helpers for tests/cli.rs (the command-line tests): nodes in a custom ONNX domain.
// ---------------------------------------------------------------------------------------

impl OnnxBuilder {
    /// Moves the most recently added node into `domain` (a custom operator set).
    pub fn in_domain(&mut self, domain: &str) -> &mut Self {
        self.nodes
            .last_mut()
            .expect("add a node before setting its domain")
            .domain = domain.into();
        self
    }

    /// Like [`OnnxBuilder::save`], also importing the given custom operator sets.
    pub fn save_with_opsets(&self, name: &str, opsets: &[(&str, i64)]) -> PathBuf {
        let mut model = pb::ModelProto::decode(self.to_bytes().as_slice()).unwrap();
        model.opset_import.extend(
            opsets
                .iter()
                .map(|&(domain, version)| pb::OperatorSetIdProto {
                    domain: domain.into(),
                    version,
                }),
        );
        let path = temp_dir(name).join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        path
    }
}

// ---------------------------------------------------------------------------------------
// Shared by tests that run many cases (tests/ops/, tests/conformance.rs) and by the tests
// that check generated documentation (tests/docs.rs, tests/conformance.rs).
// ---------------------------------------------------------------------------------------

/// The message of a caught panic (`std::panic::catch_unwind`'s error).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    (panic.downcast_ref::<String>().cloned())
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "?".into())
}

/// Whether the committed file `relative` (from the crate root) equals `generated`; when
/// `TFE_BLESS` is set, rewrites it first.
pub fn generated_is_current(relative: &str, generated: &str) -> bool {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("TFE_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    std::fs::read_to_string(&path).is_ok_and(|committed| committed == generated)
}

/// Checks [`generated_is_current`]; `regenerate` is the cargo command that produces the file.
pub fn check_generated(relative: &str, generated: &str, regenerate: &str) {
    assert!(
        generated_is_current(relative, generated),
        "{}",
        out_of_date(relative, regenerate)
    );
}

pub fn out_of_date(relative: &str, regenerate: &str) -> String {
    format!("{relative} is out of date; regenerate it with `TFE_BLESS=1 {regenerate}`")
}

/// The numbers in a line of printed text.
pub fn printed_numbers(text: &str) -> Vec<f32> {
    text.split(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | '+')))
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// A `tfe-predict --profile` table printed beside the estimate: for each step and then the
/// total, its line and its last four numbers (bytes, estimated bytes, rounds, estimated
/// rounds).
pub struct ProfileTable<'a> {
    pub header: &'a str,
    pub steps: Vec<(&'a str, [u64; 4])>,
    pub total: (&'a str, [u64; 4]),
}

/// The profile table in a command's stderr, if it printed one.
pub fn profile_table(stderr: &str) -> Option<ProfileTable<'_>> {
    let lines: Vec<&str> = stderr.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("node"))?;
    let total = lines.iter().position(|l| l.starts_with("total"))?;
    let row = |l: &'_ str| -> Option<[u64; 4]> {
        let numbers = printed_numbers(l);
        let tail = numbers.get(numbers.len().checked_sub(4)?..)?;
        Some([0, 1, 2, 3].map(|i| tail[i] as u64))
    };
    Some(ProfileTable {
        header: lines[header],
        steps: lines[header + 1..total]
            .iter()
            .map(|&l| Some((l, row(l)?)))
            .collect::<Option<_>>()?,
        total: (lines[total], row(lines[total])?),
    })
}

impl ProfileTable<'_> {
    /// Checks that the total sums the steps' bytes and that every row's measured bytes and
    /// rounds equal the estimate.
    pub fn assert_measured_equals_estimated(&self) {
        let sum: u64 = self.steps.iter().map(|(_, r)| r[0]).sum();
        assert_eq!(self.total.1[0], sum, "the total line sums the bytes");
        for (line, r) in self.steps.iter().chain([&self.total]) {
            assert_eq!((r[0], r[2]), (r[1], r[3]), "measured = estimated\n{line}");
        }
    }
}

/// The `--profile` lines of what each party sent beside its estimate, in party order, and
/// the two equal on every line.
pub fn assert_parties_sent_what_was_estimated(stderr: &str, names: &[&str; 3]) {
    let lines: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("sent by"))
        .skip(1)
        .take(3)
        .collect();
    assert_eq!(lines.len(), 3, "no line per party\n{stderr}");
    for (line, name) in lines.iter().zip(names) {
        assert!(line.starts_with(name), "{line} is not {name}'s\n{stderr}");
        let bytes: Vec<u64> = line
            .split_whitespace()
            .rev()
            .take(2)
            .map(|t| t.parse().unwrap())
            .collect();
        assert!(
            bytes[0] > 0 && bytes[0] == bytes[1],
            "measured = estimated\n{line}"
        );
    }
}
