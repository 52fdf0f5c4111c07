//! Running a plan end to end in one of the three modes, with the checks a user's input needs.

use super::session::{Session, Setup};
use super::{FixedDomain, FloatDomain, Profile, run};
use crate::mpc::WrapTransport;
use crate::net::Stats;
use crate::plan::Plan;
use crate::tensor::fixed::EncodeError;
use anyhow::{Context, Result};
use ndarray::ArrayD;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Three-party replicated secret sharing (the real thing).
    Mpc,
    /// Plaintext fixed point, modelling the MPC arithmetic.
    Fixed,
    /// f32 reference.
    Float,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "the model takes {expected} input(s) ({names}), but {got} were given; pass one .npy file per input, in this order"
    )]
    Count {
        expected: usize,
        got: usize,
        names: String,
    },
    #[error(
        "input {name} must have rank {expected_rank} (shape {expected}), but the given array has shape {got:?}"
    )]
    Rank {
        index: usize,
        name: String,
        expected: String,
        expected_rank: usize,
        got: Vec<usize>,
    },
    #[error(
        "input {name} must have shape {expected} (N = any batch size), but the given array has shape {got:?}"
    )]
    Shape {
        index: usize,
        name: String,
        expected: String,
        got: Vec<usize>,
    },
    #[error("the inputs disagree on the batch size: {first} has batch {a}, {second} has batch {b}")]
    Batch {
        first: String,
        a: usize,
        second: String,
        b: usize,
    },
    #[error("input {name}: {reason}; inputs must be finite numbers")]
    NotFinite {
        index: usize,
        name: String,
        reason: EncodeError,
    },
    #[error("input {name}: {reason}; scale the input down (or convert with fewer --frac-bits)")]
    OutOfRange {
        index: usize,
        name: String,
        reason: EncodeError,
    },
}

/// Traffic of a run: `setup` (key agreement, weight sharing) happens once per deployment;
/// `online` is per inference (input sharing, the computation, the reveal). Online rounds
/// are the protocol's rounds on the critical path: per step, those of the party that waited
/// most (sharing the input and revealing the output add one message latency each).
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub setup: Stats,
    pub online: Stats,
}

impl InputError {
    /// Which of the given inputs the error is about, if one.
    pub fn input_index(&self) -> Option<usize> {
        match self {
            InputError::Rank { index, .. }
            | InputError::Shape { index, .. }
            | InputError::NotFinite { index, .. }
            | InputError::OutOfRange { index, .. } => Some(*index),
            InputError::Count { .. } | InputError::Batch { .. } => None,
        }
    }
}

pub struct Prediction {
    pub outputs: Vec<ArrayD<f32>>,
    pub batch: usize,
    /// Per step, merged over the three parties (empty outside mpc beyond timing).
    pub profile: Profile,
    /// Bytes sent by every role and the parties' rounds, setup and online apart.
    pub traffic: Traffic,
    /// Time spent on the setup that a long-running deployment does once (keys, weights).
    /// A request on a [`Session`] pays none: its setup traffic and time are zero here.
    pub setup_time: Duration,
    /// Setup included, when there was one.
    pub total_time: Duration,
}

