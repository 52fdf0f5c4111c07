//! Gemm, MatMul and Conv: products with the (secret) weights, rescaled once, with biases
//! and any following BatchNormalization folded in at convert time.

use super::args::required_input;
use super::normalization::{affine, per_channel};
use super::window::{kernel_shape, spatial_dims, transpose_window, window};
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Shape, ValueId, Visibility};
use anyhow::{Context, Result, ensure};
use ndarray::{Array1, Array2, ArrayD, Axis, Ix2};

/// A BatchNormalization folded into its producer: its output tensor, scale and shift.
type FoldedBn = (String, Array1<f32>, Array1<f32>);

fn folded_bn(cx: &Lowering, node: &Node) -> Result<Option<FoldedBn>> {
    let Some(bn) = cx.fusions().bn_after(&node.name).cloned() else {
        return Ok(None);
    };
    let (scale, shift) =
        affine(cx, &bn).with_context(|| format!("folding BatchNormalization {}", bn.name))?;
    Ok(Some((bn.output().to_string(), scale, shift)))
}

pub fn matmul(cx: &mut Lowering, node: &Node) -> Result<()> {
    let a = cx.value(required_input(node, 0, "A")?)?;
    let b = cx.value(required_input(node, 1, "B")?)?;
    cx.emit(node, Op::MatMul, &[a, b], To::Output)?;
    Ok(())
}

pub fn gemm(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (a_name, b_name) = (required_input(node, 0, "A")?, required_input(node, 1, "B")?);
    let alpha = node.float("alpha", 1.0)?;
    let beta = node.float("beta", 1.0)?;
    let transpose = |cx: &mut Lowering, id: ValueId, what: &str| -> Result<ValueId> {
        let shape = cx.shape_of(id).clone();
        ensure!(
            shape.rank() == 2,
            "Gemm {what} must be a matrix, got shape {shape}"
        );
        let swapped = Shape(vec![shape.0[1], shape.0[0]]);
        let to = To::shaped(format!("{what}_transposed"), swapped);
        cx.emit(node, Op::Transpose { perm: vec![1, 0] }, &[id], to)
    };
    let mut a = cx.value(a_name)?;
    if node.int("transA", 0)? != 0 {
        a = transpose(cx, a, "A")?;
    }
    let bn = folded_bn(cx, node)?;
    let mut then = vec![];
    let b = if cx.is_constant(b_name) {
        // Constant B: transpose, alpha and a folded BatchNormalization go into the weight.
        let mut w: Array2<f32> = cx
            .constant(b_name)?
            .into_dimensionality::<Ix2>()
            .context("Gemm B must be a matrix")?;
        if node.int("transB", 0)? != 0 {
            w = w.reversed_axes().as_standard_layout().into_owned();
        }
        w *= alpha;
        if let Some((_, scale, _)) = &bn {
            ensure!(
                scale.len() == w.ncols(),
                "BatchNormalization over {} channels after a Gemm with {} outputs",
                scale.len(),
                w.ncols()
            );
            w *= &scale.view().insert_axis(Axis(0));
        }
        cx.weight(
            &format!("{}/B", node.name),
            w.into_dyn(),
            Visibility::Secret,
        )?
    } else {
        let mut b = cx.value(b_name)?;
        if node.int("transB", 0)? != 0 {
            b = transpose(cx, b, "B")?;
        }
        if alpha != 1.0 {
            then.push((Op::Mul, cx.scalar(node, "alpha", alpha)?));
        }
        b
    };
    let bias: Option<ArrayD<f32>> = match node.input(2) {
        Some(c) if cx.is_constant(c) => Some(cx.constant(c)? * beta),
        Some(c) => {
            let c_id = cx.value(c)?;
            let c_id = if beta != 1.0 {
                let shape = cx.shape(c)?;
                let beta_id = cx.scalar(node, "beta", beta)?;
                cx.emit(
                    node,
                    Op::Mul,
                    &[c_id, beta_id],
                    To::shaped("C_scaled", shape),
                )?
            } else {
                c_id
            };
            then.push((Op::Add, c_id));
            None
        }
        None => None,
    };
    let output = match &bn {
        Some((out, scale, shift)) => {
            // bn(y + c) = y' + (c * scale + shift), with y' from the scaled weights.
            let c = bias.unwrap_or_else(|| ArrayD::zeros(ndarray::IxDyn(&[scale.len()])));
            let folded = c * &scale.view().into_dyn() + &shift.view().into_dyn();
            then.push((
                Op::Add,
                cx.weight(&format!("{}/bias", node.name), folded, Visibility::Secret)?,
            ));
            out.clone()
        }
        None => {
            if let Some(c) = bias {
                then.push((
                    Op::Add,
                    cx.weight(&format!("{}/C", node.name), c, Visibility::Secret)?,
                ));
            }
            node.output().to_string()
        }
    };
    product_then(cx, node, &output, (Op::MatMul, &[a, b]), then)
}

/// A product, then each `(op, operand)` applied to the running result (its scale, biases),
/// the last step computing `output`: the node's output, or that of a BatchNormalization
/// folded into it. The steps before are named `{op type}_{i}` and have `output`'s shape.
fn product_then(
    cx: &mut Lowering,
    node: &Node,
    output: &str,
    (product, inputs): (Op, &[ValueId]),
    then: Vec<(Op, ValueId)>,
) -> Result<()> {
    let shape = cx.shape(output)?;
    let last = then.len();
    let to = |i: usize| {
        if i == last {
            To::Tensor(output)
        } else {
            To::shaped(format!("{}_{i}", node.op_type), shape.clone())
        }
    };
    let mut current = cx.emit(node, product, inputs, to(0))?;
    for (i, (op, operand)) in then.into_iter().enumerate() {
        current = cx.emit(node, op, &[current, operand], to(i + 1))?;
    }
    Ok(())
}

