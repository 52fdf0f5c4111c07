//! Secure aggregation as a deployment: what the caller asks for (sum or mean, public
//! weights, a minimum number of inputs, a clip), the checks made before anything is shared
//! (shapes, finite values, the ring's overflow bound) and the embedded run, where every
//! inputter, the three parties and the result receiver (the caller) play in this process,
//! under either protocol.

use super::{inputter, receiver};
use crate::aggregate::{self, Ring, Round};
use crate::mpc::Protocol;
use crate::mpc::{Party, WrapTransport, run_local_roles};
use crate::net::{Role, Stats, Transport};
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::ArrayD;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateOp {
    Sum,
    Mean,
}

/// Why an aggregation was refused before anything was shared.
#[derive(Debug, thiserror::Error)]
pub enum AggregationError {
    #[error(
        "{given} input(s) given, fewer than the minimum of {min}; the sum of so few inputs would reveal too much about each (give more inputs or lower --min-inputs)"
    )]
    TooFew { given: usize, min: usize },
    #[error(
        "input {index} has shape {got:?}, but the first input has shape {expected:?}; every inputter must give a vector of the same shape"
    )]
    Shape {
        index: usize,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("the inputs hold no values")]
    Empty,
    #[error("input {index}: element {element} is {value}; inputs must be finite numbers")]
    NotFinite {
        index: usize,
        element: usize,
        value: f32,
    },
    #[error("{0}")]
    Weights(String),
    #[error("--clip must be a positive finite number, not {0}")]
    Clip(f32),
    #[error(
        "the sum could overflow the ring: inputs x clip x 2^f = {weight_sum} x {clip} x 2^{frac_bits} = {bound:.3e} must stay below 2^63 = 9.223e18 (2^31 for the 4-byte ring); clip the values to at most {max_clip:.4e} (--clip), scale them down, or use fewer inputs"
    )]
    Overflow {
        /// The number of inputs, or the sum of their integer weights.
        weight_sum: u64,
        clip: f64,
        frac_bits: u32,
        bound: f64,
        max_clip: f64,
    },
}

impl AggregationError {
    /// Which of the given inputs the error is about, if one.
    pub fn input_index(&self) -> Option<usize> {
        match self {
            AggregationError::Shape { index, .. } | AggregationError::NotFinite { index, .. } => {
                Some(*index)
            }
            _ => None,
        }
    }
}

/// What to aggregate, and under which public rules.
#[derive(Clone, Debug)]
pub struct Aggregation {
    pub op: AggregateOp,
    /// One public weight per input (a weighted sum or mean); `None` weighs every input 1.
    pub weights: Option<Vec<f64>>,
    /// The parties reveal nothing unless at least this many inputs are in the sum.
    pub min_inputs: usize,
    /// Values beyond ±clip are clipped to it; the public bound that decides the ring. `None`
    /// takes the largest |value| given (possible only when one process holds every input).
    pub clip: Option<f32>,
    pub fixed_point: FixedPoint,
    /// Which parties take the pieces: pairs of the three (ABY3), or Pond's two servers.
    pub protocol: Protocol,
}

/// The revealed result with its figures.
pub struct Aggregate {
    pub values: ArrayD<f32>,
    /// Inputs in the sum.
    pub included: usize,
    pub ring: Ring,
    /// Sent by every role (inputters, parties, receiver); rounds are the parties'.
    pub traffic: Stats,
    /// The same from the protocol's closed form ([`Round::cost`], after the parties' key
    /// agreement).
    pub estimate: Stats,
    pub time: Duration,
}

/// A checked aggregation: the round every role runs, with what the inputters and the
/// receiver need to encode and decode.
pub(super) struct Prepared {
    pub round: Round,
    pub clip: f64,
    pub fixed_point: FixedPoint,
    pub op: AggregateOp,
    /// The weights are the given ones times this (1 for integer weights).
    pub weight_scale: f64,
    pub shape: Vec<usize>,
}

/// A clip given by the user: positive and finite.
pub(super) fn checked_clip(clip: f32) -> Result<f64, AggregationError> {
    match clip {
        c if c.is_finite() && c > 0.0 => Ok(c as f64),
        c => Err(AggregationError::Clip(c)),
    }
}

/// Weights that are not all integers are scaled so that the largest is 2^16, then rounded.
const WEIGHT_BITS: i32 = 16;

impl Aggregation {
    pub fn new(op: AggregateOp) -> Aggregation {
        Aggregation {
            op,
            weights: None,
            min_inputs: 1,
            clip: None,
            fixed_point: FixedPoint::default(),
            protocol: Protocol::default(),
        }
    }

    /// Aggregates `inputs` with every role in this process, the caller being the result
    /// receiver: each input is one inputter's vector.
    pub fn run(&self, inputs: &[ArrayD<f32>]) -> Result<Aggregate> {
        self.run_wrapped(inputs, &|end| Box::new(end))
    }

