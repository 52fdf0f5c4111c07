//! BatchNormalization in inference mode: folded into the producer when possible (see
//! `fuse`), otherwise a per-channel affine map with secret scale and shift. Layer, instance
//! and RMS normalisation (the opset-23 op and the decomposed form of `rms.rs`) share one
//! core: a mean square, one rsqrt approximation, a product.

use super::reduce::sum_of_squares;
use super::rms::RmsPattern;
use super::{Lowering, To};
use crate::import::Node;
use crate::plan::{Dim, Function, Op, Shape, ValueId, Visibility};
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

/// A `[C]` parameter laid out as `[C, 1, ..., 1]` for a rank-`rank` input: a secret weight
/// when constant, a reshape of the secret tensor otherwise.
fn per_channel_input(cx: &mut Lowering, node: &Node, i: usize, rank: usize) -> Result<ValueId> {
    let name = node
        .input(i)
        .ok_or_else(|| anyhow::anyhow!("{} needs input {i}", node.op_type))?;
    if cx.is_constant(name) {
        let data = Array1::from_iter(cx.constant(name)?.iter().copied());
        return cx.weight(
            &format!("{}/input{i}", node.name),
            per_channel(&data, rank),
            Visibility::Secret,
        );
    }
    let channels = cx
        .shape(name)?
        .fixed()
        .map(|s| s.iter().product::<usize>())
        .ok_or_else(|| anyhow::anyhow!("{} parameter {name} needs a fixed shape", node.op_type))?;
    let mut dims = vec![Dim::Fixed(channels)];
    dims.extend(std::iter::repeat_n(Dim::Fixed(1), rank.saturating_sub(2)));
    let shape = Shape(dims);
    let value = cx.value(name)?;
    let reshape = Op::Reshape {
        shape: shape.clone(),
    };
    cx.emit(
        node,
        reshape,
        &[value],
        To::shaped(format!("input{i}_per_channel"), shape),
    )
}

/// 1 / sqrt(variance + eps), the scale every normalisation shares, named `tag`.
fn inv_std(
    cx: &mut Lowering,
    node: &Node,
    variance: ValueId,
    eps: f32,
    shape: Shape,
    tag: &str,
) -> Result<ValueId> {
    let eps = cx.scalar(node, "epsilon", eps)?;
    let shifted = To::shaped("var_eps", shape.clone());
    let shifted = cx.emit(node, Op::Add, &[variance, eps], shifted)?;
    let rsqrt = Op::Function {
        function: Function::Rsqrt,
    };
    cx.emit(node, rsqrt, &[shifted], To::shaped(tag, shape))
}

/// BatchNormalization whose parameters are computed from the secret input: the scale
/// gamma / sqrt(var + eps) and shift beta - mean * scale are computed securely too.
fn batch_norm_of_secret_parameters(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow::anyhow!("BatchNormalization without input"))?;
    let shape = cx.shape(x_name)?;
    let rank = shape.rank();
    let param = |cx: &mut Lowering, i: usize| -> Result<(ValueId, Shape)> {
        let name = node
            .input(i)
            .ok_or_else(|| anyhow::anyhow!("BatchNormalization needs input {i}"))?;
        Ok((cx.value(name)?, cx.shape(name)?))
    };
    let ((gamma, c), (beta, _), (mean, _), (var, _)) =
        (param(cx, 1)?, param(cx, 2)?, param(cx, 3)?, param(cx, 4)?);
    let eps = node.float("epsilon", 1e-5)?;
    let inv_std = inv_std(cx, node, var, eps, c.clone(), "inv_std")?;
    let scale = cx.emit(
        node,
        Op::Mul,
        &[gamma, inv_std],
        To::shaped("scale", c.clone()),
    )?;
    let mean_scaled = To::shaped("mean_scaled", c.clone());
    let mean_scaled = cx.emit(node, Op::Mul, &[mean, scale], mean_scaled)?;
    let shift = cx.emit(node, Op::Sub, &[beta, mean_scaled], To::shaped("shift", c))?;
    let mut dims = vec![shape.0.get(1).copied().unwrap_or(Dim::Fixed(1))];
    dims.extend(std::iter::repeat_n(Dim::Fixed(1), rank.saturating_sub(2)));
    let channel_shape = Shape(dims);
    let reshape = |cx: &mut Lowering, v: ValueId, tag: &str| {
        let op = Op::Reshape {
            shape: channel_shape.clone(),
        };
        cx.emit(node, op, &[v], To::shaped(tag, channel_shape.clone()))
    };
    let (scale, shift) = (
        reshape(cx, scale, "scale_per_channel")?,
        reshape(cx, shift, "shift_per_channel")?,
    );
    let x = cx.value(x_name)?;
    scale_and_shift(cx, node, x, scale, shift, shape)
}

