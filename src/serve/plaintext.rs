//! The plaintext reference modes as a session: the plan's interpreter over f32 or over
//! plaintext fixed point, with no parties and no traffic. They check and encode inputs as
//! the secure session does, so every mode refuses the same inputs.

use super::encoding::{encode_weight, prepare, real_values};
use super::{Prediction, Session, Setup};
use crate::exec::{FixedDomain, FloatDomain, Profile, run};
use crate::net::Stats;
use crate::plan::Plan;
use anyhow::Result;
use ndarray::ArrayD;
use std::sync::Arc;
use std::time::Instant;

/// A plan evaluated in plaintext, on weights prepared once.
pub struct PlaintextSession {
    plan: Arc<Plan>,
    weights: HeldWeights,
    setup: Setup,
}

enum HeldWeights {
    Float(Vec<ArrayD<f32>>),
    Fixed(Vec<ArrayD<u64>>),
}

impl PlaintextSession {
    /// The f32 reference ([`Mode::Float`](super::Mode::Float)).
    pub fn float(plan: Arc<Plan>) -> PlaintextSession {
        let started = Instant::now();
        let weights = HeldWeights::Float(plan.weights.iter().map(|w| w.data.clone()).collect());
        Self::ready(plan, weights, started)
    }

    /// Plaintext fixed point ([`Mode::Fixed`](super::Mode::Fixed)), refusing weights that
    /// fixed point cannot hold.
    pub fn fixed(plan: Arc<Plan>) -> Result<PlaintextSession> {
        let started = Instant::now();
        let weights = (0..plan.weights.len())
            .map(|i| encode_weight(&plan, i))
            .collect::<Result<_>>()?;
        Ok(Self::ready(plan, HeldWeights::Fixed(weights), started))
    }

    fn ready(plan: Arc<Plan>, weights: HeldWeights, started: Instant) -> PlaintextSession {
        PlaintextSession {
            plan,
            weights,
            setup: Setup {
                traffic: Stats::default(),
                time: started.elapsed(),
            },
        }
    }
}

impl Session for PlaintextSession {
    fn setup(&self) -> Setup {
        self.setup
    }

    fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction> {
        let (batch, encoded) = prepare(&self.plan, inputs)?;
        let plan = &*self.plan;
        let started = Instant::now();
        let mut profile = Profile::default();
        let outputs = match &self.weights {
            HeldWeights::Float(weights) => run(
                plan,
                &mut FloatDomain,
                real_values(plan, inputs),
                weights.as_slice(),
                batch,
                &mut profile,
            )?,
            HeldWeights::Fixed(weights) => {
                let mut dom = FixedDomain {
                    fixed: plan.fixed_point,
                };
                run(
                    plan,
                    &mut dom,
                    encoded,
                    weights.as_slice(),
                    batch,
                    &mut profile,
                )?
                .iter()
                .map(|o| plan.fixed_point.decode_array(o.view()))
                .collect()
            }
        };
        Ok(Prediction {
            outputs,
            batch,
            profile,
            online: Stats::default(),
            by_party: vec![],
            time: started.elapsed(),
            setup: Setup::default(),
        })
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
