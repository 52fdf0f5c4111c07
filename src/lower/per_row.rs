//! Gathers by positions that count along the batch: index tensors computed from the input's
//! shape whose batch row n holds n·k + j (or index tuples (n, j, ..)), as Hugging Face
//! exports pick each sequence's padding mask. Each batch row takes its own entries j, so the
//! gather is one along axis 1 of the data seen as [N, k, ..], for any batch size.

use super::args::{fixed_dim, normalize_axis, with_dim};
use super::movement::moved;
use super::shape::data_input;
use super::{Lowering, Op};
use crate::import::{Node, Tiled};
use crate::plan::{Dim, Shape};
use anyhow::{Context, Result, anyhow, bail, ensure};

/// Gather from data of N·k rows by positions that count along the batch (row n of the
/// indices holds n·k + j, j < k, as Hugging Face exports pick each sequence's padding mask).
pub fn gather(cx: &mut Lowering, node: &Node, indices: Tiled) -> Result<()> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let axis = normalize_axis(node, node.int("axis", 0)?, shape.rank())?;
    let rows = match shape.0.first() {
        Some(&Dim::Batch(k)) if axis == 0 && indices.axis == 0 => k,
        _ => bail!(
            "Gather by positions that count along the batch must gather the batch-sized axis 0 of its data (shape {shape}, axis {axis}); convert with --fixed-shapes"
        ),
    };
    let step = indices.step.as_ref().expect("positions that count");
    let picked = indices
        .block
        .iter()
        .zip(step.iter())
        .map(|(&j, &s)| whole(j).filter(|_| s == rows as f32))
        .collect::<Option<Vec<usize>>>()
        .filter(|p| p.iter().all(|&j| j < rows))
        .ok_or_else(|| own_rows(rows))?;
    take_per_row(cx, node, x_name, rows, &shape.0[1..], picked)
}

/// GatherND whose index tuples count along the batch in their first component (tuple
/// (n, j1, ..) in batch row n, as the dynamo exporter picks the padding mask): every batch
/// row takes its own entries (j1, ..).
pub fn gather_nd(cx: &mut Lowering, node: &Node, indices: Tiled) -> Result<()> {
    let x_name = data_input(node)?;
    let shape = cx.shape(x_name)?;
    let k = *indices.block.shape().last().unwrap_or(&0);
    ensure!(
        node.int("batch_dims", 0)? == 0
            && indices.axis == 0
            && k >= 1
            && k <= shape.rank()
            && shape.0.first() == Some(&Dim::Batch(1)),
        "GatherND by index tuples that count along the batch must index the batch axis 0 of its data (shape {shape}) first; convert with --fixed-shapes"
    );
    let dims = (1..k)
        .map(|axis| fixed_dim(node, &shape, axis))
        .collect::<Result<Vec<_>>>()?;
    let rows: usize = dims.iter().product();
    let step = indices.step.as_ref().expect("tuples that count");
    let tuples = indices
        .block
        .as_slice()
        .context("a standard-layout block")?;
    let steps = step.as_slice().context("a standard-layout step")?;
    let picked = tuples
        .chunks(k)
        .zip(steps.chunks(k))
        .map(|(tuple, step)| {
            let counts = tuple[0] == 0.0 && step[0] == 1.0 && step[1..].iter().all(|&s| s == 0.0);
            let mut position = 0;
            for (&j, &dim) in tuple[1..].iter().zip(&dims) {
                let j = whole(j).filter(|&j| j < dim)?;
                position = position * dim + j;
            }
            counts.then_some(position)
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| own_rows(rows))?;
    take_per_row(cx, node, x_name, rows, &shape.0[k..], picked)
}

/// A convert-time position held as a real, if it is a whole non-negative number.
fn whole(v: f32) -> Option<usize> {
    (v >= 0.0 && v.fract() == 0.0).then_some(v as usize)
}

fn own_rows(rows: usize) -> anyhow::Error {
    anyhow!(
        "positions that count along the batch must pick, for each batch row, one of its own {rows} entries"
    )
}

/// Every batch row takes its own entries `picked` of the data seen as [N, rows, rest..]: a
/// gather along axis 1, then the output's shape.
fn take_per_row(
    cx: &mut Lowering,
    node: &Node,
    x_name: &str,
    rows: usize,
    rest: &[Dim],
    picked: Vec<usize>,
) -> Result<()> {
    let per_row = Shape(
        [Dim::Batch(1), Dim::Fixed(rows)]
            .into_iter()
            .chain(rest.iter().copied())
            .collect(),
    );
    let taken = with_dim(&per_row, 1, Dim::Fixed(picked.len()));
    let output = cx.shape(node.output())?;
    let steps = vec![
        (
            Op::Reshape {
                shape: per_row.clone(),
            },
            per_row,
        ),
        (
            Op::Gather {
                axis: 1,
                indices: picked,
            },
            taken,
        ),
        (
            Op::Reshape {
                shape: output.clone(),
            },
            output,
        ),
    ];
    let x = cx.value(x_name)?;
    moved(cx, node, x, steps, true)?;
    Ok(())
}
