//! Interpreters of a plan. One interpreter ([`run`]) defines what every op means, in terms of
//! a few primitives that a [`Domain`] supplies: float (the f32 reference), fixed (plaintext
//! fixed point, modelling the MPC arithmetic) and mpc (one party of the real protocol).
//! Comparing them places a wrong answer: float vs the source model is a conversion bug,
//! fixed vs float is precision, mpc vs fixed is the protocol.

pub mod approx;
mod defer;
mod domain_cost;
mod domain_fixed;
mod domain_float;
mod domain_mpc;
mod estimate;
pub(crate) mod maps;
mod nonlinear;
mod profile;

pub use domain_fixed::FixedDomain;
pub use domain_float::FloatDomain;
pub use domain_mpc::{MpcDomain, MpcValue};
pub use estimate::{Estimate, estimate, estimate_request, estimate_step};
pub use profile::{Profile, StepCost, human_bytes};

/// The profile entry for revealing the outputs to the client.
pub const REVEAL_STEP: &str = "(reveal)";
/// The op column of that entry.
pub const REVEAL_OP: &str = "Reveal";

use crate::net::Stats;
use crate::plan::{Function, Op, Plan, Step, ValueId};
use crate::tensor::Elem;
use anyhow::{Context, Result, ensure};
use maps::*;
use ndarray::{ArrayD, ArrayViewD};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// A map that is linear in its inputs (no constant term), so it can be applied to each share
/// component separately: data movement, sums, additions.
pub trait Linear: Sync {
    fn apply<E: Elem>(&self, xs: &[ArrayViewD<E>]) -> Result<ArrayD<E>>;

    /// [`Linear::apply`] to owned arrays, as the plaintext domains hold them.
    fn apply_to<E: Elem>(&self, xs: &[&ArrayD<E>]) -> Result<ArrayD<E>> {
        self.apply(&xs.iter().map(|x| x.view()).collect::<Vec<_>>())
    }
}

/// A map that is linear in each argument separately: matrix product, convolution,
/// element-wise product.
pub trait Bilinear: Sync {
    fn apply<E: Elem>(&self, a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>>;
}

/// The number system a plan is evaluated in.
pub trait Domain {
    type Value: Clone;
    fn shape(value: &Self::Value) -> Vec<usize>;
    /// A public constant.
    fn constant(&mut self, c: &ArrayD<f32>) -> Result<Self::Value>;
    fn linear<L: Linear>(&mut self, map: &L, xs: &[&Self::Value]) -> Result<Self::Value>;
    /// `map(x, y)` rescaled back to the plan's fixed point.
    fn bilinear<B: Bilinear>(
        &mut self,
        map: &B,
        x: &Self::Value,
        y: &Self::Value,
    ) -> Result<Self::Value>;
    /// `y * [x >= 0]` for each y (shaped like x), by exact comparison: one comparison serves
    /// every y.
    fn gate(&mut self, x: &Self::Value, ys: &[&Self::Value]) -> Result<Vec<Self::Value>>;
    /// A non-linear function: exact in float, the documented approximation otherwise.
    fn function(&mut self, f: Function, x: &Self::Value) -> Result<Self::Value>;
    /// Whether the next step's product may leave its truncation's second round pending,
    /// for a ReLU to take into its first ([`defer::deferrable`]); ignored outside mpc.
    fn defer(&mut self, _on: bool) {}
    /// Traffic so far (zero outside mpc).
    fn stats(&self) -> Stats {
        Stats::default()
    }
}

/// Sees each step of a [`run`] as it completes, in plan order: profiles record it, progress
/// displays count it.
pub trait Observer {
    /// Step `index` of the plan is done; it took `time` and sent `traffic`.
    fn step_done(&mut self, index: usize, step: &Step, time: Duration, traffic: Stats);
}

impl Observer for Profile {
    fn step_done(&mut self, _: usize, step: &Step, time: Duration, traffic: Stats) {
        self.record(&step.node, step.op.name(), time, traffic);
    }
}

/// Where the interpreter takes a plan's weights from: values held for every run (a slice,
/// borrowed uncopied), or values made for each run and dropped after their last use there (a
/// party making large weight shares again from the model owner's keys).
pub trait Weights<D: Domain> {
    /// The plan's `index`th weight.
    fn weight(&self, dom: &mut D, index: usize) -> Result<Cow<'_, D::Value>>;
}

impl<D: Domain> Weights<D> for [D::Value] {
    fn weight(&self, _: &mut D, index: usize) -> Result<Cow<'_, D::Value>> {
        Ok(Cow::Borrowed(&self[index]))
    }
}

