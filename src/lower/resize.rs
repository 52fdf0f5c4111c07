//! Resize in mode "nearest" with constant scales or sizes: along each resized axis every
//! output element copies one input element, so the op is one constant gather per axis.

use super::args::{fixed_dim, normalize_axes, with_dim};
use super::movement::moved;
use super::shape::data_input;
use super::{Lowering, Op};
use crate::import::Node;
use crate::plan::{Dim, Shape};
use anyhow::{Result, anyhow, bail, ensure};

pub fn resize(cx: &mut Lowering, node: &Node) -> Result<()> {
    let mode = node.string("mode")?.unwrap_or_else(|| "nearest".into());
    if mode != "nearest" {
        bail!(
            "Resize mode {mode} interpolates with weighted sums of neighbours, which is not lowered; only mode=nearest (a gather) is supported"
        );
    }
    let x_name = data_input(node)?;
    let (from, to) = (cx.shape(x_name)?, cx.shape(node.output())?);
    let opset = cx.graph.model.opset;
    let transform = Transform::parse(node, opset)?;
    let rounding = Rounding::parse(node)?;
    let scales = scales(cx, node, opset, &from)?;
    let mut steps = vec![];
    let mut current = from.clone();
    for (axis, &scale) in scales.iter().enumerate() {
        if from.0[axis] == to.0[axis] && scale == 1.0 {
            continue;
        }
        let (len_in, len_out) = (fixed_dim(node, &from, axis)?, fixed_dim(node, &to, axis)?);
        let indices: Vec<usize> = (0..len_out)
            .map(|i| rounding.index(transform.source(i, scale, len_in, len_out), len_in))
            .collect();
        if indices.iter().copied().eq(0..len_in) {
            continue;
        }
        current = with_dim(&current, axis, Dim::Fixed(len_out));
        steps.push((Op::Gather { axis, indices }, current.clone()));
    }
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}

/// The scale of every axis (1 for axes not resized): the `scales` input when it is given
/// and not empty, else from `sizes`. The `axes` attribute (opset 18) says which axes those
/// inputs describe.
fn scales(cx: &Lowering, node: &Node, opset: i64, from: &Shape) -> Result<Vec<f32>> {
    let rank = from.rank();
    let axes = match node.ints("axes")? {
        Some(axes) => normalize_axes(node, &axes, rank)?,
        None => (0..rank).collect(),
    };
    let (scales_input, sizes_input) = if opset < 11 {
        (node.input(1), None)
    } else {
        (node.input(2), node.input(3))
    };
    let given = scales_input
        .map(|t| cx.constant(t))
        .transpose()?
        .filter(|s| !s.is_empty());
    let ratios = match given {
        Some(scales) => scales.iter().copied().collect(),
        None => size_ratios(cx, node, sizes_input, from, &axes)?,
    };
    ensure!(
        ratios.len() == axes.len() && ratios.iter().all(|&s| s > 0.0),
        "Resize needs one positive scale per resized axis ({}), got {ratios:?}",
        axes.len()
    );
    let mut per_axis = vec![1.0; rank];
    for (&axis, ratio) in axes.iter().zip(ratios) {
        per_axis[axis] = ratio;
    }
    Ok(per_axis)
}

/// Output over input size on each resized axis, reconciled into one shared ratio by
/// `keep_aspect_ratio_policy` (opset 18).
fn size_ratios(
    cx: &Lowering,
    node: &Node,
    sizes_input: Option<&str>,
    from: &Shape,
    axes: &[usize],
) -> Result<Vec<f32>> {
    let sizes = sizes_input
        .ok_or_else(|| anyhow!("Resize needs constant scales or sizes"))
        .and_then(|t| cx.constant_ints(t))?;
    ensure!(
        sizes.len() == axes.len(),
        "Resize has {} sizes for {} axes",
        sizes.len(),
        axes.len()
    );
    let ratios = axes
        .iter()
        .zip(&sizes)
        .map(|(&axis, &size)| Ok(size as f32 / fixed_dim(node, from, axis)? as f32))
        .collect::<Result<Vec<f32>>>()?;
    let policy = node.string("keep_aspect_ratio_policy")?;
    let pick: fn(f32, f32) -> f32 = match policy.as_deref().unwrap_or("stretch") {
        "stretch" => return Ok(ratios),
        "not_larger" => f32::min,
        "not_smaller" => f32::max,
        other => bail!("Resize keep_aspect_ratio_policy {other} is not defined by ONNX"),
    };
    let shared = ratios.iter().copied().reduce(pick).unwrap_or(1.0);
    Ok(vec![shared; ratios.len()])
}