/// The node's output `x * scale + shift`, the product `scaled` of the shape given.
fn scale_and_shift(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    scale: ValueId,
    shift: ValueId,
    shape: Shape,
) -> Result<()> {
    let scaled = cx.emit(node, Op::Mul, &[x, scale], To::shaped("scaled", shape))?;
    cx.emit(node, Op::Add, &[scaled, shift], To::Output)?;
    Ok(())
}

pub fn batch_norm(cx: &mut Lowering, node: &Node) -> Result<()> {
    if !(1..5).all(|i| node.input(i).is_some_and(|t| cx.is_constant(t))) {
        if node.int("training_mode", 0)? != 0 || node.outputs.iter().skip(1).any(|o| !o.is_empty())
        {
            bail!(
                "BatchNormalization in training mode; export the model in eval mode (model.eval())"
            );
        }
        return batch_norm_of_secret_parameters(cx, node);
    }
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
    scale_and_shift(cx, node, x, scale, shift, shape)
}

/// What normalisation computes over the reduced axes (kept as size 1): the mean (when it
/// centres), 1/sqrt(var + eps) and the normalised value.
struct Standardized {
    mean: Option<ValueId>,
    inv_std: ValueId,
    value: ValueId,
}

/// How a normalisation treats the mean.
#[derive(Clone, Copy, PartialEq)]
enum Centering {
    /// (x - mean) / sqrt(mean((x - mean)^2) + eps): LayerNormalization, InstanceNormalization.
    Mean,
    /// x / sqrt(mean(x^2) + eps): RMSNormalization.
    None,
}

/// What the rsqrt reads: 64 times the mean square plus eps, whose 1/sqrt is then doubled
/// three times (free). Its output has the plan's f fractional bits, so its relative error
/// is about 2^-f (sqrt(v) + 1/(2v)) for an input v: the mean square itself (v = ms) loses
/// 8% at an RMS of 0.01 (random-init embeddings), the sum of squares (v = n ms) 1% at
/// n = 4096 and RMS 10; v = 64 ms keeps the worst case over RMS 0.01 to 10 near 2.4e-3
/// for every n.
const RSQRT_GAIN: f32 = 64.0;

/// The core every normalisation over `axes` shares: one rsqrt approximation of the mean
/// square plus eps, times the (centred) input.
fn standardize(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    shape: &Shape,
    axes: Vec<usize>,
    eps: f32,
    centering: Centering,
) -> Result<Standardized> {
    let count: usize = axes
        .iter()
        .map(|&a| match shape.0[a] {
            Dim::Fixed(n) => Ok(n),
            Dim::Batch(_) => bail!(
                "{} normalises over the batch axis; convert with --fixed-shapes",
                node.op_type
            ),
        })
        .product::<Result<usize>>()?;
    let reduced = shape.reduced(&axes, true);
    let (mean, centered) = match centering {
        Centering::Mean => {
            let sum = Op::ReduceSum {
                axes: axes.clone(),
                keep_dims: true,
            };
            let sum = cx.emit(node, sum, &[x], To::shaped("sum", reduced.clone()))?;
            let inv_count = cx.scalar(node, "inv_count", 1.0 / count as f32)?;
            let mean = To::shaped("mean", reduced.clone());
            let mean = cx.emit(node, Op::Mul, &[sum, inv_count], mean)?;
            let centered = To::shaped("centered", shape.clone());
            (Some(mean), cx.emit(node, Op::Sub, &[x, mean], centered)?)
        }
        Centering::None => (None, x),
    };
    let squares = To::shaped("sum_of_squares", reduced.clone());
    let squares = sum_of_squares(cx, node, centered, shape, &axes, true, squares)?;
    // 1/sqrt(ms + eps) = 8 / sqrt(64 (ms + eps)), ms the mean square s/n: see RSQRT_GAIN.
    let gained = if count as f32 == RSQRT_GAIN {
        squares
    } else {
        let gain = cx.scalar(node, "gain_over_count", RSQRT_GAIN / count as f32)?;
        let gained = To::shaped("mean_square_gained", reduced.clone());
        cx.emit(node, Op::Mul, &[squares, gain], gained)?
    };
    let mut inv_std = inv_std(
        cx,
        node,
        gained,
        eps * RSQRT_GAIN,
        reduced.clone(),
        "inv_root",
    )?;
    for tag in ["inv_root_2", "inv_root_4", "inv_std"] {
        inv_std = cx.emit(
            node,
            Op::Add,
            &[inv_std, inv_std],
            To::shaped(tag, reduced.clone()),
        )?;
    }
    let value = To::shaped("standardized", shape.clone());
    let value = cx.emit(node, Op::Mul, &[centered, inv_std], value)?;
    Ok(Standardized {
        mean,
        inv_std,
        value,
    })
}

