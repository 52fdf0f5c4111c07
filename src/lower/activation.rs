//! Activations: exact ones by secure comparison (Relu, LeakyRelu, PRelu, Clip, Abs, the
//! hard variants), the rest through the documented approximations of `approx`.

use super::activation_patterns::ActivationPattern;
use super::{Lowering, Op, Options, To};
use crate::import::{Graph, Node};
use crate::plan::{Function, Shape, ValueId};
use anyhow::{Result, bail};

/// Sigmoid's approximations (tanh follows): by default polynomials of the clamped input
/// (error within 7e-5, 15 rounds); `Exact` is 1/(1 + e^-|x|) reflected (2e-5, 49 rounds and
/// twice the bytes); the piecewise-linear one takes 11 rounds (four times the bytes) and is
/// accurate to about 3e-3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SigmoidMethod {
    #[default]
    Polynomial,
    Exact,
    Piecewise,
}

/// Gelu's two approximations: by default one piecewise polynomial (error within 1.3e-4,
/// 17 rounds); `Erf` keeps x (1 + erf(x/√2)) / 2 with the accurate erf (2e-5, about 80 rounds
/// and 4.5 times the bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeluMethod {
    #[default]
    Piecewise,
    Erf,
}

impl Lowering<'_> {
    /// Whether Gelu is lowered through the accurate erf.
    pub fn gelu_by_erf(&self) -> bool {
        self.gelu == GeluMethod::Erf
    }

    /// The sigmoid approximation chosen at convert time.
    pub fn sigmoid_function(&self) -> Function {
        match self.sigmoid {
            SigmoidMethod::Polynomial => Function::SigmoidPolynomial,
            SigmoidMethod::Exact => Function::Sigmoid,
            SigmoidMethod::Piecewise => Function::SigmoidPiecewise,
        }
    }

    /// Tanh's: the polynomial one by default, else the accurate 2 sigmoid(2x) - 1.
    pub fn tanh_function(&self) -> Function {
        match self.sigmoid {
            SigmoidMethod::Polynomial => Function::TanhPolynomial,
            SigmoidMethod::Exact | SigmoidMethod::Piecewise => Function::Tanh,
        }
    }
}

/// The written-out activations to recognise (`activation_patterns.rs`): those whose cheap
/// function the options choose.
pub fn fused(options: &Options) -> Vec<Function> {
    let mut functions = vec![];
    if options.gelu == GeluMethod::Piecewise {
        functions.extend([Function::Gelu, Function::GeluTanh]);
    }
    if options.sigmoid == SigmoidMethod::Polynomial {
        functions.push(Function::Silu);
    }
    functions
}

/// A recognised activation, as one function of its input.
pub fn of_pattern(cx: &mut Lowering, node: &Node, pattern: &ActivationPattern) -> Result<()> {
    let x = cx.value(&pattern.x)?;
    let function = pattern.function;
    cx.emit(node, Op::Function { function }, &[x], To::Output)?;
    Ok(())
}

pub fn relu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    cx.emit(node, Op::Relu, &[x], To::Output)?;
    Ok(())
}

// Which activations are exact and non-decreasing, and cost comparisons per element: those
// may run after a max-pooling that reads them (`reorder.rs`).

pub fn relu_is_monotone(_: &Graph, _: &Node) -> bool {
    true
}

/// With public bounds: a secret bound is a tensor of its own, not part of a fixed function
/// of the element.
pub fn clip_is_monotone(graph: &Graph, node: &Node) -> bool {
    node.inputs.iter().skip(1).all(|b| !graph.is_secret(b))
}

/// With a non-negative slope.
pub fn leaky_relu_is_monotone(_: &Graph, node: &Node) -> bool {
    node.float("alpha", 0.01).is_ok_and(|alpha| alpha >= 0.0)
}

/// The op types that are one approximated function of their input.
fn function_of(node: &Node) -> Result<Function> {
    Ok(match node.op_type.as_str() {
        "Exp" => Function::Exp,
        "Log" => Function::Log,
        "Reciprocal" => Function::Reciprocal,
        "Sqrt" => Function::Sqrt,
        "Sigmoid" => Function::Sigmoid,
        "Tanh" => Function::Tanh,
        "Erf" => Function::Erf,
        "Softplus" => Function::Softplus,
        "Elu" => Function::Elu {
            alpha: node.float("alpha", 1.0)?,
        },
        other => bail!("{other} is not a single function"),
    })
}

