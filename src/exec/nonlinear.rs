//! Ops built on comparisons and non-linear functions, defined once over any domain: in
//! float they compute the exact result, in fixed point and mpc the secure one.

use super::Domain;
use super::maps::*;
use crate::plan::Function;
use crate::tensor::Window;
use crate::tensor::broadcast::broadcast_shape;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

fn scalar<D: Domain>(dom: &mut D, v: f32) -> Result<D::Value> {
    dom.constant(&ArrayD::from_elem(IxDyn(&[]), v))
}

fn broadcast<D: Domain>(dom: &mut D, v: &D::Value, shape: &[usize]) -> Result<D::Value> {
    if D::shape(v) == shape {
        Ok(v.clone())
    } else {
        dom.linear(&BroadcastMap { shape }, &[v])
    }
}

fn add<D: Domain>(dom: &mut D, a: &D::Value, b: &D::Value) -> Result<D::Value> {
    dom.linear(&AddMap, &[a, b])
}

fn sub<D: Domain>(dom: &mut D, a: &D::Value, b: &D::Value) -> Result<D::Value> {
    dom.linear(&SubMap, &[a, b])
}

fn reshape<D: Domain>(dom: &mut D, v: &D::Value, shape: Vec<usize>) -> Result<D::Value> {
    dom.linear(&ReshapeMap { shape }, &[v])
}

pub fn relu<D: Domain>(dom: &mut D, x: &D::Value) -> Result<D::Value> {
    Ok(dom.gate(x, &[x])?.remove(0))
}

/// Max pooling. A window is the product of its one-axis windows, so its max is also the
/// max along each spatial axis in turn; that is used when it takes fewer comparisons in no
/// more rounds (a 3x3 window at stride 2: 6 comparisons per output instead of 8, both in 4
/// levels). Padding repeats an in-bounds tap along each axis as over the whole window.
pub fn max_pool<D: Domain>(dom: &mut D, x: &D::Value, window: &Window) -> Result<D::Value> {
    let shape = D::shape(x);
    let rank = window.rank();
    anyhow::ensure!(
        shape.len() == rank + 2,
        "a {rank}-d pooling window needs an input of {} dims, not {}",
        rank + 2,
        shape.len()
    );
    let spatial = &shape[2..];
    let axes: Vec<Window> = (0..rank).rev().map(|d| along(window, d)).collect();
    // (comparisons per image and channel, levels of comparisons) of each way.
    let levels = |k: usize| k.next_power_of_two().trailing_zeros() as usize;
    let kernel: usize = window.kernel.iter().product();
    let out: usize = window.output_shape(spatial)?.iter().product();
    let whole = ((kernel - 1) * out, levels(kernel));
    let mut sizes = spatial.to_vec();
    let mut by_axis = (0, 0);
    for (axis, d) in axes.iter().zip((0..rank).rev()) {
        sizes = axis.output_shape(&sizes)?;
        by_axis.0 += (window.kernel[d] - 1) * sizes.iter().product::<usize>();
        by_axis.1 += levels(window.kernel[d]);
    }
    let passes = if rank > 1 && by_axis.0 < whole.0 && by_axis.1 <= whole.1 {
        axes
    } else {
        vec![window.clone()]
    };
    let mut value = x.clone();
    for pass in &passes {
        let planes = dom.linear(&WindowPlanesMap { window: pass }, &[&value])?;
        let max = max_over_leading_axis(dom, planes, false)?;
        let shape = D::shape(&max)[1..].to_vec();
        value = reshape(dom, &max, shape)?;
    }
    Ok(value)
}

/// The one-axis window of `window` along spatial axis `d`.
fn along(window: &Window, d: usize) -> Window {
    let pick = |v: &[usize], other: usize| -> Vec<usize> {
        (0..v.len())
            .map(|i| if i == d { v[i] } else { other })
            .collect()
    };
    Window {
        kernel: pick(&window.kernel, 1),
        strides: pick(&window.strides, 1),
        dilations: pick(&window.dilations, 1),
        pads_begin: pick(&window.pads_begin, 0),
        pads_end: pick(&window.pads_end, 0),
        ceil_mode: window.ceil_mode,
    }
}

