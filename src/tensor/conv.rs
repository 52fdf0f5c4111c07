//! Grouped N-D convolution (ONNX `Conv` semantics, no bias) over any [`Elem`], by im2col onto
//! the matrix kernel: one `[M/g, C/g*K] x [C/g*K, positions]` product per image and group.

use super::{
    Elem,
    window::{Window, unravel},
};
use anyhow::{Result, ensure};
use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

/// `x: [N, C, spatial...]`, `w: [M, C/groups, kernel...]` -> `[N, M, output...]`.
pub fn conv<E: Elem>(
    x: &ArrayViewD<E>,
    w: &ArrayViewD<E>,
    window: &Window,
    groups: usize,
) -> Result<ArrayD<E>> {
    let rank = window.rank();
    ensure!(
        x.ndim() == rank + 2 && w.ndim() == rank + 2,
        "conv expects rank-{} input and weight, got {:?} and {:?}",
        rank + 2,
        x.shape(),
        w.shape()
    );
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let m = w.shape()[0];
    ensure!(
        groups > 0 && c.is_multiple_of(groups) && m.is_multiple_of(groups),
        "{c} input and {m} output channels do not split into {groups} groups"
    );
    let (cg, mg) = (c / groups, m / groups);
    ensure!(
        w.shape()[1] == cg,
        "conv weight has {} input channels per group, the input has {cg}",
        w.shape()[1]
    );
    ensure!(
        w.shape()[2..] == window.kernel[..],
        "conv weight kernel {:?} differs from the window {:?}",
        &w.shape()[2..],
        window.kernel
    );
    let spatial = &x.shape()[2..];
    let taps = window.taps(spatial)?;
    let plane: usize = spatial.iter().product();
    let positions = taps.positions();
    let x = x.as_standard_layout();
    let w = w.as_standard_layout();
    let (xs, ws) = (
        x.as_slice().expect("standard layout"),
        w.as_slice().expect("standard layout"),
    );
    let kdim = cg * taps.kernel_size;
    let mut out = vec![E::ZERO; n * m * positions];
    // The im2col buffer is one per worker, reused across the images it takes.
    out.par_chunks_mut(m * positions).enumerate().for_each_init(
        Vec::new,
        |cols, (img, out_img)| {
            let image = &xs[img * c * plane..(img + 1) * c * plane];
            for g in 0..groups {
                taps.im2col(image, plane, g * cg..(g + 1) * cg, cols);
                E::gemm(
                    mg,
                    kdim,
                    positions,
                    &ws[g * mg * kdim..(g + 1) * mg * kdim],
                    cols,
                    &mut out_img[g * mg * positions..(g + 1) * mg * positions],
                );
            }
        },
    );
    taps.shaped(&[n, m], out)
}