pub fn function(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let function = match function_of(node)? {
        Function::Sigmoid => cx.sigmoid_function(),
        Function::Tanh => cx.tanh_function(),
        f => f,
    };
    cx.emit(node, Op::Function { function }, &[x], To::Output)?;
    Ok(())
}

/// `[x >= 0] ? x : slope * x`, for LeakyRelu (public alpha) and PRelu (secret slope).
fn leaky(cx: &mut Lowering, node: &Node, slope: ValueId) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let scaled = cx.emit(node, Op::Mul, &[x, slope], To::temp("scaled"))?;
    cx.emit(node, Op::Select, &[x, x, scaled], To::Output)?;
    Ok(())
}

pub fn leaky_relu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let alpha = node.float("alpha", 0.01)?;
    let slope = cx.scalar(node, "alpha", alpha)?;
    leaky(cx, node, slope)
}

pub fn prelu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let slope = cx.input_value(node, 1)?;
    leaky(cx, node, slope)
}

/// Bounds from attributes (opset < 11) or constant inputs (opset >= 11).
pub fn clip(cx: &mut Lowering, node: &Node) -> Result<()> {
    if [1, 2]
        .iter()
        .any(|&i| node.input(i).is_some_and(|t| !cx.is_constant(t)))
    {
        return clip_by_secret_bounds(cx, node);
    }
    let bound = |cx: &Lowering, input: usize, attr: &str| -> Result<Option<f32>> {
        let value = match node.input(input) {
            Some(t) => Some(
                *cx.constant(t)?
                    .iter()
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("empty Clip bound"))?,
            ),
            None if node.has_attr(attr) => Some(node.float(attr, 0.0)?),
            None => None,
        };
        Ok(value.filter(|v| v.is_finite()))
    };
    let (min, max) = (bound(cx, 1, "min")?, bound(cx, 2, "max")?);
    let x = cx.input_value(node, 0)?;
    cx.emit(node, Op::Clip { min, max }, &[x], To::Output)?;
    Ok(())
}

/// min(max(x, lo), hi) when a bound is itself secret: one select per bound.
fn clip_by_secret_bounds(cx: &mut Lowering, node: &Node) -> Result<()> {
    let mut y = cx.input_value(node, 0)?;
    let (lo, hi) = (node.input(1), node.input(2));
    if let Some(lo) = lo {
        let lo = cx.value(lo)?;
        let above = cx.emit(node, Op::Sub, &[y, lo], To::temp("above_min"))?;
        let to = To::output_if(hi.is_none(), "raised");
        y = cx.emit(node, Op::Select, &[above, y, lo], to)?;
    }
    if let Some(hi) = hi {
        let hi = cx.value(hi)?;
        let below = cx.emit(node, Op::Sub, &[hi, y], To::temp("below_max"))?;
        cx.emit(node, Op::Select, &[below, y, hi], To::Output)?;
    }
    Ok(())
}

/// clip(alpha x + beta, 0, 1), going `to` the node's output or an intermediate.
fn hard_sigmoid_of(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    (alpha, beta): (f32, f32),
    to: To,
) -> Result<ValueId> {
    let a = cx.scalar(node, "alpha", alpha)?;
    let b = cx.scalar(node, "beta", beta)?;
    let scaled = cx.emit(node, Op::Mul, &[x, a], To::temp("scaled"))?;
    let shifted = cx.emit(node, Op::Add, &[scaled, b], To::temp("shifted"))?;
    let clip = Op::Clip {
        min: Some(0.0),
        max: Some(1.0),
    };
    cx.emit(node, clip, &[shifted], to)
}

pub fn hard_sigmoid(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let line = (node.float("alpha", 0.2)?, node.float("beta", 0.5)?);
    hard_sigmoid_of(cx, node, x, line, To::Output)?;
    Ok(())
}

pub fn hard_swish(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let gate = hard_sigmoid_of(cx, node, x, (1.0 / 6.0, 0.5), To::temp("hard_sigmoid"))?;
    cx.emit(node, Op::Mul, &[x, gate], To::Output)?;
    Ok(())
}

