//! The plan: a model lowered to secure operations, independent of ONNX and of any protocol.
//!
//! A plan is a list of steps in topological order over numbered values. Each value is a graph
//! input, a weight or a step's output. Weights are secret by default (the model owner's
//! parameters, secret-shared before any party sees them); constants introduced by lowering
//! (pooling divisors and the like) are public. Every value is a fixed-point tensor at the
//! plan's fractional bits; an op that multiplies two values rescales its result itself.

mod builder;
mod format;
mod shape;

pub use builder::PlanBuilder;
pub use format::{FORMAT_VERSION, Holder, MAGIC, PlanFileError, SharedPlan, hex};
pub use shape::{Dim, Shape};

use crate::tensor::{FixedPoint, Window, movement::AxisSlice};
use anyhow::{Result, bail, ensure};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    /// The ONNX tensor name this value stands for.
    pub name: String,
    pub shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Secret-shared by the model owner: no compute party sees it.
    Secret,
    /// Known to every party (structural constants such as pooling divisors).
    Public,
}

/// A client input: the value it becomes, and how the client encodes what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub value: ValueId,
    pub encoding: Encoding,
}

/// How a client's input enters the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// Real numbers in fixed point.
    #[default]
    Real,
    /// Integer ids below `depth` (token ids), as one-hot rows: the value has one more axis,
    /// of size `depth`, than what the client gives, so that an embedding lookup becomes a
    /// product with the secret table and no party learns an id.
    OneHot { depth: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weight {
    pub value: ValueId,
    pub visibility: Visibility,
    /// Stored in the plan file's weights section, not in the graph section.
    #[serde(skip)]
    pub data: ArrayD<f32>,
}

/// A secure operation. Semantics follow the ONNX operator it was lowered from, restricted to
/// the attributes listed; see `exec` for the single definition all interpreters share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Numpy matmul of two values; the product is rescaled.
    MatMul,
    /// Grouped convolution `[N,C,spatial..] * [M,C/g,kernel..]`, no bias; rescaled.
    Conv {
        window: Window,
        groups: usize,
    },
    /// Element-wise product with broadcasting; rescaled.
    Mul,
    Add,
    Sub,
    Relu,
    /// Max over each window (padding ignored).
    MaxPool {
        window: Window,
    },
    /// Sum over each window's in-bounds elements (average pooling is this, then `Mul`).
    SumPool {
        window: Window,
    },
    /// Sum over ascending, distinct axes.
    ReduceSum {
        axes: Vec<usize>,
        keep_dims: bool,
    },
    Reshape {
        shape: Shape,
    },
    Transpose {
        perm: Vec<usize>,
    },
    Concat {
        axis: usize,
    },
    /// `[x >= 0] ? a : b` element-wise (inputs x, a, b, broadcasting), by exact comparison.
    Select,
    /// A non-linear function of one value; fixed point and mpc use the documented
    /// approximation (see `approx`).
    Function {
        function: Function,
    },
    /// Element-wise clamp to public bounds.
    Clip {
        min: Option<f32>,
        max: Option<f32>,
    },
    /// Max (or min) over ascending, distinct axes, by a tree of exact comparisons.
    ReduceMax {
        axes: Vec<usize>,
        keep_dims: bool,
        min: bool,
    },
    /// Index of the max (or min) along an axis, as a real number.
    ArgMax {
        axis: usize,
        keep_dims: bool,
        min: bool,
        last_index: bool,
    },
    /// Softmax, or LogSoftmax, along an axis.
    Softmax {
        axis: usize,
        log: bool,
    },
    /// Transposed convolution `[N,C,in..] * [C,M/g,kernel..]` to the given spatial output,
    /// no bias; rescaled.
    ConvTranspose {
        window: Window,
        groups: usize,
        output_size: Vec<usize>,
    },
    /// Strided slices along some axes; the other axes are kept whole.
    Slice {
        slices: Vec<AxisSlice>,
    },
    /// The entries `indices` of `axis`, in that order (repeats allowed).
    Gather {
        axis: usize,
        indices: Vec<usize>,
    },
    /// ONNX GatherElements with constant `indices`, row-major of shape `shape`.
    GatherElements {
        axis: usize,
        indices: Vec<usize>,
        shape: Vec<usize>,
    },
    /// `repeats[a]` copies along each axis `a` (ONNX Tile).
    Tile {
        repeats: Vec<usize>,
    },
    /// Zeros before and after each axis.
    Pad {
        begin: Vec<usize>,
        end: Vec<usize>,
    },
    /// Numpy broadcast to `shape`.
    Expand {
        shape: Shape,
    },
    /// `condition ? a : b` with broadcasting, for a constant condition of shape `shape`
    /// (row-major).
    Where {
        condition: Vec<bool>,
        shape: Vec<usize>,
    },
    Neg,
}