/// Checks the inputs against the plan and returns the batch size.
pub(super) fn check_inputs(plan: &Plan, inputs: &[ArrayD<f32>]) -> Result<usize, InputError> {
    let names = || {
        plan.inputs
            .iter()
            .map(|&id| plan.value(id).name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if inputs.len() != plan.inputs.len() {
        return Err(InputError::Count {
            expected: plan.inputs.len(),
            got: inputs.len(),
            names: names(),
        });
    }
    let mut batch: Option<(String, usize)> = None;
    for (index, (&id, x)) in plan.inputs.iter().zip(inputs).enumerate() {
        let info = plan.value(id);
        let expected = info.shape.to_string();
        if x.ndim() != info.shape.rank() {
            return Err(InputError::Rank {
                index,
                name: info.name.clone(),
                expected,
                expected_rank: info.shape.rank(),
                got: x.shape().to_vec(),
            });
        }
        let b = info
            .shape
            .batch_for(x.shape())
            .filter(|&b| b > 0)
            .ok_or_else(|| InputError::Shape {
                index,
                name: info.name.clone(),
                expected: expected.clone(),
                got: x.shape().to_vec(),
            })?;
        if let Some((first, a)) = &batch {
            if info.shape.has_batch() && *a != b {
                return Err(InputError::Batch {
                    first: first.clone(),
                    a: *a,
                    second: info.name.clone(),
                    b,
                });
            }
        } else if info.shape.has_batch() {
            batch = Some((info.name.clone(), b));
        }
    }
    Ok(batch.map_or(1, |(_, b)| b))
}

pub(super) fn encode_inputs(
    plan: &Plan,
    inputs: &[ArrayD<f32>],
) -> Result<Vec<ArrayD<u64>>, InputError> {
    plan.inputs
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(index, (&id, x))| {
            let name = plan.value(id).name.clone();
            plan.fixed_point
                .encode_array(x.view())
                .map_err(|reason| match reason {
                    EncodeError::NotFinite { .. } => InputError::NotFinite {
                        index,
                        name,
                        reason,
                    },
                    EncodeError::OutOfRange { .. } => InputError::OutOfRange {
                        index,
                        name,
                        reason,
                    },
                })
        })
        .collect()
}

pub(super) fn encode_weight(plan: &Plan, index: usize) -> Result<ArrayD<u64>> {
    let w = &plan.weights[index];
    plan.fixed_point
        .encode_array(w.data.view())
        .with_context(|| format!("weight {} cannot be encoded; the model's weights must be finite and within the fixed-point range", plan.value(w.value).name))
}

pub fn predict(plan: &Plan, inputs: &[ArrayD<f32>], mode: Mode) -> Result<Prediction> {
    let batch = check_inputs(plan, inputs)?;
    // Every mode rejects what the fixed-point modes cannot represent, so modes agree on errors.
    let encoded = encode_inputs(plan, inputs)?;
    let started = Instant::now();
    let mut profile = Profile::default();
    let (outputs, traffic, setup_time) = match mode {
        Mode::Float => {
            let weights: Vec<_> = plan.weights.iter().map(|w| w.data.clone()).collect();
            let outs = run(
                plan,
                &mut FloatDomain,
                inputs.to_vec(),
                &weights,
                batch,
                Some(&mut profile),
            )?;
            (outs, Traffic::default(), Duration::ZERO)
        }
        Mode::Fixed => {
            let mut dom = FixedDomain {
                fixed: plan.fixed_point,
            };
            let weights = (0..plan.weights.len())
                .map(|i| encode_weight(plan, i))
                .collect::<Result<Vec<_>>>()?;
            let outs = run(plan, &mut dom, encoded, &weights, batch, Some(&mut profile))?;
            (
                outs.iter()
                    .map(|o| plan.fixed_point.decode_array(o.view()))
                    .collect(),
                Traffic::default(),
                Duration::ZERO,
            )
        }
        Mode::Mpc => {
            let (session, request) = predict_once(plan, &encoded, batch, &|end| Box::new(end))?;
            profile = request.profile;
            let traffic = Traffic {
                setup: session.traffic,
                online: request.traffic.online,
            };
            (request.outputs, traffic, session.time)
        }
    };
    Ok(Prediction {
        outputs,
        batch,
        profile,
        traffic,
        setup_time,
        total_time: started.elapsed(),
    })
}

/// Runs `plan` under mpc with every party endpoint wrapped by `wrap`, returning the outputs.
pub fn predict_mpc_wrapped(
    plan: &Plan,
    inputs: &[ArrayD<f32>],
    wrap: &WrapTransport,
) -> Result<Vec<ArrayD<f32>>> {
    let batch = check_inputs(plan, inputs)?;
    let encoded = encode_inputs(plan, inputs)?;
    Ok(predict_once(plan, &encoded, batch, wrap)?.1.outputs)
}

/// A session that serves a single request: its setup and the request's prediction.
fn predict_once(
    plan: &Plan,
    inputs: &[ArrayD<u64>],
    batch: usize,
    wrap: &WrapTransport,
) -> Result<(Setup, Prediction)> {
    let mut session = Session::start_wrapped(Arc::new(plan.clone()), wrap)?;
    let prediction = session.request(inputs, batch)?;
    let setup = session.setup();
    session.close()?;
    Ok((setup, prediction))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Dim, Op, PlanBuilder, Shape, Source, Visibility};
    use crate::tensor::FixedPoint;
    use ndarray::IxDyn;

    fn tiny_plan() -> Plan {
        let mut b = PlanBuilder::new(
            FixedPoint::default(),
            Source {
                file_name: "t".into(),
                sha256: String::new(),
            },
        );
        let x = b.input("x", Shape(vec![Dim::Batch(1), Dim::Fixed(3)]));
        let w = b.weight(
            "w",
            ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0.5, -1.0, 2.0, 0.25, -0.75, 1.5]).unwrap(),
            Visibility::Secret,
        );
        let y = b.step(
            "mm",
            Op::MatMul,
            &[x, w],
            "y",
            Shape(vec![Dim::Batch(1), Dim::Fixed(2)]),
        );
        let z = b.step(
            "relu",
            Op::Relu,
            &[y],
            "z",
            Shape(vec![Dim::Batch(1), Dim::Fixed(2)]),
        );
        b.output(z);
        b.build().unwrap()
    }

    #[test]
    fn modes_agree_on_a_tiny_plan() {
        let plan = tiny_plan();
        let x =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, -1.0, 0.5, 4.0]).unwrap();
        let float = predict(&plan, std::slice::from_ref(&x), Mode::Float)
            .unwrap()
            .outputs;
        for mode in [Mode::Fixed, Mode::Mpc] {
            let got = predict(&plan, std::slice::from_ref(&x), mode)
                .unwrap()
                .outputs;
            for (a, b) in got[0].iter().zip(float[0].iter()) {
                assert!((a - b).abs() < 1e-3, "{mode:?}: {a} vs {b}");
            }
        }
        assert_eq!(
            float[0],
            ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![2.25, 4.0, 0.0, 7.125]).unwrap()
        );
    }

    #[test]
    fn rejects_bad_inputs_with_names() {
        let plan = tiny_plan();
        let bad_shape = ArrayD::<f32>::zeros(IxDyn(&[2, 4]));
        let e = predict(&plan, &[bad_shape], Mode::Float)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("input x must have shape [N, 3]"), "{e}");
        let nan = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, f32::NAN, 0.0]).unwrap();
        let e = predict(&plan, &[nan], Mode::Mpc).err().unwrap().to_string();
        assert!(e.contains("input x") && e.contains("NaN"), "{e}");
        let big = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, 3e9, 0.0]).unwrap();
        let e = predict(&plan, &[big], Mode::Mpc).err().unwrap().to_string();
        assert!(e.contains("outside the fixed-point range"), "{e}");
        let e = predict(&plan, &[], Mode::Mpc).err().unwrap().to_string();
        assert!(e.contains("takes 1 input"), "{e}");
    }
}
