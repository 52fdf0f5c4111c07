//! Training as a loop over the schedule, written once over the [`Domain`] trait: each step
//! gathers its batch from all owners' rows by public indices (a linear map, free under
//! mpc), runs the training plan with the one interpreter and feeds its outputs back as the
//! next step's weights. The plaintext modes (float, fixed) run it here directly.

use super::derive::TrainingPlan;
use super::schedule::Schedule;
use crate::exec::maps::{AddMap, ConcatMap, GatherMap};
use crate::exec::{Domain, FixedDomain, FloatDomain, Observer, run};
use crate::net::Stats;
use crate::plan::Step;
use anyhow::Result;
use ndarray::ArrayD;
use std::time::Duration;

/// Told after each epoch: its index and its summed loss, when the plan reports one.
pub type OnEpoch<'a, D> =
    dyn FnMut(&mut D, usize, Option<&<D as Domain>::Value>) -> Result<()> + 'a;

/// An observer that records nothing.
struct Quiet;

impl Observer for Quiet {
    fn step_done(&mut self, _: usize, _: &Step, _: Duration, _: Stats) {}
}

/// All owners' rows (or labels) as one value, in owner order.
pub fn stacked<D: Domain>(dom: &mut D, parts: &[D::Value]) -> Result<D::Value> {
    let parts: Vec<&D::Value> = parts.iter().collect();
    dom.linear(&ConcatMap { axis: 0 }, &parts)
}

/// Runs every step of `schedule` on `weights` (the training plan's, in order), updating
/// them in place.
pub fn train_loop<D: Domain>(
    dom: &mut D,
    tp: &TrainingPlan,
    rows: &D::Value,
    labels: &D::Value,
    weights: &mut [D::Value],
    schedule: &Schedule,
    on_epoch: &mut OnEpoch<'_, D>,
) -> Result<()> {
    for (index, epoch) in schedule.epochs.iter().enumerate() {
        let mut loss: Option<D::Value> = None;
        for batch in epoch {
            let gather = GatherMap {
                axis: 0,
                indices: batch,
            };
            let x = dom.linear(&gather, &[rows])?;
            let y = dom.linear(&gather, &[labels])?;
            let mut outputs = run(&tp.plan, dom, vec![x, y], &*weights, tp.batch, &mut Quiet)?;
            if tp.reports_loss {
                let step_loss = outputs.pop().expect("the loss output");
                loss = Some(match loss {
                    None => step_loss,
                    Some(total) => dom.linear(&AddMap, &[&total, &step_loss])?,
                });
            }
            for (&weight, value) in tp.updates.iter().zip(outputs) {
                weights[weight] = value;
            }
        }
        on_epoch(dom, index, loss.as_ref())?;
    }
    Ok(())
}

/// A plaintext domain whose values read back as reals.
pub trait Plain: Domain {
    fn real(&self, v: &Self::Value) -> ArrayD<f32>;
}

impl Plain for FloatDomain {
    fn real(&self, v: &ArrayD<f32>) -> ArrayD<f32> {
        v.clone()
    }
}

impl Plain for FixedDomain {
    fn real(&self, v: &ArrayD<u64>) -> ArrayD<f32> {
        self.fixed.decode_array(v.view())
    }
}

/// Trains in a plaintext domain: returns the training plan's final weights and each
/// epoch's summed loss (empty when the plan reports none).
pub fn train_plain<D: Plain>(
    dom: &mut D,
    tp: &TrainingPlan,
    owners: &[(ArrayD<f32>, ArrayD<f32>)],
    schedule: &Schedule,
    progress: &mut dyn FnMut(usize, Option<f32>),
) -> Result<(Vec<ArrayD<f32>>, Vec<f32>)> {
    let mut xs = vec![];
    let mut ys = vec![];
    for (x, y) in owners {
        xs.push(dom.constant(x)?);
        ys.push(dom.constant(y)?);
    }
    let rows = stacked(dom, &xs)?;
    let labels = stacked(dom, &ys)?;
    let mut weights = tp
        .plan
        .weights
        .iter()
        .map(|w| dom.constant(&w.data))
        .collect::<Result<Vec<_>>>()?;
    let mut losses = vec![];
    train_loop(
        dom,
        tp,
        &rows,
        &labels,
        &mut weights,
        schedule,
        &mut |dom: &mut D, epoch, loss| {
            let loss = loss.map(|l| dom.real(l).sum());
            losses.extend(loss);
            progress(epoch, loss);
            Ok(())
        },
    )?;
    Ok((weights.iter().map(|w| dom.real(w)).collect(), losses))
}
