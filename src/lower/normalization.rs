//! BatchNormalization in inference mode: folded into the producer when possible (see
//! `fuse`), otherwise a per-channel affine map with secret scale and shift.

use super::Lowering;
use crate::import::Node;
use crate::plan::{Op, Visibility};
use anyhow::{Result, bail, ensure};
use ndarray::{Array1, ArrayD, IxDyn};

/// The per-channel `(scale, shift)` with `bn(x) = x * scale + shift`.
pub fn affine(cx: &Lowering, bn: &Node) -> Result<(Array1<f32>, Array1<f32>)> {
    if bn.int("training_mode", 0)? != 0 || bn.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("BatchNormalization in training mode; export the model in eval mode (model.eval())");
    }
    let eps = bn.float("epsilon", 1e-5)?;
    let param = |i: usize, what: &str| -> Result<Array1<f32>> {
        let name = bn
            .input(i)
            .ok_or_else(|| anyhow::anyhow!("BatchNormalization without its {what} input"))?;
        Ok(Array1::from_iter(cx.constant(name)?.iter().copied()))
    };
    let (gamma, beta, mean, var) = (
        param(1, "scale")?,
        param(2, "bias")?,
        param(3, "mean")?,
        param(4, "variance")?,
    );
    ensure!(
        [beta.len(), mean.len(), var.len()]
            .iter()
            .all(|&l| l == gamma.len()),
        "BatchNormalization parameters have different lengths"
    );
    let scale = &gamma / &var.mapv(|v| (v + eps).sqrt());
    let shift = &beta - &(&mean * &scale);
    Ok((scale, shift))
}

/// `[C]` laid out to broadcast over axis 1 of a rank-`rank` tensor: `[C, 1, ..., 1]`.
pub fn per_channel(v: &Array1<f32>, rank: usize) -> ArrayD<f32> {
    let mut shape = vec![v.len()];
    shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
    v.clone()
        .into_shape_with_order(IxDyn(&shape))
        .expect("same number of elements")
}

pub fn batch_norm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (scale, shift) = affine(cx, node)?;
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow::anyhow!("BatchNormalization without input"))?;
    let x = cx.value(x_name)?;
    let shape = cx.shape(x_name)?;
    ensure!(
        shape.rank() >= 2,
        "BatchNormalization needs an input of rank >= 2, got {shape}"
    );
    let scale = cx.weight(
        &format!("{}/scale", node.name),
        per_channel(&scale, shape.rank()),
        Visibility::Secret,
    )?;
    let shift = cx.weight(
        &format!("{}/shift", node.name),
        per_channel(&shift, shape.rank()),
        Visibility::Secret,
    )?;
    let scaled = cx.emit_temp(node, Op::Mul, &[x, scale], "scaled", shape);
    cx.emit(node, Op::Add, &[scaled, shift], node.output())?;
    Ok(())
}