/// Non-linear functions with a documented fixed-point approximation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Function {
    Exp,
    Log,
    Reciprocal,
    Sqrt,
    Rsqrt,
    Sigmoid,
    Tanh,
    Erf,
    Softplus,
    Elu {
        alpha: f32,
    },
    /// Sigmoid by piecewise-linear interpolation (`--sigmoid piecewise`).
    SigmoidPiecewise,
    /// Sigmoid by polynomials of the clamped input (`--sigmoid polynomial`, the default).
    SigmoidPolynomial,
    /// Tanh the same way, as 2 sigmoid(2x) - 1.
    TanhPolynomial,
    /// x sigmoid(x) (Sigmoid followed by a Mul by its input), likewise.
    Silu,
    /// x Φ(x), the exact GELU (ONNX Gelu, or its decomposed form x (1 + erf(x/√2)) / 2).
    Gelu,
    /// GELU's tanh form 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x^3))).
    GeluTanh,
    /// e^x for x <= 0: a softmax's exponentials after its max is subtracted.
    ExpNonPositive,
    /// 1/s for a sum s in [1, terms]: a softmax's denominator over `terms` entries.
    ReciprocalOfSum {
        terms: u32,
    },
    /// `factor * x` for a public real factor, taken with 28 fractional bits of its own
    /// rather than the plan's (a learning rate over the batch size, say).
    Scale {
        factor: f32,
    },
}

impl Function {
    pub fn name(&self) -> &'static str {
        match self {
            Function::Exp => "exp",
            Function::Log => "log",
            Function::Reciprocal => "reciprocal",
            Function::Sqrt => "sqrt",
            Function::Rsqrt => "rsqrt",
            Function::Sigmoid => "sigmoid",
            Function::Tanh => "tanh",
            Function::Erf => "erf",
            Function::Softplus => "softplus",
            Function::Elu { .. } => "elu",
            Function::SigmoidPiecewise => "sigmoid_piecewise",
            Function::SigmoidPolynomial => "sigmoid_polynomial",
            Function::TanhPolynomial => "tanh_polynomial",
            Function::Silu => "silu",
            Function::Gelu => "gelu",
            Function::GeluTanh => "gelu_tanh",
            Function::ExpNonPositive => "exp_nonpositive",
            Function::ReciprocalOfSum { .. } => "reciprocal_of_sum",
            Function::Scale { .. } => "scale",
        }
    }

    /// The exact function, for the float interpreter and for measuring approximations.
    pub fn exact(&self, x: f64) -> f64 {
        match *self {
            Function::Exp | Function::ExpNonPositive => x.exp(),
            Function::Log => x.ln(),
            Function::Reciprocal | Function::ReciprocalOfSum { .. } => 1.0 / x,
            Function::Sqrt => x.sqrt(),
            Function::Rsqrt => 1.0 / x.sqrt(),
            Function::Sigmoid | Function::SigmoidPiecewise | Function::SigmoidPolynomial => {
                1.0 / (1.0 + (-x).exp())
            }
            Function::Tanh | Function::TanhPolynomial => x.tanh(),
            Function::Silu => x / (1.0 + (-x).exp()),
            Function::Erf => libm::erf(x),
            Function::Gelu => 0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            Function::GeluTanh => {
                let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
                0.5 * x * (1.0 + inner.tanh())
            }
            Function::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Function::Scale { factor } => factor as f64 * x,
            Function::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha as f64 * x.exp_m1()
                }
            }
        }
    }
}

impl Op {
    /// Element-wise over its inputs with numpy broadcasting: the output's shape is their
    /// broadcast.
    pub fn broadcasts(&self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Select)
    }

    /// Number of inputs, or `None` when variadic.
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::MatMul
            | Op::Conv { .. }
            | Op::ConvTranspose { .. }
            | Op::Mul
            | Op::Add
            | Op::Sub
            | Op::Where { .. } => Some(2),
            Op::Concat { .. } => None,
            Op::Select => Some(3),
            Op::Relu
            | Op::MaxPool { .. }
            | Op::SumPool { .. }
            | Op::ReduceSum { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Function { .. }
            | Op::Clip { .. }
            | Op::ReduceMax { .. }
            | Op::ArgMax { .. }
            | Op::Softmax { .. }
            | Op::Slice { .. }
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::Tile { .. }
            | Op::Pad { .. }
            | Op::Expand { .. }
            | Op::Neg => Some(1),
        }
    }

    /// The approximated functions computing this op takes (none for an exact op), for the
    /// coverage report.
    pub fn approximations(&self) -> Vec<Function> {
        match self {
            Op::Function { function } => vec![*function],
            // The sum's size is the row's, known when the softmax runs.
            Op::Softmax { log: false, .. } => vec![
                Function::ExpNonPositive,
                Function::ReciprocalOfSum { terms: 0 },
            ],
            Op::Softmax { log: true, .. } => vec![Function::ExpNonPositive, Function::Log],
            _ => vec![],
        }
    }

    /// Short name for profiles and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::MatMul => "MatMul",
            Op::Conv { .. } => "Conv",
            Op::Mul => "Mul",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Relu => "Relu",
            Op::MaxPool { .. } => "MaxPool",
            Op::SumPool { .. } => "SumPool",
            Op::ReduceSum { .. } => "ReduceSum",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Select => "Select",
            Op::Function { .. } => "Function",
            Op::Clip { .. } => "Clip",
            Op::ReduceMax { .. } => "ReduceMax",
            Op::ArgMax { .. } => "ArgMax",
            Op::Softmax { .. } => "Softmax",
            Op::ConvTranspose { .. } => "ConvTranspose",
            Op::Slice { .. } => "Slice",
            Op::Gather { .. } => "Gather",
            Op::GatherElements { .. } => "GatherElements",
            Op::Tile { .. } => "Tile",
            Op::Pad { .. } => "Pad",
            Op::Expand { .. } => "Expand",
            Op::Where { .. } => "Where",
            Op::Neg => "Neg",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The ONNX node this step was lowered from.
    pub node: String,
    #[serde(flatten)]
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// Where the plan came from, so a plan can be matched with its model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub file_name: String,
    /// SHA-256 of the model file, lowercase hex.
    pub sha256: String,
}

