//! Making the batch size symbolic.
//!
//! Shapes are inferred at two batch sizes and compared (see `batch_facts`), which needs no
//! symbolic support from any op's shape rules. Exporters often bake the example batch into the graph: `torch.onnx.export` without
//! `dynamic_axes` declares the input as [1, ...] and constant-folds `x.view(x.size(0), -1)`
//! into a Reshape to [1, -1]. For such models the static shapes are inferred first; every
//! Reshape of secret data whose constant target starts with that batch, on a tensor whose
//! axis 0 has that size, gets 0 there instead (ONNX: copy the input's size). The batch-free
//! result must then agree with the static one at the declared batch, or the plan keeps the
//! fixed batch.

use super::{BatchMode, Fact, Model, Tiled, floats, int64_initializer, tract_facts};
use crate::plan::{Dim, Shape};
use anyhow::{Context, Result};
use ndarray::{ArrayD, Axis};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_onnx::prelude::Tensor;

pub fn infer(model: &Model) -> Result<(BatchMode, HashMap<String, Fact>)> {
    let declared: Vec<Option<usize>> = model
        .inputs
        .iter()
        .map(|name| model.declared_input(name).map(|(_, dims)| dims[0]))
        .collect::<Result<_>>()?;
    let fixed_batch = match declared.first() {
        Some(Some(b)) if declared.iter().all(|d| *d == Some(*b)) => Some(*b),
        _ => None,
    };
    let Some(b0) = fixed_batch else {
        return free_batch(model, &model.proto)
            .context("shape inference with a free batch size failed")
            .map(|facts| (BatchMode::Symbolic, facts));
    };
    let fixed = tract_facts(model, &model.proto, None).context("shape inference failed")?;
    let proto = with_batch_reshapes(model, &fixed, b0);
    match free_batch(model, &proto) {
        Ok(free) if agrees(&free, &fixed, b0) && outputs_scale(model, &free) => {
            Ok((BatchMode::Symbolic, free))
        }
        _ => Ok((BatchMode::Fixed(b0), fixed)),
    }
}

/// Batch sizes the shapes are inferred at: not 1, whose dimensions broadcast specially.
const PROBES: (usize, usize) = (2, 3);

fn free_batch(model: &Model, proto: &pb::ModelProto) -> Result<HashMap<String, Fact>> {
    let at_a = tract_facts(model, proto, Some(PROBES.0))?;
    let at_b = tract_facts(model, proto, Some(PROBES.1))?;
    batch_facts(&at_a, &at_b, PROBES)
        .map_err(|e| anyhow::anyhow!("{e}; convert with --fixed-shapes"))
}

/// A copy of the model whose batch-carrying Reshape targets copy axis 0 from their input.
fn with_batch_reshapes(model: &Model, fixed: &HashMap<String, Fact>, b0: usize) -> pb::ModelProto {
    let mut proto = model.proto.clone();
    let secret = model.secret_tensors();
    let graph = proto.graph.as_mut().expect("checked on read");
    let mut added = vec![];
    for (index, node) in graph.node.iter_mut().enumerate() {
        if node.op_type != "Reshape" || node.input.len() < 2 || !secret.contains(&node.input[0]) {
            continue;
        }
        if node
            .attribute
            .iter()
            .any(|a| a.name == "allowzero" && a.i == 1)
        {
            continue;
        }
        let leading = |name: &str| {
            fixed
                .get(name)
                .and_then(|f| f.shape.as_ref())
                .and_then(|s| s.0.first().copied())
        };
        if leading(&node.input[0]) != Some(crate::plan::Dim::Fixed(b0)) {
            continue;
        }
        let Some(target) = fixed.get(&node.input[1]).and_then(|f| f.konst.as_ref()) else {
            continue;
        };
        let Ok(mut values) = super::ints(target) else {
            continue;
        };
        if values.first() != Some(&(b0 as i64)) {
            continue;
        }
        values[0] = 0;
        let name = format!("tfe_batch_reshape_{index}");
        added.push(int64_initializer(name.clone(), values));
        node.input[1] = name;
    }
    graph.initializer.extend(added);
    proto
}

/// The symbolic shapes, at the declared batch, equal the static ones.
fn agrees(symbolic: &HashMap<String, Fact>, fixed: &HashMap<String, Fact>, b0: usize) -> bool {
    fixed.iter().all(|(name, f)| {
        match (&f.shape, symbolic.get(name).and_then(|s| s.shape.as_ref())) {
            (Some(fixed_shape), Some(sym_shape)) => {
                sym_shape.resolve(b0) == fixed_shape.resolve(b0)
            }
            (Some(_), None) => false,
            (None, _) => true,
        }
    })
}