/// Evaluates `plan` on `inputs` and `weights` (in plan order) for a batch size, returning
/// the plan outputs. `observer` sees every step as it completes. A weight is taken when a
/// step first reads it and dropped after its last use, like any value.
pub fn run<D: Domain, W: Weights<D> + ?Sized>(
    plan: &Plan,
    dom: &mut D,
    inputs: Vec<D::Value>,
    weights: &W,
    batch: usize,
    observer: &mut dyn Observer,
) -> Result<Vec<D::Value>> {
    let mut values: Vec<Option<Cow<D::Value>>> = vec![None; plan.values.len()];
    for (input, v) in plan.inputs.iter().zip(inputs) {
        values[input.value.index()] = Some(Cow::Owned(v));
    }
    let mut weight_of = vec![None; plan.values.len()];
    for (index, w) in plan.weights.iter().enumerate() {
        weight_of[w.value.index()] = Some(index);
    }
    let last_use = plan.last_uses();
    let deferrable = defer::deferrable(plan);
    for (index, step) in plan.steps.iter().enumerate() {
        let started = Instant::now();
        let before = dom.stats();
        for id in &step.inputs {
            if let (None, Some(w)) = (&values[id.index()], weight_of[id.index()]) {
                values[id.index()] = Some(weights.weight(dom, w)?);
            }
        }
        let args: Vec<&D::Value> = step
            .inputs
            .iter()
            .map(|id| {
                values[id.index()]
                    .as_deref()
                    .expect("validated plans compute values before use")
            })
            .collect();
        dom.defer(deferrable[index]);
        let out = eval(dom, &step.op, &args, batch)
            .with_context(|| format!("node {} ({})", step.node, step.op.name()))?;
        let expected = plan.value(step.output).shape.resolve(batch);
        ensure!(
            D::shape(&out) == expected,
            "node {} ({}) produced shape {:?} where the plan records {:?}; the plan is inconsistent, convert the model again",
            step.node,
            step.op.name(),
            D::shape(&out),
            expected
        );
        values[step.output.index()] = Some(Cow::Owned(out));
        for id in &step.inputs {
            if last_use[id.index()] == index {
                values[id.index()] = None;
            }
        }
        observer.step_done(index, step, started.elapsed(), dom.stats() - before);
    }
    Ok(plan
        .outputs
        .iter()
        .map(|id: &ValueId| {
            values[id.index()]
                .as_deref()
                .cloned()
                .expect("outputs are computed")
        })
        .collect())
}

fn eval<D: Domain>(dom: &mut D, op: &Op, args: &[&D::Value], batch: usize) -> Result<D::Value> {
    match op {
        Op::MatMul => dom.bilinear(&MatMulMap, args[0], args[1]),
        Op::Conv { window, groups } => dom.bilinear(
            &ConvMap {
                window,
                groups: *groups,
            },
            args[0],
            args[1],
        ),
        Op::Mul => dom.bilinear(&MulMap, args[0], args[1]),
        Op::Add => dom.linear(&AddMap, args),
        Op::Sub => dom.linear(&SubMap, args),
        Op::Relu => nonlinear::relu(dom, args[0]),
        Op::MaxPool { window } => nonlinear::max_pool(dom, args[0], window),
        Op::SumPool { window } => dom.linear(&SumPoolMap { window }, args),
        Op::ReduceSum { axes, keep_dims } => dom.linear(
            &ReduceSumMap {
                axes,
                keep_dims: *keep_dims,
            },
            args,
        ),
        Op::Reshape { shape } => dom.linear(
            &ReshapeMap {
                shape: shape.resolve(batch),
            },
            args,
        ),
        Op::Transpose { perm } => dom.linear(&TransposeMap { perm }, args),
        Op::Concat { axis } => dom.linear(&ConcatMap { axis: *axis }, args),
        Op::Select => nonlinear::select(dom, args[0], args[1], args[2]),
        Op::Function { function } => dom.function(*function, args[0]),
        Op::Clip { min, max } => nonlinear::clip(dom, args[0], *min, *max),
        Op::ReduceMax {
            axes,
            keep_dims,
            min,
        } => nonlinear::reduce_max(dom, args[0], axes, *keep_dims, *min),
        Op::ArgMax {
            axis,
            keep_dims,
            min,
            last_index,
        } => nonlinear::arg_max(dom, args[0], *axis, *keep_dims, *min, *last_index),
        Op::Softmax { axis, log } => nonlinear::softmax(dom, args[0], *axis, *log),
        Op::ConvTranspose {
            window,
            groups,
            output_size,
        } => dom.bilinear(
            &ConvTransposeMap {
                window,
                groups: *groups,
                output: output_size,
            },
            args[0],
            args[1],
        ),
        Op::Slice { slices } => dom.linear(&SliceMap { slices }, args),
        Op::Gather { axis, indices } => dom.linear(
            &GatherMap {
                axis: *axis,
                indices,
            },
            args,
        ),
        Op::GatherElements {
            axis,
            indices,
            shape,
        } => dom.linear(
            &GatherElementsMap {
                axis: *axis,
                indices,
                shape,
            },
            args,
        ),
        Op::Tile { repeats } => dom.linear(&TileMap { repeats }, args),
        Op::Pad { begin, end } => dom.linear(&PadMap { begin, end }, args),
        Op::Expand { shape } => dom.linear(
            &ExpandMap {
                shape: shape.resolve(batch),
            },
            args,
        ),
        Op::Where { condition, shape } => {
            let condition =
                ArrayViewD::from_shape(shape.as_slice(), condition).with_context(|| {
                    format!(
                        "the condition holds {} values, not one per element of shape {shape:?}",
                        condition.len()
                    )
                })?;
            dom.linear(&WhereMap { condition }, args)
        }
        Op::Neg => dom.linear(&NegMap, args),
    }
}
