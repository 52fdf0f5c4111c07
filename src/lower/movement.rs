//! Data movement with every index resolved at convert time: Pad, Slice, Split, Gather,
//! GatherElements, GatherND, Expand, Tile, DepthToSpace and SpaceToDepth, and the casts
//! (identities, but for a cast to bool, which compares with zero). All are linear maps with no
//! constant term, so they cost no communication; a nonzero pad value is added afterwards as a
//! public constant.

use super::args::{
    fixed_dim, ints_arg, normalize_axes, normalize_axis, normalize_index, required_input, with_dim,
};
use super::compare::zero_test;
use super::shape::data_input;
use super::{Lowering, Op, To, per_row, tokens};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId};
use crate::tensor::movement::AxisSlice;
use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::{ArrayD, IxDyn, Slice};

// ---------------------------------------------------------------------------------------------
// Pad

pub fn pad(cx: &mut Lowering, node: &Node) -> Result<()> {
    let mode = node.string("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        bail!(
            "Pad mode {mode} is not supported; only mode=constant is lowered, so export the model with constant (zero or fixed-value) padding"
        );
    }
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let (begin, end) = pads(cx, node, shape.rank())?;
    // A fill value computed from the secret input is a secret scalar times the border mask.
    let secret_value = node
        .input(2)
        .filter(|t| !cx.is_constant(t))
        .map(str::to_string);
    let value = if secret_value.is_some() {
        1.0
    } else {
        pad_value(cx, node)?
    };
    let mut crop = vec![];
    for axis in (0..shape.rank()).filter(|&a| begin[a] != 0 || end[a] != 0) {
        let dim = fixed_dim(node, &shape, axis)?;
        let (start, cut_end) = ((-begin[axis]).max(0) as usize, (-end[axis]).max(0) as usize);
        if start + cut_end > 0 {
            ensure!(
                start + cut_end <= dim,
                "Pad removes {} elements from axis {axis}, which only has {dim}",
                start + cut_end
            );
            crop.push(AxisSlice {
                axis,
                start,
                len: dim - start - cut_end,
                step: 1,
            });
        }
    }
    let grow = |pads: &[i64]| -> Vec<usize> { pads.iter().map(|&p| p.max(0) as usize).collect() };
    let (grow_begin, grow_end) = (grow(&begin), grow(&end));
    let cropped = crop.iter().fold(shape.clone(), |s, c| {
        with_dim(&s, c.axis, Dim::Fixed(c.len))
    });
    let grows = grow_begin.iter().chain(&grow_end).any(|&p| p > 0);
    let mut steps = vec![];
    if !crop.is_empty() {
        steps.push((Op::Slice { slices: crop }, cropped.clone()));
    }
    if grows {
        let op = Op::Pad {
            begin: grow_begin.clone(),
            end: grow_end,
        };
        steps.push((op, cx.shape(node.output())?));
    }
    let x = cx.value(x_name)?;
    if value == 0.0 || !grows {
        moved(cx, node, x, steps, true)?;
        return Ok(());
    }
    let border = border(value, &cx.shape(node.output())?, &grow_begin, &cropped);
    let border_shape = Shape::fixed_dims(border.shape());
    let mut border = cx.public(&format!("{}/border", node.name), border)?;
    if let Some(fill) = secret_value {
        let fill = cx.value(&fill)?;
        let to = To::shaped("border", border_shape);
        border = cx.emit(node, Op::Mul, &[fill, border], to)?;
    }
    let padded = moved(cx, node, x, steps, false)?;
    cx.emit(node, Op::Add, &[padded, border], To::Output)?;
    Ok(())
}

/// `x` moved by `steps` in turn, each step to the shape given and named `{op}_{i}`; with
/// `to_output` the last step computes the node's output instead (and with no steps the
/// output is `x` itself). The rules that move data in several steps share this.
pub(super) fn moved(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    steps: Vec<(Op, Shape)>,
    to_output: bool,
) -> Result<ValueId> {
    if to_output && steps.is_empty() {
        cx.alias(node.output(), x);
    }
    let last = steps.len().saturating_sub(1);
    let mut current = x;
    for (i, (op, shape)) in steps.into_iter().enumerate() {
        let to = if to_output && i == last {
            To::Output
        } else {
            To::shaped(format!("{}_{i}", op.name()), shape)
        };
        current = cx.emit(node, op, &[current], to)?;
    }
    Ok(current)
}