impl Source {
    /// What share files record instead: nothing (see `format::SharedPlan`).
    pub fn withheld() -> Source {
        Source {
            file_name: String::new(),
            sha256: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub fixed_point: FixedPoint,
    pub source: Source,
    pub values: Vec<ValueInfo>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<ValueId>,
    pub weights: Vec<Weight>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn value(&self, id: ValueId) -> &ValueInfo {
        &self.values[id.index()]
    }

    /// The shape of what the client gives for `input`: its value's, less the one-hot axis.
    pub fn given_shape(&self, input: &Input) -> Shape {
        let mut shape = self.value(input.value).shape.clone();
        if let Encoding::OneHot { .. } = input.encoding {
            shape.0.pop();
        }
        shape
    }

    /// Checks the invariants every interpreter relies on, so that a hand-edited or damaged
    /// plan is rejected up front instead of failing half way through a run.
    pub fn validate(&self) -> Result<()> {
        FixedPoint::new(self.fixed_point.frac_bits).map_err(anyhow::Error::msg)?;
        let n = self.values.len();
        let mut defined = vec![false; n];
        let define = |defined: &mut [bool], id: ValueId, what: &str| -> Result<()> {
            ensure!(
                id.index() < n,
                "{what} refers to value {} but the plan has {n} values",
                id.0
            );
            ensure!(
                !defined[id.index()],
                "value {} ({}) is defined twice",
                id.0,
                self.values[id.index()].name
            );
            defined[id.index()] = true;
            Ok(())
        };
        for input in &self.inputs {
            define(&mut defined, input.value, "an input")?;
            if let Encoding::OneHot { depth } = input.encoding {
                ensure!(
                    depth > 0 && self.value(input.value).shape.0.last() == Some(&Dim::Fixed(depth)),
                    "one-hot input {} must end with an axis of its depth {depth}",
                    self.value(input.value).name
                );
            }
        }
        for w in &self.weights {
            define(&mut defined, w.value, "a weight")?;
            let shape = self.value(w.value).shape.fixed().ok_or_else(|| {
                anyhow::anyhow!(
                    "weight {} has a batch-dependent shape",
                    self.value(w.value).name
                )
            })?;
            ensure!(
                w.data.shape() == shape.as_slice(),
                "weight {} data has shape {:?}, expected {shape:?}",
                self.value(w.value).name,
                w.data.shape()
            );
        }
        for step in &self.steps {
            if let Some(arity) = step.op.arity() {
                ensure!(
                    step.inputs.len() == arity,
                    "step {} ({}) has {} inputs, expected {arity}",
                    step.node,
                    step.op.name(),
                    step.inputs.len()
                );
            } else {
                ensure!(
                    !step.inputs.is_empty(),
                    "step {} ({}) has no inputs",
                    step.node,
                    step.op.name()
                );
            }
            for &input in &step.inputs {
                ensure!(
                    input.index() < n && defined[input.index()],
                    "step {} reads value {} before it is computed",
                    step.node,
                    input.0
                );
            }
            define(&mut defined, step.output, "a step output")?;
        }
        ensure!(!self.outputs.is_empty(), "the plan has no outputs");
        for &out in &self.outputs {
            if out.index() >= n || !defined[out.index()] {
                bail!("plan output {} is never computed", out.0);
            }
        }
        Ok(())
    }

    /// Index of the last step reading each value (`usize::MAX` for plan outputs), so that
    /// interpreters can free intermediate tensors as soon as possible.
    pub fn last_uses(&self) -> Vec<usize> {
        let mut last = vec![0usize; self.values.len()];
        for (i, step) in self.steps.iter().enumerate() {
            for &input in &step.inputs {
                last[input.index()] = i;
            }
        }
        for &out in &self.outputs {
            last[out.index()] = usize::MAX;
        }
        last
    }
}
