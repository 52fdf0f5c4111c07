//! The training plan: one step of training derived from a forward plan, as a plan the one
//! interpreter runs in every domain. Its inputs are a batch of rows and their labels; its
//! weights are the forward plan's (same order), the optimiser's state and two public
//! constants; its outputs are the updated weights, the updated state and, when asked for,
//! the batch's summed loss. docs/TRAINING.md describes the steps.

use super::backward::{Tape, backward};
use super::{Hyper, Loss, Optimizer};
use crate::plan::{Dim, Function, Op, Plan, Shape, ValueId, Visibility};
use anyhow::{Context, Result, bail, ensure};
use ndarray::ArrayD;
use std::collections::HashMap;

/// Whether a forward weight trains.
#[derive(Clone, Debug, PartialEq)]
pub enum Trainable {
    Yes,
    /// Kept as it is (`--freeze`, or a public constant of the lowering).
    Frozen,
    /// Computed by the lowering from the model's tensors, so a trained value could not be
    /// written back: the reason, for the message if it would need training.
    Untraceable(String),
}

/// One training step as a plan, and how its outputs feed the next step.
#[derive(Clone, Debug)]
pub struct TrainingPlan {
    pub plan: Plan,
    /// Output `k` is the next value of weight `updates[k]` of `plan`.
    pub updates: Vec<usize>,
    /// The forward weights that train, by index (a prefix of `updates`).
    pub trained: Vec<usize>,
    /// Whether the last output is the batch's summed loss.
    pub reports_loss: bool,
    /// What the summed loss is divided by per row for its mean: the outputs per row for
    /// mse (the mean over elements, as torch's MSELoss), 1 otherwise.
    pub loss_per_row: usize,
    /// The rows per step.
    pub batch: usize,
}

/// The training plan of `forward` with the given weights trainable.
pub fn derive(
    forward: &Plan,
    trainable: &[Trainable],
    hyper: &Hyper,
    report_loss: bool,
) -> Result<TrainingPlan> {
    ensure!(
        trainable.len() == forward.weights.len(),
        "one trainability per weight"
    );
    let ([x], [out]) = (forward.inputs.as_slice(), forward.outputs.as_slice()) else {
        bail!(
            "training takes a model with one input and one output; this one has {} inputs and {} outputs",
            forward.inputs.len(),
            forward.outputs.len()
        );
    };
    ensure!(
        x.encoding == crate::plan::Encoding::Real,
        "training takes rows of real numbers; the model's input {} is token ids",
        forward.value(x.value).name
    );
    let out = *out;
    let mut t = Tape::new(forward.clone());
    let out_shape = t.shape(out);
    ensure!(
        matches!(out_shape.0.first(), Some(Dim::Batch(1)))
            && !out_shape.0[1..].iter().any(|d| matches!(d, Dim::Batch(_))),
        "training needs the model's output to have one row per input row, batch first; {} has shape {out_shape}",
        forward.value(out).name
    );
    let labels = t.builder.input("labels", out_shape.clone());

    let mut needs = vec![false; forward.values.len()];
    for (w, how) in forward.weights.iter().zip(trainable) {
        needs[w.value.index()] = *how == Trainable::Yes;
    }
    for step in &forward.steps {
        needs[step.output.index()] = step.inputs.iter().any(|i| needs[i.index()]);
    }
    ensure!(
        needs[out.index()],
        "no trainable weight affects the output {}: every weight is frozen",
        forward.value(out).name
    );

    let top = top_gradient(&mut t, forward, out, labels, hyper.loss)?;
    let mut grads: HashMap<ValueId, ValueId> = HashMap::from([(top.z, top.delta)]);
    let untraceable: HashMap<ValueId, &str> = forward
        .weights
        .iter()
        .zip(trainable)
        .filter_map(|(w, how)| match how {
            Trainable::Untraceable(why) => Some((w.value, why.as_str())),
            _ => None,
        })
        .collect();
    for (index, step) in forward.steps.iter().enumerate().rev() {
        if top.fused == Some(index) {
            continue;
        }
        let Some(&g) = grads.get(&step.output) else {
            continue;
        };
        if !needs[step.output.index()] {
            continue;
        }
        for input in &step.inputs {
            if let Some(why) = untraceable.get(input) {
                bail!(
                    "node {} reads weight {} ({why}), which training cannot write back to the ONNX file; freeze it with --freeze {}",
                    step.node,
                    forward.value(*input).name,
                    step.node
                );
            }
        }
        for (input, gradient) in backward(&mut t, step, g, |v| needs[v.index()])? {
            let summed = match grads.get(&input) {
                Some(&earlier) => {
                    let shape = t.shape(input);
                    t.at(&step.node);
                    t.step(Op::Add, &[earlier, gradient], "grad_sum", shape)
                }
                None => gradient,
            };
            grads.insert(input, summed);
        }
    }

    let factor = hyper.lr / hyper.batch as f32;
    let mut updates = vec![];
    let mut next = vec![];
    let mut state = vec![];
    for (index, w) in forward.weights.iter().enumerate() {
        if trainable[index] != Trainable::Yes {
            continue;
        }
        let name = forward.value(w.value).name.clone();
        let g = *grads
            .get(&w.value)
            .with_context(|| format!("weight {name} does not affect the loss; freeze it"))?;
        let shape = t.shape(w.value);
        t.at(&format!("update {name}"));
        let direction = match hyper.optimizer {
            Optimizer::Sgd => g,
            Optimizer::Momentum => {
                let data = ArrayD::zeros(w.data.raw_dim());
                let (v, index) = t.weight(&format!("{name}/velocity"), data, Visibility::Secret);
                let decayed = t.scale(v, hyper.momentum, shape.clone());
                let v_next = t.step(Op::Add, &[decayed, g], "velocity", shape.clone());
                state.push((index, v_next));
                v_next
            }
        };
        let step = t.scale(direction, factor, shape.clone());
        let updated = t.step(Op::Sub, &[w.value, step], "updated", shape);
        updates.push(index);
        next.push(updated);
    }
    let trained = updates.clone();
    for (weight, value) in state {
        updates.push(weight);
        next.push(value);
    }
    if report_loss {
        next.push(batch_loss(&mut t, &top, labels, hyper.loss)?);
    }
    for value in next {
        t.builder.output(value);
    }
    let loss_per_row = match hyper.loss {
        Loss::Mse => out_shape.0[1..].iter().map(|d| d.resolve(1)).product(),
        Loss::Ce | Loss::Bce => 1,
    };
    let plan = (t.builder.build()).context("the derived training plan is inconsistent")?;
    Ok(TrainingPlan {
        plan,
        updates,
        trained,
        reports_loss: report_loss,
        loss_per_row,
        batch: hyper.batch,
    })
}