/// Pads before and after each axis (negative ones crop): the `pads` attribute (opset < 11)
/// or input, over the axes of the `axes` input (opset 18) or all of them.
fn pads(cx: &Lowering, node: &Node, rank: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    let pads = ints_arg(cx, node, "pads", 1)?.ok_or_else(|| anyhow!("Pad without pads"))?;
    let axes = match node.input(3) {
        Some(axes) => normalize_axes(node, &cx.constant_ints(axes)?, rank)?,
        None => (0..rank).collect(),
    };
    ensure!(
        pads.len() == 2 * axes.len(),
        "Pad has {} pads for {} axes; it needs a begin and an end for each",
        pads.len(),
        axes.len()
    );
    let (mut begin, mut end) = (vec![0; rank], vec![0; rank]);
    for (i, &axis) in axes.iter().enumerate() {
        begin[axis] = pads[i];
        end[axis] = pads[i + axes.len()];
    }
    Ok((begin, end))
}

/// The fill value: the `constant_value` input (opset >= 11) or the `value` attribute.
fn pad_value(cx: &Lowering, node: &Node) -> Result<f32> {
    let Some(tensor) = node.input(2) else {
        return node.float("value", 0.0);
    };
    let value = cx.constant(tensor).context("Pad constant_value")?;
    ensure!(
        value.len() == 1,
        "Pad constant_value must be a scalar, got shape {:?}",
        value.shape()
    );
    Ok(value.iter().next().copied().unwrap_or_default())
}

/// `value` where zero padding added elements and 0 over the `inner` block starting at
/// `begin`, to add to the zero-padded tensor. Batch axes, never padded, have size 1 here and
/// broadcast.
fn border(value: f32, padded: &Shape, begin: &[usize], inner: &Shape) -> ArrayD<f32> {
    let dims: Vec<usize> = padded
        .0
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Batch(_) => 1,
        })
        .collect();
    let mut border = ArrayD::from_elem(IxDyn(&dims), value);
    border
        .slice_each_axis_mut(|ax| {
            let a = ax.axis.index();
            match inner.0[a] {
                Dim::Fixed(n) => Slice::from(begin[a]..begin[a] + n),
                Dim::Batch(_) => Slice::from(..),
            }
        })
        .fill(0.0);
    border
}

// ---------------------------------------------------------------------------------------------
// Slice and Split