/// The node's input 0, its shape, and the axes from `axis` to the last, as
/// LayerNormalization and RMSNormalization read them.
fn trailing_axes(cx: &mut Lowering, node: &Node) -> Result<(ValueId, Shape, Vec<usize>)> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow::anyhow!("{} without input", node.op_type))?;
    let shape = cx.shape(x_name)?;
    let axis = super::args::normalize_axis(node, node.int("axis", -1)?, shape.rank())?;
    Ok((
        cx.value(x_name)?,
        shape.clone(),
        (axis..shape.rank()).collect(),
    ))
}

/// RMSNormalization (opset 23): x / sqrt(mean(x^2 over axis..) + eps) * scale. stash_type
/// is moot: every value is in the plan's fixed point.
pub fn rms_norm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (x, shape, axes) = trailing_axes(cx, node)?;
    let eps = node.float("epsilon", 1e-5)?;
    let normalized = standardize(cx, node, x, &shape, axes, eps, Centering::None)?.value;
    let scale = cx.input_value(node, 1)?;
    cx.emit(node, Op::Mul, &[normalized, scale], To::Output)?;
    Ok(())
}

/// The decomposed RMS normalisation exporters write (`x * 1/sqrt(mean(x^2) + eps)`, see
/// `rms.rs`), lowered at its last node as x / sqrt(mean(x^2) + eps) with one rsqrt.
pub fn rms_of_pattern(cx: &mut Lowering, node: &Node, pattern: &RmsPattern) -> Result<()> {
    let shape = cx.shape(&pattern.x)?;
    let axes = super::reduce::reduced_axes(cx, &pattern.mean, shape.rank())?;
    let x = cx.value(&pattern.x)?;
    let normalized = standardize(cx, node, x, &shape, axes, pattern.eps, Centering::None)?;
    cx.alias(node.output(), normalized.value);
    cx.note(format!(
        "with {}: x / sqrt(mean(x^2) + eps) by one rsqrt",
        pattern.absorbed.join(", ")
    ));
    Ok(())
}

pub fn layer_norm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (x, shape, axes) = trailing_axes(cx, node)?;
    let eps = node.float("epsilon", 1e-5)?;
    let standardized = standardize(cx, node, x, &shape, axes, eps, Centering::Mean)?;
    // The optional Mean and InvStdDev outputs are the statistics themselves.
    for (i, statistic) in [(1, standardized.mean), (2, Some(standardized.inv_std))] {
        if let (Some(name), Some(statistic)) =
            (node.outputs.get(i).filter(|o| !o.is_empty()), statistic)
        {
            cx.alias(name, statistic);
        }
    }
    let standardized = standardized.value;
    let scale = cx.input_value(node, 1)?;
    match node.input(2) {
        Some(bias) => {
            let bias = cx.value(bias)?;
            let shape = cx.shape(node.output())?;
            scale_and_shift(cx, node, standardized, scale, bias, shape)
        }
        None => {
            cx.emit(node, Op::Mul, &[standardized, scale], To::Output)?;
            Ok(())
        }
    }
}

pub fn instance_norm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow::anyhow!("InstanceNormalization without input"))?;
    let shape = cx.shape(x_name)?;
    ensure!(
        shape.rank() >= 3,
        "InstanceNormalization needs an [N, C, spatial...] input, got {shape}"
    );
    let x = cx.value(x_name)?;
    let eps = node.float("epsilon", 1e-5)?;
    let axes = (2..shape.rank()).collect();
    let standardized = standardize(cx, node, x, &shape, axes, eps, Centering::Mean)?.value;
    let scale = per_channel_input(cx, node, 1, shape.rank())?;
    let bias = per_channel_input(cx, node, 2, shape.rank())?;
    let shape = cx.shape(node.output())?;
    scale_and_shift(cx, node, standardized, scale, bias, shape)
}
