//! A data owner's rows: checked against the model and the fixed-point bounds, with labels
//! put in the model's output shape (class indices one-hot encoded for `ce`), all by the
//! owner before anything is shared.

use super::Loss;
use crate::plan::Shape;
use crate::tensor::FixedPoint;
use anyhow::{Result, bail, ensure};
use ndarray::{ArrayD, Axis, IxDyn};

/// One data owner's rows and labels, with a name for messages (the files they came from).
pub struct DataOwner {
    pub name: String,
    pub x: ArrayD<f32>,
    pub y: ArrayD<f32>,
}

/// B · max|x| must stay this far below the fixed-point range: a weight gradient sums B
/// products of a layer's input with its output gradient, and later layers may add a
/// factor of about 2^10 before 2^30.
pub const GRADIENT_BOUND: f64 = (1u64 << 20) as f64;

/// The owner's rows as the training plan takes them: `x` as the model's input, `y` as its
/// output.
pub struct Prepared {
    pub x: ArrayD<f32>,
    pub y: ArrayD<f32>,
}

/// Checks and shapes one owner's rows for a model with input `input` and output `output`.
pub fn prepare(
    owner: &DataOwner,
    input: &Shape,
    output: &Shape,
    loss: Loss,
    batch: usize,
    fixed: FixedPoint,
) -> Result<Prepared> {
    let name = &owner.name;
    let rows = owner.x.shape().first().copied().unwrap_or(0);
    ensure!(rows > 0, "{name}: no rows");
    ensure!(
        input.batch_for(owner.x.shape()) == Some(rows),
        "{name}: rows of shape {:?} do not fit the model's input {input} (one row per batch entry)",
        owner.x.shape()
    );
    let labels = owner.y.shape().first().copied().unwrap_or(0);
    ensure!(
        labels == rows,
        "{name}: {labels} labels for {rows} rows; each data owner gives one label per row"
    );
    let out_dims = output.resolve(rows);
    let per_row: usize = out_dims[1..].iter().product();
    let y = match loss {
        Loss::Ce if owner.y.ndim() == 1 => one_hot(name, &owner.y, per_row)?,
        _ if owner.y.len() == rows * per_row => owner.y.to_shape(IxDyn(&out_dims))?.to_owned(),
        _ => bail!(
            "{name}: labels of shape {:?} do not fit the model's output {output}",
            owner.y.shape()
        ),
    };
    if let Some(v) = owner.x.iter().chain(y.iter()).find(|v| !v.is_finite()) {
        bail!("{name}: holds {v}; every row and label must be a finite number");
    }
    if matches!(loss, Loss::Ce | Loss::Bce)
        && let Some(v) = y.iter().find(|v| !(0.0..=1.0).contains(*v))
    {
        bail!(
            "{name}: label {v} is outside [0, 1]; {} takes labels that are probabilities (or class indices for ce)",
            loss.name()
        );
    }
    let largest = owner.x.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    if largest * batch as f64 > GRADIENT_BOUND {
        bail!(
            "{name}: a value of magnitude {largest} times the batch size {batch} exceeds 2^20, so gradients could leave the fixed-point range (|x| < {}); standardise the data or lower --batch",
            fixed.max_abs()
        );
    }
    let largest_label = y.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    if largest_label * batch as f64 > GRADIENT_BOUND {
        bail!(
            "{name}: a label of magnitude {largest_label} times the batch size {batch} exceeds 2^20; scale the targets down or lower --batch"
        );
    }
    Ok(Prepared {
        x: owner.x.clone(),
        y,
    })
}

/// Class indices below `classes` as one-hot rows.
fn one_hot(name: &str, y: &ArrayD<f32>, classes: usize) -> Result<ArrayD<f32>> {
    let mut out = ArrayD::zeros(IxDyn(&[y.len(), classes]));
    for (mut row, &label) in out.axis_iter_mut(Axis(0)).zip(y.iter()) {
        if label.fract() != 0.0 || label < 0.0 || label as usize >= classes {
            bail!(
                "{name}: label {label} is not a class index below {classes} (the model's outputs per row)"
            );
        }
        row[label as usize] = 1.0;
    }
    Ok(out)
}
