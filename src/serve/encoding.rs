//! What a request's inputs must be, and how inputs and weights enter the ring: the checks
//! against the plan (count, rank, shape, one batch size) and the fixed-point encoding, with
//! errors that name the input and say what to do.

use crate::plan::{Encoding, Input, Plan};
use crate::tensor::fixed::EncodeError;
use anyhow::{Context, Result};
use ndarray::{ArrayD, IxDyn};

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
    #[error(
        "input {name}: {id} is not a token id below {depth}; give integer ids of the model's vocabulary"
    )]
    TokenId {
        index: usize,
        name: String,
        id: f32,
        depth: usize,
    },
    #[error("input {name}: {reason}; scale the input down (or convert with fewer --frac-bits)")]
    OutOfRange {
        index: usize,
        name: String,
        reason: EncodeError,
    },
}

impl InputError {
    /// Which of the given inputs the error is about, if one.
    pub fn input_index(&self) -> Option<usize> {
        match self {
            InputError::Rank { index, .. }
            | InputError::Shape { index, .. }
            | InputError::NotFinite { index, .. }
            | InputError::TokenId { index, .. }
            | InputError::OutOfRange { index, .. } => Some(*index),
            InputError::Count { .. } | InputError::Batch { .. } => None,
        }
    }
}

/// Checks the inputs against the plan and returns the batch size.
fn check_inputs(plan: &Plan, inputs: &[ArrayD<f32>]) -> Result<usize, InputError> {
    let names = || {
        plan.inputs
            .iter()
            .map(|input| plan.value(input.value).name.clone())
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
    for (index, (input, x)) in plan.inputs.iter().zip(inputs).enumerate() {
        let info = plan.value(input.value);
        let shape = plan.given_shape(input);
        let expected = shape.to_string();
        if x.ndim() != shape.rank() {
            return Err(InputError::Rank {
                index,
                name: info.name.clone(),
                expected,
                expected_rank: shape.rank(),
                got: x.shape().to_vec(),
            });
        }
        let b = shape
            .batch_for(x.shape())
            .filter(|&b| b > 0)
            .ok_or_else(|| InputError::Shape {
                index,
                name: info.name.clone(),
                expected: expected.clone(),
                got: x.shape().to_vec(),
            })?;
        if let Some((first, a)) = &batch {
            if shape.has_batch() && *a != b {
                return Err(InputError::Batch {
                    first: first.clone(),
                    a: *a,
                    second: info.name.clone(),
                    b,
                });
            }
        } else if shape.has_batch() {
            batch = Some((info.name.clone(), b));
        }
    }
    Ok(batch.map_or(1, |(_, b)| b))
}

/// Checks the inputs against the plan and encodes them: the batch size and the encoded
/// inputs.
pub(super) fn prepare(
    plan: &Plan,
    inputs: &[ArrayD<f32>],
) -> Result<(usize, Vec<ArrayD<u64>>), InputError> {
    let batch = check_inputs(plan, inputs)?;
    let encoded = plan
        .inputs
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(index, (input, x))| {
            let name = || plan.value(input.value).name.clone();
            let real = one_hot(input, x, index, name)?;
            let real = real.as_ref().unwrap_or(x);
            plan.fixed_point
                .encode_array(real.view())
                .map_err(|reason| match reason {
                    EncodeError::NotFinite { .. } => InputError::NotFinite {
                        index,
                        name: name(),
                        reason,
                    },
                    EncodeError::OutOfRange { .. } => InputError::OutOfRange {
                        index,
                        name: name(),
                        reason,
                    },
                })
        })
        .collect::<Result<_, _>>()?;
    Ok((batch, encoded))
}

/// The inputs as the plan's values, in f32 (for the float interpreter), after [`prepare`]
/// has checked them: real inputs as given, ids as one-hot rows.
pub(super) fn real_values(plan: &Plan, inputs: &[ArrayD<f32>]) -> Vec<ArrayD<f32>> {
    plan.inputs
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(index, (input, x))| {
            let name = || plan.value(input.value).name.clone();
            match one_hot(input, x, index, name) {
                Ok(Some(rows)) => rows,
                _ => x.clone(),
            }
        })
        .collect()
}

/// The one-hot rows of a [`Encoding::OneHot`] input's ids (`None` for a real input).
fn one_hot(
    input: &Input,
    ids: &ArrayD<f32>,
    index: usize,
    name: impl Fn() -> String,
) -> Result<Option<ArrayD<f32>>, InputError> {
    let Encoding::OneHot { depth } = input.encoding else {
        return Ok(None);
    };
    let mut rows = vec![0.0; ids.len() * depth];
    for (row, &id) in rows.chunks_mut(depth).zip(ids.iter()) {
        if !(id >= 0.0 && id < depth as f32 && id.fract() == 0.0) {
            return Err(InputError::TokenId {
                index,
                name: name(),
                id,
                depth,
            });
        }
        row[id as usize] = 1.0;
    }
    let mut shape = ids.shape().to_vec();
    shape.push(depth);
    let rows = ArrayD::from_shape_vec(IxDyn(&shape), rows).expect("one row per id");
    Ok(Some(rows))
}

/// The plan's `index`th weight in fixed point.
pub(super) fn encode_weight(plan: &Plan, index: usize) -> Result<ArrayD<u64>> {
    let w = &plan.weights[index];
    plan.fixed_point
        .encode_array(w.data.view())
        .with_context(|| weight_error(plan, index))
}

/// Whether the plan's `index`th weight encodes, with [`encode_weight`]'s error, without
/// holding its encoding.
pub(super) fn check_weight(plan: &Plan, index: usize) -> Result<()> {
    let fixed = plan.fixed_point;
    plan.weights[index]
        .data
        .iter()
        .enumerate()
        .try_for_each(|(i, &v)| fixed.encode(v, i).map(drop))
        .with_context(|| weight_error(plan, index))
}

fn weight_error(plan: &Plan, index: usize) -> String {
    format!(
        "weight {} cannot be encoded; the model's weights must be finite and within the fixed-point range",
        plan.value(plan.weights[index].value).name
    )
}