pub fn slice(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let required = |name: &str, input: usize| {
        ints_arg(cx, node, name, input)?.ok_or_else(|| anyhow!("Slice without {name}"))
    };
    let (starts, ends) = (required("starts", 1)?, required("ends", 2)?);
    let n = starts.len() as i64;
    let axes = ints_arg(cx, node, "axes", 3)?.unwrap_or_else(|| (0..n).collect());
    let steps = ints_arg(cx, node, "steps", 4)?.unwrap_or_else(|| vec![1; starts.len()]);
    ensure!(
        [ends.len(), axes.len(), steps.len()]
            .iter()
            .all(|&l| l == starts.len()),
        "Slice starts, ends, axes and steps must have the same length"
    );
    let axes = normalize_axes(node, &axes, shape.rank())?;
    let mut slices = vec![];
    for (i, &axis) in axes.iter().enumerate() {
        let (start, end, step) = (starts[i], ends[i], steps[i]);
        ensure!(step != 0, "Slice step 0 on axis {axis}");
        if matches!(shape.0[axis], Dim::Batch(_)) && takes_whole_axis(start, end, step) {
            continue;
        }
        let dim = fixed_dim(node, &shape, axis)?;
        let s = clamp_slice(axis, dim, start, end, step);
        if !(s.start == 0 && s.len == dim && s.step == 1) {
            slices.push(s);
        }
    }
    let taken = slices.iter().fold(shape.clone(), |s, slice| {
        with_dim(&s, slice.axis, Dim::Fixed(slice.len))
    });
    let inferred = cx.shape(node.output())?;
    ensure!(
        inferred == taken,
        "shape inference gives {inferred} for the output, but the starts and ends select {taken}; re-export the model with opset 10 or later, or convert with --fixed-shapes"
    );
    let steps = if slices.is_empty() {
        vec![]
    } else {
        vec![(Op::Slice { slices }, taken)]
    };
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

/// Whether a slice keeps an axis whole whatever its size (so also a batch axis): from 0 (or
/// a start below any size) to an end beyond any size, in steps of 1.
fn takes_whole_axis(start: i64, end: i64, step: i64) -> bool {
    const ANY_SIZE: i64 = i32::MAX as i64;
    step == 1 && (start == 0 || start <= -ANY_SIZE) && end >= ANY_SIZE
}

/// ONNX Slice on one axis of size `dim`: negative positions count from the end, then start
/// and end are clamped to `[0, dim]` going forwards and to `[0, dim-1]` and `[-1, dim-1]`
/// going backwards.
fn clamp_slice(axis: usize, dim: usize, start: i64, end: i64, step: i64) -> AxisSlice {
    let (d, step_wide) = (dim as i128, step as i128);
    let resolve = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
    let (start, end) = (resolve(start), resolve(end));
    let (first, len) = if dim == 0 {
        (0, 0)
    } else if step > 0 {
        let (s, e) = (start.clamp(0, d), end.clamp(0, d));
        (s, ((e - s).max(0) + step_wide - 1) / step_wide)
    } else {
        let (s, e) = (start.clamp(0, d - 1), end.clamp(-1, d - 1));
        (s, ((s - e).max(0) - step_wide - 1) / -step_wide)
    };
    AxisSlice {
        axis,
        start: if len == 0 { 0 } else { first as usize },
        len: len as usize,
        // One element or none: any step takes the same.
        step: if len <= 1 { 1 } else { step as isize },
    }
}

pub fn split(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let axis = normalize_axis(node, node.int("axis", 0)?, shape.rank())?;
    let x = cx.value(x_name)?;
    if node.outputs.len() == 1 {
        cx.alias(node.output(), x);
        return Ok(());
    }
    let dim = fixed_dim(node, &shape, axis)?;
    let sizes = split_sizes(cx, node, dim)?;
    let mut start = 0;
    for (output, len) in node.outputs.iter().zip(sizes) {
        if !output.is_empty() {
            let slices = vec![AxisSlice {
                axis,
                start,
                len,
                step: 1,
            }];
            cx.emit(node, Op::Slice { slices }, &[x], To::Tensor(output))?;
        }
        start += len;
    }
    Ok(())
}

/// The size of each output: the `split` attribute (opset < 13) or input, else equal parts
/// (the last one smaller when they do not divide the axis, as with `num_outputs`).
fn split_sizes(cx: &Lowering, node: &Node, dim: usize) -> Result<Vec<usize>> {
    let n = node.outputs.len();
    if node.has_attr("num_outputs") {
        let declared = node.int("num_outputs", 0)?;
        ensure!(
            declared == n as i64,
            "Split declares num_outputs = {declared} but has {n} outputs"
        );
    }
    let sizes = match ints_arg(cx, node, "split", 1)? {
        Some(split) => split
            .iter()
            .map(|&s| usize::try_from(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow!("Split sizes {split:?} must not be negative"))?,
        None => {
            let part = dim.div_ceil(n);
            (0..n)
                .map(|i| part.min(dim.saturating_sub(i * part)))
                .collect()
        }
    };
    ensure!(
        sizes.len() == n && sizes.iter().sum::<usize>() == dim,
        "Split sizes {sizes:?} do not share the {dim} elements of the axis among {n} outputs"
    );
    Ok(sizes)
}

// ---------------------------------------------------------------------------------------------
// Gather and GatherElements

/// Index values, which must be known at convert time.
fn constant_indices(cx: &Lowering, node: &Node, tensor: &str) -> Result<Vec<i64>> {
    if cx.graph.is_secret(tensor) {
        bail!(
            "{} with indices computed from the secret input (a lookup at a secret position) is not supported; only constant indices are lowered",
            node.op_type
        );
    }
    cx.constant_ints(tensor)
}

/// What both gathers read: the data input and its shape, the `axis` attribute normalised,
/// and the constant indices resolved against that axis.
struct Gathered<'n> {
    x_name: &'n str,
    index_name: &'n str,
    shape: Shape,
    axis: usize,
    indices: Vec<usize>,
}

fn gathered<'n>(cx: &Lowering, node: &'n Node) -> Result<Gathered<'n>> {
    let x_name = data_input(node)?;
    let index_name = required_input(node, 1, "indices")?;
    let raw = constant_indices(cx, node, index_name)?;
    let shape = cx.shape(x_name)?;
    let axis = normalize_axis(node, node.int("axis", 0)?, shape.rank())?;
    let dim = fixed_dim(node, &shape, axis)?;
    let indices = raw
        .iter()
        .map(|&i| normalize_index(node, i, dim))
        .collect::<Result<Vec<_>>>()?;
    Ok(Gathered {
        x_name,
        index_name,
        shape,
        axis,
        indices,
    })
}