/// `[x >= 0] ? a : b` = b + [x >= 0] (a - b).
pub fn select<D: Domain>(
    dom: &mut D,
    x: &D::Value,
    a: &D::Value,
    b: &D::Value,
) -> Result<D::Value> {
    let shape = broadcast_shape(&broadcast_shape(&D::shape(x), &D::shape(a))?, &D::shape(b))?;
    let x = broadcast(dom, x, &shape)?;
    let b = broadcast(dom, b, &shape)?;
    let a = broadcast(dom, a, &shape)?;
    let diff = sub(dom, &a, &b)?;
    let gained = dom.gate(&x, &[&diff])?.remove(0);
    add(dom, &b, &gained)
}

/// clamp(x, lo, hi) = x + relu(lo - x) - relu(x - hi), both comparisons in one round set.
pub fn clip<D: Domain>(
    dom: &mut D,
    x: &D::Value,
    min: Option<f32>,
    max: Option<f32>,
) -> Result<D::Value> {
    let shape = D::shape(x);
    let mut gaps = vec![];
    if let Some(lo) = min {
        let lo = scalar(dom, lo)?;
        gaps.push(sub(dom, &lo, x)?);
    }
    if let Some(hi) = max {
        let hi = scalar(dom, hi)?;
        gaps.push(sub(dom, x, &hi)?);
    }
    if gaps.is_empty() {
        return Ok(x.clone());
    }
    let stacked = dom.linear(&StackMap, &gaps.iter().collect::<Vec<_>>())?;
    let clipped = relu(dom, &stacked)?;
    let lane = |dom: &mut D, i: usize| -> Result<D::Value> {
        let slice = dom.linear(
            &SliceAxis0Map {
                start: i,
                end: i + 1,
            },
            &[&clipped],
        )?;
        reshape(dom, &slice, shape.clone())
    };
    let mut out = x.clone();
    if min.is_some() {
        let raise = lane(dom, 0)?;
        out = add(dom, &out, &raise)?;
    }
    if max.is_some() {
        let lower = lane(dom, gaps.len() - 1)?;
        out = sub(dom, &out, &lower)?;
    }
    Ok(out)
}

/// Elements 0, 2, 4... (`odd` false) or 1, 3, 5... of axis 0, `pairs` of them.
fn alternate<D: Domain>(dom: &mut D, v: &D::Value, odd: bool, pairs: usize) -> Result<D::Value> {
    dom.linear(
        &StridedAxis0Map {
            start: odd as usize,
            step: 2,
            count: pairs,
        },
        &[v],
    )
}

/// Max (or min) over axis 0 by a tree of adjacent pairs: one comparison round per halving,
/// each over the whole tensor at once.
pub fn max_over_leading_axis<D: Domain>(
    dom: &mut D,
    planes: D::Value,
    min: bool,
) -> Result<D::Value> {
    Ok(arg_tree(dom, planes, None, min, false)?.0)
}

/// The tree behind max, min and their arguments: pairs (2i, 2i+1) stay in order, so ties go
/// to the first (or, with `last`, the last) index as ONNX specifies.
fn arg_tree<D: Domain>(
    dom: &mut D,
    mut planes: D::Value,
    mut indices: Option<D::Value>,
    min: bool,
    last: bool,
) -> Result<(D::Value, Option<D::Value>)> {
    loop {
        let k = D::shape(&planes)[0];
        if k == 1 {
            return Ok((planes, indices));
        }
        let pairs = k / 2;
        let a = alternate(dom, &planes, false, pairs)?;
        let b = alternate(dom, &planes, true, pairs)?;
        let rest = if k % 2 == 1 {
            let last = SliceAxis0Map {
                start: k - 1,
                end: k,
            };
            Some(dom.linear(&last, &[&planes])?)
        } else {
            None
        };
        // Held until the pairs are compared otherwise: at the widest level the planes are
        // the largest value alive.
        drop(planes);
        // Keep `first` when `condition >= 0`, else `second`.
        let (first, second) = if last { (b, a) } else { (a, b) };
        let value_step = sub(dom, &first, &second)?;
        // For a max the condition is the step itself.
        let reversed = if min {
            Some(sub(dom, &second, &first)?)
        } else {
            None
        };
        drop(first);
        let condition = reversed.as_ref().unwrap_or(&value_step);
        let mut steps = vec![&value_step];
        let index_pair = match &indices {
            Some(idx) => {
                let ia = alternate(dom, idx, false, pairs)?;
                let ib = alternate(dom, idx, true, pairs)?;
                let (fi, si) = if last { (ib, ia) } else { (ia, ib) };
                Some((sub(dom, &fi, &si)?, si))
            }
            None => None,
        };
        if let Some((index_step, _)) = &index_pair {
            steps.push(index_step);
        }
        let gained = dom.gate(condition, &steps)?;
        drop((reversed, value_step));
        let mut winners = add(dom, &second, &gained[0])?;
        let mut winner_indices = match &index_pair {
            Some((_, si)) => Some(add(dom, si, &gained[1])?),
            None => None,
        };
        if let Some(rest) = rest {
            winners = dom.linear(&ConcatMap { axis: 0 }, &[&winners, &rest])?;
            if let (Some(w), Some(idx)) = (&winner_indices, &indices) {
                let rest = dom.linear(
                    &SliceAxis0Map {
                        start: k - 1,
                        end: k,
                    },
                    &[idx],
                )?;
                winner_indices = Some(dom.linear(&ConcatMap { axis: 0 }, &[w, &rest])?);
            }
        }
        planes = winners;
        indices = winner_indices;
    }
}