/// ONNX `coordinate_transformation_mode`: where output index `i` falls in the input.
#[derive(Clone, Copy)]
enum Transform {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

impl Transform {
    /// Resize-10 has no such attribute and maps coordinates asymmetrically.
    fn parse(node: &Node, opset: i64) -> Result<Transform> {
        let default = if opset < 11 {
            "asymmetric"
        } else {
            "half_pixel"
        };
        let mode = node.string("coordinate_transformation_mode")?;
        Ok(match mode.as_deref().unwrap_or(default) {
            "half_pixel" => Transform::HalfPixel,
            "half_pixel_symmetric" => Transform::HalfPixelSymmetric,
            "pytorch_half_pixel" => Transform::PytorchHalfPixel,
            "align_corners" => Transform::AlignCorners,
            "asymmetric" => Transform::Asymmetric,
            "tf_half_pixel_for_nn" => Transform::TfHalfPixelForNn,
            "tf_crop_and_resize" => bail!(
                "Resize with coordinate_transformation_mode tf_crop_and_resize (a crop with extrapolated values) is not supported"
            ),
            other => bail!("Resize coordinate_transformation_mode {other} is not defined by ONNX"),
        })
    }

    /// In f32, as the ONNX reference and tract compute it, so that ties round alike.
    fn source(self, i: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
        let i = i as f32;
        match self {
            Transform::HalfPixel => (i + 0.5) / scale - 0.5,
            Transform::HalfPixelSymmetric => {
                let adjustment = len_out as f32 / (scale * len_in as f32);
                let offset = len_in as f32 / 2.0 * (1.0 - adjustment);
                offset + (i + 0.5) / scale - 0.5
            }
            Transform::PytorchHalfPixel if len_out > 1 => (i + 0.5) / scale - 0.5,
            Transform::PytorchHalfPixel => 0.0,
            Transform::AlignCorners => {
                let width = scale * len_in as f32;
                if width == 1.0 {
                    0.0
                } else {
                    i * (len_in as f32 - 1.0) / (width - 1.0)
                }
            }
            Transform::Asymmetric => i / scale,
            Transform::TfHalfPixelForNn => (i + 0.5) / scale,
        }
    }
}

/// ONNX `nearest_mode`: which neighbour a position between two input elements takes.
#[derive(Clone, Copy)]
enum Rounding {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

impl Rounding {
    fn parse(node: &Node) -> Result<Rounding> {
        let mode = node.string("nearest_mode")?;
        Ok(match mode.as_deref().unwrap_or("round_prefer_floor") {
            "round_prefer_floor" => Rounding::RoundPreferFloor,
            "round_prefer_ceil" => Rounding::RoundPreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            other => bail!("Resize nearest_mode {other} is not defined by ONNX"),
        })
    }

    /// The input index for position `x`, clamped to the axis.
    fn index(self, x: f32, len: usize) -> usize {
        // x lies in (left, left + 1], at `ratio` past `left`.
        let left = x.ceil() - 1.0;
        let ratio = x - left;
        let right = ratio == 1.0
            || match self {
                Rounding::RoundPreferFloor => ratio > 0.5,
                Rounding::RoundPreferCeil => ratio >= 0.5,
                Rounding::Floor => false,
                Rounding::Ceil => true,
            };
        (left as i64 + right as i64).clamp(0, len as i64 - 1) as usize
    }
}
