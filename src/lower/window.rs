//! The window attributes Conv and the pooling ops share (strides, dilations, pads, auto_pad).

use crate::import::Node;
use crate::plan::{Dim, Shape};
use crate::tensor::Window;
use anyhow::{Result, bail, ensure};

/// Spatial sizes of an `[N, C, spatial...]` tensor, which must not depend on the batch.
pub fn spatial_dims(shape: &Shape) -> Result<Vec<usize>> {
    ensure!(
        shape.rank() >= 3,
        "expected an [N, C, spatial...] input, got shape {shape}"
    );
    shape.0[2..]
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Ok(*n),
            Dim::Batch(_) => bail!("spatial size depends on the batch in shape {shape}"),
        })
        .collect()
}

fn per_axis(node: &Node, name: &str, rank: usize, default: usize) -> Result<Vec<usize>> {
    match node.ints(name)? {
        None => Ok(vec![default; rank]),
        Some(v) if v.len() == rank && v.iter().all(|&x| x >= 1) => {
            Ok(v.iter().map(|&x| x as usize).collect())
        }
        Some(v) => bail!(
            "attribute {name} = {v:?} does not give one positive value per spatial axis ({rank})"
        ),
    }
}

/// Resolves the node's window attributes against its input's spatial size.
pub fn window(node: &Node, input: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Window> {
    let rank = kernel.len();
    ensure!(
        input.len() == rank,
        "kernel has {rank} spatial axes but the input has {}",
        input.len()
    );
    let strides = per_axis(node, "strides", rank, 1)?;
    let dilations = per_axis(node, "dilations", rank, 1)?;
    let auto_pad = node.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let (pads_begin, pads_end) = match auto_pad.as_str() {
        "NOTSET" => match node.ints("pads")? {
            None => (vec![0; rank], vec![0; rank]),
            Some(p) if p.len() == 2 * rank && p.iter().all(|&x| x >= 0) => (
                p[..rank].iter().map(|&x| x as usize).collect(),
                p[rank..].iter().map(|&x| x as usize).collect(),
            ),
            Some(p) => bail!(
                "attribute pads = {p:?} must hold {} non-negative values (begins, then ends)",
                2 * rank
            ),
        },
        "VALID" => (vec![0; rank], vec![0; rank]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut begin = vec![0; rank];
            let mut end = vec![0; rank];
            for d in 0..rank {
                let out = input[d].div_ceil(strides[d]);
                let needed = (out - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1;
                let total = needed.saturating_sub(input[d]);
                let small = total / 2;
                (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
            }
            (begin, end)
        }
        other => bail!("auto_pad = {other:?} is not an ONNX padding mode"),
    };
    let window = Window {
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pads_begin,
        pads_end,
        ceil_mode,
    };
    window.output_shape(input)?;
    Ok(window)
}

/// The kernel size from the `kernel_shape` attribute, checked against `from_weight` if given.
pub fn kernel_shape(node: &Node, from_weight: Option<&[usize]>) -> Result<Vec<usize>> {
    match (node.ints("kernel_shape")?, from_weight) {
        (Some(k), Some(w)) if k.iter().map(|&x| x as usize).ne(w.iter().copied()) => {
            bail!("kernel_shape {k:?} disagrees with the weight's kernel {w:?}")
        }
        (Some(k), _) if k.iter().all(|&x| x >= 1) => Ok(k.iter().map(|&x| x as usize).collect()),
        (Some(k), _) => bail!("kernel_shape {k:?} must be positive"),
        (None, Some(w)) => Ok(w.to_vec()),
        (None, None) => bail!("{} needs the kernel_shape attribute", node.op_type),
    }
}

/// ConvTranspose's window and spatial output size: from `output_shape` (pads derived from
/// it), from auto_pad SAME (output = input * stride), or from explicit pads.
pub fn transpose_window(
    node: &Node,
    input: &[usize],
    kernel: &[usize],
) -> Result<(Window, Vec<usize>)> {
    let rank = kernel.len();
    ensure!(
        input.len() == rank,
        "kernel has {rank} spatial axes but the input has {}",
        input.len()
    );
    let strides = per_axis(node, "strides", rank, 1)?;
    let dilations = per_axis(node, "dilations", rank, 1)?;
    let output_padding: Vec<usize> = match node.ints("output_padding")? {
        Some(p) if p.len() == rank && p.iter().all(|&v| v >= 0) => {
            p.iter().map(|&v| v as usize).collect()
        }
        Some(p) => bail!("output_padding {p:?} must hold one non-negative value per spatial axis"),
        None => vec![0; rank],
    };
    // The output size before removing any padding.
    let full: Vec<usize> = (0..rank)
        .map(|d| {
            strides[d] * (input[d] - 1) + output_padding[d] + (kernel[d] - 1) * dilations[d] + 1
        })
        .collect();
    let auto_pad = node.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let requested: Option<Vec<usize>> = match node.ints("output_shape")? {
        Some(s) => Some(
            s[s.len().saturating_sub(rank)..]
                .iter()
                .map(|&v| v as usize)
                .collect(),
        ),
        None if auto_pad.starts_with("SAME") => {
            Some((0..rank).map(|d| input[d] * strides[d]).collect())
        }
        None => None,
    };
    let (pads_begin, pads_end, output) = match requested {
        Some(out) => {
            let mut begin = vec![0; rank];
            let mut end = vec![0; rank];
            for d in 0..rank {
                // An output larger than the kernel reaches is zero-extended at the end.
                let total = full[d].saturating_sub(out[d]);
                let small = total / 2;
                (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
            }
            (begin, end, out)
        }
        None => {
            let (begin, end): (Vec<usize>, Vec<usize>) = match node.ints("pads")? {
                Some(p)
                    if p.len() == 2 * rank && p.iter().all(|&x| x >= 0) && auto_pad != "VALID" =>
                {
                    (
                        p[..rank].iter().map(|&x| x as usize).collect(),
                        p[rank..].iter().map(|&x| x as usize).collect(),
                    )
                }
                Some(p) if auto_pad != "VALID" => bail!(
                    "attribute pads = {p:?} must hold {} non-negative values",
                    2 * rank
                ),
                _ => (vec![0; rank], vec![0; rank]),
            };
            let out = (0..rank)
                .map(|d| {
                    full[d]
                        .checked_sub(begin[d] + end[d])
                        .ok_or_else(|| anyhow::anyhow!("ConvTranspose pads exceed the output size"))
                })
                .collect::<Result<Vec<_>>>()?;
            (begin, end, out)
        }
    };
    let window = Window {
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pads_begin,
        pads_end,
        ceil_mode: false,
    };
    Ok((window, output))
}