/// Moves `axes` to the front and flattens them: `[product of axes, product of the rest]`.
fn axes_first<D: Domain>(dom: &mut D, x: &D::Value, axes: &[usize]) -> Result<D::Value> {
    let shape = D::shape(x);
    let rest: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let perm: Vec<usize> = axes.iter().chain(&rest).copied().collect();
    let moved = dom.linear(&TransposeMap { perm: &perm }, &[x])?;
    let k: usize = axes.iter().map(|&a| shape[a]).product();
    let r: usize = rest.iter().map(|&a| shape[a]).product();
    reshape(dom, &moved, vec![k, r])
}

/// The shape of a reduction over `axes`.
fn reduced_shape(shape: &[usize], axes: &[usize], keep_dims: bool) -> Vec<usize> {
    (0..shape.len())
        .filter_map(|a| {
            if axes.contains(&a) {
                keep_dims.then_some(1)
            } else {
                Some(shape[a])
            }
        })
        .collect()
}

pub fn reduce_max<D: Domain>(
    dom: &mut D,
    x: &D::Value,
    axes: &[usize],
    keep_dims: bool,
    min: bool,
) -> Result<D::Value> {
    let shape = D::shape(x);
    let planes = axes_first(dom, x, axes)?;
    let max = max_over_leading_axis(dom, planes, min)?;
    reshape(dom, &max, reduced_shape(&shape, axes, keep_dims))
}

pub fn arg_max<D: Domain>(
    dom: &mut D,
    x: &D::Value,
    axis: usize,
    keep_dims: bool,
    min: bool,
    last: bool,
) -> Result<D::Value> {
    let shape = D::shape(x);
    let planes = axes_first(dom, x, &[axis])?;
    let (k, r) = (shape[axis], D::shape(&planes)[1]);
    let positions = ArrayD::from_shape_fn(IxDyn(&[k, r]), |ix| ix[0] as f32);
    let indices = dom.constant(&positions)?;
    let (_, index) = arg_tree(dom, planes, Some(indices), min, last)?;
    reshape(
        dom,
        &index.expect("indices are tracked"),
        reduced_shape(&shape, &[axis], keep_dims),
    )
}

/// softmax = e^(x - max) / sum e^(x - max); log-softmax = (x - max) - ln(sum e^(x - max)).
pub fn softmax<D: Domain>(dom: &mut D, x: &D::Value, axis: usize, log: bool) -> Result<D::Value> {
    let max = reduce_max(dom, x, &[axis], true, false)?;
    let shifted = sub(dom, x, &max)?;
    let e = dom.function(Function::ExpNonPositive, &shifted)?;
    let total = dom.linear(
        &ReduceSumMap {
            axes: &[axis],
            keep_dims: true,
        },
        &[&e],
    )?;
    if log {
        let ln_total = dom.function(Function::Log, &total)?;
        sub(dom, &shifted, &ln_total)
    } else {
        let terms = D::shape(x)[axis] as u32;
        let inverse = dom.function(Function::ReciprocalOfSum { terms }, &total)?;
        dom.bilinear(&MulMap, &e, &inverse)
    }
}
