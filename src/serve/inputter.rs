//! An inputter's role in a secure aggregation: it checks its own vector, clips it to the
//! round's public bound, encodes it in fixed point and submits shares of it. It learns
//! nothing back.

use super::aggregation::{AggregationError, Prepared};
use crate::aggregate;
use crate::net::Transport;
use anyhow::Result;
use ndarray::ArrayD;

/// Refuses a vector with a NaN or an infinity (`index` names the input in the error).
pub(super) fn check(x: &ArrayD<f32>, index: usize) -> Result<(), AggregationError> {
    match x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((element, &value)) => Err(AggregationError::NotFinite {
            index,
            element,
            value,
        }),
        None => Ok(()),
    }
}

/// Submits `x` as inputter `k`: values clipped to ±clip, then round(x · 2^f) in the ring.
pub(super) fn submit(
    net: &mut dyn Transport,
    prepared: &Prepared,
    k: usize,
    x: &ArrayD<f32>,
) -> Result<()> {
    let scale = prepared.fixed_point.scale();
    let clip = prepared.clip;
    let encoded: Vec<u64> = x
        .iter()
        .map(|&v| ((v as f64).clamp(-clip, clip) * scale).round() as i64 as u64)
        .collect();
    aggregate::submit(net, &prepared.round, k, &encoded)
}
