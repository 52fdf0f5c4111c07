//! Pooling: MaxPool by exact comparisons, AveragePool as a window sum times public divisors.

use super::reduce::sum_times;
use super::window::{kernel_shape, spatial_dims, window};
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::tensor::Window;
use anyhow::{Result, anyhow, bail};
use ndarray::{ArrayD, IxDyn};

fn input(node: &Node) -> Result<&str> {
    node.input(0)
        .ok_or_else(|| anyhow!("{} without input", node.op_type))
}

fn ceil_mode(node: &Node) -> Result<bool> {
    Ok(node.int("ceil_mode", 0)? != 0)
}

pub fn max_pool(cx: &mut Lowering, node: &Node) -> Result<()> {
    if node.outputs.get(1).is_some_and(|o| !o.is_empty()) {
        bail!(
            "MaxPool with an Indices output is not supported; only the pooled values can be computed securely"
        );
    }
    let x_name = input(node)?;
    let spatial = spatial_dims(&cx.shape(x_name)?)?;
    let kernel = kernel_shape(node, None)?;
    let window = window(node, &spatial, &kernel, ceil_mode(node)?)?;
    let x = cx.value(x_name)?;
    cx.emit(node, Op::MaxPool { window }, &[x], To::Output)?;
    Ok(())
}

pub fn global_max_pool(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = input(node)?;
    let spatial = spatial_dims(&cx.shape(x_name)?)?;
    let window = whole_input(&spatial);
    let x = cx.value(x_name)?;
    cx.emit(node, Op::MaxPool { window }, &[x], To::Output)?;
    Ok(())
}

fn whole_input(spatial: &[usize]) -> Window {
    let r = spatial.len();
    Window {
        kernel: spatial.to_vec(),
        strides: vec![1; r],
        dilations: vec![1; r],
        pads_begin: vec![0; r],
        pads_end: vec![0; r],
        ceil_mode: false,
    }
}

/// Multiplies a window sum by public reciprocals of the divisors: one scalar when every
/// window has the same divisor, else one per output position.
fn divide(
    cx: &mut Lowering,
    node: &Node,
    sum: Op,
    x: crate::plan::ValueId,
    divisors: Vec<f32>,
    out_spatial: &[usize],
) -> Result<()> {
    let recip: Vec<f32> = divisors.iter().map(|d| 1.0 / d).collect();
    let scale = if recip.iter().all(|&r| r == recip[0]) {
        cx.scalar(node, "divisor", recip[0])?
    } else {
        let data = ArrayD::from_shape_vec(IxDyn(out_spatial), recip)?;
        cx.public(&format!("{}/divisor", node.name), data)?
    };
    sum_times(cx, node, sum, x, Some(scale))
}

pub fn average_pool(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = input(node)?;
    let spatial = spatial_dims(&cx.shape(x_name)?)?;
    let kernel = kernel_shape(node, None)?;
    let window = window(node, &spatial, &kernel, ceil_mode(node)?)?;
    let divisors = window.average_divisors(&spatial, node.int("count_include_pad", 0)? != 0)?;
    let out_spatial = window.output_shape(&spatial)?;
    let x = cx.value(x_name)?;
    divide(cx, node, Op::SumPool { window }, x, divisors, &out_spatial)
}

pub fn global_average_pool(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = input(node)?;
    let spatial = spatial_dims(&cx.shape(x_name)?)?;
    let count: usize = spatial.iter().product();
    let axes = (2..spatial.len() + 2).collect();
    let x = cx.value(x_name)?;
    divide(
        cx,
        node,
        Op::ReduceSum {
            axes,
            keep_dims: true,
        },
        x,
        vec![count as f32],
        &[],
    )
}