pub fn gather(cx: &mut Lowering, node: &Node) -> Result<()> {
    let index_name = required_input(node, 1, "indices")?;
    if let Some(ids) = cx.token_input(index_name)? {
        return tokens::lookup(cx, node, ids);
    }
    if let Some(tiled) = cx.graph.tiled(index_name).filter(|t| t.step.is_some()) {
        return per_row::gather(cx, node, tiled.clone());
    }
    let g = gathered(cx, node)?;
    let taken = with_dim(&g.shape, g.axis, Dim::Fixed(g.indices.len()));
    let op = Op::Gather {
        axis: g.axis,
        indices: g.indices,
    };
    let mut steps = vec![(op, taken)];
    // Scalar or multi-dimensional indices replace the axis by their own shape.
    if cx.shape(g.index_name)?.rank() != 1 {
        let out = cx.shape(node.output())?;
        steps.push((Op::Reshape { shape: out.clone() }, out));
    }
    let x = cx.value(g.x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

pub fn gather_elements(cx: &mut Lowering, node: &Node) -> Result<()> {
    let g = gathered(cx, node)?;
    // Constant indices fix the output's size on every axis, so none may follow the batch.
    for axis in 0..g.shape.rank() {
        fixed_dim(node, &g.shape, axis)?;
    }
    let index_shape = cx
        .shape(g.index_name)?
        .fixed()
        .context("GatherElements indices of unknown shape")?;
    let x = cx.value(g.x_name)?;
    let op = Op::GatherElements {
        axis: g.axis,
        indices: g.indices,
        shape: index_shape,
    };
    cx.emit(node, op, &[x], To::Output)?;
    Ok(())
}

/// GatherND with constant indices: the data's `batch_dims + k` leading axes (k = the last
/// dimension of the indices) flattened into one, a Gather of each index tuple's flat
/// position along it, and a reshape to the output.
pub fn gather_nd(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let index_name = required_input(node, 1, "indices")?;
    if let Some(tiled) = cx.graph.tiled(index_name).filter(|t| t.step.is_some()) {
        return per_row::gather_nd(cx, node, tiled.clone());
    }
    let raw = constant_indices(cx, node, index_name)?;
    let shape = cx.shape(x_name)?;
    let index_shape = cx
        .shape(index_name)?
        .fixed()
        .context("GatherND indices of unknown shape")?;
    let batch_dims = usize::try_from(node.int("batch_dims", 0)?)
        .map_err(|_| anyhow!("GatherND batch_dims must not be negative"))?;
    let k = index_shape.last().copied().unwrap_or(0);
    ensure!(
        k >= 1 && index_shape.len() > batch_dims && batch_dims + k <= shape.rank(),
        "GatherND indices of shape {index_shape:?} with batch_dims {batch_dims} do not index data of shape {shape}"
    );
    let lead = (0..batch_dims + k)
        .map(|axis| fixed_dim(node, &shape, axis))
        .collect::<Result<Vec<_>>>()?;
    ensure!(
        index_shape[..batch_dims] == lead[..batch_dims],
        "GatherND indices of shape {index_shape:?} and data of shape {shape} differ on the {batch_dims} batch dimensions"
    );
    let inner: usize = lead[batch_dims..].iter().product();
    let tuples_per_batch: usize = index_shape[batch_dims..index_shape.len() - 1]
        .iter()
        .product();
    let mut positions = Vec::with_capacity(raw.len() / k);
    for (t, tuple) in raw.chunks(k).enumerate() {
        let mut position = t / tuples_per_batch.max(1) * inner;
        let mut stride = inner;
        for (&index, &dim) in tuple.iter().zip(&lead[batch_dims..]) {
            stride /= dim;
            position += normalize_index(node, index, dim)? * stride;
        }
        positions.push(position);
    }
    let rest = &shape.0[batch_dims + k..];
    let flat = Shape(
        [Dim::Fixed(lead.iter().product())]
            .into_iter()
            .chain(rest.iter().copied())
            .collect(),
    );
    let taken = with_dim(&flat, 0, Dim::Fixed(positions.len()));
    let out = cx.shape(node.output())?;
    let mut steps = vec![];
    if batch_dims + k > 1 {
        steps.push((
            Op::Reshape {
                shape: flat.clone(),
            },
            flat,
        ));
    }
    steps.push((
        Op::Gather {
            axis: 0,
            indices: positions,
        },
        taken.clone(),
    ));
    if taken != out {
        steps.push((Op::Reshape { shape: out.clone() }, out));
    }
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Expand and Tile

/// Expand to the inferred output shape, so a target computed from the input's shape (and so
/// holding the batch size) works too.
pub fn expand(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let (from, to) = (cx.shape(x_name)?, cx.shape(node.output())?);
    let steps = if from == to {
        vec![]
    } else {
        vec![(Op::Expand { shape: to.clone() }, to)]
    };
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

pub fn tile(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    let repeats = cx.constant_ints(required_input(node, 1, "repeats")?)?;
    let rank = cx.shape(x_name)?.rank();
    ensure!(
        repeats.len() == rank && repeats.iter().all(|&r| r > 0),
        "Tile repeats {repeats:?} must give one positive count for each of the {rank} axes"
    );
    let repeats: Vec<usize> = repeats.iter().map(|&r| r as usize).collect();
    let steps = if repeats.iter().all(|&r| r == 1) {
        vec![]
    } else {
        vec![(Op::Tile { repeats }, cx.shape(node.output())?)]
    };
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// DepthToSpace and SpaceToDepth

/// The input, the block size and the input's `[N, C, H, W]` with C, H and W fixed.
fn blocks<'n>(cx: &Lowering, node: &'n Node) -> Result<(&'n str, usize, Dim, [usize; 3])> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    ensure!(
        shape.rank() == 4,
        "{} needs an [N, C, H, W] input, got shape {shape}",
        node.op_type
    );
    let block = node.int("blocksize", 0)?;
    ensure!(
        block > 0,
        "{} needs a positive blocksize attribute",
        node.op_type
    );
    let [c, h, w] = [1, 2, 3].map(|a| fixed_dim(node, &shape, a));
    Ok((x_name, block as usize, shape.0[0], [c?, h?, w?]))
}

pub fn depth_to_space(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (x_name, b, n, [c, h, w]) = blocks(cx, node)?;
    ensure!(
        c % (b * b) == 0,
        "DepthToSpace: {c} channels do not split into blocks of {b}x{b}"
    );
    let f = Dim::Fixed;
    let mode = node.string("mode")?.unwrap_or_else(|| "DCR".into());
    let (split, perm) = match mode.as_str() {
        "DCR" => (
            vec![n, f(b), f(b), f(c / (b * b)), f(h), f(w)],
            vec![0, 3, 4, 1, 5, 2],
        ),
        "CRD" => (
            vec![n, f(c / (b * b)), f(b), f(b), f(h), f(w)],
            vec![0, 1, 4, 2, 5, 3],
        ),
        other => bail!("DepthToSpace mode {other} is not one of DCR and CRD"),
    };
    rearrange(cx, node, x_name, Shape(split), perm)
}

pub fn space_to_depth(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (x_name, b, n, [c, h, w]) = blocks(cx, node)?;
    ensure!(
        h % b == 0 && w % b == 0,
        "SpaceToDepth: a {h}x{w} image does not split into blocks of {b}x{b}"
    );
    let f = Dim::Fixed;
    let split = vec![n, f(c), f(h / b), f(b), f(w / b), f(b)];
    // Output channels ordered (row in block, column in block, channel) for DCR, the default,
    // or (channel, row, column) for CRD (the mode attribute of recent opsets).
    let perm = match node.string("mode")?.as_deref().unwrap_or("DCR") {
        "DCR" => vec![0, 3, 5, 1, 2, 4],
        "CRD" => vec![0, 1, 3, 5, 2, 4],
        other => bail!("SpaceToDepth mode {other} is not one of DCR and CRD"),
    };
    rearrange(cx, node, x_name, Shape(split), perm)
}

/// Reshape to `split`, permute its axes, reshape to the node's output.
fn rearrange(
    cx: &mut Lowering,
    node: &Node,
    x_name: &str,
    split: Shape,
    perm: Vec<usize>,
) -> Result<()> {
    let permuted = Shape(perm.iter().map(|&p| split.0[p]).collect());
    let out = cx.shape(node.output())?;
    let steps = vec![
        (
            Op::Reshape {
                shape: split.clone(),
            },
            split,
        ),
        (Op::Transpose { perm }, permuted),
        (Op::Reshape { shape: out.clone() }, out),
    ];
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cast and CastLike

/// ONNX element types between which a cast keeps a value tfe can compute with: every float
/// is held in the plan's fixed point, so these casts are identities.
const FLOAT_TYPES: [(i64, &str); 4] = [
    (1, "float"),
    (10, "float16"),
    (11, "double"),
    (16, "bfloat16"),
];

/// Cast and CastLike: identities between float types, from booleans, and of integers to
/// integer types; to bool, `x != 0` by one exact comparison (an identity on booleans).
pub fn cast(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = data_input(node)?;
    if cx.is_bool(node.output()) {
        let x = cx.value(x_name)?;
        if cx.is_bool(x_name) {
            cx.alias(node.output(), x);
        } else {
            zero_test(cx, node, x, false, To::Output)?;
        }
        return Ok(());
    }
    let target = if node.op_type == "CastLike" {
        let like = required_input(node, 1, "target_type")?;
        let datum = cx
            .graph
            .fact(like)
            .and_then(|f| f.datum_type)
            .ok_or_else(|| anyhow!("the element type of CastLike's target {like} is unknown"))?;
        (!datum.is_float()).then(|| format!("{datum:?}"))
    } else {
        let to = node.int("to", 0)?;
        (!FLOAT_TYPES.iter().any(|&(code, _)| code == to)).then(|| format!("ONNX type {to}"))
    };
    let holds_integers = cx.is_integral(x_name) || cx.is_bool(x_name);
    if let Some(target) = target.filter(|_| !holds_integers) {
        let floats: Vec<&str> = FLOAT_TYPES.iter().map(|&(_, name)| name).collect();
        bail!(
            "{} of a tensor computed from the secret input to {target} would round it; tfe computes on fixed-point reals, so only casts between {} (identities here), of integers and booleans, and to bool are lowered",
            node.op_type,
            floats.join(", ")
        );
    }
    let x = cx.value(x_name)?;
    cx.alias(node.output(), x);
    Ok(())
}