/// What Conv and ConvTranspose read alike: the input and weight tensors, the input's shape
/// and spatial size, and the number of groups.
struct Convolution<'n> {
    x_name: &'n str,
    w_name: &'n str,
    x_shape: Shape,
    spatial: Vec<usize>,
    groups: usize,
}

impl<'n> Convolution<'n> {
    fn read(cx: &Lowering, node: &'n Node) -> Result<Convolution<'n>> {
        let (x_name, w_name) = (required_input(node, 0, "X")?, required_input(node, 1, "W")?);
        let x_shape = cx.shape(x_name)?;
        let spatial = spatial_dims(&x_shape)?;
        let groups = usize::try_from(node.int("group", 1)?)
            .ok()
            .filter(|&g| g > 0)
            .context("group must be positive")?;
        Ok(Convolution {
            x_name,
            w_name,
            x_shape,
            spatial,
            groups,
        })
    }

    /// The convolution `product` of the input and the weight, then the bias of each of the
    /// `out_channels` (a secret weight) when there is one; the last step computes `output`.
    fn finish(
        &self,
        cx: &mut Lowering,
        node: &Node,
        (product, x, w): (Op, ValueId, ValueId),
        (bias, out_channels): (Option<Array1<f32>>, usize),
        output: &str,
    ) -> Result<()> {
        let mut then = vec![];
        if let Some(b) = bias {
            ensure!(
                b.len() == out_channels,
                "{} bias has {} values for {out_channels} output channels",
                node.op_type,
                b.len()
            );
            let b = per_channel(&b, self.x_shape.rank());
            let b = cx.weight(&format!("{}/B", node.name), b, Visibility::Secret)?;
            then.push((Op::Add, b));
        }
        product_then(cx, node, output, (product, &[x, w]), then)
    }
}

/// A convolution's per-output-channel bias B, which must be a constant.
fn constant_bias(cx: &Lowering, node: &Node) -> Result<Option<Array1<f32>>> {
    node.input(2)
        .map(|b| {
            let values = (cx.constant(b))
                .with_context(|| format!("{} bias must be a constant", node.op_type))?;
            Ok(Array1::from_iter(values.iter().copied()))
        })
        .transpose()
}

pub fn conv(cx: &mut Lowering, node: &Node) -> Result<()> {
    let conv = Convolution::read(cx, node)?;
    let (x_shape, spatial) = (&conv.x_shape, &conv.spatial);
    let bn = folded_bn(cx, node)?;
    let x = cx.value(conv.x_name)?;
    let (w, kernel, out_channels) = if cx.is_constant(conv.w_name) {
        let mut data = cx.constant(conv.w_name)?;
        ensure!(
            data.ndim() == spatial.len() + 2,
            "Conv weight of shape {:?} does not match a rank-{} input",
            data.shape(),
            x_shape.rank()
        );
        let kernel = data.shape()[2..].to_vec();
        let m = data.shape()[0];
        if let Some((_, scale, _)) = &bn {
            ensure!(
                scale.len() == m,
                "BatchNormalization over {} channels after a Conv with {m} outputs",
                scale.len()
            );
            // Output channels are the weight's axis 0.
            for (mut filter, &s) in data.axis_iter_mut(Axis(0)).zip(scale) {
                filter *= s;
            }
        }
        (
            cx.weight(&format!("{}/W", node.name), data, Visibility::Secret)?,
            kernel,
            m,
        )
    } else {
        let shape = cx
            .shape(conv.w_name)?
            .fixed()
            .context("a secret Conv weight needs a fixed shape")?;
        (cx.value(conv.w_name)?, shape[2..].to_vec(), shape[0])
    };
    let kernel = kernel_shape(node, Some(&kernel))?;
    let window = window(node, spatial, &kernel, false)?;
    let bias = constant_bias(cx, node)?;
    let (output, bias) = match &bn {
        Some((out, scale, shift)) => {
            let b = bias.unwrap_or_else(|| Array1::zeros(out_channels));
            (out.clone(), Some(b * scale + shift))
        }
        None => (node.output().to_string(), bias),
    };
    let groups = conv.groups;
    let product = (Op::Conv { window, groups }, x, w);
    conv.finish(cx, node, product, (bias, out_channels), &output)
}

pub fn conv_transpose(cx: &mut Lowering, node: &Node) -> Result<()> {
    let conv = Convolution::read(cx, node)?;
    let w_shape = cx
        .shape(conv.w_name)?
        .fixed()
        .context("the ConvTranspose weight needs a fixed shape")?;
    ensure!(
        w_shape.len() == conv.spatial.len() + 2,
        "ConvTranspose weight of shape {w_shape:?} does not match a rank-{} input",
        conv.x_shape.rank()
    );
    let kernel = kernel_shape(node, Some(&w_shape[2..]))?;
    let (window, output_size) = transpose_window(node, &conv.spatial, &kernel)?;
    let groups = conv.groups;
    let out_channels = w_shape[1] * groups;
    let x = cx.value(conv.x_name)?;
    let w = cx.value(conv.w_name)?;
    let bias = constant_bias(cx, node)?;
    let product = Op::ConvTranspose {
        window,
        groups,
        output_size,
    };
    conv.finish(
        cx,
        node,
        (product, x, w),
        (bias, out_channels),
        node.output(),
    )
}