    /// [`Aggregation::run`] with every party's endpoint, and the receiver's, passed through
    /// `wrap` (to observe a role's view).
    pub fn run_wrapped(&self, inputs: &[ArrayD<f32>], wrap: &WrapTransport) -> Result<Aggregate> {
        let prepared = self.prepare(inputs)?;
        let started = Instant::now();
        let round = &prepared.round;
        let mut roles = round.inputters.clone();
        roles.push(Role::Receiver);
        let party_fn = |party: &mut Party| {
            let pieces = aggregate::collect(party, round)?;
            aggregate::finish(party, round, pieces, Role::Receiver)?;
            Ok(party.stats())
        };
        let (parties, (values, included, outside)) =
            run_local_roles(wrap, self.protocol, &roles, party_fn, |mut ends| {
                let mut receiver = wrap(ends.pop().expect("the receiver's endpoint"));
                let mut traffic = Stats::default();
                for (k, (end, x)) in ends.iter_mut().zip(inputs).enumerate() {
                    inputter::submit(end, &prepared, k, x)?;
                    traffic = traffic.alongside(end.stats());
                }
                drop(ends);
                let (values, included) = receiver::receive(&mut *receiver, &prepared)?;
                let included = included.iter().filter(|&&i| i).count();
                Ok((values, included, traffic.alongside(receiver.stats())))
            })?;
        Ok(Aggregate {
            values,
            included,
            ring: round.ring,
            estimate: Party::SETUP + round.cost(),
            traffic: parties.into_iter().fold(outside, Stats::alongside),
            time: started.elapsed(),
        })
    }

    /// Checks the inputs and the rules and fixes the round's public parameters.
    pub(super) fn prepare(&self, inputs: &[ArrayD<f32>]) -> Result<Prepared, AggregationError> {
        let n = inputs.len();
        if n < self.min_inputs.max(1) {
            return Err(AggregationError::TooFew {
                given: n,
                min: self.min_inputs.max(1),
            });
        }
        let shape = inputs[0].shape().to_vec();
        for (index, x) in inputs.iter().enumerate() {
            if x.shape() != shape {
                return Err(AggregationError::Shape {
                    index,
                    expected: shape,
                    got: x.shape().to_vec(),
                });
            }
            inputter::check(x, index)?;
        }
        if inputs[0].is_empty() {
            return Err(AggregationError::Empty);
        }
        let clip = match self.clip {
            Some(c) => checked_clip(c)?,
            None => inputs
                .iter()
                .flat_map(|x| x.iter())
                .fold(0f64, |m, v| m.max(v.abs() as f64)),
        };
        self.fix(n, shape, clip)
    }

    /// The public parameters of a round of `n` inputters of vectors of `shape`, values
    /// clipped to ±`clip`: the weights as integers and the ring the sum fits in.
    pub(super) fn fix(
        &self,
        n: usize,
        shape: Vec<usize>,
        clip: f64,
    ) -> Result<Prepared, AggregationError> {
        let (weights, weight_scale) = self.integer_weights(n)?;
        let weight_sum: u64 = weights.iter().sum();
        let scale = self.fixed_point.scale();
        // Each encoded value is at most clip x 2^f + 1/2 in magnitude.
        let bound = weight_sum as f64 * (clip * scale + 0.5);
        let ring = Ring::holding(bound).ok_or(AggregationError::Overflow {
            weight_sum,
            clip,
            frac_bits: self.fixed_point.frac_bits,
            bound,
            max_clip: (2f64.powi(63) / weight_sum as f64 - 0.5) / scale,
        })?;
        Ok(Prepared {
            round: Round {
                inputters: (0..n).map(|k| Role::Inputter(k as u16)).collect(),
                weights,
                len: shape.iter().product(),
                min_inputs: self.min_inputs.max(1),
                ring,
                protocol: self.protocol,
            },
            clip,
            fixed_point: self.fixed_point,
            op: self.op,
            weight_scale,
            shape,
        })
    }

    /// The public integer factors for `n` inputs and their scale against the given weights.
    fn integer_weights(&self, n: usize) -> Result<(Vec<u64>, f64), AggregationError> {
        let Some(weights) = &self.weights else {
            return Ok((vec![1; n], 1.0));
        };
        let bad = |why: String| Err(AggregationError::Weights(why));
        if weights.len() != n {
            return bad(format!(
                "{} weight(s) given for {n} input(s); give one weight per input, in order",
                weights.len()
            ));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return bad(format!(
                "weight {w} is not a finite number >= 0; weights are public non-negative factors"
            ));
        }
        let largest = weights.iter().fold(0f64, |m, &w| m.max(w));
        if largest == 0.0 {
            return bad("the weights are all zero; at least one must be positive".into());
        }
        let integers = weights
            .iter()
            .all(|w| w.fract() == 0.0 && *w <= 2f64.powi(32));
        let scale = if integers {
            1.0
        } else {
            2f64.powi(WEIGHT_BITS) / largest
        };
        Ok((
            weights.iter().map(|w| (w * scale).round() as u64).collect(),
            scale,
        ))
    }
}
