//! Private training (docs/TRAINING.md): a [`Trainer`] reads an ONNX model, derives one
//! training step as a plan (`derive.rs`, with a rule per op in `backward.rs`), and runs it
//! over the data owners' rows (`data.rs`) on the public schedule (`schedule.rs`) with the
//! one interpreter: plaintext in `run.rs`, under the protocol in `parties.rs`. The trained
//! weights go back into the ONNX file (`onnx.rs`), or stay shared in per-party share
//! files that `tfe-party` serves.

mod backward;
mod data;
mod derive;
mod onnx;
mod parties;
mod run;
mod schedule;

pub use data::{DataOwner, GRADIENT_BOUND};
pub use derive::{Trainable, TrainingPlan, derive};
pub use onnx::Origin;
pub use schedule::Schedule;

use crate::exec::{FixedDomain, FloatDomain, REVEAL_STEP, estimate_step};
use crate::import::{GraphNames, Model, read_model};
use crate::lower::{Options as LowerOptions, convert};
use crate::mpc::{ArithShare, Protocol};
use crate::net::Stats;
use crate::plan::{Plan, SharedPlan};
use crate::serve::{Mode, share_files};
use anyhow::{Result, bail, ensure};
use ndarray::ArrayD;
use std::path::Path;
use std::time::{Duration, Instant};

/// The loss a model trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Binary cross-entropy on a sigmoid output (or a logit).
    Bce,
    /// Cross-entropy on a softmax output (or logits).
    Ce,
    /// Mean squared error.
    Mse,
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::Bce => "bce",
            Loss::Ce => "ce",
            Loss::Mse => "mse",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    Sgd,
    /// Heavy-ball momentum in torch's form: v ← μ v + g, w ← w − lr v.
    Momentum,
}

/// The public constants of a training step.
#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub lr: f32,
    pub batch: usize,
    /// μ for [`Optimizer::Momentum`].
    pub momentum: f32,
}

/// How to train.
#[derive(Clone, Debug)]
pub struct Options {
    pub hyper: Hyper,
    pub epochs: usize,
    pub seed: u64,
    pub mode: Mode,
    /// Compute each batch's loss and reveal each epoch's to the model owner.
    pub report_loss: bool,
    /// Keep the trained weights shared (mpc only).
    pub share: bool,
}

/// Told after each epoch: its index and, when the loss is reported, its mean loss per row
/// (the model owner's view).
pub type EpochProgress<'a> = dyn Fn(usize, Option<f32>) + Sync + 'a;

/// The trained weights: revealed to the model owner (the trained ones, in the order of
/// [`TrainingPlan::trained`]), or each party's shares of the forward plan's secret weights.
pub enum TrainedWeights {
    Revealed(Vec<ArrayD<f32>>),
    /// Under the protocol of the run.
    Shared(Protocol, [Vec<ArithShare>; 3]),
}

/// What a training run did and cost.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub steps: usize,
    /// Mean loss per row of each epoch (empty unless reported).
    pub losses: Vec<f32>,
    /// The steps' wall time.
    pub time: Duration,
    /// The steps' traffic (zero outside mpc).
    pub traffic: Stats,
    /// Dealing the initial weights and the rows, before the first step.
    pub setup: Stats,
}

pub struct Outcome {
    pub weights: TrainedWeights,
    pub report: Report,
}

/// A model to train: the ONNX file, its forward plan, and which weights train.
pub struct Trainer {
    pub model: Model,
    pub forward: Plan,
    pub origins: Vec<Option<Origin>>,
    pub trainable: Vec<Trainable>,
}

impl Trainer {
    /// Reads and converts `path`; weights whose initializer or node name starts with a
    /// `freeze` prefix stay fixed.
    pub fn new(path: &Path, freeze: &[String]) -> Result<Trainer> {
        ensure!(
            path.extension().is_none_or(|e| e != "pb"),
            "{}: training takes an ONNX model; convert the TensorFlow graph to ONNX first (tf2onnx)",
            path.display()
        );
        let model = read_model(path, &GraphNames::default())?;
        let forward = convert(path, LowerOptions::default())?.plan;
        let origins = onnx::origins(&model, &forward);
        let trainable = onnx::trainability(&forward, &origins, freeze)?;
        Ok(Trainer {
            model,
            forward,
            origins,
            trainable,
        })
    }

    /// The secret weights that stay fixed without being frozen, each with why: the model
    /// owner should know that they do not train.
    pub fn untrained(&self) -> Vec<String> {
        self.forward
            .weights
            .iter()
            .zip(&self.trainable)
            .filter_map(|(w, how)| match how {
                Trainable::Untraceable(why) => {
                    Some(format!("{} ({why})", self.forward.value(w.value).name))
                }
                _ => None,
            })
            .collect()
    }

    /// The training plan for `hyper`.
    pub fn plan(&self, hyper: &Hyper, report_loss: bool) -> Result<TrainingPlan> {
        derive(&self.forward, &self.trainable, hyper, report_loss)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", self.model.path.display()))
    }