/// Where backpropagation starts: the gradient `delta` of the value `z` that the loss reads
/// (the logits under a softmax or sigmoid, or the output), and the forward step the loss
/// absorbed, if any.
struct Top {
    z: ValueId,
    delta: ValueId,
    fused: Option<usize>,
    /// The model's prediction ŷ and its difference from the labels (mse).
    prediction: ValueId,
    difference: ValueId,
}

fn producer(plan: &Plan, v: ValueId) -> Option<usize> {
    plan.steps.iter().position(|s| s.output == v)
}

fn is_sigmoid(op: &Op) -> bool {
    matches!(
        op,
        Op::Function {
            function: Function::Sigmoid | Function::SigmoidPolynomial | Function::SigmoidPiecewise
        }
    )
}

fn top_gradient(
    t: &mut Tape,
    forward: &Plan,
    out: ValueId,
    labels: ValueId,
    loss: Loss,
) -> Result<Top> {
    t.at("loss");
    let shape = t.shape(out);
    let last_axis = shape.rank() - 1;
    let made_by = producer(forward, out);
    let step = made_by.map(|i| &forward.steps[i]);
    let (z, prediction, fused) = match (loss, step) {
        (Loss::Ce, Some(s))
            if s.op
                == (Op::Softmax {
                    axis: last_axis,
                    log: false,
                }) =>
        {
            (s.inputs[0], out, made_by)
        }
        (Loss::Bce, Some(s)) if is_sigmoid(&s.op) => (s.inputs[0], out, made_by),
        (Loss::Ce, _) => {
            let op = Op::Softmax {
                axis: last_axis,
                log: false,
            };
            let p = t.step(op, &[out], "probabilities", shape.clone());
            (out, p, None)
        }
        (Loss::Bce, _) => {
            let op = Op::Function {
                function: Function::SigmoidPolynomial,
            };
            let p = t.step(op, &[out], "probabilities", shape.clone());
            (out, p, None)
        }
        (Loss::Mse, _) => (out, out, None),
    };
    let difference = t.step(Op::Sub, &[prediction, labels], "difference", shape.clone());
    let delta = match loss {
        Loss::Ce | Loss::Bce => difference,
        Loss::Mse => {
            let per_row: usize = shape.0[1..].iter().map(|d| d.resolve(1)).product();
            t.scale(difference, 2.0 / per_row as f32, shape)
        }
    };
    Ok(Top {
        z,
        delta,
        fused,
        prediction,
        difference,
    })
}

/// The batch's loss summed over its rows (a scalar).
fn batch_loss(t: &mut Tape, top: &Top, labels: ValueId, loss: Loss) -> Result<ValueId> {
    t.at("loss");
    let shape = t.shape(top.prediction);
    let all: Vec<usize> = (0..shape.rank()).collect();
    let scalar = Shape(vec![]);
    let sum = |t: &mut Tape, v: ValueId| {
        let op = Op::ReduceSum {
            axes: all.clone(),
            keep_dims: false,
        };
        t.step(op, &[v], "loss_sum", scalar.clone())
    };
    Ok(match loss {
        Loss::Ce => {
            let op = Op::Softmax {
                axis: shape.rank() - 1,
                log: true,
            };
            let log_p = t.step(op, &[top.z], "log_probabilities", shape.clone());
            let picked = t.step(Op::Mul, &[labels, log_p], "picked", shape);
            let total = sum(t, picked);
            t.step(Op::Neg, &[total], "loss", scalar)
        }
        Loss::Bce => {
            // -y log s - (1 - y) log(1 - s) = softplus(z) - y z.
            let op = Op::Function {
                function: Function::Softplus,
            };
            let soft = t.step(op, &[top.z], "softplus", shape.clone());
            let yz = t.step(Op::Mul, &[labels, top.z], "yz", shape.clone());
            let each = t.step(Op::Sub, &[soft, yz], "each", shape);
            sum(t, each)
        }
        Loss::Mse => {
            let d = top.difference;
            let squares = t.step(Op::Mul, &[d, d], "squares", shape);
            sum(t, squares)
        }
    })
}