/// Transposed convolution (ONNX `ConvTranspose`, no bias): `x: [N, C, in...]`,
/// `w: [C, M/groups, kernel...]` -> `[N, M, output...]`. Each input position spreads
/// `x * w` over the output at `in * stride + k * dilation - pad_begin`: one
/// `[M/g * K, C/g] x [C/g, positions]` product per image and group, then a scatter-add.
pub fn conv_transpose<E: Elem>(
    x: &ArrayViewD<E>,
    w: &ArrayViewD<E>,
    window: &Window,
    output: &[usize],
    groups: usize,
) -> Result<ArrayD<E>> {
    let rank = window.rank();
    ensure!(
        x.ndim() == rank + 2 && w.ndim() == rank + 2 && output.len() == rank,
        "conv_transpose expects rank-{} input and weight",
        rank + 2
    );
    let (n, c) = (x.shape()[0], x.shape()[1]);
    ensure!(
        groups > 0 && c.is_multiple_of(groups) && w.shape()[0] == c,
        "ConvTranspose weight {:?} does not match {c} input channels in {groups} groups",
        w.shape()
    );
    ensure!(
        w.shape()[2..] == window.kernel[..],
        "ConvTranspose weight kernel {:?} differs from {:?}",
        &w.shape()[2..],
        window.kernel
    );
    let (cg, mg) = (c / groups, w.shape()[1]);
    let m = mg * groups;
    let input: Vec<usize> = x.shape()[2..].to_vec();
    let kernel_size: usize = window.kernel.iter().product();
    let in_positions: usize = input.iter().product();
    let out_positions: usize = output.iter().product();
    // For every (kernel offset, input position): the output position it lands on, if any.
    let mut target: Vec<Option<usize>> = Vec::with_capacity(kernel_size * in_positions);
    let (mut k_idx, mut i_idx) = (vec![0; rank], vec![0; rank]);
    for kk in 0..kernel_size {
        unravel(kk, &window.kernel, &mut k_idx);
        for ip in 0..in_positions {
            unravel(ip, &input, &mut i_idx);
            target.push((0..rank).try_fold(0usize, |flat, d| {
                let at = (i_idx[d] * window.strides[d] + k_idx[d] * window.dilations[d]) as isize
                    - window.pads_begin[d] as isize;
                (0..output[d] as isize)
                    .contains(&at)
                    .then(|| flat * output[d] + at as usize)
            }));
        }
    }
    let x = x.as_standard_layout();
    let w = w.as_standard_layout();
    let (xs, ws) = (
        x.as_slice().expect("standard layout"),
        w.as_slice().expect("standard layout"),
    );
    // Per group, W^T: [(m, k), c] from w[c, m, k].
    let w_t: Vec<Vec<E>> = (0..groups)
        .map(|g| {
            let rows = mg * kernel_size;
            let mut t = vec![E::ZERO; rows * cg];
            for ci in 0..cg {
                for r in 0..rows {
                    t[r * cg + ci] = ws[(g * cg + ci) * rows + r];
                }
            }
            t
        })
        .collect();
    let mut out = vec![E::ZERO; n * m * out_positions];
    // The product buffer is one per worker, reused across the images it takes.
    out.par_chunks_mut(m * out_positions)
        .enumerate()
        .for_each_init(Vec::new, |cols, (img, out_img)| {
            for (g, w_g) in w_t.iter().enumerate() {
                cols.clear();
                cols.resize(mg * kernel_size * in_positions, E::ZERO);
                let x_g =
                    &xs[(img * c + g * cg) * in_positions..(img * c + (g + 1) * cg) * in_positions];
                E::gemm(mg * kernel_size, cg, in_positions, w_g, x_g, cols);
                for mi in 0..mg {
                    let plane = &mut out_img
                        [(g * mg + mi) * out_positions..(g * mg + mi + 1) * out_positions];
                    for kk in 0..kernel_size {
                        let row = &cols[(mi * kernel_size + kk) * in_positions
                            ..(mi * kernel_size + kk + 1) * in_positions];
                        for (ip, &v) in row.iter().enumerate() {
                            if let Some(o) = target[kk * in_positions + ip] {
                                plane[o] = plane[o].add(v);
                            }
                        }
                    }
                }
            }
        });
    let shape: Vec<usize> = [n, m].into_iter().chain(output.iter().copied()).collect();
    Ok(ArrayD::from_shape_vec(ndarray::IxDyn(&shape), out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    /// Direct-loop 2-D reference, written independently of the tap table.
    fn direct(
        x: &ArrayD<f32>,
        w: &ArrayD<f32>,
        s: usize,
        p: usize,
        d: usize,
        groups: usize,
    ) -> ArrayD<f32> {
        let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (m, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
        let ow = (wd + 2 * p - d * (kw - 1) - 1) / s + 1;
        let mg = m / groups;
        let _ = c;
        ArrayD::from_shape_fn(IxDyn(&[n, m, oh, ow]), |ix| {
            let (b, o, y, z) = (ix[0], ix[1], ix[2], ix[3]);
            let g = o / mg;
            let mut acc = 0.0;
            for ci in 0..cg {
                for i in 0..kh {
                    for j in 0..kw {
                        let yy = (y * s + i * d) as isize - p as isize;
                        let zz = (z * s + j * d) as isize - p as isize;
                        if yy >= 0 && zz >= 0 && (yy as usize) < h && (zz as usize) < wd {
                            acc += x[[b, g * cg + ci, yy as usize, zz as usize]] * w[[o, ci, i, j]];
                        }
                    }
                }
            }
            acc
        })
    }

    #[test]
    fn matches_direct_convolution_across_attributes() {
        for &(c, m, groups, s, p, d) in &[
            (3, 4, 1, 1, 0, 1),
            (4, 6, 2, 2, 1, 1),
            (4, 4, 4, 1, 2, 2),
            (2, 3, 1, 3, 1, 2),
        ] {
            let x = ArrayD::from_shape_fn(IxDyn(&[2, c, 7, 6]), |ix| {
                ((ix[1] * 31 + ix[2] * 7 + ix[3] * 3 + ix[0]) % 11) as f32 - 5.0
            });
            let w = ArrayD::from_shape_fn(IxDyn(&[m, c / groups, 3, 3]), |ix| {
                ((ix[0] * 5 + ix[1] * 3 + ix[2] + ix[3] * 2) % 7) as f32 - 3.0
            });
            let window = Window {
                kernel: vec![3, 3],
                strides: vec![s, s],
                dilations: vec![d, d],
                pads_begin: vec![p, p],
                pads_end: vec![p, p],
                ceil_mode: false,
            };
            let got = conv(&x.view(), &w.view(), &window, groups).unwrap();
            assert_eq!(
                got,
                direct(&x, &w, s, p, d, groups),
                "c={c} m={m} g={groups} s={s} p={p} d={d}"
            );
        }
    }
}