    /// Trains on `owners`' rows.
    pub fn train(
        &self,
        owners: &[DataOwner],
        options: &Options,
        progress: &EpochProgress<'_>,
    ) -> Result<Outcome> {
        let hyper = &options.hyper;
        if options.share && !matches!(options.mode, Mode::Mpc(_)) {
            bail!("--share keeps the trained weights secret-shared, which only --mode mpc does");
        }
        let factor = hyper.lr / hyper.batch as f32;
        ensure!(
            hyper.lr.is_finite() && hyper.lr > 0.0 && factor >= 1.0 / 65536.0,
            "the learning rate {} over the batch of {} is {factor:e}, below the 2^-16 that fixed point resolves; raise --lr",
            hyper.lr,
            hyper.batch
        );
        let tp = self.plan(hyper, options.report_loss)?;
        let input = self
            .forward
            .value(self.forward.inputs[0].value)
            .shape
            .clone();
        let output = self.forward.value(self.forward.outputs[0]).shape.clone();
        let fixed = self.forward.fixed_point;
        let mut prepared = vec![];
        for owner in owners {
            let p = data::prepare(owner, &input, &output, hyper.loss, hyper.batch, fixed)?;
            prepared.push((p.x, p.y));
        }
        ensure!(
            !prepared.is_empty(),
            "training needs at least one data owner's rows"
        );
        let rows: usize = prepared.iter().map(|(x, _)| x.shape()[0]).sum();
        let schedule = Schedule::new(rows, hyper.batch, options.epochs, options.seed)?;
        let per_row = (hyper.batch * tp.loss_per_row) as f32;
        let steps_per_epoch = schedule.epochs.first().map_or(0, Vec::len) as f32;
        let mean = move |sum: f32| sum / (per_row * steps_per_epoch);
        let shown = |epoch, loss: Option<f32>| progress(epoch, loss.map(mean));
        let started = Instant::now();
        let mut report = Report {
            steps: schedule.steps(),
            ..Report::default()
        };
        let weights = match options.mode {
            Mode::Mpc(protocol) => {
                let run = parties::train_mpc(
                    protocol,
                    &self.forward,
                    &tp,
                    &prepared,
                    &schedule,
                    options.share,
                    &shown,
                )?;
                report.losses = run.losses.into_iter().map(mean).collect();
                report.time = run.time;
                report.traffic = run.training;
                report.setup = run.setup;
                run.weights
            }
            Mode::Fixed | Mode::Float => {
                let mut show = |epoch, loss| shown(epoch, loss);
                let (weights, losses) = if options.mode == Mode::Float {
                    run::train_plain(&mut FloatDomain, &tp, &prepared, &schedule, &mut show)?
                } else {
                    let mut dom = FixedDomain { fixed };
                    run::train_plain(&mut dom, &tp, &prepared, &schedule, &mut show)?
                };
                report.losses = losses.into_iter().map(mean).collect();
                report.time = started.elapsed();
                TrainedWeights::Revealed(tp.trained.iter().map(|&i| weights[i].clone()).collect())
            }
        };
        Ok(Outcome { weights, report })
    }

    /// The forward plan with the trained weights in place of the initial ones.
    pub fn trained_plan(&self, tp: &TrainingPlan, weights: &[ArrayD<f32>]) -> Plan {
        let mut plan = self.forward.clone();
        for (&i, w) in tp.trained.iter().zip(weights) {
            plan.weights[i].data = w.clone();
        }
        plan
    }

    /// Writes the model with its trained initializers to `out`.
    pub fn write_onnx(&self, tp: &TrainingPlan, weights: &[ArrayD<f32>], out: &Path) -> Result<()> {
        let plan = self.trained_plan(tp, weights);
        onnx::write_trained(&self.model, &plan, &self.origins, &tp.trained, out)
    }

    /// The share files of the trained model, from each party's shares of the forward plan's
    /// secret weights: parties 0, 1 and 2, then the client.
    pub fn share_files(
        &self,
        protocol: Protocol,
        shares: &[Vec<ArithShare>; 3],
    ) -> Result<Vec<SharedPlan>> {
        // The components each file keeps: both under ABY3, a Pond server's additive share
        // (its `cur`), none at Pond's producer.
        let kept = |s: &ArithShare| match protocol {
            Protocol::Aby3 => vec![s.cur.clone(), s.next.clone()],
            Protocol::Pond => vec![s.cur.clone()],
        };
        let held = shares
            .each_ref()
            .map(|held| held.iter().map(kept).collect());
        share_files(&self.forward, protocol, held)
    }

    /// The protocol's cost of one training step (rounds and bytes), from the closed forms:
    /// the plan's steps, without the inputs' sharing and the outputs' reveal that a
    /// prediction has (a step gathers its batch and keeps its outputs shared).
    pub fn step_cost(tp: &TrainingPlan, protocol: Protocol) -> Result<Stats> {
        let steps = estimate_step(&tp.plan, tp.batch, protocol)?.steps.steps;
        Ok(steps
            .iter()
            .filter(|s| s.node != REVEAL_STEP)
            .fold(Stats::default(), |t, s| t + s.stats))
    }
}
