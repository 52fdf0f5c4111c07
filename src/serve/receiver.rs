//! The result receiver's role in a secure aggregation: it alone reconstructs the weighted sum
//! from the parties' terms and turns it into the sum or the mean of the inputs in the sum.

use super::aggregation::{AggregateOp, Prepared};
use crate::aggregate;
use crate::net::Transport;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

/// The revealed result in the inputs' shape, and which inputs it includes.
pub(super) fn receive(
    net: &mut dyn Transport,
    prepared: &Prepared,
) -> Result<(ArrayD<f32>, Vec<bool>)> {
    let round = &prepared.round;
    let revealed = aggregate::receive(net, round)?;
    let divisor = match prepared.op {
        AggregateOp::Sum => prepared.weight_scale,
        AggregateOp::Mean => (round.weights.iter())
            .zip(&revealed.included)
            .filter(|(_, i)| **i)
            .map(|(w, _)| *w as f64)
            .sum(),
    } * prepared.fixed_point.scale();
    let values = revealed.sum.iter().map(|&v| (v as f64 / divisor) as f32);
    let values = ArrayD::from_shape_vec(IxDyn(&prepared.shape), values.collect())?;
    Ok((values, revealed.included))
}