/// |x| = 2 relu(x) - x, intermediates of x's shape.
pub fn abs_of(cx: &mut Lowering, node: &Node, x: ValueId, shape: Shape) -> Result<ValueId> {
    let relu = cx.emit(node, Op::Relu, &[x], To::shaped("relu", shape.clone()))?;
    let twice = To::shaped("twice_relu", shape.clone());
    let twice = cx.emit(node, Op::Add, &[relu, relu], twice)?;
    cx.emit(node, Op::Sub, &[twice, x], To::shaped("abs", shape))
}

pub fn abs(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let shape = cx.shape(node.output())?;
    let magnitude = abs_of(cx, node, x, shape)?;
    cx.alias(node.output(), magnitude);
    Ok(())
}

/// x / (1 + |x|).
pub fn softsign(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let shape = cx.shape(node.output())?;
    let magnitude = abs_of(cx, node, x, shape)?;
    let one = cx.scalar(node, "one", 1.0)?;
    let denominator = cx.emit(node, Op::Add, &[magnitude, one], To::temp("denominator"))?;
    let reciprocal = Op::Function {
        function: Function::Reciprocal,
    };
    let inverse = cx.emit(node, reciprocal, &[denominator], To::temp("inverse"))?;
    cx.emit(node, Op::Mul, &[x, inverse], To::Output)?;
    Ok(())
}

/// gamma * elu_alpha(x).
pub fn selu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let alpha = node.float("alpha", 1.673_263_2)?;
    let gamma = node.float("gamma", 1.050_701)?;
    let x = cx.input_value(node, 0)?;
    let elu = Op::Function {
        function: Function::Elu { alpha },
    };
    let elu = cx.emit(node, elu, &[x], To::temp("elu"))?;
    let g = cx.scalar(node, "gamma", gamma)?;
    cx.emit(node, Op::Mul, &[elu, g], To::Output)?;
    Ok(())
}

/// 0.5 x (1 + erf(x / sqrt 2)), or with approximate="tanh",
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): one piecewise polynomial, or with
/// `--gelu erf` the formula through the accurate erf or tanh.
pub fn gelu(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    let approximate = node.string("approximate")?;
    if !cx.gelu_by_erf() {
        let function = match approximate.as_deref().unwrap_or("none") {
            "none" => Function::Gelu,
            "tanh" => Function::GeluTanh,
            other => bail!("Gelu approximate={other:?} is not an ONNX mode"),
        };
        cx.emit(node, Op::Function { function }, &[x], To::Output)?;
        return Ok(());
    }
    let inner = match approximate.as_deref().unwrap_or("none") {
        "none" => {
            let c = cx.scalar(node, "inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2)?;
            let scaled = cx.emit(node, Op::Mul, &[x, c], To::temp("scaled"))?;
            let erf = Op::Function {
                function: Function::Erf,
            };
            cx.emit(node, erf, &[scaled], To::temp("erf"))?
        }
        "tanh" => {
            let square = cx.emit(node, Op::Mul, &[x, x], To::temp("square"))?;
            let cube = cx.emit(node, Op::Mul, &[square, x], To::temp("cube"))?;
            let k = cx.scalar(node, "cubic", 0.044715)?;
            let cubic = cx.emit(node, Op::Mul, &[cube, k], To::temp("cubic_term"))?;
            let sum = cx.emit(node, Op::Add, &[x, cubic], To::temp("sum"))?;
            let c = cx.scalar(node, "sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt())?;
            let scaled = cx.emit(node, Op::Mul, &[sum, c], To::temp("scaled"))?;
            let tanh = Op::Function {
                function: Function::Tanh,
            };
            cx.emit(node, tanh, &[scaled], To::temp("tanh"))?
        }
        other => bail!("Gelu approximate={other:?} is not an ONNX mode"),
    };
    let one = cx.scalar(node, "one", 1.0)?;
    let plus_one = cx.emit(node, Op::Add, &[inner, one], To::temp("plus_one"))?;
    let half = cx.scalar(node, "half", 0.5)?;
    let half_x = cx.emit(node, Op::Mul, &[x, half], To::temp("half_x"))?;
    cx.emit(node, Op::Mul, &[half_x, plus_one], To::Output)?;
    Ok(())
}