/// Every graph output grows with the batch, as a batch-independent model's outputs do.
fn outputs_scale(model: &Model, symbolic: &HashMap<String, Fact>) -> bool {
    model.outputs.iter().all(|o| {
        symbolic
            .get(o)
            .and_then(|f| f.shape.as_ref())
            .is_some_and(|s| s.has_batch())
    })
}

/// Facts for a symbolic batch from facts at two batch sizes: a dimension that is the same at
/// both is fixed, one that grows in proportion is `k * N`, anything else means the model does
/// not take a free batch. Constants keep only values that do not depend on the batch.
fn batch_facts(
    at_a: &HashMap<String, Fact>,
    at_b: &HashMap<String, Fact>,
    (a, b): (usize, usize),
) -> Result<HashMap<String, Fact>, String> {
    at_a.iter()
        .map(|(name, fa)| {
            let not_scaling = || {
                let shape = |f: Option<&Fact>| f.and_then(|f| f.shape.as_ref()).map_or("unknown".into(), |s| s.to_string());
                format!(
                    "tensor {name} does not scale with the batch size (shape {} at batch {a}, {} at batch {b}): the model computes along the batch axis",
                    shape(Some(fa)),
                    shape(at_b.get(name))
                )
            };
            let fb = at_b.get(name).ok_or_else(not_scaling)?;
            let shape = match (&fa.shape, &fb.shape) {
                (Some(sa), Some(sb)) if sa.rank() == sb.rank() => Some(Shape(
                    sa.0.iter()
                        .zip(&sb.0)
                        .map(|(da, db)| {
                            let (da, db) = (da.resolve(0), db.resolve(0));
                            if da == db {
                                Some(Dim::Fixed(da))
                            } else if da % a == 0 && da / a * b == db {
                                Some(Dim::Batch(da / a))
                            } else {
                                None
                            }
                        })
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(not_scaling)?,
                )),
                (None, None) => None,
                _ => return Err(not_scaling()),
            };
            let konst = match (&fa.konst, &fb.konst) {
                (Some(ka), Some(kb)) if ka == kb => Some(ka.clone()),
                _ => None,
            };
            let tiled = match (&fa.konst, &fb.konst, &shape) {
                (Some(ka), Some(kb), Some(shape)) if konst.is_none() => {
                    tiled(shape, [(ka, a), (kb, b)])
                }
                _ => None,
            };
            Ok((
                name.clone(),
                Fact {
                    shape,
                    konst,
                    tiled,
                    datum_type: fa.datum_type,
                },
            ))
        })
        .collect()
}

/// The block a batch-dependent constant repeats along its one batch axis, when its values at
/// both probe batches are that block repeated.
fn tiled(shape: &Shape, probes: [(&Tensor, usize); 2]) -> Option<Tiled> {
    let mut batch_axes = shape.0.iter().enumerate().filter_map(|(axis, d)| match d {
        Dim::Batch(k) => Some((axis, *k)),
        Dim::Fixed(_) => None,
    });
    let (axis, k) = batch_axes.next()?;
    if batch_axes.next().is_some() {
        return None;
    }
    let values: Vec<ArrayD<f32>> = probes
        .iter()
        .map(|(t, _)| floats(t).ok())
        .collect::<Option<_>>()?;
    let mut block = values[0].slice_axis(Axis(axis), (0..k).into()).to_owned();
    let counts = |step: &ArrayD<f32>, block: &ArrayD<f32>| {
        values.iter().zip(probes).all(|(v, (_, n))| {
            v.len_of(Axis(axis)) == n * block.len_of(Axis(axis))
                && v.axis_chunks_iter(Axis(axis), block.len_of(Axis(axis)))
                    .enumerate()
                    .all(|(row, chunk)| chunk == block + &(step * row as f32))
        })
    };
    let no_step = ArrayD::zeros(block.raw_dim());
    if !counts(&no_step, &block) {
        // Positions that count along the batch: row n holds block + n step.
        let step = &values[0].slice_axis(Axis(axis), (k..2 * k).into()) - &block;
        return counts(&step, &block).then_some(Tiled {
            block,
            axis,
            step: Some(step),
        });
    }
    // A block that repeats one slice (a uniform fill) is that slice, expanded for free.
    let first = block.slice_axis(Axis(axis), (0..1).into()).to_owned();
    if first.broadcast(block.raw_dim()).is_some_and(|b| b == block) {
        block = first;
    }
    Some(Tiled {
        block,
        axis,
        step: None,
    })
}
